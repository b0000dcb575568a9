/* ckptscope inspect: config and per-tensor statistics of one checkpoint, then a
 * per-layer summary; with --spectral also the spectral statistics of every 2-D matrix. */
#include "cli.h"
#include "cmd.h"
#include "error.h"
#include "esd.h"
#include "model_family.h"
#include "json.h"
#include "norms.h"
#include "spec.h"
#include "spectral.h"
#include "weights.h"

#include <fnmatch.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char usage_text[] =
    "usage: ckptscope inspect SOURCE@REF [--tensors GLOB] [--spectral] [--threads N]\n"
    "                         [--json]\n"
    "\n"
    "Print the config of one checkpoint and, for every tensor, its dtype, shape and\n"
    "norms: fro (Frobenius), rms, mean, std (population), absmax, and counts of NaN\n"
    "and Inf elements (norms are over the finite elements). Then a per-layer summary.\n"
    "Tensors are read in place from the mapped files; nothing is modified. They are named\n"
    "and given kinds by the checkpoint's model family (config.json's model_type: llama,\n"
    "mistral, qwen2, gpt_neox, olmo, olmo2; LLaMA's names otherwise): GPT-NeoX's fused\n"
    "query_key_value appears as its per-head row blocks <name>:q, <name>:k, <name>:v, and\n"
    "the buffers of older Pythia files are listed but not measured. With hf://ORG/NAME@REF\n"
    "the checkpoint's files are fetched into the hub cache first (several at once; files\n"
    "already there are used as they are).\n"
    "\n"
    "With --spectral, every 2-D float matrix W also gets the spectral statistics of\n"
    "DESIGN §3 (WeightWatcher's definitions, from the eigenvalues λ = σ² of WᵀW computed\n"
    "in float64): sigma_max, log_spectral_norm (log10 λ1), log_norm (log10 ||W||_F²),\n"
    "stable_rank, entropy, effective_rank, the power-law fit of the eigenvalue tail\n"
    "(alpha, xmin, ks, tail; alpha_weighted = alpha·log10 λ1), num_spikes above the\n"
    "Marchenko-Pastur edge and mp_softrank; '-' (null in JSON) where a value cannot be\n"
    "computed (alpha when the smaller side is under 10, anything for a matrix with\n"
    "NaN/Inf). Cost grows as n³ in the smaller side: seconds for 4096, minutes for 8192.\n"
    "\n"
    "  --tensors GLOB  only tensors whose name matches GLOB (e.g. '*.mlp.*')\n"
    "  --spectral      add the spectral statistics of every 2-D matrix\n"
    "  --threads N     threads for the statistics (default: all CPUs)\n"
    "  --json          one JSON document on stdout\n"
    "  -h, --help      this help\n";

typedef struct {
    const char *tensors;
    int threads;
    int json;
    int spectral;
} options;

typedef struct {
    const cks_tensor *t;
    int buffer; /* one of the family's buffers (not a weight): no statistics */
    int have;   /* norms computed (float dtype) */
    cks_norms n;
    int have_spec; /* spectral statistics computed (2-D float matrix, --spectral) */
    cks_spectral spec;
} result;

static json_t *shape_json(const cks_tensor *t)
{
    json_t *a = json_array();
    for (int d = 0; d < t->ndim; d++)
        json_array_append_new(a, json_integer(t->shape[d]));
    return a;
}

static json_t *norms_json(const result *r)
{
    if (!r->have)
        return json_null();
    return json_pack("{s:o, s:o, s:o, s:o, s:o, s:I, s:I}", "fro", cks_json_number(r->n.fro), "rms",
                     cks_json_number(r->n.rms), "mean", cks_json_number(r->n.mean), "std",
                     cks_json_number(r->n.std), "absmax", cks_json_number(r->n.absmax), "nan",
                     (json_int_t)r->n.nan, "inf", (json_int_t)r->n.inf);
}

