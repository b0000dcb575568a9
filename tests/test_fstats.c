/* Function-space statistics (metrics/klrow.h, klkeep.h, klsum.h, bootstrap.h, memo.h's
 * sample) against tests/data/fstats/refs.json, which tools/make_fstats_refs.py computed
 * with numpy in float64: KL, nll and argmax per position from the same float32 logits
 * (regenerated here bit for bit by the same counter-based generator), the set aggregates
 * with numpy's linear quantiles, the block bootstrap re-implemented in numpy on GSL's
 * Mersenne Twister stream (numpy's legacy RandomState), gsl_ran_choose likewise. Edge
 * cases (NaN and infinite logits, ties, empty sets) are checked against their analytic
 * values. */
#include "bootstrap.h"
#include "error.h"
#include "json.h"
#include "klkeep.h"
#include "klrow.h"
#include "klsum.h"
#include "memo.h"
#include "testutil.h"

#include <gsl/gsl_rng.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *refs;

static int setup(void **state)
{
    char *path = cks_test_data("fstats/refs.json");
    size_t len;
    unsigned char *text = cks_read_test_file(path, &len);
    if (cks_json_parse((const char *)text, len, path, 1, &refs) != 0) {
        fprintf(stderr, "%s\n", cks_error_last());
        return -1;
    }
    free(text);
    free(path);
    return 0;
}

static int teardown(void **state)
{
    json_decref(refs);
    return 0;
}

static json_t *ref(const char *path)
{
    json_t *j = refs;
    char buf[256], *save = NULL;
    snprintf(buf, sizeof buf, "%s", path);
    for (char *k = strtok_r(buf, ".", &save); k; k = strtok_r(NULL, ".", &save))
        j = json_object_get(j, k);
    if (!j)
        fail_msg("refs.json has no %s: rerun tools/make_fstats_refs.py", path);
    return j;
}

static double num(const json_t *a, size_t i)
{
    return json_number_value(json_array_get(a, i));
}

/* ---- the generator of tools/make_fstats_refs.py ---- */

