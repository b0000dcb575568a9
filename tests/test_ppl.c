/* Perplexity protocol tests: per-token losses and nll of layer-major evaluation against
 * tools/llama_ref.py (the transformers-docs strided loop over an independent PyTorch
 * model) for several ctx/stride/BOS settings and documents of length 0, 1, shorter than a
 * window, exactly ctx, ctx+1 and several windows long; token counts against the closed
 * forms of DESIGN §5; the scratch-file residual stream; and every rejection. */
#include "error.h"
#include "llama_support.h"
#include "ppl.h"
#include "testutil.h"
#include "tokfile.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const int doc_lens[] = {1, 5, 15, 16, 17, 67, 0};
#define NDOCS     ((int)(sizeof doc_lens / sizeof doc_lens[0]))
#define RAW16_LEN 50
#define RAW32_LEN 23

typedef struct {
    lfx f;
    char jsonl[4200], raw16[4200], raw32[4200];
    cks_docset sets[3];
} pfx;

static unsigned next_id(unsigned *s, int vocab)
{
    *s = *s * 1103515245u + 12345u;
    return (*s >> 8) % (unsigned)vocab;
}

/* Writes the three token files and reads them back through cks_tokfile_read. */
static void pfx_open_model(pfx *p, const cks_fx_model *mm)
{
    cks_fx_model m = *mm;
    unsigned s = 11;
    lfx_open(&p->f, &m, "ppl");
    snprintf(p->jsonl, sizeof p->jsonl, "%s/mixed.jsonl", p->f.tmp);
    snprintf(p->raw16, sizeof p->raw16, "%s/long.u16", p->f.tmp);
    snprintf(p->raw32, sizeof p->raw32, "%s/short.u32", p->f.tmp);
    FILE *fp = fopen(p->jsonl, "w");
    assert_non_null(fp);
    for (int d = 0; d < NDOCS; d++) {
        fprintf(fp, "{\"source\": \"doc%d\", \"token_ids\": [", d);
        for (int i = 0; i < doc_lens[d]; i++)
            fprintf(fp, "%s%u", i ? ", " : "", next_id(&s, m.vocab));
        fprintf(fp, "]}\n%s", d == 2 ? "\n" : ""); /* a blank line is skipped */
    }
    fclose(fp);
    unsigned char b16[2 * RAW16_LEN], b32[4 * RAW32_LEN];
    for (int i = 0; i < RAW16_LEN; i++) {
        unsigned v = next_id(&s, m.vocab);
        b16[2 * i] = (unsigned char)v;
        b16[2 * i + 1] = (unsigned char)(v >> 8);
    }
    for (int i = 0; i < RAW32_LEN; i++) {
        unsigned v = next_id(&s, m.vocab);
        for (int k = 0; k < 4; k++)
            b32[4 * i + k] = (unsigned char)(v >> (8 * k));
    }
    cks_write_file(p->raw16, b16, sizeof b16);
    cks_write_file(p->raw32, b32, sizeof b32);
    assert_int_equal(cks_tokfile_read(&p->sets[0], p->jsonl, "mixed", CKS_TOKFILE_AUTO), 0);
    assert_int_equal(cks_tokfile_read(&p->sets[1], p->raw16, "long", CKS_TOKFILE_AUTO), 0);
    assert_int_equal(cks_tokfile_read(&p->sets[2], p->raw32, "short", CKS_TOKFILE_AUTO), 0);
    assert_int_equal(p->sets[0].ndocs, NDOCS);
    assert_int_equal(p->sets[0].line[3], 5); /* after the blank line */
}

static void pfx_open(pfx *p, cks_dtype dt)
{
    cks_fx_model m;
    lfx_model_default(&m);
    m.dtype = dt;
    pfx_open_model(p, &m);
}

static void pfx_close(pfx *p)
{
    for (int i = 0; i < 3; i++)
        cks_docset_release(&p->sets[i]);
    lfx_close(&p->f);
}

static int eval(pfx *p, const cks_ppl_options *o, cks_ppl_result *res, cks_ppl_stats *st)
{
    return cks_ppl_evaluate(res, p->f.w, &p->f.cfg, "fx@ckpt_000", p->sets, 3, o, st);
}

/* Scored tokens by the closed forms of DESIGN §5: with stride < ctx every token of s
 * after the first is scored; with stride = ctx the first of each later window is not. */
static int64_t expected_tokens(int len, int bos, int64_t ctx, int64_t stride)
{
    int64_t S = len + (bos ? 1 : 0);
    if (S <= 1)
        return 0;
    if (stride < ctx)
        return S - 1;
    return S - (S + ctx - 1) / ctx; /* one unscored token per window */
}

typedef struct {
    int64_t ctx, stride;
    int bos;
} setting;

