/* Perplexity protocol tests: per-token losses and nll of layer-major evaluation against
 * the float64 PyTorch reference tools/family_ref.py (the transformers-docs strided loop
 * over an independent model of each family; its results are the golden file
 * tools/family_ref.json) for several ctx/stride/BOS settings and documents of length 0,
 * 1, shorter than a window, exactly ctx, ctx+1 and several windows long; every family in
 * F32 and BF16 (and LLaMA in F16), from safetensors and torch .bin files, sharded and not;
 * token counts against the closed forms of DESIGN §5; the scratch-file residual stream;
 * the BOS rule; and every rejection. */
#include "error.h"
#include "evalset.h"
#include "model_support.h"
#include "ppl.h"
#include "testutil.h"
#include "tokfile.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    lfx f;
    cks_docset sets[4];
    int nsets;
} pfx;

static void pfx_open_case(pfx *p, json_t *golden, const char *name)
{
    json_t *c = golden_case(golden, name);
    golden_open(&p->f, c);
    p->nsets = golden_sets(&p->f, c, p->sets, 4);
}

/* The protocol model (GQA, F32) and its three sets: mixed (7 documents, a blank line),
 * long (u16), short (u32). */
static void pfx_open(pfx *p)
{
    json_t *g = golden_load();
    pfx_open_case(p, g, "protocol-f32");
    json_decref(g);
    assert_int_equal(p->sets[0].ndocs, 7);
    assert_int_equal(p->sets[0].line[3], 5); /* after the blank line */
}

static void pfx_close(pfx *p)
{
    for (int i = 0; i < p->nsets; i++)
        cks_docset_release(&p->sets[i]);
    lfx_close(&p->f);
}

static int eval(pfx *p, const cks_ppl_options *o, cks_ppl_result *res, cks_ppl_stats *st)
{
    return cks_ppl_evaluate(res, p->f.w, &p->f.cfg, "fx@ckpt_000", p->sets, 3, o, st);
}

/* Scored tokens by the closed forms of DESIGN §5: with stride < ctx every token of s
 * after the first is scored; with stride = ctx the first of each later window is not. */
static int64_t expected_tokens(int64_t len, int bos, int64_t ctx, int64_t stride)
{
    int64_t S = len + (bos ? 1 : 0);
    if (S <= 1)
        return 0;
    if (stride < ctx)
        return S - 1;
    return S - (S + ctx - 1) / ctx; /* one unscored token per window */
}

/* One golden run: every set's token count (also against the closed form), nll within
 * 1e-5 relative, and each token's loss within 1e-4 when the golden file has them; run
 * on 2 threads in default batches, and when `variants` also on 1 thread with one window
 * per batch. Returns the largest relative nll gap. */