/* The §3 names in their order; counts as integers; NaN -> null. */
static json_t *spectral_json(const cks_spectral *s)
{
    size_t nm;
    const cks_metric_info *mi = cks_spectral_metrics(&nm);
    json_t *o = json_object();
    for (size_t i = 0; i < nm; i++) {
        double v = cks_spectral_value(s, i);
        int count = strcmp(mi[i].unit, "count") == 0;
        json_object_set_new(o, mi[i].name,
                            count && !isnan(v) ? json_integer((json_int_t)v) : cks_json_number(v));
    }
    return o;
}

static json_t *config_json(const cks_ckpt *c)
{
    char *text = NULL;
    size_t len;
    json_t *j = NULL;
    if (cks_ckpt_read(c, "config.json", CKS_MAX_CONFIG_BYTES, &text, &len) == 0)
        cks_json_parse(text, len, "config.json", 1, &j);
    free(text);
    return j ? j : json_null();
}

static int emit_json(const cks_ckpt *c, const result *res, size_t n)
{
    const cks_ckpt_info *ci = cks_ckpt_info_of(c);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        const cks_tensor *t = res[i].t;
        json_t *o = json_pack("{s:s, s:s, s:o, s:i, s:s, s:o}", "name", t->name, "dtype",
                              cks_dtype_name(t->dtype), "shape", shape_json(t), "layer", t->layer,
                              "kind", cks_kind_name(t->kind), "norms", norms_json(&res[i]));
        if (res[i].have_spec)
            json_object_set_new(o, "spectral", spectral_json(&res[i].spec));
        if (res[i].buffer)
            json_object_set_new(o, "buffer", json_true());
        json_array_append_new(arr, o);
    }
    json_t *doc = json_pack("{s:{s:s, s:I, s:o}, s:o, s:o}", "checkpoint", "name", ci->name, "step",
                            (json_int_t)ci->step, "commit",
                            ci->commit ? json_string(ci->commit) : json_null(), "config",
                            config_json(c), "tensors", arr);
    return cli_json_print(doc) == 0 ? 0 : CLI_USAGE;
}

static void print_layers(const result *res, size_t n)
{
    int maxl = -1;
    for (size_t i = 0; i < n; i++)
        if (res[i].t->layer > maxl)
            maxl = res[i].t->layer;
    if (maxl < 0)
        return;
    printf("\n%-6s %8s %14s %12s %12s %12s\n", "LAYER", "TENSORS", "PARAMS", "FRO", "RMS",
           "ABSMAX");
    for (int l = 0; l <= maxl; l++) {
        double ss = 0, amax = 0;
        int64_t params = 0, cnt = 0;
        int nt = 0;
        for (size_t i = 0; i < n; i++) {
            if (res[i].t->layer != l || !res[i].have)
                continue;
            nt++;
            params += res[i].t->numel;
            cnt += res[i].n.count;
            ss += res[i].n.fro * res[i].n.fro;
            if (res[i].n.absmax > amax)
                amax = res[i].n.absmax;
        }
        if (nt == 0)
            continue;
        printf("%-6d %8d %14lld %12.6g %12.6g %12.6g\n", l, nt, (long long)params, sqrt(ss),
               cnt ? sqrt(ss / (double)cnt) : NAN, amax);
    }
}

/* One row per matrix; '-' where a value cannot be computed. */
static void print_spectral(const result *res, size_t n)
{
    static const char *head[] = {"SIGMA_MAX", "LOG_SPEC", "LOG_NORM", "STABLE_RK", "ENTROPY",
                                 "EFF_RANK",  "ALPHA",    "XMIN",     "KS",        "TAIL",
                                 "ALPHA_W",   "SPIKES",   "MP_SOFT"};
    size_t nm;
    cks_spectral_metrics(&nm);
    printf("\n%-48s", "SPECTRAL (eigenvalues of W^T W)");
    for (size_t k = 0; k < nm && k < sizeof head / sizeof head[0]; k++)
        printf(" %10s", head[k]);
    putchar('\n');
    for (size_t i = 0; i < n; i++) {
        if (!res[i].have_spec)
            continue;
        printf("%-48s", res[i].t->name);
        for (size_t k = 0; k < nm; k++) {
            double v = cks_spectral_value(&res[i].spec, k);
            if (isnan(v))
                printf(" %10s", "-");
            else
                printf(" %10.5g", v);
        }
        putchar('\n');
    }
}

