/* ckptscope diff: drift of every tensor between two checkpoints, A the reference:
 * rel_fro = ||B - A||_F / ||A||_F, cos, absmax_delta (DESIGN §3, metrics/drift.h).
 * Tensors present on one side only are listed, never dropped. */
#include "cli.h"
#include "cmd.h"
#include "drift.h"
#include "error.h"
#include "json.h"
#include "spec.h"
#include "weights.h"

#include <fnmatch.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char usage_text[] =
    "usage: ckptscope diff SOURCE@A SOURCE@B [--tensors GLOB] [--threads N] [--json]\n"
    "\n"
    "Compare every tensor of checkpoint B with the same tensor of checkpoint A (the\n"
    "reference): rel_fro = ||B - A||_F / ||A||_F, cos = <A, B> / (||A|| ||B||) and\n"
    "absmax_delta = max |B - A|, streamed over both mapped files. A and B may come from\n"
    "different sources. Tensors found on one side only are listed as such; tensors whose\n"
    "shapes differ get no values and an error.\n"
    "\n"
    "  --tensors GLOB  only tensors whose name matches GLOB (e.g. 'model.layers.0.*')\n"
    "  --threads N     threads (default: all CPUs)\n"
    "  --json          one JSON document on stdout: {\"a\", \"b\", \"tensors\": [{\"name\",\n"
    "                  \"rel_fro\", \"cos\", \"absmax_delta\"}], \"only_in_a\", \"only_in_b\"}\n"
    "  -h, --help      this help\n";

typedef struct {
    const char *tensors;
    int threads, json;
} options;

typedef struct {
    const cks_tensor *a, *b; /* either may be NULL: present on one side only */
    int ok;
    cks_drift d;
    char error[256];
} row;

static json_t *ckpt_json(const cks_ckpt *c)
{
    const cks_ckpt_info *ci = cks_ckpt_info_of(c);
    return json_pack("{s:s, s:I, s:o}", "name", ci->name, "step", (json_int_t)ci->step, "commit",
                     ci->commit ? json_string(ci->commit) : json_null());
}

static int emit_json(const cks_ckpt *ca, const cks_ckpt *cb, const row *rows, size_t n)
{
    json_t *arr = json_array(), *only_a = json_array(), *only_b = json_array();
    for (size_t i = 0; i < n; i++) {
        const row *r = &rows[i];
        if (!r->b) {
            json_array_append_new(only_a, json_string(r->a->name));
            continue;
        }
        if (!r->a) {
            json_array_append_new(only_b, json_string(r->b->name));
            continue;
        }
        json_t *o = json_pack("{s:s, s:o, s:o, s:o}", "name", r->a->name, "rel_fro",
                              cks_json_number(r->ok ? r->d.rel_fro : NAN), "cos",
                              cks_json_number(r->ok ? r->d.cos : NAN), "absmax_delta",
                              cks_json_number(r->ok ? r->d.absmax_delta : NAN));
        if (!r->ok)
            json_object_set_new(o, "error", json_string(r->error));
        json_array_append_new(arr, o);
    }
    json_t *doc = json_pack("{s:o, s:o, s:o, s:o, s:o}", "a", ckpt_json(ca), "b", ckpt_json(cb),
                            "tensors", arr, "only_in_a", only_a, "only_in_b", only_b);
    return cli_json_print(doc) == 0 ? 0 : CLI_USAGE;
}

static void print_text(const cks_ckpt *ca, const cks_ckpt *cb, const row *rows, size_t n)
{
    const cks_ckpt_info *ia = cks_ckpt_info_of(ca), *ib = cks_ckpt_info_of(cb);
    size_t both = 0, width = 6;
    for (size_t i = 0; i < n; i++) {
        const cks_tensor *t = rows[i].a ? rows[i].a : rows[i].b;
        both += rows[i].a && rows[i].b;
        if (strlen(t->name) > width)
            width = strlen(t->name);
    }
    printf("diff %s (step %lld) -> %s (step %lld): %zu tensors in both\n", ia->name,
           (long long)ia->step, ib->name, (long long)ib->step, both);
    printf("%-*s %14s %14s %14s\n", (int)width, "TENSOR", "REL_FRO", "COS", "ABSMAX_DELTA");
    for (size_t i = 0; i < n; i++) {
        const row *r = &rows[i];
        if (!r->a || !r->b)
            continue;
        if (!r->ok)
            printf("%-*s %s\n", (int)width, r->a->name, r->error);
        else
            printf("%-*s %14.6e %14.10f %14.6e\n", (int)width, r->a->name, r->d.rel_fro, r->d.cos,
                   r->d.absmax_delta);
    }
    for (size_t i = 0; i < n; i++) {
        if (!rows[i].b)
            printf("only in %s: %s\n", ia->name, rows[i].a->name);
        else if (!rows[i].a)
            printf("only in %s: %s\n", ib->name, rows[i].b->name);
    }
}