static double check_run(pfx *p, json_t *run, int variants)
{
    double worst = 0;
    for (int variant = 0; variant < 1 + variants; variant++) {
        cks_ppl_options o;
        cks_ppl_result res[4];
        cks_ppl_stats st;
        cks_ppl_options_default(&o, &p->f.cfg);
        o.ctx = (int64_t)jnum(json_object_get(run, "ctx"));
        o.stride = (int64_t)jnum(json_object_get(run, "stride"));
        o.bos = json_is_true(json_object_get(run, "bos"));
        if (json_is_integer(json_object_get(run, "bos_id")))
            o.bos_id = (int32_t)json_integer_value(json_object_get(run, "bos_id"));
        o.force = 1;
        o.nthreads = variant ? 1 : 2;
        o.batch_rows = variant ? 1 : 0; /* one window per batch, or the default packing */
        int err =
            cks_ppl_evaluate(res, p->f.w, &p->f.cfg, "fx@ckpt_000", p->sets, p->nsets, &o, &st);
        if (err)
            fail_msg("%s", cks_error_last());
        double maxd = 0;
        for (int s = 0; s < p->nsets; s++) {
            json_t *rs = json_array_get(json_object_get(run, "sets"), (size_t)s);
            json_t *tn = json_object_get(rs, "token_nll");
            assert_int_equal(res[s].tokens, json_integer_value(json_object_get(rs, "tokens")));
            for (int64_t i = 0; tn && i < res[s].tokens; i++) {
                double want = jnum(json_array_get(tn, (size_t)i));
                maxd = fmax(maxd, fabs(res[s].token_nll[i] - want));
                assert_close(res[s].token_nll[i], want, 0, 1e-4);
            }
            double want = jnum(json_object_get(rs, "nll"));
            worst = fmax(worst, fabs(res[s].nll - want) / fabs(want));
            assert_close(res[s].nll, want, 1e-5, 0);
            assert_close(res[s].ppl, exp(res[s].nll), 1e-12, 0);
            assert_true(isnan(res[s].bpb)); /* token input: no bytes */
            /* the closed-form count, independent of both implementations */
            int64_t cf = 0;
            for (int64_t d = 0; d < p->sets[s].ndocs; d++) {
                int64_t n;
                cks_docset_doc(&p->sets[s], d, &n);
                cf += expected_tokens(n, o.bos, o.ctx, o.stride);
            }
            assert_int_equal(res[s].tokens, cf);
            cks_ppl_result_release(&res[s]);
        }
        if (json_object_get(json_array_get(json_object_get(run, "sets"), 0), "token_nll"))
            printf("# ctx %lld stride %lld %s, %s: %lld windows in %lld batches, max |token "
                   "nll - torch f64| = %.3g\n",
                   (long long)o.ctx, (long long)o.stride, o.bos ? "bos" : "no-bos",
                   variant ? "1 thread, 1 window/batch" : "2 threads", (long long)st.windows,
                   (long long)st.batches, maxd);
    }
    return worst;
}

static void check_case(json_t *golden, const char *name, int variants)
{
    pfx p;
    json_t *run;
    size_t i;
    double worst = 0;
    pfx_open_case(&p, golden, name);
    json_array_foreach(json_object_get(golden_case(golden, name), "runs"), i, run) worst =
        fmax(worst, check_run(&p, run, variants));
    printf("# %-46s max |nll - torch f64| / nll = %.2g\n", name, worst);
    pfx_close(&p);
}

static void test_ppl__protocol_matches_pytorch_f32(void **state)
{
    /* 16:8 the default shape (stride = ctx/2); 16:16 the first token of later windows
       unscored; 16:16 no BOS (a document of length ctx is one window); 16:5 a stride not
       dividing ctx; 7:3 short windows, many per document; 128:64 ctx =
       max_position_embeddings (every document one window) */
    json_t *g = golden_load();
    check_case(g, "protocol-f32", 1);
    json_decref(g);
}

static void test_ppl__protocol_matches_pytorch_bf16_and_forced_ctx(void **state)
{
    json_t *g = golden_load();
    check_case(g, "protocol-bf16", 1);
    check_case(g, "protocol-past-max-pos", 1); /* ctx 200 > max_position_embeddings 128 */
    json_decref(g);
}

/* A vocabulary of 9000 (> the 4096-column logits block): the online logsumexp across
 * blocks, targets in every block. */
static void test_ppl__protocol_matches_pytorch_large_vocab(void **state)
{
    json_t *g = golden_load();
    check_case(g, "protocol-large-vocab", 1);
    json_decref(g);
}

/* Every family in F32 and BF16 (LLaMA also F16), safetensors and .bin, sharded and not:
 * per-set nll within 1e-5 relative of the float64 reference under three (ctx, stride,
 * bos) settings. */
static void test_ppl__families_match_pytorch(void **state)
{
    json_t *g = golden_load(), *c;
    size_t i;
    int n = 0;
    json_array_foreach(json_object_get(g, "cases"), i, c)
    {
        const char *name = json_string_value(json_object_get(c, "name"));
        if (strncmp(name, "protocol-", 9) == 0 || strncmp(name, "cli-", 4) == 0)
            continue;
        check_case(g, name, 0);
        n++;
    }
    assert_true(n >= 21); /* six families x (F32, BF16 safetensors; a sharded .bin) and more */
    json_decref(g);
}