static uint64_t gen(uint64_t stream, uint64_t i)
{
    uint64_t z = (stream << 40) + (i + 1) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static float unif32(uint64_t s, uint64_t i)
{
    return (float)((double)(gen(s, i) >> 40) * 0x1p-24);
}

static double unif64(uint64_t s, uint64_t i)
{
    return (double)(gen(s, i) >> 11) * 0x1p-53;
}

/* make_rows() of the script: every float32 step is exact or one rounded sum */
static void make_rows(float *c, float *t, int32_t *y, int64_t npos, int64_t V)
{
    for (int64_t p = 0; p < npos; p++) {
        float *cp = c + p * V, *tp = t + p * V;
        int k = (int)(p % 7);
        y[p] = (int32_t)(gen(6, (uint64_t)p) % (uint64_t)V);
        int32_t other =
            (int32_t)((y[p] + 1 + (int64_t)(gen(7, (uint64_t)p) % (uint64_t)(V - 1))) % V);
        float spike = 12.0f + (unif32(5, (uint64_t)p) - 0.5f);
        for (int64_t v = 0; v < V; v++) {
            uint64_t i = (uint64_t)(p * V + v);
            float cv = (unif32(1, i) - 0.5f) * 16.0f, noise = (unif32(2, i) - 0.5f) * 0x1p-4f;
            cp[v] = cv;
            if (k == 0 || (k == 2 && p % 14 != 2))
                tp[v] = cv + noise;
            else if (k <= 3)
                tp[v] = cv + noise * 8.0f;
            else if (k == 4)
                tp[v] = cv;
            else if (k == 5)
                tp[v] = cv + 4.0f;
            else {
                cp[v] = (unif32(3, i) - 0.5f) * 128.0f;
                tp[v] = (unif32(4, i) - 0.5f) * 128.0f;
            }
        }
        if (k == 1 || (k == 2 && p % 14 == 2) || k == 3) {
            int kind2 = k == 2;
            cp[k == 1 || kind2 ? y[p] : other] = spike;
            tp[k == 1 || k == 3 ? y[p] : other] = spike;
        } else if (k == 6) {
            int32_t ids[3] = {y[p], other, (int32_t)((y[p] + 7) % V)}, lo, hi;
            /* the two smallest distinct ids */
            lo = ids[0] < ids[1] ? ids[0] : ids[1];
            lo = ids[2] < lo ? ids[2] : lo;
            hi = INT32_MAX;
            for (int j = 0; j < 3; j++)
                if (ids[j] != lo && ids[j] < hi)
                    hi = ids[j];
            float mc = -INFINITY, mt = -INFINITY;
            for (int64_t v = 0; v < V; v++) {
                mc = cp[v] > mc ? cp[v] : mc;
                mt = tp[v] > mt ? tp[v] : mt;
            }
            cp[lo] = cp[hi] = mc + 1.0f;
            tp[lo] = tp[hi] = mt + 1.0f;
        }
    }
}

typedef struct {
    int64_t V, npos, ndocs;
    int64_t docs[16];
    float *c, *t;
    int32_t *y;
} kl_case;

static void kl_case_load(kl_case *k)
{
    json_t *docs = ref("kl.docs");
    k->V = (int64_t)json_integer_value(ref("kl.vocab"));
    k->ndocs = (int64_t)json_array_size(docs);
    k->npos = 0;
    for (int64_t d = 0; d < k->ndocs; d++)
        k->npos += k->docs[d] = (int64_t)json_integer_value(json_array_get(docs, (size_t)d));
    k->c = malloc((size_t)(k->npos * k->V) * sizeof *k->c);
    k->t = malloc((size_t)(k->npos * k->V) * sizeof *k->t);
    k->y = malloc((size_t)k->npos * sizeof *k->y);
    make_rows(k->c, k->t, k->y, k->npos, k->V);
}

static void kl_case_free(kl_case *k)
{
    free(k->c);
    free(k->t);
    free(k->y);
}

/* Every row of k in blocks of width w, over nthreads threads. */
static void run_rows(const kl_case *k, int64_t w, int nthreads, cks_klpos *out)
{
    cks_klrow *rows = malloc((size_t)k->npos * sizeof *rows);
    for (int64_t p = 0; p < k->npos; p++)
        cks_klrow_init(&rows[p], k->y[p]);
    for (int64_t c0 = 0; c0 < k->V; c0 += w) {
        int64_t n = k->V - c0 < w ? k->V - c0 : w;
        cks_kl_block(rows, k->npos, k->c + c0, k->V, k->t + c0, k->V, c0, n, nthreads);
    }
    for (int64_t p = 0; p < k->npos; p++)
        cks_klrow_finish(&rows[p], k->V, &out[p]);
    free(rows);
}

/* Bit-identical results (the struct's padding aside). */
static void assert_same_pos(const cks_klpos *a, const cks_klpos *b, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        assert_memory_equal(&a[i].kl, &b[i].kl, sizeof a[i].kl);
        assert_memory_equal(&a[i].nll_c, &b[i].nll_c, sizeof a[i].nll_c);
        assert_memory_equal(&a[i].nll_t, &b[i].nll_t, sizeof a[i].nll_t);
        assert_int_equal(a[i].arg_c, b[i].arg_c);
        assert_int_equal(a[i].arg_t, b[i].arg_t);
        assert_int_equal(a[i].y, b[i].y);
    }
}

static void test_fstats__exp_matches_libm(void **state)
{
    double worst = 0;
    for (double x = -708.0; x <= 709.0; x += 0.0137) {
        double e = exp(x), rel = fabs(cks_kl_exp(x) - e) / e;
        worst = rel > worst ? rel : worst;
    }
    for (int i = 0; i < 100000; i++) { /* the softmax range, densely */
        double x = -40.0 * i / 100000.0, e = exp(x), rel = fabs(cks_kl_exp(x) - e) / e;
        worst = rel > worst ? rel : worst;
    }
    printf("cks_kl_exp: worst relative error %.3g against libm\n", worst);
    assert_true(worst < 3e-16);
    assert_true(cks_kl_exp(0.0) == 1.0);
    assert_true(cks_kl_exp(-708.5) == 0.0);
    assert_true(cks_kl_exp(-INFINITY) == 0.0);
    assert_true(isnan(cks_kl_exp(NAN)));
}