static int parse_args(int argc, char **argv, options *o)
{
    static const struct option opts[] = {{"tensors", required_argument, NULL, 't'},
                                         {"threads", required_argument, NULL, 'T'},
                                         {"json", no_argument, NULL, 'j'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int c;
    o->threads = cli_default_threads();
    optind = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 't':
            o->tensors = optarg;
            break;
        case 'T':
            if (cli_parse_threads("diff", optarg, &o->threads) != 0)
                return CLI_USAGE;
            break;
        case 'j':
            o->json = 1;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return -1;
        default:
            return cli_usage_error("diff", "unknown option");
        }
    }
    if (optind != argc - 2)
        return cli_usage_error("diff", "expected SOURCE@A and SOURCE@B");
    return 0;
}

/* Pairs the tensors by name: A's in its order (B's partner or none), then B's own. */
static int pair(const cks_tensor_list *la, const cks_tensor_list *lb, const char *glob, row **out,
                size_t *n)
{
    row *rows = calloc(la->count + lb->count + 1, sizeof *rows);
    size_t k = 0;
    if (!rows)
        return cks_error_set(CKS_ENOMEM, "out of memory");
    for (size_t i = 0; i < la->count; i++) {
        if (glob && fnmatch(glob, la->items[i].name, 0) != 0)
            continue;
        long j = cks_tensor_list_find(lb, la->items[i].name);
        rows[k].a = &la->items[i];
        rows[k++].b = j < 0 ? NULL : &lb->items[j];
    }
    for (size_t j = 0; j < lb->count; j++) {
        if ((glob && fnmatch(glob, lb->items[j].name, 0) != 0) ||
            cks_tensor_list_find(la, lb->items[j].name) >= 0)
            continue;
        rows[k++].b = &lb->items[j];
    }
    *out = rows;
    *n = k;
    return 0;
}

int cmd_diff(int argc, char **argv)
{
    options o = {0};
    cks_source *sa = NULL, *sb = NULL;
    cks_ckpt *ca = NULL, *cb = NULL;
    cks_weights *wa = NULL, *wb = NULL;
    row *rows = NULL;
    size_t n = 0;
    int err, status = parse_args(argc, argv, &o);
    if (status)
        return status < 0 ? cli_finish("diff", 0) : status;
    if ((err = spec_open_fetched(argv[optind], &sa, &ca)) ||
        (err = spec_open_fetched(argv[optind + 1], &sb, &cb)) ||
        (err = cks_weights_open(&wa, ca)) || (err = cks_weights_open(&wb, cb)) ||
        (err = pair(cks_weights_tensors(wa), cks_weights_tensors(wb), o.tensors, &rows, &n))) {
        status = cli_fail("diff", err);
        goto done;
    }
    if (n == 0) {
        status = cli_fail("diff", cks_error_set(CKS_ENOTFOUND, "no tensor matches '%s'",
                                                o.tensors ? o.tensors : "*"));
        goto done;
    }
    const cks_ckpt_info *ia = cks_ckpt_info_of(ca), *ib = cks_ckpt_info_of(cb);
    for (size_t i = 0; i < n; i++) {
        row *r = &rows[i];
        if (!r->a || !r->b)
            continue;
        err = cks_drift_compute(r->b, ib->step, r->a, ia->step, o.threads, &r->d);
        if (err == CKS_ENOMEM) {
            status = cli_fail("diff", err);
            goto done;
        }
        r->ok = err == 0;
        if (!r->ok) /* a shape or dtype mismatch: reported in its row, the rest goes on */
            snprintf(r->error, sizeof r->error, "%s", cks_error_last());
        cks_map_dontneed(cks_weights_file(wa, r->a->file), r->a->data, r->a->nbytes);
        cks_map_dontneed(cks_weights_file(wb, r->b->file), r->b->data, r->b->nbytes);
    }
    /* a file that shrank or failed to read while being compared gave zeros (map.h) */
    if ((err = cks_weights_check(wa)) != 0 || (err = cks_weights_check(wb)) != 0) {
        status = cli_fail("diff", err);
        goto done;
    }
    if (o.json)
        status = emit_json(ca, cb, rows, n);
    else
        print_text(ca, cb, rows, n);
done:
    free(rows);
    cks_weights_free(wb);
    cks_weights_free(wa);
    cks_ckpt_free(cb);
    cks_ckpt_free(ca);
    cks_source_free(sb);
    cks_source_free(sa);
    return cli_finish("diff", status);
}