/* The residual stream in a scratch file (threshold of one byte) gives bit-identical
 * results to the stream in memory. */
static void test_ppl__scratch_file_same_as_memory(void **state)
{
    pfx p;
    cks_ppl_options o;
    cks_ppl_result a[3], b[3];
    cks_ppl_stats sa, sb;
    pfx_open(&p);
    cks_ppl_options_default(&o, &p.f.cfg);
    o.ctx = 16;
    o.stride = 8;
    o.nthreads = 2;
    o.batch_rows = 20; /* several batches, so rows are released and re-read */
    assert_int_equal(eval(&p, &o, a, &sa), 0);
    assert_int_equal(sa.resid_file, 0);
    o.resid_mem_max = 1;
    o.tmpdir = p.f.tmp;
    assert_int_equal(eval(&p, &o, b, &sb), 0);
    assert_int_equal(sb.resid_file, 1);
    assert_true(sb.batches > 3);
    for (int s = 0; s < 3; s++) {
        assert_int_equal(a[s].tokens, b[s].tokens);
        assert_memory_equal(a[s].token_nll, b[s].token_nll, (size_t)a[s].tokens * sizeof(float));
        assert_true(a[s].nll_sum == b[s].nll_sum);
        cks_ppl_result_release(&a[s]);
        cks_ppl_result_release(&b[s]);
    }
    /* an unusable scratch folder is a clear error, not a crash */
    o.tmpdir = "/nonexistent/ckptscope-scratch";
    assert_int_equal(eval(&p, &o, b, &sb), CKS_EIO);
    assert_non_null(strstr(cks_error_last(), "/nonexistent/ckptscope-scratch"));
    pfx_close(&p);
}

/* ---- rejections ---- */

static void test_ppl__rejects_bad_options(void **state)
{
    pfx p;
    cks_ppl_options o;
    cks_ppl_result r[3];
    pfx_open(&p);
    cks_ppl_options_default(&o, &p.f.cfg);
    assert_int_equal(o.ctx, 128);
    assert_int_equal(o.stride, 64);
    assert_int_equal(o.bos_id, 1);
    o.ctx = 129; /* above max_position_embeddings, not forced */
    assert_int_equal(eval(&p, &o, r, NULL), CKS_EINVAL);
    assert_non_null(strstr(cks_error_last(), "max_position_embeddings"));
    assert_non_null(strstr(cks_error_last(), "fx@ckpt_000"));
    o.ctx = 16;
    o.stride = 17;
    assert_int_equal(eval(&p, &o, r, NULL), CKS_EINVAL);
    assert_non_null(strstr(cks_error_last(), "stride"));
    o.stride = 0;
    assert_int_equal(eval(&p, &o, r, NULL), CKS_EINVAL);
    o.stride = 1;
    o.ctx = 1;
    assert_int_equal(eval(&p, &o, r, NULL), CKS_EINVAL);
    o.ctx = 16;
    o.bos_id = 256; /* = vocab */
    assert_int_equal(eval(&p, &o, r, NULL), CKS_EINVAL);
    assert_non_null(strstr(cks_error_last(), "BOS"));
    assert_int_equal(cks_ppl_evaluate(r, p.f.w, &p.f.cfg, "fx", p.sets, 0, &o, NULL), CKS_EINVAL);
    pfx_close(&p);
}