/* One config size, "?" when config.json does not give it. */
static const char *size_str(int64_t v, char *buf, size_t cap)
{
    if (v > 0)
        snprintf(buf, cap, "%lld", (long long)v);
    else
        snprintf(buf, cap, "?");
    return buf;
}

static void print_config(const cks_config *cfg)
{
    char b[6][32];
    if (!cfg) {
        printf("config: none (no readable config.json)\n\n");
        return;
    }
    printf("config: model_type %s%s%s%s, hidden %s, intermediate %s, layers %s, heads %s (kv "
           "%lld), vocab %s, ctx %s, rope_theta %g, eps %g, tied %s, dtype %s\n\n",
           cfg->model_type[0] ? cfg->model_type : "?", cfg->family ? " (" : " (not a family ",
           cfg->family ? cfg->family->hf_class : "ckptscope runs", ")",
           size_str(cfg->hidden_size, b[0], 32), size_str(cfg->intermediate_size, b[1], 32),
           size_str(cfg->num_hidden_layers, b[2], 32), size_str(cfg->num_attention_heads, b[3], 32),
           (long long)cfg->num_key_value_heads, size_str(cfg->vocab_size, b[4], 32),
           size_str(cfg->max_position_embeddings, b[5], 32), cfg->rope_theta, cfg->norm_eps,
           cfg->tie_word_embeddings ? "yes" : "no", cfg->torch_dtype[0] ? cfg->torch_dtype : "?");
}

static void print_text(const cks_ckpt *c, const cks_config *cfg, const result *res, size_t n,
                       int any_spec)
{
    const cks_ckpt_info *ci = cks_ckpt_info_of(c);
    printf("checkpoint %s (step %lld%s%.12s)\n", ci->name, (long long)ci->step,
           ci->commit ? ", commit " : "", ci->commit ? ci->commit : "");
    print_config(cfg);
    printf("%-48s %-5s %-12s %12s %12s %12s %12s %12s %6s %6s\n", "TENSOR", "DTYPE", "SHAPE", "FRO",
           "RMS", "MEAN", "STD", "ABSMAX", "NAN", "INF");
    for (size_t i = 0; i < n; i++) {
        char shape[64];
        const cks_tensor *t = res[i].t;
        cks_tensor_shape_str(t, shape, sizeof shape);
        if (!res[i].have) {
            printf("%-48s %-5s %-12s %12s\n", t->name, cks_dtype_name(t->dtype), shape,
                   res[i].buffer ? "(a buffer, not a weight: skipped)"
                                 : "(not a float dtype: skipped)");
            continue;
        }
        const cks_norms *m = &res[i].n;
        printf("%-48s %-5s %-12s %12.6g %12.6g %12.5g %12.6g %12.6g %6lld %6lld\n", t->name,
               cks_dtype_name(t->dtype), shape, m->fro, m->rms, m->mean, m->std, m->absmax,
               (long long)m->nan, (long long)m->inf);
    }
    if (any_spec)
        print_spectral(res, n);
    print_layers(res, n);
}

/* Refuses a selected matrix over the spectral limits before any long computation. */
static int spectral_check(const options *o, const cks_weights *w)
{
    const cks_tensor_list *tl = cks_weights_tensors(w);
    for (size_t i = 0; i < tl->count; i++) {
        const cks_tensor *t = &tl->items[i];
        int err;
        if ((!o->tensors || fnmatch(o->tensors, t->name, 0) == 0) && cks_tensor_is_matrix(t) &&
            (err = cks_esd_check(t)) != 0)
            return cks_error_prefix(err, "%s", cks_weights_file(w, t->file)->display);
    }
    return 0;
}

static int spectral_one(const options *o, const cks_weights *w, cli_progress *prog, result *r)
{
    const cks_tensor *t = r->t;
    cli_progress_update(prog, "inspect: spectral %s (%lldx%lld)", t->name, (long long)t->shape[0],
                        (long long)t->shape[1]);
    int err = cks_spectral_compute(t, o->threads, 0, NULL, &r->spec);
    if (err) {
        cli_progress_done(prog);
        return cks_error_prefix(err, "%s", cks_weights_file(w, t->file)->display);
    }
    r->have_spec = 1;
    return 0;
}

