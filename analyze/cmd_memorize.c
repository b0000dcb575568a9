/* ckptscope memorize: memorisation of training sequences by one checkpoint (DESIGN §3, §8;
 * LLM360 Analysis360's definition): of each sequence the first K ids are the prompt, the
 * next L the truth; the model continues the prompt greedily and the continuation is
 * compared with the truth. Each FILE is one set, named as ppl names its sets; the sampled
 * sequences of every set go through the model together (metrics/generate.h). */
#include "cli.h"
#include "cmd.h"
#include "error.h"
#include "evalset.h"
#include "generate.h"
#include "json.h"
#include "memo.h"
#include "spec.h"
#include "weights.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SETS CKS_MAX_EVAL_SETS

static const char usage_text[] =
    "usage: ckptscope memorize SOURCE@REF --data FILE... [--prompt K] [--continuation L]\n"
    "                          [--samples N] [--seed S] [--precision f32|bf16]\n"
    "                          [--threads N] [--quiet] [--json]\n"
    "\n"
    "Memorisation of training sequences by one checkpoint, as LLM360's Analysis360\n"
    "measures it (Biderman et al. 2023): of each sequence the first K ids are the prompt,\n"
    "exactly as stored (no BOS added), the next L ids the truth; the model generates L\n"
    "tokens greedily (argmax, ties to the lowest id) with ckptscope's own forward pass,\n"
    "batched across sequences with a key/value cache, one layer at a time. Reports per\n"
    "set: token_match (mean fraction of continuation tokens reproduced), full_match\n"
    "(fraction of sequences reproduced whole), prefix_match (mean length of the longest\n"
    "reproduced prefix / L), the sequences scored and those skipped (shorter than K + L).\n"
    "\n"
    "  --data FILE...        training data: JSONL with a \"token_ids\" array per line\n"
    "                        (LLM360's data release format), plain, gzip or zstd (told by\n"
    "                        their first bytes); each FILE is one set named after the file\n"
    "  --prompt K            prompt length (default 32)\n"
    "  --continuation L      continuation length (default 32)\n"
    "  --samples N           score N of the long-enough sequences of each file, picked\n"
    "                        uniformly without replacement (GSL's gsl_ran_choose with an\n"
    "                        mt19937 generator seeded --seed), in file order (default: all)\n"
    "  --seed S              seed of the sample (default 1)\n"
    "  --precision P         f32 (default) or bf16 weight products (see ckptscope ppl)\n"
    "  --threads N           threads (default: all CPUs)\n"
    "  --quiet               no progress line\n"
    "  --json                one JSON document on stdout, with the per-token matches of\n"
    "                        every sequence\n"
    "  -h, --help            this help\n"
    "\n"
    "Every sequence goes through one layer before the next, so the weights are read L\n"
    "times whatever --samples is. The products run on batches of sequences whose\n"
    "key/value cache fits 256 MiB; past that, the caches of all sequences live in an\n"
    "unlinked scratch file under $TMPDIR (4 x (2 x layers x kv width x (K + L) + (K + 1)\n"
    "x hidden size) bytes a sequence), so memory does not grow with --samples beyond the\n"
    "sampled ids themselves. An id not below the model's vocabulary anywhere in a file is\n"
    "an error naming the file and the line.\n";

typedef struct {
    const char *spec;
    const char *files[MAX_SETS];
    int nfiles;
    int64_t k, l, samples, seed;
    int threads, quiet, json;
    cks_precision precision;
} options;

static int take_files(options *o, int argc, char **argv, int *i)
{
    int start = o->nfiles;
    while (*i + 1 < argc && argv[*i + 1][0] != '-') {
        if (o->nfiles == MAX_SETS)
            return cli_usage_error("memorize", "more than %d data files", MAX_SETS);
        o->files[o->nfiles++] = argv[++*i];
    }
    if (o->nfiles == start)
        return cli_usage_error("memorize", "--data needs at least one FILE");
    return 0;
}

/* One option with a value (i advanced past it); 1 when a not a known one. */
static int value_option(options *o, const char *a, const char *v, int *i, int *err)
{
    int64_t *dst = strcmp(a, "--prompt") == 0         ? &o->k
                   : strcmp(a, "--continuation") == 0 ? &o->l
                   : strcmp(a, "--samples") == 0      ? &o->samples
                   : strcmp(a, "--seed") == 0         ? &o->seed
                                                      : NULL;
    if (dst) {
        int64_t lo = dst == &o->seed ? 0 : 1;
        int64_t hi = dst == &o->seed      ? (int64_t)UINT32_MAX
                     : dst == &o->samples ? (int64_t)1 << 40
                                          : CKS_MAX_POSITIONS;
        (*i)++;
        *err = cli_parse_int("memorize", a, v, lo, hi, dst) ? CLI_USAGE : 0;
    } else if (strcmp(a, "--threads") == 0) {
        (*i)++;
        *err = cli_parse_threads("memorize", v, &o->threads) ? CLI_USAGE : 0;
    } else if (strcmp(a, "--precision") == 0) {
        (*i)++;
        if (!v || cks_precision_from_name(v, &o->precision) != 0)
            *err = cli_usage_error("memorize", "--precision must be f32 or bf16");
    } else {
        return 1;
    }
    return 0;
}