static void test_ppl__rejects_ids_past_vocab(void **state)
{
    pfx p;
    cks_ppl_options o;
    cks_ppl_result r[1];
    cks_docset d;
    char path[4200];
    pfx_open(&p);
    cks_ppl_options_default(&o, &p.f.cfg);
    o.ctx = 16;
    o.stride = 8;
    snprintf(path, sizeof path, "%s/bad.jsonl", p.f.tmp);
    const char *text = "{\"token_ids\": [1, 2]}\n{\"token_ids\": [3, 4, 5, 256, 6]}\n";
    cks_write_file(path, text, strlen(text));
    assert_int_equal(cks_tokfile_read(&d, path, "bad", CKS_TOKFILE_AUTO), 0);
    assert_int_equal(cks_ppl_evaluate(r, p.f.w, &p.f.cfg, "fx@ckpt_000", &d, 1, &o, NULL),
                     CKS_EFORMAT);
    const char *msg = cks_error_last();
    assert_non_null(strstr(msg, path));
    assert_non_null(strstr(msg, "line 2"));
    assert_non_null(strstr(msg, "token_ids[3]"));
    assert_non_null(strstr(msg, "256"));
    cks_docset_release(&d);
    /* a raw file: the position is the token index */
    snprintf(path, sizeof path, "%s/bad.u16", p.f.tmp);
    unsigned char raw[10] = {1, 0, 2, 0, 3, 0, 4, 0, 0xff, 0xff};
    cks_write_file(path, raw, sizeof raw);
    assert_int_equal(cks_tokfile_read(&d, path, "bad", CKS_TOKFILE_AUTO), 0);
    assert_int_equal(cks_ppl_evaluate(r, p.f.w, &p.f.cfg, "fx@ckpt_000", &d, 1, &o, NULL),
                     CKS_EFORMAT);
    assert_non_null(strstr(cks_error_last(), "token 4"));
    assert_non_null(strstr(cks_error_last(), "65535"));
    cks_docset_release(&d);
    pfx_close(&p);
}

static void test_ppl__rejects_empty_sets(void **state)
{
    pfx p;
    cks_ppl_options o;
    cks_ppl_result r[2];
    cks_docset d[2];
    static const int32_t one = 5;
    pfx_open(&p);
    cks_ppl_options_default(&o, &p.f.cfg);
    o.ctx = 16;
    o.stride = 8;
    /* no documents at all */
    assert_int_equal(cks_docset_init(&d[0], "empty", "empty.jsonl"), 0);
    assert_int_equal(cks_ppl_evaluate(r, p.f.w, &p.f.cfg, "fx", d, 1, &o, NULL), CKS_EINVAL);
    assert_non_null(strstr(cks_error_last(), "empty.jsonl"));
    assert_non_null(strstr(cks_error_last(), "nothing to score"));
    /* documents of one token: scored only with BOS in front */
    assert_int_equal(cks_docset_add(&d[0], NULL, 0, 1), 0);
    assert_int_equal(cks_docset_add(&d[0], &one, 1, 2), 0);
    o.bos = 0;
    assert_int_equal(cks_ppl_evaluate(r, p.f.w, &p.f.cfg, "fx", d, 1, &o, NULL), CKS_EINVAL);
    o.bos = 1;
    assert_int_equal(cks_ppl_evaluate(r, p.f.w, &p.f.cfg, "fx", d, 1, &o, NULL), 0);
    assert_int_equal(r[0].tokens, 1); /* P(5 | BOS) */
    assert_true(r[0].token_nll[0] > 0);
    cks_ppl_result_release(&r[0]);
    /* one good set and one empty set: the empty one is named */
    assert_int_equal(cks_docset_init(&d[1], "void", "void.u16"), 0);
    assert_int_equal(cks_ppl_evaluate(r, p.f.w, &p.f.cfg, "fx", d, 2, &o, NULL), CKS_EINVAL);
    assert_non_null(strstr(cks_error_last(), "void.u16"));
    cks_docset_release(&d[1]);
    cks_docset_release(&d[0]);
    pfx_close(&p);
}

/* bpb uses the set's byte count: nll_sum / (ln 2 · bytes). */
static void test_ppl__bpb_from_bytes(void **state)
{
    pfx p;
    cks_ppl_options o;
    cks_ppl_result r[1];
    pfx_open(&p);
    cks_ppl_options_default(&o, &p.f.cfg);
    o.ctx = 16;
    o.stride = 8;
    p.sets[1].bytes = 1234;
    assert_int_equal(cks_ppl_evaluate(r, p.f.w, &p.f.cfg, "fx", &p.sets[1], 1, &o, NULL), 0);
    assert_close(r[0].bpb, r[0].nll_sum / (log(2.0) * 1234.0), 1e-12, 0);
    assert_close(r[0].nll, r[0].nll_sum / (double)r[0].tokens, 1e-12, 0);
    cks_ppl_result_release(&r[0]);
    pfx_close(&p);
}

