/* ckptscope ppl: held-out perplexity of one checkpoint with the built-in forward pass
 * (DESIGN §5, §8). Each FILE is one evaluation set, named after the file; all sets go
 * through the model together, layer after layer. */
#include "cli.h"
#include "cmd.h"
#include "error.h"
#include "evalset.h"
#include "json.h"
#include "klcompat.h"
#include "klpass.h"
#include "model.h"
#include "ppl.h"
#include "spec.h"
#include "tokfile.h"
#include "weights.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SETS CKS_MAX_EVAL_SETS

static const char usage_text[] =
    "usage: ckptscope ppl SOURCE@REF (--text FILE... | --tokens FILE...) [--ctx N]\n"
    "                     [--stride N] [--bos | --no-bos] [--force] [--threads N]\n"
    "                     [--precision f32|bf16] [--token-format jsonl|u16|u32]\n"
    "                     [--split-by-meta] [--vs SOURCE@REF] [--quiet]\n"
    "                     [--json]\n"
    "\n"
    "Held-out perplexity of one checkpoint, computed by ckptscope's own forward pass\n"
    "(weights widened one layer at a time) for the model families llama, mistral,\n"
    "qwen2, gpt_neox (Pythia), olmo and olmo2 (config.json's model_type; a config\n"
    "field at a value the forward pass does not implement is refused by name).\n"
    "Each FILE is one evaluation set\n"
    "named after the file; a text file or a raw token file is one document, a JSONL file\n"
    "holds one document per line. Files may be gzip or zstd compressed (told by their\n"
    "first bytes). Windows of --ctx tokens advance by --stride; each token\n"
    "is scored once, with the context its window gives (Hugging Face's strided method);\n"
    "windows never cross documents. Reports per set: scored tokens, bytes of text, nll\n"
    "(mean negative log-likelihood, nats), ppl = exp(nll), bpb (bits per UTF-8 byte),\n"
    "top1_acc (fraction of tokens that are the model's most likely next token).\n"
    "\n"
    "  --text FILE...        UTF-8 text, tokenised by the built-in tokenizer: a plain text\n"
    "                        file, or JSONL with a \"text\" string per line (the Pile,\n"
    "                        SlimPajama, Dolma)\n"
    "  --tokens FILE...      token ids: JSONL ({\"token_ids\": [...]} per line), or raw\n"
    "                        little-endian .u16 / .u32 files\n"
    "  --token-format F      jsonl, u16 or u32 for --tokens files with other names\n"
    "  --split-by-meta       one set per subset of a JSONL file, named FILE:SUBSET after\n"
    "                        each line's meta.pile_set_name (or meta.redpajama_set_name),\n"
    "                        as Pile perplexity is reported\n"
    "  --vs SOURCE@REF       also compare with that checkpoint (the base c, whichever is\n"
    "                        earlier) over the same positions and windows: kl = mean\n"
    "                        KL(P_c || P_this) in nats, its p50/p90/p99 and max over\n"
    "                        positions, top1_agree (same argmax), forgot (c's argmax was\n"
    "                        the token, this one's is not), learned (the reverse), dnll =\n"
    "                        mean nll_this - nll_c with its 95% block-bootstrap interval\n"
    "                        dnll_lo, dnll_hi (DESIGN 3). Both need the same vocabulary\n"
    "                        and tokenizer. c's logits are kept between the two passes:\n"
    "                        4 x vocab bytes per scored token, in $TMPDIR past 2 GiB\n"
    "  --ctx N               window length (default: max_position_embeddings)\n"
    "  --stride N            window step, 1 <= N <= ctx (default: ctx/2)\n"
    "  --bos, --no-bos       start each document with BOS or not (default: add_bos_token\n"
    "                        of tokenizer_config.json, else the family's: on for llama\n"
    "                        and mistral, off for the others); the BOS id is config.json's\n"
    "                        bos_token_id, else the tokenizer's BOS piece\n"
    "  --force               allow a ctx larger than max_position_embeddings\n"
    "  --precision P         f32 (default): float32 throughout, as Hugging Face computes;\n"
    "                        bf16: both operands of every weight product rounded to\n"
    "                        bfloat16 (nearest even), products summed in float32, as a\n"
    "                        GPU evaluation in bf16 does; attention, norms, RoPE and the\n"
    "                        residual stay float32. Faster on CPUs with AVX512_BF16; not\n"
    "                        exact (README: its measured deviation from f32)\n"
    "  --threads N           threads (default: all CPUs)\n"
    "  --quiet               no progress line\n"
    "  --json                one JSON document on stdout\n"
    "  -h, --help            this help\n"
    "\n"
    "Text is tokenised by the checkpoint's own tokenizer (tokenizer.model, else\n"
    "tokenizer.json), which must not have more pieces than the model's vocabulary.\n"
    "The activations of every window are kept between layers: in memory, or in an\n"
    "unlinked scratch file in $TMPDIR when they pass 2 GiB.\n";