static int parse_args(int argc, char **argv, options *o)
{
    memset(o, 0, sizeof *o);
    o->k = CKS_MEMO_PROMPT;
    o->l = CKS_MEMO_CONTINUATION;
    o->seed = CKS_MEMO_SEED;
    o->threads = cli_default_threads();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int err = 0;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(usage_text, stdout);
            return -1;
        } else if (strcmp(a, "--data") == 0) {
            err = take_files(o, argc, argv, &i);
        } else if (!value_option(o, a, v, &i, &err)) {
            /* handled */
        } else if (strcmp(a, "--quiet") == 0) {
            o->quiet = 1;
        } else if (strcmp(a, "--json") == 0) {
            o->json = 1;
        } else if (a[0] == '-') {
            err = cli_usage_error("memorize", "unknown option '%s'", a);
        } else if (o->spec) {
            err = cli_usage_error("memorize", "unexpected argument '%s' (FILEs follow --data)", a);
        } else {
            o->spec = a;
        }
        if (err)
            return err;
    }
    if (!o->spec)
        return cli_usage_error("memorize", "expected SOURCE@REF (before --data)");
    if (!o->nfiles)
        return cli_usage_error("memorize", "give the training data with --data FILE...");
    char names[MAX_SETS][256];
    for (int i = 0; i < o->nfiles; i++) {
        cks_evalset_name(o->files[i], names[i], sizeof names[i]);
        for (int j = 0; j < i; j++)
            if (strcmp(names[i], names[j]) == 0)
                return cli_usage_error("memorize", "--data %s and %s would both be set '%s'",
                                       o->files[j], o->files[i], names[i]);
    }
    return 0;
}

static void progress_cb(void *ctx, int64_t done, int64_t l)
{
    cli_progress_update(ctx, "memorize: %lld/%lld tokens generated", (long long)done, (long long)l);
}

typedef struct {
    cks_trainset t[MAX_SETS];
    char name[MAX_SETS][256];
    int64_t first[MAX_SETS]; /* first sequence of each set in ids */
    int n;
    int64_t total;
    int32_t *ids; /* [total × k] prompts */
    int32_t *gen; /* [total × l] */
} sets;

static void sets_release(sets *s)
{
    for (int i = 0; i < s->n; i++)
        cks_trainset_release(&s->t[i]);
    free(s->ids);
    free(s->gen);
}

/* Reads every file's sample, checks its ids against the vocabulary and gathers the
 * prompts. */
static int sets_load(sets *s, const options *o, int64_t vocab, const char *disp)
{
    int err = 0;
    for (int i = 0; i < o->nfiles && !err; i++) {
        cks_evalset_name(o->files[i], s->name[i], sizeof s->name[i]);
        if ((err = cks_memo_load(&s->t[i], o->files[i], o->k, o->l, o->samples,
                                 (unsigned long)o->seed)) != 0)
            break;
        s->n = i + 1;
        s->first[i] = s->total;
        s->total += s->t[i].n;
        err = cks_trainset_check_vocab(&s->t[i], vocab, disp);
    }
    if (err)
        return err;
    s->ids = malloc((size_t)(s->total ? s->total : 1) * (size_t)o->k * sizeof *s->ids);
    s->gen = malloc((size_t)(s->total ? s->total : 1) * (size_t)o->l * sizeof *s->gen);
    if (!s->ids || !s->gen)
        return cks_error_set(CKS_ENOMEM, "out of memory for %lld sequences", (long long)s->total);
    for (int i = 0; i < s->n; i++)
        for (int64_t q = 0; q < s->t[i].n; q++)
            memcpy(s->ids + (s->first[i] + q) * o->k, s->t[i].ids + q * s->t[i].width,
                   (size_t)o->k * sizeof *s->ids);
    return 0;
}