/* DESIGN §5's BOS rule: add_bos_token of tokenizer_config.json, else the family's HF
 * default; the id from config.json (or the family's default), else the tokenizer's; on
 * without an id is an error naming --no-bos. */
static void test_ppl__bos_rule_per_family(void **state)
{
    static const struct {
        const char *family;
        int bos;        /* the family's default */
        int32_t bos_id; /* what its fixture's config.json gives (-1: null) */
    } f[] = {{"llama", 1, 1},    {"mistral", 1, 1}, {"qwen2", 0, 255},
             {"gpt_neox", 0, 0}, {"olmo", 0, -1},   {"olmo2", 0, 254}};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        lfx x;
        cks_fx_model m;
        cks_ppl_options o;
        int bos;
        int32_t id;
        char p[4200];
        lfx_model_default(&m);
        m.family = f[i].family;
        lfx_open(&x, &m, "bos");
        cks_ppl_options_default(&o, &x.cfg);
        assert_int_equal(o.bos, f[i].bos);
        assert_int_equal(o.bos_id, f[i].bos_id);
        assert_int_equal(cks_evalset_bos(x.ck, &x.cfg, NULL, -1, &bos, &id), 0);
        assert_int_equal(bos, f[i].bos);
        if (f[i].bos_id >= 0) {
            assert_int_equal(cks_evalset_bos(x.ck, &x.cfg, NULL, 1, &bos, &id), 0);
            assert_true(bos == 1 && id == f[i].bos_id);
        } else { /* OLMo: bos_token_id null, no tokenizer: --bos is refused */
            cks_expect_error(cks_evalset_bos(x.ck, &x.cfg, NULL, 1, &bos, &id), CKS_EINVAL,
                             "--no-bos", "ckpt_000");
        }
        /* tokenizer_config.json's add_bos_token overrides the family's default */
        snprintf(p, sizeof p, "%s/tokenizer_config.json", x.ckdir);
        const char *flip = f[i].bos ? "{\"add_bos_token\": false}" : "{\"add_bos_token\": true}";
        cks_write_file(p, flip, strlen(flip));
        cks_ckpt_free(x.ck);
        assert_int_equal(cks_ckpt_open(&x.ck, x.src, 0), 0);
        int err = cks_evalset_bos(x.ck, &x.cfg, NULL, -1, &bos, &id);
        if (f[i].bos_id < 0) {
            assert_int_equal(err, CKS_EINVAL);
        } else {
            assert_int_equal(err, 0);
            assert_int_equal(bos, !f[i].bos);
        }
        lfx_close(&x);
    }
}

/* The BOS id beside a tokenizer (DESIGN §5): config.json's bos_token_id wins over the
 * tokenizer's BOS piece; only when config.json has none (HF's None) is the piece used.
 * tests/data/tok/small.model is SentencePiece with bos_piece "<s>" at id 1. */
static void test_ppl__bos_id_config_before_tokenizer(void **state)
{
    lfx x;
    cks_fx_model m;
    cks_tokenizer *tok = NULL;
    int bos;
    int32_t id;
    char *path = cks_test_data("tok/small.model");
    assert_int_equal(cks_tokenizer_load_file(&tok, path), 0);
    assert_int_equal(cks_tokenizer_bos_id(tok), 1);
    lfx_model_default(&m);
    lfx_open(&x, &m, "bosid");
    x.cfg.bos_token_id = 7; /* config.json's id, not the tokenizer's */
    assert_int_equal(cks_evalset_bos(x.ck, &x.cfg, tok, -1, &bos, &id), 0);
    assert_true(bos == 1 && id == 7);
    x.cfg.bos_token_id = -1; /* null: the tokenizer's piece */
    assert_int_equal(cks_evalset_bos(x.ck, &x.cfg, tok, -1, &bos, &id), 0);
    assert_true(bos == 1 && id == 1);
    assert_int_equal(cks_evalset_bos(x.ck, &x.cfg, tok, 0, &bos, &id), 0); /* --no-bos */
    assert_int_equal(bos, 0);
    /* neither: on is refused naming --no-bos, off is fine */
    cks_expect_error(cks_evalset_bos(x.ck, &x.cfg, NULL, -1, &bos, &id), CKS_EINVAL, "--no-bos",
                     "ckpt_000");
    assert_int_equal(cks_evalset_bos(x.ck, &x.cfg, NULL, 0, &bos, &id), 0);
    assert_int_equal(bos, 0);
    cks_tokenizer_free(tok);
    free(path);
    lfx_close(&x);
}

