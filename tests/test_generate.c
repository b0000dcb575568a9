/* Greedy generation with the key/value cache (metrics/generate.h) against the forward pass
 * without one: for a random tiny model of every family, each generated token must be the
 * argmax (ties to the lowest id) of cks_model_logits over the whole sequence so far, run
 * afresh at positions 0..n-1 (the ppl path's code, independent of the cache). Batches
 * forced small by the cache bound, and 1 and 2 threads, give the same tokens. The float64
 * PyTorch reference of the same generation is tools/memo_ref.py (cli/test_memorize.py). */
#include "error.h"
#include "generate.h"
#include "model.h"
#include "model_support.h"
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NSEQ 7
#define K    9
#define L    6

/* The argmax of row r of n × vocab logits, ties to the lowest id; *margin: the gap to
 * the runner-up. */
static int32_t argmax(const float *row, int64_t vocab, double *margin)
{
    int32_t a = 0;
    double second = -INFINITY;
    for (int64_t v = 1; v < vocab; v++) {
        if (row[v] > row[a]) {
            second = row[a];
            a = (int32_t)v;
        } else if (row[v] > second) {
            second = row[v];
        }
    }
    *margin = row[a] - second;
    return a;
}

/* Token by token without a cache: the whole sequence through cks_model_logits. Returns
 * the number of steps whose argmax margin was under 1e-4 (then the rest of the sequence
 * is not compared: float rounding may pick either). */
static int check_sequence(const cks_model_weights *w, const int32_t *prompt, const int32_t *gen,
                          int64_t vocab)
{
    int32_t seq[K + L];
    memcpy(seq, prompt, K * sizeof *seq);
    for (int j = 0; j < L; j++) {
        float *lg = NULL;
        double margin;
        assert_int_equal(cks_model_logits(w, seq, K + j, 1, &lg), 0);
        int32_t a = argmax(lg + (size_t)(K + j - 1) * (size_t)vocab, vocab, &margin);
        free(lg);
        if (margin < 1e-4)
            return 1;
        assert_int_equal(gen[j], a);
        seq[K + j] = a;
    }
    return 0;
}

static void run_family(const char *family, cks_precision prec)
{
    cks_fx_model m;
    lfx f;
    char tag[64];
    lfx_model_default(&m);
    m.family = family;
    if (strcmp(family, "gpt_neox") == 0)
        m.kv_heads = m.heads; /* no GQA in GPT-NeoX */
    snprintf(tag, sizeof tag, "gen_%s_%d", family, (int)prec);
    lfx_open(&f, &m, tag);
    int32_t ids[NSEQ * (K + 3)], gen1[NSEQ * L], gen2[NSEQ * L], gen3[NSEQ * L];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        x = x * 1664525u + 1013904223u;
        ids[i] = (int32_t)((x >> 8) % (uint32_t)m.vocab);
    }
    cks_generate_options o = {.k = K, .l = L, .nthreads = 1, .precision = prec};
    cks_generate_stats st;
    assert_int_equal(cks_generate(gen1, f.w, &f.cfg, "t", ids, K + 3, NSEQ, &o, &st), 0);
    assert_int_equal(st.batch, NSEQ);
    assert_int_equal(st.batches, 1);
    assert_int_equal(st.loads, L); /* the prompts, then l - 1 steps */
    assert_int_equal(st.cache_file, 0);
    /* batches of 3 sequences (the cache of one is 2·layers·kvd·(k+l) floats), 2 threads */
    cks_model_config mc;
    assert_int_equal(cks_model_config_from(&mc, &f.cfg, "t"), 0);
    o.cache_max = 3 * (size_t)(2 * mc.n_layers * mc.n_kv_heads * mc.head_dim * (K + L)) * 4;
    o.nthreads = 2;
    assert_int_equal(cks_generate(gen2, f.w, &f.cfg, "t", ids, K + 3, NSEQ, &o, &st), 0);
    assert_int_equal(st.batch, 3);
    assert_int_equal(st.batches, 3);
    /* the weights are read l times whatever the number of batches; the caches of all
       sequences exceed the bound and live in a scratch file */
    assert_int_equal(st.loads, L);
    assert_int_equal(st.cache_file, 1);
    assert_memory_equal(gen1, gen2, sizeof gen1);
    o.cache_max = 1; /* at least one sequence per batch */
    assert_int_equal(cks_generate(gen3, f.w, &f.cfg, "t", ids, K + 3, NSEQ, &o, &st), 0);
    assert_int_equal(st.batch, 1);
    assert_int_equal(st.loads, L);
    assert_memory_equal(gen1, gen3, sizeof gen1);
    /* every token against the forward pass without a cache */
    cks_model_weights w;
    mc.precision = prec;
    assert_int_equal(cks_model_weights_bind(&w, &mc, cks_weights_tensors(f.w), "t"), 0);
    int near = 0;
    for (int i = 0; i < NSEQ; i++)
        near += check_sequence(&w, ids + i * (K + 3), gen1 + i * L, mc.vocab);
    printf("# %-8s %s: %d of %d sequences met a near tie\n", family, cks_precision_name(prec), near,
           NSEQ);
    assert_true(near <= 1);
    cks_model_weights_release(&w);
    lfx_close(&f);
}

static void test_generate__matches_uncached_forward_every_family(void **state)
{
    (void)state;
    static const char *const fam[] = {"llama", "mistral", "qwen2", "gpt_neox", "olmo", "olmo2"};
    for (size_t i = 0; i < sizeof fam / sizeof fam[0]; i++)
        run_family(fam[i], CKS_PRECISION_F32);
    run_family("llama", CKS_PRECISION_BF16);
}

static void test_generate__refusals(void **state)
{
    (void)state;
    cks_fx_model m;
    lfx f;
    int32_t ids[8] = {1, 2, 3, 4, 5, 6, 7, 8}, gen[8];
    lfx_model_default(&m);
    lfx_open(&f, &m, "gen_refuse");
    cks_generate_options o = {.k = 4, .l = 4, .nthreads = 1};
    ids[2] = m.vocab; /* past the vocabulary */
    assert_int_equal(cks_generate(gen, f.w, &f.cfg, "t", ids, 8, 1, &o, NULL), CKS_EINVAL);
    assert_non_null(strstr(cks_error_last(), "not below the vocabulary"));
    ids[2] = 3;
    o.k = 100; /* k + l past max_position_embeddings 128 */
    o.l = 29;
    assert_int_equal(cks_generate(gen, f.w, &f.cfg, "t", ids, 200, 0, &o, NULL), CKS_EINVAL);
    assert_non_null(strstr(cks_error_last(), "max_position_embeddings"));
    o.k = 9; /* a prompt longer than the ids given */
    o.l = 1;
    assert_int_equal(cks_generate(gen, f.w, &f.cfg, "t", ids, 8, 1, &o, NULL), CKS_EINVAL);
    o.k = 4;
    o.l = 0;
    assert_int_equal(cks_generate(gen, f.w, &f.cfg, "t", ids, 8, 1, &o, NULL), CKS_EINVAL);
    lfx_close(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generate__matches_uncached_forward_every_family),
        cmocka_unit_test(test_generate__refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