typedef struct {
    const char *spec, *vs;
    const char *files[MAX_SETS];
    int nfiles;
    int text; /* 1 for --text, 0 for --tokens */
    int64_t ctx, stride;
    int bos; /* -1 unset */
    int force, threads, quiet, json, split;
    cks_precision precision;
    cks_tokfile_format fmt;
} options;

/* Collects FILE... after --text/--tokens: every following argument not starting with '-'. */
static int take_files(options *o, int argc, char **argv, int *i, int text)
{
    if (o->nfiles && o->text != text)
        return cli_usage_error("ppl", "give --text or --tokens, not both");
    o->text = text;
    int start = o->nfiles;
    while (*i + 1 < argc && argv[*i + 1][0] != '-') {
        if (o->nfiles == MAX_SETS)
            return cli_usage_error("ppl", "more than %d evaluation files", MAX_SETS);
        o->files[o->nfiles++] = argv[++*i];
    }
    if (o->nfiles == start)
        return cli_usage_error("ppl", "%s needs at least one FILE", argv[*i]);
    return 0;
}

static int parse_args(int argc, char **argv, options *o)
{
    memset(o, 0, sizeof *o);
    o->bos = -1;
    o->threads = cli_default_threads();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int err = 0;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(usage_text, stdout);
            return -1;
        } else if (strcmp(a, "--text") == 0 || strcmp(a, "--tokens") == 0) {
            err = take_files(o, argc, argv, &i, strcmp(a, "--text") == 0);
        } else if (strcmp(a, "--ctx") == 0 || strcmp(a, "--stride") == 0) {
            i++;
            err = cli_parse_int("ppl", a, v, 1, CKS_MAX_POSITIONS,
                                strcmp(a, "--ctx") == 0 ? &o->ctx : &o->stride)
                      ? CLI_USAGE
                      : 0;
        } else if (strcmp(a, "--vs") == 0) {
            i++;
            if (!v || v[0] == '-')
                err = cli_usage_error("ppl", "--vs needs SOURCE@REF");
            o->vs = v;
        } else if (strcmp(a, "--threads") == 0) {
            i++;
            err = cli_parse_threads("ppl", v, &o->threads) ? CLI_USAGE : 0;
        } else if (strcmp(a, "--token-format") == 0) {
            i++;
            if (!v || cks_tokfile_format_from_name(v, &o->fmt) != 0)
                err = cli_usage_error("ppl", "--token-format must be jsonl, u16 or u32");
        } else if (strcmp(a, "--precision") == 0) {
            i++;
            if (!v || cks_precision_from_name(v, &o->precision) != 0)
                err = cli_usage_error("ppl", "--precision must be f32 or bf16");
        } else if (strcmp(a, "--bos") == 0 || strcmp(a, "--no-bos") == 0) {
            o->bos = strcmp(a, "--bos") == 0;
        } else if (strcmp(a, "--force") == 0) {
            o->force = 1;
        } else if (strcmp(a, "--split-by-meta") == 0) {
            o->split = 1;
        } else if (strcmp(a, "--quiet") == 0) {
            o->quiet = 1;
        } else if (strcmp(a, "--json") == 0) {
            o->json = 1;
        } else if (a[0] == '-') {
            err = cli_usage_error("ppl", "unknown option '%s'", a);
        } else if (o->spec) {
            err = cli_usage_error("ppl",
                                  "unexpected argument '%s' (FILEs follow --tokens or "
                                  "--text)",
                                  a);
        } else {
            o->spec = a;
        }
        if (err)
            return err;
    }
    if (!o->spec)
        return cli_usage_error("ppl", "expected SOURCE@REF (before --text/--tokens)");
    if (!o->nfiles)
        return cli_usage_error("ppl", "give the evaluation data with --text or --tokens");
    if (o->ctx && o->stride && o->stride > o->ctx)
        return cli_usage_error("ppl", "--stride %lld is larger than --ctx %lld",
                               (long long)o->stride, (long long)o->ctx);
    return 0;
}