static void test_fstats__kl_rows_against_numpy(void **state)
{
    kl_case k;
    kl_case_load(&k);
    const json_t *pp = ref("kl.per_position");
    const json_t *kl = json_object_get(pp, "kl"), *nc = json_object_get(pp, "nll_c"),
                 *nt = json_object_get(pp, "nll_t"), *ac = json_object_get(pp, "arg_c"),
                 *at = json_object_get(pp, "arg_t");
    assert_int_equal(json_array_size(kl), k.npos);
    cks_klpos *got = malloc((size_t)k.npos * sizeof *got),
              *one = malloc((size_t)k.npos * sizeof *one);
    static const int64_t widths[] = {389, 1, 7, 64, 100, 388, 4096};
    for (size_t wi = 0; wi < sizeof widths / sizeof widths[0]; wi++) {
        run_rows(&k, widths[wi], 2, got);
        for (int64_t p = 0; p < k.npos; p++) {
            /* float64 both ways: rounding only (KL of equal rows is 0 here, ~1e-16 there) */
            assert_close(got[p].kl, num(kl, (size_t)p), 1e-12, 1e-13);
            assert_close(got[p].nll_c, num(nc, (size_t)p), 1e-13, 1e-13);
            assert_close(got[p].nll_t, num(nt, (size_t)p), 1e-13, 1e-13);
            assert_int_equal(got[p].arg_c, num(ac, (size_t)p));
            assert_int_equal(got[p].arg_t, num(at, (size_t)p));
            assert_int_equal(got[p].y, k.y[p]);
        }
    }
    /* the thread count does not change a bit */
    run_rows(&k, 64, 1, one);
    run_rows(&k, 64, 3, got);
    assert_same_pos(one, got, k.npos);
    free(got);
    free(one);
    kl_case_free(&k);
}

/* The kept base gives exactly what the live base gives, in memory and in a scratch file. */
static void test_fstats__kept_base_equals_live(void **state)
{
    kl_case k;
    kl_case_load(&k);
    cks_klpos *live = malloc((size_t)k.npos * sizeof *live),
              *kept = malloc((size_t)k.npos * sizeof *kept);
    cks_klrow *rows = malloc((size_t)k.npos * sizeof *rows);
    run_rows(&k, 50, 1, live);
    for (size_t mem_max = 1; mem_max <= ((size_t)1 << 30); mem_max <<= 30) {
        cks_klkeep *keep;
        assert_int_equal(cks_klkeep_new(&keep, k.npos, k.V, mem_max, NULL), 0);
        assert_int_equal(cks_klkeep_is_file(keep), mem_max == 1);
        assert_int_equal(cks_klkeep_positions(keep), k.npos);
        assert_int_equal(cks_klkeep_vocab(keep), k.V);
        assert_int_equal(cks_klkeep_bytes_per_position(k.V), 4 * k.V);
        /* the base's logits arrive in blocks of 50 columns and 100 rows, as a forward
           pass writes them */
        for (int64_t r0 = 0; r0 < k.npos; r0 += 100)
            for (int64_t c0 = 0; c0 < k.V; c0 += 50) {
                int64_t nr = k.npos - r0 < 100 ? k.npos - r0 : 100;
                int64_t nc = k.V - c0 < 50 ? k.V - c0 : 50;
                cks_klkeep_put(keep, r0, nr, c0, nc, k.c + r0 * k.V + c0, k.V);
            }
        for (int64_t p = 0; p < k.npos; p++)
            cks_klrow_init(&rows[p], k.y[p]);
        /* compare t's block, then put it in its place: the next checkpoint's base */
        for (int64_t c0 = 0; c0 < k.V; c0 += 50) {
            int64_t nc = k.V - c0 < 50 ? k.V - c0 : 50;
            cks_klkeep_compare(keep, rows, 0, k.npos, c0, nc, k.t + c0, k.V, 2);
            cks_klkeep_put(keep, 0, k.npos, c0, nc, k.t + c0, k.V);
        }
        cks_klkeep_release(keep, 0, k.npos);
        for (int64_t p = 0; p < k.npos; p++)
            cks_klrow_finish(&rows[p], k.V, &kept[p]);
        assert_same_pos(live, kept, k.npos);
        assert_memory_equal(cks_klkeep_row(keep, 17), k.t + 17 * k.V, (size_t)k.V * sizeof(float));
        cks_klkeep_free(keep);
    }
    cks_klkeep *keep;
    cks_expect_error(cks_klkeep_new(&keep, INT64_MAX / 2, 1000, 0, NULL), CKS_ELIMIT, NULL, NULL);
    free(rows);
    free(live);
    free(kept);
    kl_case_free(&k);
}

