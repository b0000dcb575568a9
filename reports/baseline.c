/* The pinned baseline of the regression gate: a JSON file recording which run it belongs
 * to (model, source, config.json), the checkpoint, and every score's value, stderr, sample
 * count, direction and tolerance. Layout:
 *   {"format": "ckptscope-baseline", "format_version": 1, "created_by": str,
 *    "run": {"model": str|null, "source": str|null, "config": {...}|null},
 *    "checkpoint": {"name": str, "step": int},
 *    "metrics": [{"id": "evals/<task>/<metric>", "value": num|null, "stderr": num|null,
 *                 "n": num|null, "direction": "higher"|"lower"|"equal"|"unknown",
 *                 "tolerance": "se:2,rel:0.01"}, ...]}
 * Read as hostile input: every field is type- and range-checked, ids are unique. */
#include "error.h"
#include "json.h"
#include "map.h"
#include "regress.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void cks_baseline_release(cks_baseline *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->n; i++)
        free(b->m[i].id);
    free(b->m);
    free(b->path);
    free(b->model);
    free(b->source);
    free(b->ckpt);
    json_decref(b->config);
    memset(b, 0, sizeof *b);
}

/* A string or null member: *out a new string or NULL. */
static int opt_string(const json_t *obj, const char *key, const char *display, char **out)
{
    const json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v) || json_string_length(v) > CKS_BASELINE_MAX_BYTES / 4)
        return cks_error_set(CKS_EFORMAT, "%s: '%s' must be a string or null", display, key);
    if (!(*out = strdup(json_string_value(v))))
        return cks_error_set(CKS_ENOMEM, "out of memory");
    return 0;
}

/* A number or null member (absent: NaN). */
static int opt_number(const json_t *obj, const char *key, const char *display, double *out)
{
    const json_t *v = json_object_get(obj, key);
    *out = NAN;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_number(v))
        return cks_error_set(CKS_EFORMAT, "%s: '%s' must be a number or null", display, key);
    *out = json_number_value(v);
    return 0;
}

static int read_metric(const json_t *e, const char *display, cks_baseline_metric *m)
{
    const char *id, *dir = NULL, *tol = NULL;
    int err;
    if (!json_is_object(e))
        return cks_error_set(CKS_EFORMAT, "%s is not an object", display);
    if ((err = cks_json_get_string(e, "id", 0, display, &id)) != 0)
        return err;
    size_t len = strlen(id);
    if (len == 0 || len >= CKS_GATE_MAX_ID || len != json_string_length(json_object_get(e, "id")))
        return cks_error_set(CKS_EFORMAT, "%s: 'id' is empty, too long or holds a NUL", display);
    if ((err = opt_number(e, "value", display, &m->value)) ||
        (err = opt_number(e, "stderr", display, &m->stderr_)) ||
        (err = opt_number(e, "n", display, &m->n)))
        return err;
    if ((err = cks_json_get_string(e, "direction", 1, display, &dir)) && err != CKS_ENOTFOUND)
        return err;
    m->dir = CKS_DIR_UNKNOWN;
    if (dir && strcmp(dir, "unknown") != 0 && cks_direction_parse(dir, &m->dir) != 0)
        return cks_error_set(CKS_EFORMAT, "%s: 'direction' must be higher, lower, equal or unknown",
                             display);
    if ((err = cks_json_get_string(e, "tolerance", 1, display, &tol)) && err != CKS_ENOTFOUND)
        return err;
    if (tol && (err = cks_tolerance_parse(tol, &m->tol)) != 0)
        return cks_error_prefix(err, "%s", display);
    m->has_tol = tol != NULL;
    if (!(m->id = strdup(id)))
        return cks_error_set(CKS_ENOMEM, "out of memory");
    return 0;
}

static int cmp_id(const void *a, const void *b)
{
    return strcmp(((const cks_baseline_metric *)a)->id, ((const cks_baseline_metric *)b)->id);
}

static int read_header(const json_t *root, const char *path, cks_baseline *b)
{
    const char *fmt;
    int64_t version;
    char where[4200];
    int err;
    if ((err = cks_json_get_string(root, "format", 0, path, &fmt)) != 0)
        return err;
    if (strcmp(fmt, CKS_BASELINE_FORMAT) != 0)
        return cks_error_set(CKS_EFORMAT, "%s: not a ckptscope baseline (format is not '%s')", path,
                             CKS_BASELINE_FORMAT);
    if ((err = cks_json_get_int(root, "format_version", 1, 1000000, 0, 0, path, &version)) != 0)
        return err;
    if (version != CKS_BASELINE_VERSION)
        return cks_error_set(CKS_EFORMAT,
                             "%s: baseline format_version %lld, this ckptscope reads %d", path,
                             (long long)version, CKS_BASELINE_VERSION);
    const json_t *run = json_object_get(root, "run"), *ck = json_object_get(root, "checkpoint");
    if (!json_is_object(run) || !json_is_object(ck))
        return cks_error_set(CKS_EFORMAT, "%s: 'run' and 'checkpoint' must be objects", path);
    snprintf(where, sizeof where, "%s: run", path);
    if ((err = opt_string(run, "model", where, &b->model)) ||
        (err = opt_string(run, "source", where, &b->source)))
        return err;
    const json_t *config = json_object_get(run, "config");
    if (config && !json_is_null(config) && !json_is_object(config))
        return cks_error_set(CKS_EFORMAT, "%s: 'config' must be an object or null", where);
    if (json_is_object(config))
        b->config = json_incref((json_t *)config);
    snprintf(where, sizeof where, "%s: checkpoint", path);
    const char *name;
    if ((err = cks_json_get_string(ck, "name", 0, where, &name)) ||
        (err = cks_json_get_int(ck, "step", -1, INT64_MAX, 0, 0, where, &b->step)))
        return err;
    if (!(b->ckpt = strdup(name)))
        return cks_error_set(CKS_ENOMEM, "out of memory");
    return 0;
}