static void progress_cb(void *ctx, int64_t i, int64_t n)
{
    cli_progress *p = ctx;
    if (i < n)
        cli_progress_update(p, "ppl: layer %lld/%lld", (long long)i + 1, (long long)n);
    else
        cli_progress_update(p, "ppl: lm_head");
}

static json_t *count_or_null(int64_t v)
{
    return v >= 0 ? json_integer(v) : json_null();
}

static json_t *ckpt_json(const cks_ckpt *c)
{
    const cks_ckpt_info *ci = cks_ckpt_info_of(c);
    return json_pack("{s:s, s:I, s:o}", "name", ci->name, "step", (json_int_t)ci->step, "commit",
                     ci->commit ? json_string(ci->commit) : json_null());
}

/* The comparison with --vs (DESIGN §8 "vs"). */
static json_t *vs_json(const cks_ckpt *base, const cks_klsummary *k)
{
    return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "checkpoint",
                     ckpt_json(base), "kl", cks_json_number(k->kl), "kl_p50",
                     cks_json_number(k->kl_p50), "kl_p90", cks_json_number(k->kl_p90), "kl_p99",
                     cks_json_number(k->kl_p99), "kl_max", cks_json_number(k->kl_max), "top1_agree",
                     cks_json_number(k->top1_agree), "forgot", cks_json_number(k->forgot),
                     "learned", cks_json_number(k->learned), "dnll", cks_json_number(k->dnll),
                     "dnll_lo", cks_json_number(k->dnll_lo), "dnll_hi",
                     cks_json_number(k->dnll_hi));
}

/* What one run computed: the sets' results and, with --vs, the base and the summaries. */
typedef struct {
    const cks_ckpt *c, *base;
    const cks_ppl_options *po;
    const cks_docset *sets;
    const cks_ppl_result *r;
    const cks_klsummary *vs; /* [n] or NULL */
    int n;
} report;

static int emit_json(const report *rp)
{
    json_t *arr = json_array();
    for (int i = 0; i < rp->n; i++) {
        const cks_ppl_result *r = &rp->r[i];
        json_t *set =
            json_pack("{s:s, s:I, s:o, s:o, s:o, s:o, s:o}", "name", rp->sets[i].name, "tokens",
                      (json_int_t)r->tokens, "bytes", count_or_null(r->bytes), "nll",
                      cks_json_number(r->nll), "ppl", cks_json_number(r->ppl), "bpb",
                      cks_json_number(r->bpb), "top1_acc", cks_json_number(r->top1_acc));
        if (rp->vs)
            json_object_set_new(set, "vs", vs_json(rp->base, &rp->vs[i]));
        json_array_append_new(arr, set);
    }
    json_t *doc = json_pack("{s:o, s:I, s:I, s:s, s:o}", "checkpoint", ckpt_json(rp->c), "ctx",
                            (json_int_t)rp->po->ctx, "stride", (json_int_t)rp->po->stride,
                            "precision", cks_precision_name(rp->po->precision), "sets", arr);
    return cli_json_print(doc) == 0 ? 0 : CLI_USAGE;
}

static void print_vs(const report *rp)
{
    const cks_ckpt_info *bi = cks_ckpt_info_of(rp->base);
    printf("\nagainst %s (step %lld), the base c: KL(P_c || P_this) in nats over the same "
           "positions\n",
           bi->name, (long long)bi->step);
    printf("%-24s %10s %10s %10s %10s %10s %8s %8s %8s %10s %22s\n", "SET", "KL", "KL_P50",
           "KL_P90", "KL_P99", "KL_MAX", "AGREE", "FORGOT", "LEARNED", "DNLL", "DNLL 95% INTERVAL");
    for (int i = 0; i < rp->n; i++) {
        const cks_klsummary *k = &rp->vs[i];
        printf("%-24s %10.6f %10.6f %10.6f %10.6f %10.6f %8.4f %8.4f %8.4f %10.6f "
               "[%9.6f, %9.6f]\n",
               rp->sets[i].name, k->kl, k->kl_p50, k->kl_p90, k->kl_p99, k->kl_max, k->top1_agree,
               k->forgot, k->learned, k->dnll, k->dnll_lo, k->dnll_hi);
    }
}