static void test_fstats__set_summary_against_numpy(void **state)
{
    kl_case k;
    kl_case_load(&k);
    cks_klpos *pos = malloc((size_t)k.npos * sizeof *pos);
    run_rows(&k, 64, 2, pos);
    cks_klsummary s;
    assert_int_equal(cks_klsummary_compute(&s, pos, k.npos, k.docs, k.ndocs, NULL), 0);
    assert_int_equal(s.positions, json_integer_value(ref("kl.summary.positions")));
    static const struct {
        const char *name;
        size_t off;
    } f[] = {{"kl", offsetof(cks_klsummary, kl)},
             {"kl_p50", offsetof(cks_klsummary, kl_p50)},
             {"kl_p90", offsetof(cks_klsummary, kl_p90)},
             {"kl_p99", offsetof(cks_klsummary, kl_p99)},
             {"kl_max", offsetof(cks_klsummary, kl_max)},
             {"top1_agree", offsetof(cks_klsummary, top1_agree)},
             {"forgot", offsetof(cks_klsummary, forgot)},
             {"learned", offsetof(cks_klsummary, learned)},
             {"dnll", offsetof(cks_klsummary, dnll)},
             {"dnll_lo", offsetof(cks_klsummary, dnll_lo)},
             {"dnll_hi", offsetof(cks_klsummary, dnll_hi)},
             {"top1_acc", offsetof(cks_klsummary, top1_acc)},
             {"top1_acc_base", offsetof(cks_klsummary, top1_acc_base)}};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        char key[64];
        snprintf(key, sizeof key, "kl.summary.%s", f[i].name);
        double got = *(const double *)((const char *)&s + f[i].off);
        printf("%-14s %.17g (numpy %.17g)\n", f[i].name, got, json_number_value(ref(key)));
        assert_close(got, json_number_value(ref(key)), 1e-12, 1e-13);
    }
    /* a documents list that does not add up */
    int64_t bad[2] = {k.npos, 1};
    cks_expect_error(cks_klsummary_compute(&s, pos, k.npos, bad, 2, NULL), CKS_EINVAL, "positions",
                     NULL);
    int64_t neg[2] = {k.npos + 1, -1};
    cks_expect_error(cks_klsummary_compute(&s, pos, k.npos, neg, 2, NULL), CKS_EINVAL, "positions",
                     NULL);
    /* no positions: every value NaN, positions 0 */
    assert_int_equal(cks_klsummary_compute(&s, pos, 0, NULL, 0, NULL), 0);
    assert_int_equal(s.positions, 0);
    assert_true(isnan(s.kl) && isnan(s.kl_p50) && isnan(s.dnll_lo) && isnan(s.top1_acc));
    free(pos);
    kl_case_free(&k);
}