static int parse_args(int argc, char **argv, options *o)
{
    static const struct option opts[] = {
        {"tensors", required_argument, NULL, 't'}, {"threads", required_argument, NULL, 'T'},
        {"json", no_argument, NULL, 'j'},          {"spectral", no_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0}};
    int c;
    o->threads = cli_default_threads();
    optind = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 't':
            o->tensors = optarg;
            break;
        case 'T':
            if (cli_parse_threads("inspect", optarg, &o->threads) != 0)
                return CLI_USAGE;
            break;
        case 'j':
            o->json = 1;
            break;
        case 's':
            o->spectral = 1;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return -1;
        default:
            return cli_usage_error("inspect", "unknown option");
        }
    }
    if (optind != argc - 1)
        return cli_usage_error("inspect", "expected one SOURCE@REF");
    return 0;
}

int cmd_inspect(int argc, char **argv)
{
    options o = {0};
    cks_source *s = NULL;
    cks_ckpt *c = NULL;
    cks_weights *w = NULL;
    result *res = NULL;
    cks_config cfg;
    int err, have_cfg = 0, status = parse_args(argc, argv, &o);
    if (status)
        return status < 0 ? cli_finish("inspect", 0) : status;
    /* only what reading the tensors needs: any model_type, no config.json at all */
    if ((err = spec_open_fetched(argv[optind], &s, &c)) != 0 ||
        (cks_ckpt_find_file(c, "config.json") >= 0 && (err = cks_ckpt_config(c, &cfg)) != 0) ||
        (err = cks_weights_open(&w, c)) != 0) {
        status = cli_fail("inspect", err);
        goto done;
    }
    have_cfg = cks_ckpt_find_file(c, "config.json") >= 0;
    const cks_tensor_list *tl = cks_weights_tensors(w), *bl = cks_weights_buffers(w);
    size_t n = 0;
    int any_spec = 0;
    cli_progress prog;
    cli_progress_init(&prog, 0);
    if (!(res = calloc(tl->count + bl->count + 1, sizeof *res))) {
        status = cli_fail("inspect", cks_error_set(CKS_ENOMEM, "out of memory"));
        goto done;
    }
    if (o.spectral && (err = spectral_check(&o, w)) != 0) {
        status = cli_fail("inspect", err);
        goto done;
    }
    for (size_t i = 0; i < tl->count; i++) {
        const cks_tensor *t = &tl->items[i];
        if (o.tensors && fnmatch(o.tensors, t->name, 0) != 0)
            continue;
        res[n].t = t;
        if (cks_dtype_is_float(t->dtype)) {
            if ((err = cks_norms_compute(t, o.threads, &res[n].n)) != 0) {
                status = cli_fail("inspect", err);
                goto done;
            }
            res[n].have = 1;
        }
        if (o.spectral && cks_tensor_is_matrix(t)) {
            if ((err = spectral_one(&o, w, &prog, &res[n])) != 0) {
                status = cli_fail("inspect", err);
                goto done;
            }
            any_spec = 1;
        }
        n++;
    }
    for (size_t i = 0; i < bl->count; i++) /* listed, never measured */
        if (!o.tensors || fnmatch(o.tensors, bl->items[i].name, 0) == 0)
            res[n++] = (result){.t = &bl->items[i], .buffer = 1};
    cli_progress_done(&prog);
    if ((err = cks_weights_check(w)) != 0) {
        status = cli_fail("inspect", err);
        goto done;
    }
    if (o.tensors && n == 0) {
        status =
            cli_fail("inspect", cks_error_set(CKS_ENOTFOUND, "no tensor matches '%s'", o.tensors));
        goto done;
    }
    if (o.json)
        status = emit_json(c, res, n);
    else
        print_text(c, have_cfg ? &cfg : NULL, res, n, any_spec);
done:
    free(res);
    cks_weights_free(w);
    cks_ckpt_free(c);
    cks_source_free(s);
    return cli_finish("inspect", status);
}