static void print_table(const report *rp)
{
    const cks_ckpt_info *ci = cks_ckpt_info_of(rp->c);
    const cks_ppl_options *po = rp->po;
    printf("checkpoint %s (step %lld%s%.12s), ctx %lld, stride %lld, BOS %s, precision %s\n",
           ci->name, (long long)ci->step, ci->commit ? ", commit " : "",
           ci->commit ? ci->commit : "", (long long)po->ctx, (long long)po->stride,
           po->bos ? "on" : "off", cks_precision_name(po->precision));
    printf("%-24s %10s %12s %10s %12s %8s %8s\n", "SET", "TOKENS", "BYTES", "NLL", "PPL", "BPB",
           "TOP1");
    for (int i = 0; i < rp->n; i++) {
        const cks_ppl_result *r = &rp->r[i];
        char bytes[32] = "-", bpb[32] = "-";
        if (r->bytes >= 0)
            snprintf(bytes, sizeof bytes, "%lld", (long long)r->bytes);
        if (!isnan(r->bpb))
            snprintf(bpb, sizeof bpb, "%.4f", r->bpb);
        printf("%-24s %10lld %12s %10.5f %12.4f %8s %8.4f\n", rp->sets[i].name,
               (long long)r->tokens, bytes, r->nll, r->ppl, bpb, r->top1_acc);
    }
    if (rp->vs)
        print_vs(rp);
}

/* The --vs checkpoint, opened and checked against this one before any work. */
typedef struct {
    cks_source *s;
    cks_ckpt *c;
    cks_weights *w;
    cks_config cfg;
    char disp[512];
} vsckpt;

static void vs_release(vsckpt *v)
{
    cks_weights_free(v->w);
    cks_ckpt_free(v->c);
    cks_source_free(v->s);
}

static int vs_open(vsckpt *v, const char *spec, const cks_ckpt *c, const cks_config *cfg,
                   const char *disp)
{
    cks_model_config mc;
    int err;
    if ((err = spec_open_fetched(spec, &v->s, &v->c)) != 0 ||
        (err = cks_ckpt_config(v->c, &v->cfg)) != 0)
        return err;
    snprintf(v->disp, sizeof v->disp, "%s@%s", cks_source_path(v->s), cks_ckpt_info_of(v->c)->name);
    if ((err = cks_model_config_from(&mc, &v->cfg, v->disp)) != 0 ||
        (err = cks_kl_check_compatible(v->c, &v->cfg, v->disp, c, cfg, disp)) != 0)
        return err;
    return cks_weights_open(&v->w, v->c);
}

/* The two passes of --vs: the base's logits kept, then this checkpoint's compared with
 * them; one summary per set into vs[n]. */
static int run_vs(vsckpt *v, const cks_weights *w, const cks_config *cfg, const char *disp,
                  const cks_docsets *sets, const cks_ppl_options *po, cks_ppl_result *res,
                  cks_klsummary *vs)
{
    cks_ppl_result bres[MAX_SETS];
    cks_ppl_options bo = *po, to = *po;
    cks_klkeep *keep = NULL;
    cks_klpass *kb = NULL, *kt = NULL;
    int64_t npos = cks_ppl_positions(sets->v, sets->n, po);
    cks_ppl_sink sb, st;
    int err;
    memset(bres, 0, sizeof bres);
    if ((err = cks_klkeep_new(&keep, npos, cfg->vocab_size, 0, po->tmpdir)) != 0 ||
        (err = cks_klpass_new(&kb, npos, cfg->vocab_size, keep, NULL, 0, po->nthreads)) != 0 ||
        (err = cks_klpass_new(&kt, npos, cfg->vocab_size, NULL, &keep, 1, po->nthreads)) != 0)
        goto done;
    sb = cks_klpass_sink(kb);
    st = cks_klpass_sink(kt);
    bo.sink = &sb;
    to.sink = &st;
    if ((err = cks_ppl_evaluate(bres, v->w, &v->cfg, v->disp, sets->v, sets->n, &bo, NULL)) != 0 ||
        (err = cks_weights_check(v->w)) != 0 ||
        (err = cks_ppl_evaluate(res, w, cfg, disp, sets->v, sets->n, &to, NULL)) != 0)
        goto done;
    int64_t pos0 = 0;
    for (size_t i = 0; i < sets->n && !err; i++) {
        err = cks_klpass_summary(kt, 0, pos0, &res[i], &vs[i]);
        pos0 += res[i].tokens;
    }
done:
    for (size_t i = 0; i < sets->n; i++)
        cks_ppl_result_release(&bres[i]);
    cks_klpass_free(kt);
    cks_klpass_free(kb);
    cks_klkeep_free(keep);
    return err;
}

