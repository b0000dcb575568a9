/* cks-runfx: writes run-file content through the store API (reports/store.h) for tests of
 * plot and report: datasets that other parts of ckptscope write (/eval from the forward
 * pass, /evals from evals import, /spectral before it is built in) or hostile names.
 * Reads one JSON operation per line on stdin and applies them all in one transaction:
 *   {"op": "ckpt", "name": N, "step": S, "commit": C, "status": "complete"}
 *   {"op": "tensors", "tensors": [{"name", "layer", "kind", "rows", "cols"}, ...]}
 *   {"op": "series", "path": "/eval/x/ppl", "row": R, "value": V|null, "unit": U}
 *   {"op": "row", "path": "/spectral/alpha", "row": R, "values": [V|null, ...], "unit": U}
 *   {"op": "spectra", "tensor": NAME, "row": R, "values": [...]}   (float32 [N, K])
 *   {"op": "attr", "obj": "/", "name": A, "value": V}
 * "description" is optional everywhere. With --create SOURCE the run file is created. */
#include "error.h"
#include "json.h"
#include "store.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LINE_MAX_BYTES (16u << 20)

static double num_or_nan(const json_t *v)
{
    return json_is_number(v) ? json_number_value(v) : NAN;
}

static const char *str(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static int op_values(cks_store *s, const json_t *op, const char *kind)
{
    const json_t *vals = json_object_get(op, "values");
    size_t n = json_array_size(vals), row = (size_t)json_integer_value(json_object_get(op, "row"));
    double *d = calloc(n ? n : 1, sizeof *d);
    float *f = calloc(n ? n : 1, sizeof *f);
    int err = 0;
    if (!d || !f)
        err = cks_error_set(CKS_ENOMEM, "out of memory");
    for (size_t i = 0; !err && i < n; i++) {
        d[i] = num_or_nan(json_array_get(vals, i));
        f[i] = (float)d[i];
    }
    if (!err && strcmp(kind, "row") == 0)
        err = cks_store_write_row(s, str(op, "path"), row, d, n, str(op, "description"),
                                  str(op, "unit"));
    else if (!err) {
        char *esc = cks_store_escape_name(str(op, "tensor"));
        char path[8192];
        snprintf(path, sizeof path, "/spectra/%s", esc ? esc : "");
        free(esc);
        err = cks_store_write_row_f32(s, path, row, f, n, "rank", "largest eigenvalues", NULL);
    }
    free(d);
    free(f);
    return err;
}

static int op_tensors(cks_store *s, const json_t *op)
{
    const json_t *arr = json_object_get(op, "tensors");
    size_t n = json_array_size(arr);
    cks_store_tensor *t = calloc(n ? n : 1, sizeof *t);
    if (!t)
        return cks_error_set(CKS_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(arr, i);
        t[i].name = (char *)str(e, "name");
        t[i].kind = (char *)str(e, "kind");
        t[i].layer = (int32_t)json_integer_value(json_object_get(e, "layer"));
        t[i].rows = json_integer_value(json_object_get(e, "rows"));
        t[i].cols = json_integer_value(json_object_get(e, "cols"));
    }
    int err = cks_store_add_tensors(s, t, n, NULL);
    free(t);
    return err;
}

static int apply(cks_store *s, const json_t *op)
{
    const char *kind = str(op, "op");
    size_t row;
    if (!kind)
        return cks_error_set(CKS_EINVAL, "operation without \"op\"");
    if (strcmp(kind, "ckpt") == 0)
        return cks_store_put_checkpoint(s, str(op, "name"),
                                        json_integer_value(json_object_get(op, "step")),
                                        str(op, "commit") ? str(op, "commit") : "",
                                        str(op, "status") ? str(op, "status") : "complete", &row);
    if (strcmp(kind, "tensors") == 0)
        return op_tensors(s, op);
    if (strcmp(kind, "series") == 0)
        return cks_store_write_series(
            s, str(op, "path"), (size_t)json_integer_value(json_object_get(op, "row")),
            num_or_nan(json_object_get(op, "value")), str(op, "description"), str(op, "unit"));
    if (strcmp(kind, "row") == 0 || strcmp(kind, "spectra") == 0)
        return op_values(s, op, kind);
    if (strcmp(kind, "attr") == 0)
        return cks_store_set_attr(s, str(op, "obj"), str(op, "name"), str(op, "value"));
    return cks_error_set(CKS_EINVAL, "unknown op '%s'", kind);
}

int main(int argc, char **argv)
{
    if (argc != 2 && !(argc == 4 && strcmp(argv[2], "--create") == 0)) {
        fprintf(stderr, "usage: cks-runfx RUN.h5 [--create SOURCE] < ops.jsonl\n");
        return 2;
    }
    cks_store *s = NULL;
    cks_store_meta meta = {argc == 4 ? argv[3] : "", "", NULL, NULL};
    int err = argc == 4 ? cks_store_create(&s, argv[1], &meta)
                        : cks_store_open(&s, argv[1], CKS_STORE_WRITE);
    if (!err)
        err = cks_store_begin(s);
    char *line = malloc(LINE_MAX_BYTES);
    size_t lineno = 0;
    while (!err && line && fgets(line, LINE_MAX_BYTES, stdin)) {
        json_t *op = NULL;
        lineno++;
        if (line[0] == '\n')
            continue;
        err = cks_json_parse(line, strlen(line), "stdin", 1, &op);
        if (!err && (err = apply(s, op)))
            cks_error_prefix(err, "line %zu", lineno);
        json_decref(op);
    }
    free(line);
    if (!err)
        err = cks_store_commit(s);
    cks_store_free(s);
    if (err) {
        fprintf(stderr, "cks-runfx: %s\n", cks_error_last());
        return 2;
    }
    return 0;
}