static void check_one(pfx *p, const setting *cs, json_t *refsets)
{
    for (int variant = 0; variant < 2; variant++) {
        cks_ppl_options o;
        cks_ppl_result res[3];
        cks_ppl_stats st;
        cks_ppl_options_default(&o, &p->f.cfg);
        o.ctx = cs->ctx;
        o.stride = cs->stride;
        o.bos = cs->bos;
        o.force = 1;
        o.nthreads = variant ? 1 : 2;
        o.batch_rows = variant ? 1 : 0; /* one window per batch, or the default packing */
        assert_int_equal(eval(p, &o, res, &st), 0);
        double maxd = 0;
        for (int s = 0; s < 3; s++) {
            json_t *rs = json_array_get(refsets, (size_t)s);
            json_t *tn = json_object_get(rs, "token_nll");
            assert_int_equal(res[s].tokens, json_integer_value(json_object_get(rs, "tokens")));
            for (int64_t i = 0; i < res[s].tokens; i++) {
                double want = json_real_value(json_array_get(tn, (size_t)i));
                maxd = fmax(maxd, fabs(res[s].token_nll[i] - want));
                assert_close(res[s].token_nll[i], want, 0, 1e-4);
            }
            assert_close(res[s].nll, json_real_value(json_object_get(rs, "nll")), 1e-5, 0);
            assert_close(res[s].ppl, exp(res[s].nll), 1e-12, 0);
            assert_true(isnan(res[s].bpb)); /* token input: no bytes */
            /* the closed-form count, independent of both implementations */
            int64_t want = 0;
            if (s == 0)
                for (int d = 0; d < NDOCS; d++)
                    want += expected_tokens(doc_lens[d], cs->bos, cs->ctx, cs->stride);
            else
                want =
                    expected_tokens(s == 1 ? RAW16_LEN : RAW32_LEN, cs->bos, cs->ctx, cs->stride);
            assert_int_equal(res[s].tokens, want);
            cks_ppl_result_release(&res[s]);
        }
        printf("# ctx %lld stride %lld %s, %s: %lld windows in %lld batches, max |nll - torch| "
               "= %.3g\n",
               (long long)cs->ctx, (long long)cs->stride, cs->bos ? "bos" : "no-bos",
               variant ? "1 thread, 1 window/batch" : "2 threads", (long long)st.windows,
               (long long)st.batches, maxd);
    }
}

/* The reference of every setting (tests/data/llama/<name>.json: one run of
 * tools/llama_ref.py over all settings) compared with layer-major evaluation, packed into
 * default batches on 2 threads and one window per batch on 1 thread. */
static void check_settings(pfx *p, const char *name, const setting *cs, int n)
{
    char args[16384];
    size_t k =
        (size_t)snprintf(args, sizeof args, "ppl %s --set mixed=%s --set long=%s --set short=%s",
                         p->f.ckdir, p->jsonl, p->raw16, p->raw32);
    for (int i = 0; i < n; i++)
        k += (size_t)snprintf(args + k, sizeof args - k, " --run %lld:%lld%s", (long long)cs[i].ctx,
                              (long long)cs[i].stride, cs[i].bos ? "" : ":nobos");
    json_t *ref = lfx_reference(p->f.tmp, name, args);
    for (int i = 0; i < n; i++)
        check_one(p, &cs[i],
                  json_object_get(json_array_get(json_object_get(ref, "runs"), (size_t)i), "sets"));
    json_decref(ref);
}

static void test_ppl__matches_pytorch_f32(void **state)
{
    static const setting cases[] = {
        {16, 8, 1},   /* the default shape: stride = ctx/2 */
        {16, 16, 1},  /* stride = ctx: first token of later windows unscored */
        {16, 16, 0},  /* no BOS: a document of length ctx is exactly one window */
        {16, 5, 0},   /* stride not dividing ctx */
        {7, 3, 1},    /* short windows, many per document */
        {128, 64, 1}, /* ctx = max_position_embeddings: every document one window */
    };
    pfx p;
    pfx_open(&p, CKS_DT_F32);
    check_settings(&p, "ppl_f32", cases, (int)(sizeof cases / sizeof cases[0]));
    pfx_close(&p);
}

static void test_ppl__matches_pytorch_bf16(void **state)
{
    static const setting c = {16, 8, 1};
    pfx p;
    pfx_open(&p, CKS_DT_BF16);
    check_settings(&p, "ppl_bf16", &c, 1);
    pfx_close(&p);
}

static void test_ppl__matches_pytorch_past_max_pos_forced(void **state)
{
    static const setting c = {200, 100, 0}; /* ctx > max_position_embeddings = 128 */
    pfx p;
    pfx_open(&p, CKS_DT_F32);
    check_settings(&p, "ppl_past_max_pos", &c, 1);
    pfx_close(&p);
}

/* A vocabulary of 9000 (> the 4096-column logits block): the online logsumexp across
 * blocks, targets in every block. */
static void test_ppl__matches_pytorch_large_vocab(void **state)
{
    static const setting c = {32, 16, 1};
    cks_fx_model m;
    pfx p;
    lfx_model_default(&m);
    m.vocab = 9000;
    m.layers = 1;
    pfx_open_model(&p, &m);
    check_settings(&p, "ppl_large_vocab", &c, 1);
    pfx_close(&p);
}

/* The residual stream in a scratch file (threshold of one byte) gives bit-identical
 * results to the stream in memory. */
static void test_ppl__scratch_file_same_as_memory(void **state)
{
    pfx p;
    cks_ppl_options o;
    cks_ppl_result a[3], b[3];
    cks_ppl_stats sa, sb;
    pfx_open(&p, CKS_DT_F32);
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
    pfx_open(&p, CKS_DT_F32);
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
    pfx_open(&p, CKS_DT_F32);
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
    pfx_open(&p, CKS_DT_F32);
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
    pfx_open(&p, CKS_DT_F32);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ppl__matches_pytorch_f32),
        cmocka_unit_test(test_ppl__matches_pytorch_bf16),
        cmocka_unit_test(test_ppl__matches_pytorch_past_max_pos_forced),
        cmocka_unit_test(test_ppl__matches_pytorch_large_vocab),
        cmocka_unit_test(test_ppl__scratch_file_same_as_memory),
        cmocka_unit_test(test_ppl__rejects_bad_options),
        cmocka_unit_test(test_ppl__rejects_ids_past_vocab),
        cmocka_unit_test(test_ppl__rejects_empty_sets),
        cmocka_unit_test(test_ppl__bpb_from_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