static void test_fstats__bootstrap_against_numpy(void **state)
{
    const json_t *jd = ref("bootstrap.docs"), *cases = ref("bootstrap.cases");
    int64_t ndocs = (int64_t)json_array_size(jd), n = 0, docs[64];
    for (int64_t d = 0; d < ndocs; d++)
        n += docs[d] = (int64_t)json_integer_value(json_array_get(jd, (size_t)d));
    double *v = malloc((size_t)n * sizeof *v);
    for (int64_t i = 0; i < n; i++)
        v[i] = unif64(9, (uint64_t)i) * 2.0 - 0.9;
    /* the blocks */
    double *sums;
    int64_t *counts, nb;
    assert_int_equal(cks_bootstrap_blocks(&sums, &counts, &nb, v, n, docs, ndocs, 256), 0);
    assert_int_equal(nb, json_integer_value(ref("bootstrap.blocks_256.n")));
    for (size_t j = 0; j < 5; j++) {
        assert_true(sums[j] == num(ref("bootstrap.blocks_256.sums_first"), j));
        assert_int_equal(counts[j], num(ref("bootstrap.blocks_256.counts_first"), j));
    }
    free(sums);
    free(counts);
    for (size_t c = 0; c < json_array_size(cases); c++) {
        const json_t *cs = json_array_get(cases, c), *o = json_object_get(cs, "options");
        cks_boot_options opt;
        cks_boot_options_default(&opt);
        json_t *x;
        if ((x = json_object_get(o, "block")))
            opt.block = json_integer_value(x);
        if ((x = json_object_get(o, "resamples")))
            opt.resamples = json_integer_value(x);
        if ((x = json_object_get(o, "seed")))
            opt.seed = (unsigned long)json_integer_value(x);
        if ((x = json_object_get(o, "lo")))
            opt.lo = json_number_value(x);
        if ((x = json_object_get(o, "hi")))
            opt.hi = json_number_value(x);
        double lo, hi, lo2, hi2;
        assert_int_equal(cks_bootstrap_mean(&lo, &hi, v, n, docs, ndocs, &opt), 0);
        printf("bootstrap case %zu: [%.17g, %.17g], numpy [%.17g, %.17g]\n", c, lo, hi,
               json_number_value(json_object_get(cs, "lo")),
               json_number_value(json_object_get(cs, "hi")));
        /* the same draws and the same order of sums: equal but for the quantile's rounding */
        assert_close(lo, json_number_value(json_object_get(cs, "lo")), 1e-15, 0);
        assert_close(hi, json_number_value(json_object_get(cs, "hi")), 1e-15, 0);
        assert_int_equal(cks_bootstrap_mean(&lo2, &hi2, v, n, docs, ndocs, &opt), 0);
        assert_true(lo == lo2 && hi == hi2); /* a fresh generator each call */
    }
    free(v);
}

static void test_fstats__bootstrap_edges(void **state)
{
    double v[5] = {1, 2, 3, 4, 10}, lo, hi;
    int64_t one[1] = {5}, two[2] = {2, 3}, bad[1] = {4}, neg[2] = {6, -1};
    /* one block: every resample is the mean */
    assert_int_equal(cks_bootstrap_mean(&lo, &hi, v, 5, one, 1, NULL), 0);
    assert_true(lo == 4.0 && hi == 4.0);
    /* two blocks of 2 and 3: a resample is one of (2+2)/4... within [1.5, 17/3] */
    assert_int_equal(cks_bootstrap_mean(&lo, &hi, v, 5, two, 2, NULL), 0);
    assert_true(lo >= 1.5 && hi <= 17.0 / 3 && lo < hi);
    cks_expect_error(cks_bootstrap_mean(&lo, &hi, v, 5, bad, 1, NULL), CKS_EINVAL, "4 of the 5",
                     NULL);
    cks_expect_error(cks_bootstrap_mean(&lo, &hi, v, 5, neg, 2, NULL), CKS_EINVAL, "more than",
                     NULL);
    cks_boot_options o;
    cks_boot_options_default(&o);
    o.resamples = 0;
    cks_expect_error(cks_bootstrap_mean(&lo, &hi, v, 5, one, 1, &o), CKS_EINVAL, "resamples", NULL);
    cks_boot_options_default(&o);
    o.hi = 1.5;
    cks_expect_error(cks_bootstrap_mean(&lo, &hi, v, 5, one, 1, &o), CKS_EINVAL, "quantiles", NULL);
    cks_boot_options_default(&o);
    o.block = 0;
    cks_expect_error(cks_bootstrap_mean(&lo, &hi, v, 5, one, 1, &o), CKS_EINVAL, "block", NULL);
    /* more draws than hours of work: refused before anything is allocated */
    cks_boot_options_default(&o);
    o.resamples = (int64_t)1 << 40;
    cks_expect_error(cks_bootstrap_mean(&lo, &hi, v, 5, two, 2, &o), CKS_ELIMIT, "too many", NULL);
    /* nothing to resample, or a NaN: no interval */
    assert_int_equal(cks_bootstrap_mean(&lo, &hi, v, 0, NULL, 0, NULL), 0);
    assert_true(isnan(lo) && isnan(hi));
    v[2] = NAN;
    assert_int_equal(cks_bootstrap_mean(&lo, &hi, v, 5, two, 2, NULL), 0);
    assert_true(isnan(lo) && isnan(hi));
}