static int emit_json(const cks_ckpt *c, const options *o, const sets *s)
{
    const cks_ckpt_info *ci = cks_ckpt_info_of(c);
    json_t *arr = json_array();
    int err = 0;
    for (int i = 0; i < s->n && !err; i++) {
        const cks_trainset *t = &s->t[i];
        cks_memo_summary m;
        uint8_t *match = malloc((size_t)(t->n ? t->n : 1) * (size_t)o->l);
        if (!match) {
            err = cks_error_set(CKS_ENOMEM, "out of memory");
            break;
        }
        cks_memo_score(&m, t, o->k, s->gen + s->first[i] * o->l, match, NULL);
        json_t *rows = json_array();
        for (int64_t q = 0; q < t->n; q++) {
            json_t *row = json_array();
            for (int64_t j = 0; j < o->l; j++)
                json_array_append_new(row, json_integer(match[q * o->l + j]));
            json_array_append_new(rows, row);
        }
        free(match);
        json_array_append_new(arr, json_pack("{s:s, s:I, s:I, s:o, s:o, s:o, s:o}", "name",
                                             s->name[i], "sequences", (json_int_t)m.sequences,
                                             "skipped", (json_int_t)m.skipped, "token_match",
                                             cks_json_number(m.token_match), "full_match",
                                             cks_json_number(m.full_match), "prefix_match",
                                             cks_json_number(m.prefix_match), "match", rows));
    }
    if (err) {
        json_decref(arr);
        return cli_fail("memorize", err);
    }
    json_t *doc = json_pack("{s:{s:s, s:I, s:o}, s:I, s:I, s:s, s:o}", "checkpoint", "name",
                            ci->name, "step", (json_int_t)ci->step, "commit",
                            ci->commit ? json_string(ci->commit) : json_null(), "prompt",
                            (json_int_t)o->k, "continuation", (json_int_t)o->l, "precision",
                            cks_precision_name(o->precision), "sets", arr);
    return cli_json_print(doc) == 0 ? 0 : CLI_USAGE;
}

static void print_table(const cks_ckpt *c, const options *o, const sets *s)
{
    const cks_ckpt_info *ci = cks_ckpt_info_of(c);
    printf("checkpoint %s (step %lld%s%.12s), prompt %lld, continuation %lld, precision %s\n",
           ci->name, (long long)ci->step, ci->commit ? ", commit " : "",
           ci->commit ? ci->commit : "", (long long)o->k, (long long)o->l,
           cks_precision_name(o->precision));
    printf("%-24s %10s %10s %12s %12s %12s\n", "SET", "SEQUENCES", "SKIPPED", "TOKEN_MATCH",
           "FULL_MATCH", "PREFIX_MATCH");
    for (int i = 0; i < s->n; i++) {
        cks_memo_summary m;
        cks_memo_score(&m, &s->t[i], o->k, s->gen + s->first[i] * o->l, NULL, NULL);
        printf("%-24s %10lld %10lld %12.4f %12.4f %12.4f\n", s->name[i], (long long)m.sequences,
               (long long)m.skipped, m.token_match, m.full_match, m.prefix_match);
    }
}

int cmd_memorize(int argc, char **argv)
{
    options o;
    cks_source *src = NULL;
    cks_ckpt *c = NULL;
    cks_weights *w = NULL;
    cks_config cfg;
    sets s;
    cli_progress prog;
    char disp[512];
    int err, status = parse_args(argc, argv, &o);
    if (status)
        return status < 0 ? cli_finish("memorize", 0) : status;
    memset(&s, 0, sizeof s);
    if ((err = spec_open_fetched(o.spec, &src, &c)) != 0 || (err = cks_ckpt_config(c, &cfg)) != 0)
        goto fail;
    snprintf(disp, sizeof disp, "%s@%s", cks_source_path(src), cks_ckpt_info_of(c)->name);
    if (o.k + o.l > cfg.max_position_embeddings) {
        err = cks_error_set(CKS_EINVAL,
                            "--prompt %lld + --continuation %lld is longer than "
                            "max_position_embeddings = %lld of %s",
                            (long long)o.k, (long long)o.l, (long long)cfg.max_position_embeddings,
                            disp);
        goto fail;
    }
    if ((err = sets_load(&s, &o, cfg.vocab_size, disp)) != 0 ||
        (err = cks_weights_open(&w, c)) != 0)
        goto fail;
    cks_generate_options go = {.k = o.k,
                               .l = o.l,
                               .nthreads = o.threads,
                               .precision = o.precision,
                               .progress = progress_cb,
                               .progress_ctx = &prog};
    cli_progress_init(&prog, o.quiet);
    err = cks_generate(s.gen, w, &cfg, disp, s.ids, o.k, s.total, &go, NULL);
    cli_progress_done(&prog);
    if (!err)
        err = cks_weights_check(w); /* a weight file that changed under us */
    if (err)
        goto fail;
    if (o.json)
        status = emit_json(c, &o, &s);
    else
        print_table(c, &o, &s);
    goto done;
fail:
    status = cli_fail("memorize", err);
done:
    sets_release(&s);
    cks_weights_free(w);
    cks_ckpt_free(c);
    cks_source_free(src);
    return cli_finish("memorize", status);
}
