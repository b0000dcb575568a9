/* ckptscope ppl: held-out perplexity of one checkpoint with the built-in forward pass
 * (DESIGN §5, §8). Each FILE is one evaluation set, named after the file; all sets go
 * through the model together, layer after layer. */
#include "cli.h"
#include "cmd.h"
#include "error.h"
#include "evalset.h"
#include "json.h"
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
    "                     [--split-by-meta] [--quiet]\n"
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
    "(mean negative log-likelihood, nats), ppl = exp(nll), bpb (bits per UTF-8 byte).\n"
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
    const char *spec;
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

static int emit_json(const cks_ckpt *c, const cks_ppl_options *po, const cks_docset *sets,
                     const cks_ppl_result *r, int n)
{
    const cks_ckpt_info *ci = cks_ckpt_info_of(c);
    json_t *arr = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(
            arr, json_pack("{s:s, s:I, s:o, s:o, s:o, s:o}", "name", sets[i].name, "tokens",
                           (json_int_t)r[i].tokens, "bytes", count_or_null(r[i].bytes), "nll",
                           cks_json_number(r[i].nll), "ppl", cks_json_number(r[i].ppl), "bpb",
                           cks_json_number(r[i].bpb)));
    json_t *doc = json_pack("{s:{s:s, s:I, s:o}, s:I, s:I, s:s, s:o}", "checkpoint", "name",
                            ci->name, "step", (json_int_t)ci->step, "commit",
                            ci->commit ? json_string(ci->commit) : json_null(), "ctx",
                            (json_int_t)po->ctx, "stride", (json_int_t)po->stride, "precision",
                            cks_precision_name(po->precision), "sets", arr);
    return cli_json_print(doc) == 0 ? 0 : CLI_USAGE;
}

static void print_table(const cks_ckpt *c, const cks_ppl_options *po, const cks_docset *sets,
                        const cks_ppl_result *r, int n)
{
    const cks_ckpt_info *ci = cks_ckpt_info_of(c);
    printf("checkpoint %s (step %lld%s%.12s), ctx %lld, stride %lld, BOS %s, precision %s\n",
           ci->name, (long long)ci->step, ci->commit ? ", commit " : "",
           ci->commit ? ci->commit : "", (long long)po->ctx, (long long)po->stride,
           po->bos ? "on" : "off", cks_precision_name(po->precision));
    printf("%-24s %10s %12s %10s %12s %8s\n", "SET", "TOKENS", "BYTES", "NLL", "PPL", "BPB");
    for (int i = 0; i < n; i++) {
        char bytes[32] = "-", bpb[32] = "-";
        if (r[i].bytes >= 0)
            snprintf(bytes, sizeof bytes, "%lld", (long long)r[i].bytes);
        if (!isnan(r[i].bpb))
            snprintf(bpb, sizeof bpb, "%.4f", r[i].bpb);
        printf("%-24s %10lld %12s %10.5f %12.4f %8s\n", sets[i].name, (long long)r[i].tokens, bytes,
               r[i].nll, r[i].ppl, bpb);
    }
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
    cks_ppl_options po;
    cli_progress prog;
    int nsets = 0, err, status = parse_args(argc, argv, &o);
    if (status)
        return status < 0 ? cli_finish("ppl", 0) : status;
    memset(res, 0, sizeof res);
    char disp[512];
    cks_model_config mc;
    if ((err = spec_open_fetched(o.spec, &s, &c)) != 0 || (err = cks_ckpt_config(c, &cfg)) != 0)
        goto fail;
    snprintf(disp, sizeof disp, "%s@%s", cks_source_path(s), cks_ckpt_info_of(c)->name);
    if ((err = cks_model_config_from(&mc, &cfg, disp)) != 0) /* refused before any work */
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
    err = cks_ppl_evaluate(res, w, &cfg, disp, sets.v, sets.n, &po, NULL);
    cli_progress_done(&prog);
    if (!err)
        err = cks_weights_check(w); /* a weight file that changed under us */
    if (err)
        goto fail;
    if (o.json)
        status = emit_json(c, &po, sets.v, res, nsets);
    else
        print_table(c, &po, sets.v, res, nsets);
    goto done;
fail:
    status = cli_fail("ppl", err);
done:
    for (int i = 0; i < nsets; i++)
        cks_ppl_result_release(&res[i]);
    cks_docsets_release(&sets);
    cks_weights_free(w);
    cks_tokenizer_free(tok);
    cks_ckpt_free(c);
    cks_source_free(s);
    return cli_finish("ppl", status);
}