static void test_fstats__gsl_stream_is_numpys(void **state)
{
    /* GSL's mt19937 seeded 1 and numpy's RandomState(1): the premise of the references */
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 1);
    const json_t *s = ref("mt19937_seed1_first");
    for (size_t i = 0; i < json_array_size(s); i++)
        assert_true(gsl_rng_get(r) == (unsigned long)num(s, i));
    const json_t *u = ref("uniform_int");
    for (size_t c = 0; c < json_array_size(u); c++) {
        const json_t *cs = json_array_get(u, c), *d = json_object_get(cs, "draws");
        unsigned long n = (unsigned long)json_integer_value(json_object_get(cs, "n"));
        gsl_rng_set(r, (unsigned long)json_integer_value(json_object_get(cs, "seed")));
        for (size_t i = 0; i < json_array_size(d); i++)
            assert_true(gsl_rng_uniform_int(r, n) == (unsigned long)num(d, i));
    }
    gsl_rng_free(r);
}

static void test_fstats__choose_against_numpy(void **state)
{
    const json_t *cs = ref("choose");
    for (size_t c = 0; c < json_array_size(cs); c++) {
        const json_t *x = json_array_get(cs, c), *want = json_object_get(x, "pick");
        int64_t n = json_integer_value(json_object_get(x, "n"));
        int64_t k = json_integer_value(json_object_get(x, "k")), got;
        int64_t *pick = malloc((size_t)n * sizeof *pick);
        assert_int_equal(
            cks_memo_choose(pick, &got, n, k,
                            (unsigned long)json_integer_value(json_object_get(x, "seed"))),
            0);
        assert_int_equal(got, k);
        for (int64_t i = 0; i < k; i++)
            assert_int_equal(pick[i], num(want, (size_t)i));
        /* samples >= n (or none asked): all, in order */
        assert_int_equal(cks_memo_choose(pick, &got, n, n, 1), 0);
        assert_int_equal(got, n);
        assert_int_equal(pick[n - 1], n - 1);
        assert_int_equal(cks_memo_choose(pick, &got, n, 0, 1), 0);
        assert_int_equal(got, n);
        free(pick);
    }
    int64_t got;
    assert_int_equal(cks_memo_choose(NULL, &got, 0, 5, 1), 0);
    assert_int_equal(got, 0);
}

static void test_fstats__quantiles_against_numpy(void **state)
{
    const json_t *qs = ref("quantiles");
    for (size_t c = 0; c < json_array_size(qs); c++) {
        const json_t *x = json_object_get(json_array_get(qs, c), "x"),
                     *q = json_object_get(json_array_get(qs, c), "q"),
                     *w = json_object_get(json_array_get(qs, c), "want");
        size_t n = json_array_size(x);
        double *v = malloc(n * sizeof *v);
        for (size_t i = 0; i < n; i++)
            v[i] = num(x, i);
        for (size_t i = 0; i < json_array_size(q); i++)
            assert_close(cks_quantile_sorted(v, (int64_t)n, num(q, i)), num(w, i), 1e-15, 0);
        free(v);
    }
    assert_true(isnan(cks_quantile_sorted(NULL, 0, 0.5)));
}