int cmd_ppl(int argc, char **argv)
{
    options o;
    cks_source *s = NULL;
    cks_ckpt *c = NULL;
    cks_weights *w = NULL;
    cks_tokenizer *tok = NULL;
    cks_config cfg;
    cks_docsets sets = {0};
    cks_ppl_result res[MAX_SETS];
    cks_klsummary vs[MAX_SETS];
    cks_ppl_options po;
    vsckpt v;
    cli_progress prog;
    int nsets = 0, err, status = parse_args(argc, argv, &o);
    if (status)
        return status < 0 ? cli_finish("ppl", 0) : status;
    memset(res, 0, sizeof res);
    memset(&v, 0, sizeof v);
    char disp[512];
    cks_model_config mc;
    if ((err = spec_open_fetched(o.spec, &s, &c)) != 0 || (err = cks_ckpt_config(c, &cfg)) != 0)
        goto fail;
    snprintf(disp, sizeof disp, "%s@%s", cks_source_path(s), cks_ckpt_info_of(c)->name);
    if ((err = cks_model_config_from(&mc, &cfg, disp)) != 0 || /* refused before any work */
        (o.vs && (err = vs_open(&v, o.vs, c, &cfg, disp)) != 0))
        goto fail;
    cks_ppl_options_default(&po, &cfg);
    if (o.ctx)
        po.ctx = o.ctx;
    po.stride = o.stride ? o.stride : po.ctx / 2 > 0 ? po.ctx / 2 : 1;
    if (po.stride > po.ctx) {
        status = cli_usage_error("ppl", "--stride %lld is larger than ctx %lld",
                                 (long long)po.stride, (long long)po.ctx);
        goto done;
    }
    if (po.ctx > cfg.max_position_embeddings && !o.force) {
        err = cks_error_set(CKS_EINVAL,
                            "--ctx %lld is larger than max_position_embeddings = %lld of %s@%s; "
                            "add --force to evaluate anyway",
                            (long long)po.ctx, (long long)cfg.max_position_embeddings,
                            cks_source_path(s), cks_ckpt_info_of(c)->name);
        goto fail;
    }
    po.force = o.force;
    po.nthreads = o.threads;
    po.precision = o.precision;
    if (o.text && ((err = cks_tokenizer_load_ckpt(&tok, c)) != 0 ||
                   (err = cks_evalset_check_vocab(tok, &cfg, disp)) != 0))
        goto fail;
    if ((err = cks_evalset_bos(c, &cfg, tok, o.bos, &po.bos, &po.bos_id)) != 0 ||
        (err = cks_evalset_load_sets(
             &sets, o.files, (size_t)o.nfiles,
             &(cks_evalset_options){o.text ? CKS_EVAL_TEXT : CKS_EVAL_TOKENS, (int)o.fmt, o.split},
             tok)) != 0 ||
        (err = cks_weights_open(&w, c)) != 0)
        goto fail;
    nsets = (int)sets.n;
    cli_progress_init(&prog, o.quiet);
    po.progress = progress_cb;
    po.progress_ctx = &prog;
    if (o.vs)
        err = run_vs(&v, w, &cfg, disp, &sets, &po, res, vs);
    else
        err = cks_ppl_evaluate(res, w, &cfg, disp, sets.v, sets.n, &po, NULL);
    cli_progress_done(&prog);
    if (!err)
        err = cks_weights_check(w); /* a weight file that changed under us */
    if (err)
        goto fail;
    report rp = {c, v.c, &po, sets.v, res, o.vs ? vs : NULL, nsets};
    status = o.json ? emit_json(&rp) : (print_table(&rp), 0);
    goto done;
fail:
    status = cli_fail("ppl", err);
done:
    for (int i = 0; i < nsets; i++)
        cks_ppl_result_release(&res[i]);
    cks_docsets_release(&sets);
    vs_release(&v);
    cks_weights_free(w);
    cks_tokenizer_free(tok);
    cks_ckpt_free(c);
    cks_source_free(s);
    return cli_finish("ppl", status);
}