/* A sliding window that would apply is refused with the ctx that fits; one that would
 * not (shorter windows, Qwen2 without use_sliding_window or with every layer below
 * max_window_layers) is accepted. */
static void test_ppl__sliding_window_refused_where_it_applies(void **state)
{
    static const struct {
        const char *family;
        int window, use, max_layers;
        int64_t ctx;
        int err;
    } c[] = {
        {"mistral", 16, 0, 0, 16, 0},
        {"mistral", 16, 0, 0, 17, CKS_EUNSUPPORTED},
        {"mistral", 0, 0, 0, 128, 0}, /* sliding_window null */
        {"qwen2", 16, 0, 0, 128, 0},  /* use_sliding_window false */
        {"qwen2", 16, 1, 2, 128, 0},  /* layers 0, 1 < max_window_layers 2 */
        {"qwen2", 16, 1, 1, 16, 0},
        {"qwen2", 16, 1, 1, 17, CKS_EUNSUPPORTED}, /* layer 1 >= 1 slides */
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        lfx x;
        cks_fx_model m;
        cks_ppl_options o;
        cks_ppl_result r[1];
        cks_docset d;
        int32_t ids[40];
        lfx_model_default(&m);
        m.family = c[i].family;
        m.sliding_window = c[i].window;
        m.use_sliding_window = c[i].use;
        m.max_window_layers = c[i].max_layers;
        lfx_open(&x, &m, "window");
        for (int k = 0; k < 40; k++)
            ids[k] = (k * 37) % 256;
        assert_int_equal(cks_docset_init(&d, "d", "d.u32"), 0);
        assert_int_equal(cks_docset_add(&d, ids, 40, 0), 0);
        cks_ppl_options_default(&o, &x.cfg);
        o.ctx = c[i].ctx;
        o.stride = o.ctx / 2;
        o.bos = 0;
        int err = cks_ppl_evaluate(r, x.w, &x.cfg, "fx@ckpt_000", &d, 1, &o, NULL);
        if (err != c[i].err)
            fail_msg("case %zu: %d '%s'", i, err, cks_error_last());
        if (err) {
            assert_non_null(strstr(cks_error_last(), "sliding_window = 16"));
            assert_non_null(strstr(cks_error_last(), "ctx of 16 or less"));
        } else {
            cks_ppl_result_release(&r[0]);
        }
        cks_docset_release(&d);
        lfx_close(&x);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ppl__protocol_matches_pytorch_f32),
        cmocka_unit_test(test_ppl__protocol_matches_pytorch_bf16_and_forced_ctx),
        cmocka_unit_test(test_ppl__protocol_matches_pytorch_large_vocab),
        cmocka_unit_test(test_ppl__families_match_pytorch),
        cmocka_unit_test(test_ppl__scratch_file_same_as_memory),
        cmocka_unit_test(test_ppl__rejects_bad_options),
        cmocka_unit_test(test_ppl__rejects_ids_past_vocab),
        cmocka_unit_test(test_ppl__rejects_empty_sets),
        cmocka_unit_test(test_ppl__bpb_from_bytes),
        cmocka_unit_test(test_ppl__bos_rule_per_family),
        cmocka_unit_test(test_ppl__bos_id_config_before_tokenizer),
        cmocka_unit_test(test_ppl__sliding_window_refused_where_it_applies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