int cks_baseline_read(const char *path, cks_baseline *out)
{
    cks_baseline b;
    json_t *root = NULL;
    char *text = NULL;
    size_t len;
    int err;
    memset(&b, 0, sizeof b);
    if ((err = cks_read_file(path, CKS_BASELINE_MAX_BYTES, &text, &len)) ||
        (err = cks_json_parse(text, len, path, 1, &root)) || (err = read_header(root, path, &b)))
        goto fail;
    const json_t *metrics = json_object_get(root, "metrics");
    if (!json_is_array(metrics) || json_array_size(metrics) > CKS_GATE_MAX_METRICS) {
        err = cks_error_set(CKS_EFORMAT, "%s: 'metrics' must be an array of at most %d scores",
                            path, CKS_GATE_MAX_METRICS);
        goto fail;
    }
    if (!(b.path = strdup(path)) || !(b.m = calloc(json_array_size(metrics) + 1, sizeof *b.m))) {
        err = cks_error_set(CKS_ENOMEM, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < json_array_size(metrics); i++) {
        char where[4200];
        snprintf(where, sizeof where, "%s: metrics[%zu]", path, i);
        if ((err = read_metric(json_array_get(metrics, i), where, &b.m[b.n])) != 0)
            goto fail;
        b.n++;
    }
    qsort(b.m, b.n, sizeof *b.m, cmp_id);
    for (size_t i = 1; i < b.n; i++) {
        if (strcmp(b.m[i - 1].id, b.m[i].id) == 0) {
            err = cks_error_set(CKS_EFORMAT, "%s: score '%.200s' is listed twice", path, b.m[i].id);
            goto fail;
        }
    }
    *out = b;
    json_decref(root);
    free(text);
    return 0;
fail:
    cks_baseline_release(&b);
    json_decref(root);
    free(text);
    return err;
}

/* ---- writing ---- */

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

static json_t *baseline_json(const cks_gate_report *r, size_t *written, size_t *left_out)
{
    json_t *metrics = json_array();
    *written = *left_out = 0;
    for (size_t i = 0; metrics && i < r->n; i++) {
        const cks_gate_metric *m = &r->m[i];
        char tol[128];
        if (!m->in_run)
            continue;
        if (!isfinite(m->at.value)) {
            (*left_out)++;
            continue;
        }
        json_array_append_new(metrics, json_pack("{s:s, s:o, s:o, s:o, s:s, s:s}", "id", m->id,
                                                 "value", cks_json_number(m->at.value), "stderr",
                                                 cks_json_number(m->at.stderr_), "n",
                                                 cks_json_number(m->at.n), "direction",
                                                 cks_direction_name(m->dir), "tolerance",
                                                 cks_tolerance_format(&m->tol, tol, sizeof tol)));
        (*written)++;
    }
    return json_pack("{s:s, s:i, s:s, s:{s:o, s:o, s:O?}, s:{s:s, s:I}, s:o}", "format",
                     CKS_BASELINE_FORMAT, "format_version", CKS_BASELINE_VERSION, "created_by",
                     "ckptscope " CKS_VERSION, "run", "model", str_or_null(r->model), "source",
                     str_or_null(r->source), "config", r->config, "checkpoint", "name", r->at.name,
                     "step", (json_int_t)r->at.step, "metrics", metrics);
}

int cks_baseline_write(const cks_gate_report *r, const char *path, size_t *written,
                       size_t *left_out)
{
    char tmp[4200];
    json_t *doc = baseline_json(r, written, left_out);
    if (!doc)
        return cks_error_set(CKS_ENOMEM, "out of memory");
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    int err = 0;
    if (!f) {
        err = cks_error_set(CKS_EIO, "%s: cannot create: %s", tmp, strerror(errno));
    } else {
        int bad =
            json_dumpf(doc, f, JSON_INDENT(1) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17)) != 0;
        bad |= fputc('\n', f) == EOF;
        bad |= fflush(f) != 0 || fsync(fileno(f)) != 0;
        bad |= fclose(f) != 0;
        if (bad || rename(tmp, path) != 0) {
            err = cks_error_set(CKS_EIO, "%s: cannot write: %s", path, strerror(errno));
            unlink(tmp);
        }
    }
    json_decref(doc);
    return err;
}