/* Rows whose answers are known without a reference. */
static void test_fstats__special_rows(void **state)
{
    float a[4] = {1, 2, 2, 0}, b[4] = {1, 2, 2, 0}, nan4[4] = {0, NAN, 1, 2};
    float mi[4] = {-INFINITY, 0, 0, -INFINITY}, fl[4] = {0, 0, 0, 0}, pinf[4] = {0, INFINITY, 0, 0};
    cks_klrow r;
    cks_klpos p;
    /* equal rows: KL 0, ties to the lowest id, nll = lse - logit */
    cks_klrow_init(&r, 1);
    cks_klrow_update(&r, a, b, 0, 3);
    cks_klrow_update(&r, a + 3, b + 3, 3, 1);
    cks_klrow_finish(&r, 4, &p);
    double lse = log(exp(1.0) + 2 * exp(2.0) + 1);
    assert_true(p.kl == 0.0);
    assert_int_equal(p.arg_c, 1);
    assert_int_equal(p.arg_t, 1);
    assert_close(p.nll_c, lse - 2, 1e-15, 0);
    /* a tie across blocks keeps the first */
    cks_klrow_init(&r, 0);
    cks_klrow_update(&r, a, b, 0, 2);
    cks_klrow_update(&r, a + 2, b + 2, 2, 2);
    cks_klrow_finish(&r, 4, &p);
    assert_int_equal(p.arg_c, 1);
    /* KL of a flat row against one with mass 0 on two tokens: ln 4 - ln 2 = ln 2 ... and
       the reverse puts mass where the other has none: infinite */
    cks_klrow_init(&r, 1);
    cks_klrow_update(&r, mi, fl, 0, 4);
    cks_klrow_finish(&r, 4, &p);
    assert_close(p.kl, log(2.0), 1e-15, 0); /* P_c = (0, .5, .5, 0), P_t uniform */
    assert_int_equal(p.arg_c, 1);
    cks_klrow_init(&r, 0);
    cks_klrow_update(&r, fl, mi, 0, 4);
    cks_klrow_finish(&r, 4, &p);
    assert_true(isinf(p.kl) && p.kl > 0);
    assert_true(isinf(p.nll_t)); /* y = 0 has no mass under t */
    /* a first block of -inf only, then finite values */
    cks_klrow_init(&r, 2);
    cks_klrow_update(&r, mi, mi, 0, 1);
    cks_klrow_update(&r, mi + 1, mi + 1, 1, 3);
    cks_klrow_finish(&r, 4, &p);
    assert_true(p.kl == 0.0);
    assert_close(p.nll_c, log(2.0), 1e-15, 0);
    /* NaN or +inf logits: no numbers; the argmax skips NaN */
    cks_klrow_init(&r, 0);
    cks_klrow_update(&r, nan4, fl, 0, 4);
    cks_klrow_finish(&r, 4, &p);
    assert_true(isnan(p.kl) && isnan(p.nll_c) && isnan(p.nll_t));
    assert_int_equal(p.arg_c, 3);
    cks_klrow_init(&r, 0);
    cks_klrow_update(&r, fl, pinf, 0, 4);
    cks_klrow_finish(&r, 4, &p);
    assert_true(isnan(p.kl));
    /* a summary over a NaN position: KL statistics NaN, counts still counted */
    cks_klpos ps[2] = {{NAN, 1, 2, 0, 0, 0}, {0.5, 1, 1, 1, 0, 1}};
    int64_t docs[1] = {2};
    cks_klsummary s;
    assert_int_equal(cks_klsummary_compute(&s, ps, 2, docs, 1, NULL), 0);
    assert_true(isnan(s.kl) && isnan(s.kl_p50) && isnan(s.kl_max));
    /* position 0: both right; position 1: c right (y = 1), t wrong: forgotten */
    assert_true(s.top1_agree == 0.5 && s.forgot == 0.5 && s.learned == 0.0);
    assert_true(s.dnll == 0.5 && s.top1_acc == 0.5 && s.top1_acc_base == 1.0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fstats__exp_matches_libm),
        cmocka_unit_test(test_fstats__kl_rows_against_numpy),
        cmocka_unit_test(test_fstats__kept_base_equals_live),
        cmocka_unit_test(test_fstats__set_summary_against_numpy),
        cmocka_unit_test(test_fstats__bootstrap_against_numpy),
        cmocka_unit_test(test_fstats__bootstrap_edges),
        cmocka_unit_test(test_fstats__gsl_stream_is_numpys),
        cmocka_unit_test(test_fstats__choose_against_numpy),
        cmocka_unit_test(test_fstats__quantiles_against_numpy),
        cmocka_unit_test(test_fstats__special_rows),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
