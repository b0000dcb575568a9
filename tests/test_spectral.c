/* Spectral statistics (metrics/spectral.h, esd.h, powerlaw.h) against independent values:
 * - tests/data/spectral/expected.json, computed by tools/make_spectral_refs.py with numpy's
 *   float64 full SVD and the DESIGN §3 formulas written out in Python, for the matrices in
 *   tests/data/spectral/matrices.safetensors (known spectra and random ones);
 * - analytic facts (a diagonal matrix's eigenvalues, the rank of a product, three planted
 *   spikes above the Marchenko–Pastur edge, the exponent of a power-law spectrum);
 * - LAPACK's dgesdd (a direct SVD, not the Gram route) on fixture checkpoints in F32,
 *   BF16 and F16 read through the real loaders;
 * - a plain O(n²) power-law scan written here without the pruning of powerlaw.c. */
#include "testutil.h"

#include "error.h"
#include "esd.h"
#include "fixture.h"
#include "json.h"
#include "map.h"
#include "powerlaw.h"
#include "safetensors.h"
#include "source.h"
#include "spectral.h"
#include "weights.h"

#include <lapacke.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Tolerances. The issue asks top eigenvalues to 1e-4 and alpha to 1e-3 relative; the f64
 * Gram route agrees with numpy's SVD to 1e-13 on every reference statistic (measured), so
 * the checks are tighter to catch regressions, with room for other BLAS kernels: top λ
 * to float rounding, the fit to 1e-9, the other continuous statistics to 1e-10. Counts
 * are exact (the reference file records how far each is from flipping: ks_runner_up,
 * spike_margin). */
#define RTOL_TOP   1e-6
#define RTOL_FIT   1e-9
#define RTOL_STATS 1e-10
#define NTOP       16

static char *data_path(const char *rel)
{
    const char *src = getenv("CKS_SOURCE_DIR");
    char p[4096];
    snprintf(p, sizeof p, "%s/tests/data/spectral/%s", src ? src : ".", rel);
    return strdup(p);
}

static json_t *load_expected(void)
{
    char *path = data_path("expected.json"), *text = NULL;
    size_t len;
    json_t *doc = NULL;
    assert_int_equal(cks_read_file(path, 16u << 20, &text, &len), 0);
    assert_int_equal(cks_json_parse(text, len, path, 1, &doc), 0);
    free(text);
    free(path);
    return doc;
}

static double num(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    assert_non_null(v);
    return json_is_null(v) ? NAN : json_number_value(v);
}

/* Compares s with the "metrics" object of the reference. */
static void check_metrics(const cks_spectral *s, const json_t *want, double rtol_stats,
                          double rtol_fit)
{
    assert_close(s->sigma_max, num(want, "sigma_max"), rtol_stats, 0);
    assert_close(s->log_spectral_norm, num(want, "log_spectral_norm"), rtol_stats, 0);
    assert_close(s->log_norm, num(want, "log_norm"), rtol_stats, 0);
    assert_close(s->stable_rank, num(want, "stable_rank"), rtol_stats, 0);
    assert_close(s->entropy, num(want, "entropy"), rtol_stats, 0);
    assert_close(s->effective_rank, num(want, "effective_rank"), rtol_stats, 0);
    assert_close(s->alpha, num(want, "alpha"), rtol_fit, 0);
    assert_close(s->xmin, num(want, "xmin"), rtol_fit, 0);
    assert_close(s->ks, num(want, "ks"), rtol_fit, 0);
    assert_int_equal(s->tail, (int64_t)num(want, "tail"));
    assert_close(s->alpha_weighted, num(want, "alpha_weighted"), rtol_fit, 0);
    assert_int_equal(s->num_spikes, (int64_t)num(want, "num_spikes"));
    assert_close(s->mp_softrank, num(want, "mp_softrank"), rtol_stats, 0);
}

static double *lambdas(const json_t *c, int64_t *n)
{
    const json_t *a = json_object_get(c, "lambda");
    assert_true(json_is_array(a));
    *n = (int64_t)json_array_size(a);
    double *x = malloc((*n ? (size_t)*n : 1) * sizeof *x);
    for (int64_t i = 0; i < *n; i++)
        x[i] = json_number_value(json_array_get(a, (size_t)i));
    return x;
}

/* Analytic expectations recorded with each case. */
static void check_analytic(const json_t *c, const cks_spectral *s, const float *top)
{
    const json_t *an = json_object_get(c, "analytic");
    const json_t *v;
    if ((v = json_object_get(an, "alpha_approx")) != NULL) /* MLE error ~ (α-1)/√k */
        assert_close(s->alpha, json_number_value(v), 0, 0.1);
    if ((v = json_object_get(an, "num_spikes")) != NULL)
        assert_int_equal(s->num_spikes, json_integer_value(v));
    if ((v = json_object_get(an, "rank")) != NULL) {
        /* only the nonzero eigenvalues enter the fit and the effective rank */
        assert_true(s->tail <= json_integer_value(v));
        assert_true(s->effective_rank <= (double)json_integer_value(v));
    }
    if ((v = json_object_get(an, "lambda")) != NULL && top) {
        for (size_t i = 0; i < NTOP && i < json_array_size(v); i++)
            assert_close(top[i], json_number_value(json_array_get(v, i)), RTOL_TOP, 0);
    }
}

/* The committed reference matrices (tests/data/spectral/matrices.safetensors), mapped and
 * parsed; release the list, then free the map. */
static void open_matrices(cks_map **m, cks_tensor_list *tl)
{
    char *path = data_path("matrices.safetensors");
    *m = NULL;
    cks_tensor_list_init(tl);
    assert_int_equal(cks_map_file(m, path, NULL), 0);
    assert_int_equal(cks_safetensors_parse(*m, 0, tl), 0);
    free(path);
}

static void test_spectral__matches_numpy_on_reference_matrices(void **state)
{
    json_t *doc = load_expected();
    cks_map *m;
    cks_tensor_list tl;
    open_matrices(&m, &tl);
    const json_t *cases = json_object_get(doc, "matrices");
    assert_int_equal(json_array_size(cases), tl.count);
    for (size_t ci = 0; ci < json_array_size(cases); ci++) {
        const json_t *c = json_array_get(cases, ci);
        const char *name = json_string_value(json_object_get(c, "name"));
        long ti = cks_tensor_list_find(&tl, name);
        assert_true(ti >= 0);
        for (int threads = 1; threads <= 2; threads++) {
            cks_spectral s;
            float top[NTOP];
            assert_int_equal(cks_spectral_compute(&tl.items[ti], threads, NTOP, top, &s), 0);
            check_metrics(&s, json_object_get(c, "metrics"), RTOL_STATS, RTOL_FIT);
            const json_t *lam = json_object_get(c, "lambda");
            /* eigenvalues that are zero at working precision (rank12) agree to that */
            double atol = num(c, "rows") > num(c, "cols") ? num(c, "rows") : num(c, "cols");
            atol *= json_number_value(json_array_get(lam, 0)) * 0x1p-52;
            for (size_t i = 0; i < NTOP; i++) {
                if (i < json_array_size(lam))
                    assert_close(top[i], json_number_value(json_array_get(lam, i)), RTOL_TOP, atol);
                else
                    assert_true(isnan(top[i])); /* NaN-padded past min(m, n) */
            }
            check_analytic(c, &s, top);
        }
    }
    cks_tensor_list_release(&tl);
    cks_map_free(m);
    json_decref(doc);
}

/* Every eigenvalue, through every eigensolver (AUTO picks dsyevd_2stage only for sides of
 * 2048 and more, too slow for a unit test): |λ - λ_numpy| <= 1e-12·λ1. */
static void test_esd__both_solvers_match_numpy_eigenvalues(void **state)
{
    json_t *doc = load_expected();
    cks_map *m;
    cks_tensor_list tl;
    open_matrices(&m, &tl);
    const json_t *cases = json_object_get(doc, "matrices");
    for (size_t ci = 0; ci < json_array_size(cases); ci++) {
        const json_t *c = json_array_get(cases, ci);
        long ti = cks_tensor_list_find(&tl, json_string_value(json_object_get(c, "name")));
        assert_true(ti >= 0);
        int64_t n;
        double *want = lambdas(c, &n), fro2;
        double *got = malloc((size_t)n * sizeof *got);
        const cks_esd_solver solvers[] = {CKS_ESD_SYEVD, CKS_ESD_SYEVR, CKS_ESD_SYEVD_2STAGE};
        for (int k = 0; k < 3; k++) {
            assert_int_equal(cks_esd_compute_with(&tl.items[ti], 1, solvers[k], got, &fro2), 0);
            assert_close(fro2, num(c, "fro2"), 1e-13, 0);
            for (int64_t i = 0; i < n; i++) /* got ascending, want descending */
                assert_close(got[n - 1 - i], want[i], 0, 1e-12 * want[0]);
        }
        free(got);
        free(want);
    }
    assert_int_equal(cks_esd_pick(4096, 1), CKS_ESD_SYEVD_2STAGE);
    assert_int_equal(cks_esd_pick(1024, 1), CKS_ESD_SYEVD);
    assert_int_equal(cks_esd_pick(4096, 2), CKS_ESD_SYEVR);
    cks_tensor_list_release(&tl);
    cks_map_free(m);
    json_decref(doc);
}

/* From numpy's own eigenvalues the statistics must agree to rounding. */
static void test_spectral__from_eigs_matches_reference(void **state)
{
    json_t *doc = load_expected();
    const char *groups[] = {"matrices", "eigenvalue_cases"};
    for (int g = 0; g < 2; g++) {
        const json_t *cases = json_object_get(doc, groups[g]);
        assert_true(json_array_size(cases) > 0);
        for (size_t ci = 0; ci < json_array_size(cases); ci++) {
            const json_t *c = json_array_get(cases, ci);
            int64_t n;
            double *x = lambdas(c, &n);
            cks_spectral s;
            assert_int_equal(cks_spectral_from_eigs(x, n, (int64_t)num(c, "rows"),
                                                    (int64_t)num(c, "cols"), NAN, &s),
                             0);
            check_metrics(&s, json_object_get(c, "metrics"), 1e-11, 1e-9);
            check_analytic(c, &s, NULL);
            free(x);
        }
    }
    json_decref(doc);
}

/* Order of the input does not matter, nor does leaving out zeros. */
static void test_spectral__from_eigs_any_order_and_implicit_zeros(void **state)
{
    double asc[40], desc[40];
    for (int i = 0; i < 30; i++) {
        asc[i] = 0.01 * pow(1.0 + i, 1.7);
        desc[29 - i] = asc[i];
    }
    for (int i = 30; i < 40; i++)
        desc[i] = 0.0;
    cks_spectral a, b;
    assert_int_equal(cks_spectral_from_eigs(asc, 30, 40, 60, NAN, &a), 0);
    assert_int_equal(cks_spectral_from_eigs(desc, 40, 40, 60, NAN, &b), 0);
    assert_memory_equal(&a, &b, sizeof a);
    assert_int_equal(a.tail >= CKS_POWERLAW_MIN_TAIL, 1);
}

/* Σλ, λ1 and the MP edge by hand for a 3-value case. */
static void test_spectral__from_eigs_closed_forms(void **state)
{
    double l[3] = {4.0, 1.0, 1.0};
    cks_spectral s;
    assert_int_equal(cks_spectral_from_eigs(l, 3, 3, 12, NAN, &s), 0);
    assert_close(s.sigma_max, 2.0, 1e-15, 0);
    assert_close(s.log_spectral_norm, log10(4.0), 1e-15, 0);
    assert_close(s.log_norm, log10(6.0), 1e-15, 0);
    assert_close(s.stable_rank, 1.5, 1e-15, 0);
    double p[3] = {4.0 / 6, 1.0 / 6, 1.0 / 6}, h = 0;
    for (int i = 0; i < 3; i++)
        h -= p[i] * log(p[i]);
    assert_close(s.entropy, h / log(3.0), 1e-14, 0);
    /* σ = 2, 1, 1: q = 1/2, 1/4, 1/4 */
    assert_close(s.effective_rank, exp(-(0.5 * log(0.5) + 0.5 * log(0.25))), 1e-14, 0);
    assert_true(isnan(s.alpha) && isnan(s.xmin) && isnan(s.ks) && isnan(s.alpha_weighted));
    assert_int_equal(s.tail, 0);
    double lplus = 6.0 / 36.0 * pow(sqrt(3.0) + sqrt(12.0), 2); /* = 4.5 */
    assert_close(s.mp_softrank, lplus / 4.0, 1e-15, 0);
    assert_int_equal(s.num_spikes, 0);
    /* a caller-supplied ||W||_F² replaces Σλ */
    assert_int_equal(cks_spectral_from_eigs(l, 3, 3, 12, 12.0, &s), 0);
    assert_close(s.log_norm, log10(12.0), 1e-15, 0);
    assert_close(s.stable_rank, 3.0, 1e-15, 0);
}

static void test_spectral__rank_one_and_zero(void **state)
{
    double l[12] = {0};
    cks_spectral s;
    assert_int_equal(cks_spectral_from_eigs(l, 12, 12, 12, NAN, &s), 0);
    assert_true(s.sigma_max == 0.0 && s.num_spikes == 0 && s.tail == 0);
    assert_true(isnan(s.log_norm) && isnan(s.stable_rank) && isnan(s.entropy) &&
                isnan(s.effective_rank) && isnan(s.alpha) && isnan(s.mp_softrank));
    l[5] = 9.0;
    l[6] = -1e-30; /* rounding noise below the tolerance counts as zero */
    assert_int_equal(cks_spectral_from_eigs(l, 12, 12, 12, NAN, &s), 0);
    assert_close(s.sigma_max, 3.0, 1e-15, 0);
    assert_close(s.effective_rank, 1.0, 1e-15, 0);
    assert_true(isnan(s.entropy)); /* ln R = 0: undefined */
    assert_true(isnan(s.alpha));   /* one nonzero value: no tail of 10 */
    assert_int_equal(s.num_spikes, 1);
}

static void test_spectral__from_eigs_rejects_bad_input(void **state)
{
    double l[4] = {1.0, 2.0, NAN, 3.0};
    cks_spectral s;
    assert_int_equal(cks_spectral_from_eigs(l, 4, 4, 4, NAN, &s), CKS_EINVAL);
    assert_non_null(strstr(cks_error_last(), "eigenvalue 2"));
    l[2] = INFINITY;
    assert_int_equal(cks_spectral_from_eigs(l, 4, 4, 4, NAN, &s), CKS_EINVAL);
    l[2] = -0.5;
    assert_int_equal(cks_spectral_from_eigs(l, 4, 4, 4, NAN, &s), CKS_EINVAL);
    assert_non_null(strstr(cks_error_last(), "negative"));
    l[2] = 0.5;
    assert_int_equal(cks_spectral_from_eigs(l, 4, 3, 8, NAN, &s), CKS_EINVAL);
    assert_non_null(strstr(cks_error_last(), "at most min(rows, cols)"));
    assert_int_equal(cks_spectral_from_eigs(l, 4, 0, 8, NAN, &s), CKS_EINVAL);
    assert_int_equal(cks_spectral_from_eigs(l, -1, 4, 8, NAN, &s), CKS_EINVAL);
}

/* A view over caller memory (test only). */
static cks_tensor view(const char *name, cks_dtype dt, int ndim, int64_t r, int64_t c,
                       const void *data)
{
    cks_tensor t = {.name = name, .dtype = dt, .ndim = ndim, .data = data, .layer = -1};
    t.shape[0] = r;
    t.shape[1] = c;
    t.numel = ndim == 1 ? r : r * c;
    t.nbytes = (size_t)t.numel * cks_dtype_size(dt);
    return t;
}

static void test_spectral__compute_rejects_non_matrices(void **state)
{
    float x[16] = {1};
    int32_t ints[16] = {1};
    cks_spectral s;
    cks_tensor t = view("model.norm.weight", CKS_DT_F32, 1, 16, 0, x);
    assert_int_equal(cks_spectral_compute(&t, 1, 0, NULL, &s), CKS_EUNSUPPORTED);
    assert_non_null(strstr(cks_error_last(), "model.norm.weight"));
    t = view("ids", CKS_DT_I32, 2, 4, 4, ints);
    assert_int_equal(cks_spectral_compute(&t, 1, 0, NULL, &s), CKS_EUNSUPPORTED);
    t = view("w", CKS_DT_F32, 2, 4, 4, x);
    assert_int_equal(cks_spectral_compute(&t, 1, -1, NULL, &s), CKS_EINVAL);
    /* over the limit: refused before the data is touched (this view has none) */
    t = view("huge", CKS_DT_BF16, 2, CKS_SPECTRAL_MAX_SIDE + 1, CKS_SPECTRAL_MAX_SIDE + 1, NULL);
    assert_int_equal(cks_spectral_compute(&t, 1, 0, NULL, &s), CKS_ELIMIT);
    assert_non_null(strstr(cks_error_last(), "huge"));
    assert_non_null(strstr(cks_error_last(), "at most 16384"));
}

static void test_spectral__nonfinite_matrix_gives_nan(void **state)
{
    float w[24 * 12];
    for (int i = 0; i < 24 * 12; i++)
        w[i] = (float)sin(0.37 * i + 1.0);
    const float bad[3] = {NAN, INFINITY, -INFINITY};
    for (int b = 0; b < 3; b++) {
        for (int tall = 0; tall < 2; tall++) {
            w[17] = bad[b];
            cks_tensor t = view("w", CKS_DT_F32, 2, tall ? 24 : 12, tall ? 12 : 24, w);
            cks_spectral s;
            float top[4];
            assert_int_equal(cks_spectral_compute(&t, 1, 4, top, &s), 0);
            assert_true(isnan(s.sigma_max) && isnan(s.alpha) && isnan(s.entropy) &&
                        isnan(s.mp_softrank));
            assert_int_equal(s.tail, 0);
            assert_int_equal(s.num_spikes, 0);
            for (int i = 0; i < 4; i++)
                assert_true(isnan(top[i]));
        }
    }
}

static void test_spectral__zero_matrix(void **state)
{
    uint16_t w[20 * 30] = {0};
    cks_tensor t = view("zero", CKS_DT_BF16, 2, 20, 30, w);
    cks_spectral s;
    float top[2];
    assert_int_equal(cks_spectral_compute(&t, 1, 2, top, &s), 0);
    assert_true(s.sigma_max == 0.0 && s.num_spikes == 0 && s.tail == 0);
    assert_true(isnan(s.log_norm) && isnan(s.alpha) && isnan(s.stable_rank));
    assert_true(top[0] == 0.0f && top[1] == 0.0f);
}

/* W and Wᵀ have the same spectrum: both Gram orientations, and blocks of 256 crossed. */
static void test_spectral__transpose_gives_same_statistics(void **state)
{
    int64_t m = 600, n = 40;
    double *w = malloc((size_t)(m * n) * sizeof *w), *wt = malloc((size_t)(m * n) * sizeof *wt);
    uint64_t st = 12345;
    for (int64_t i = 0; i < m * n; i++) {
        st = st * 6364136223846793005ull + 1442695040888963407ull;
        w[i] = ((double)(st >> 11) / 9007199254740992.0 - 0.5) * (1.0 + (double)(i % n) / 10);
    }
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++)
            wt[j * m + i] = w[i * n + j];
    cks_tensor a = view("w", CKS_DT_F64, 2, m, n, w), b = view("wt", CKS_DT_F64, 2, n, m, wt);
    cks_spectral sa, sb;
    float ta[NTOP], tb[NTOP];
    assert_int_equal(cks_spectral_compute(&a, 2, NTOP, ta, &sa), 0);
    assert_int_equal(cks_spectral_compute(&b, 1, NTOP, tb, &sb), 0);
    size_t nm;
    cks_spectral_metrics(&nm);
    for (size_t i = 0; i < nm; i++)
        assert_close(cks_spectral_value(&sb, i), cks_spectral_value(&sa, i), 1e-11, 0);
    for (int i = 0; i < NTOP; i++)
        assert_close(tb[i], ta[i], 1e-6, 0);
    free(w);
    free(wt);
}

/* Reference for one fixture tensor: LAPACK dgesdd on the stored values in f64. */
static void svd_reference(const cks_fx_spec *spec, const cks_tensor *t, cks_spectral *ref,
                          double *lam)
{
    int64_t m = t->shape[0], n = t->shape[1], p = m < n ? m : n;
    double *v = malloc((size_t)t->numel * sizeof *v), fro2 = 0, dummy[1];
    cks_fx_tensor_values(spec, t->name, t->numel, 0, v);
    for (int64_t i = 0; i < t->numel; i++)
        fro2 += v[i] * v[i];
    /* row-major m×n is column-major n×m: the transpose, same singular values */
    assert_int_equal(LAPACKE_dgesdd(LAPACK_COL_MAJOR, 'N', (lapack_int)n, (lapack_int)m, v,
                                    (lapack_int)n, lam, dummy, 1, dummy, 1),
                     0);
    for (int64_t i = 0; i < p; i++)
        lam[i] *= lam[i];
    assert_int_equal(cks_spectral_from_eigs(lam, p, m, n, fro2, ref), 0);
    free(v);
}

static void fixture_dtype(cks_dtype dt)
{
    char *dir = cks_tmpdir_new("spectral");
    char src[4096];
    snprintf(src, sizeof src, "%s/run", dir);
    cks_fx_spec spec;
    cks_fx_spec_default(&spec, src);
    spec.layout = CKS_FX_FOLDER;
    spec.nckpt = 1;
    spec.model.dtype = dt;
    assert_int_equal(cks_fx_write(&spec), 0);
    cks_source *s = NULL;
    cks_ckpt *c = NULL;
    cks_weights *w = NULL;
    assert_int_equal(cks_source_open(&s, src, NULL), 0);
    assert_int_equal(cks_ckpt_open(&c, s, 0), 0);
    assert_int_equal(cks_weights_open(&w, c), 0);
    const cks_tensor_list *tl = cks_weights_tensors(w);
    int matrices = 0;
    for (size_t i = 0; i < tl->count; i++) {
        const cks_tensor *t = &tl->items[i];
        cks_spectral got, ref;
        if (!cks_tensor_is_matrix(t)) {
            assert_int_equal(cks_spectral_compute(t, 1, 0, NULL, &got), CKS_EUNSUPPORTED);
            continue;
        }
        assert_int_equal(t->dtype, dt);
        int64_t p = t->shape[0] < t->shape[1] ? t->shape[0] : t->shape[1];
        double *lam = malloc((size_t)p * sizeof *lam);
        float top[NTOP];
        svd_reference(&spec, t, &ref, lam);
        assert_int_equal(cks_spectral_compute(t, 2, NTOP, top, &got), 0);
        size_t nm;
        cks_spectral_metrics(&nm);
        for (size_t k = 0; k < nm; k++)
            assert_close(cks_spectral_value(&got, k), cks_spectral_value(&ref, k), 1e-8, 0);
        for (int k = 0; k < NTOP; k++)
            assert_close(top[k], lam[k], RTOL_TOP, 0);
        assert_false(isnan(got.alpha)); /* every fixture matrix has min side >= 64 */
        free(lam);
        matrices++;
    }
    assert_true(matrices >= 9); /* embed, 7 per layer x 2, lm_head */
    cks_weights_free(w);
    cks_ckpt_free(c);
    cks_source_free(s);
    cks_tmpdir_remove(dir);
}

static void test_spectral__fixture_f32(void **state)
{
    fixture_dtype(CKS_DT_F32);
}
static void test_spectral__fixture_bf16(void **state)
{
    fixture_dtype(CKS_DT_BF16);
}
static void test_spectral__fixture_f16(void **state)
{
    fixture_dtype(CKS_DT_F16);
}

static void test_spectral__metric_table(void **state)
{
    static const char *want[] = {"sigma_max",
                                 "log_spectral_norm",
                                 "log_norm",
                                 "stable_rank",
                                 "entropy",
                                 "effective_rank",
                                 "alpha",
                                 "xmin",
                                 "ks",
                                 "tail",
                                 "alpha_weighted",
                                 "num_spikes",
                                 "mp_softrank"};
    size_t n;
    const cks_metric_info *m = cks_spectral_metrics(&n);
    assert_int_equal(n, sizeof want / sizeof want[0]);
    cks_spectral s = {1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 13, 10, 12};
    double vals[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13};
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(m[i].name, want[i]);
        assert_true(m[i].description && *m[i].description && m[i].unit);
        assert_close(cks_spectral_value(&s, i), vals[i], 0, 0);
    }
    s.tail = 0;
    assert_true(isnan(cks_spectral_value(&s, 9)));
    assert_true(isnan(cks_spectral_value(&s, n)));
}

/* ---- power-law fit ---- */

/* DESIGN §3 in the plainest form: no suffix sums, no pruning, pow() not exp(). */
static void naive_fit(const double *x, int64_t n, cks_powerlaw *out)
{
    *out = (cks_powerlaw){NAN, NAN, NAN, 0};
    double bestd = INFINITY;
    for (int64_t i = 0; i + CKS_POWERLAW_MIN_TAIL <= n; i++) {
        if (i && x[i] == x[i - 1])
            continue;
        int64_t k = n - i;
        double s = 0;
        for (int64_t j = i; j < n; j++)
            s += log(x[j] / x[i]);
        if (!(s > 0))
            continue;
        double alpha = 1 + (double)k / s, d = 0;
        for (int64_t j = 0; j < k; j++) {
            double f = 1 - pow(x[i + j] / x[i], 1 - alpha);
            d = fmax(d,
                     fmax(fabs((double)(j + 1) / (double)k - f), fabs((double)j / (double)k - f)));
        }
        if (d < bestd) {
            bestd = d;
            *out = (cks_powerlaw){alpha, x[i], d, k};
        }
    }
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void test_powerlaw__pruned_scan_equals_plain_scan(void **state)
{
    uint64_t st = 99;
    for (int trial = 0; trial < 12; trial++) {
        int64_t n = 20 + trial * 173; /* up to ~1.9k: crosses the threaded path */
        double *x = malloc((size_t)n * sizeof *x);
        for (int64_t i = 0; i < n; i++) {
            st = st * 6364136223846793005ull + 1442695040888963407ull;
            double u = ((double)(st >> 11) + 0.5) / 9007199254740992.0;
            /* a bulk (uniform) plus a Pareto tail; some exact repeats */
            x[i] = i % 3 ? 0.5 + u : pow(u, -1.0 / (1.0 + trial * 0.3));
            if (i % 17 == 0)
                x[i] = 1.0;
        }
        qsort(x, (size_t)n, sizeof *x, cmp_d);
        cks_powerlaw want, got;
        naive_fit(x, n, &want);
        for (int threads = 1; threads <= 3; threads++) {
            assert_int_equal(cks_powerlaw_fit(x, n, threads, &got), 0);
            assert_int_equal(got.tail, want.tail);
            assert_close(got.xmin, want.xmin, 0, 0);
            assert_close(got.alpha, want.alpha, 1e-12, 0);
            assert_close(got.ks, want.ks, 1e-12, 1e-15);
        }
        free(x);
    }
}

/* Repeated values are one candidate; a tail of one repeated value has no MLE. */
static void test_powerlaw__repeated_values(void **state)
{
    double x[30];
    for (int i = 0; i < 30; i++)
        x[i] = i < 10 ? 1.0 : i < 20 ? 2.0 : 4.0;
    cks_powerlaw got, want;
    assert_int_equal(cks_powerlaw_fit(x, 30, 1, &got), 0);
    naive_fit(x, 30, &want);
    assert_close(got.xmin, want.xmin, 0, 0);
    assert_int_equal(got.tail, want.tail);
    /* xmin = 4 has a constant tail (no MLE); 2 and 1 remain */
    assert_true(got.xmin == 1.0 || got.xmin == 2.0);
}

static void test_powerlaw__rejects_unsorted_or_nonpositive(void **state)
{
    double x[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    cks_powerlaw r;
    cks_powerlaw want;
    naive_fit(x, 12, &want);
    assert_int_equal(cks_powerlaw_fit(x, 12, 1, &r), 0);
    assert_int_equal(r.tail, want.tail); /* the only candidates: xmin = 1, 2, 3 */
    assert_close(r.alpha, want.alpha, 1e-14, 0);
    x[5] = 0.5;
    assert_int_equal(cks_powerlaw_fit(x, 12, 1, &r), CKS_EINVAL);
    x[5] = 6;
    x[0] = 0;
    assert_int_equal(cks_powerlaw_fit(x, 12, 1, &r), CKS_EINVAL);
    x[0] = 1;
    assert_int_equal(cks_powerlaw_fit(x, 9, 1, &r), 0); /* fewer than 10: no fit */
    assert_true(isnan(r.alpha) && r.tail == 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spectral__matches_numpy_on_reference_matrices),
        cmocka_unit_test(test_esd__both_solvers_match_numpy_eigenvalues),
        cmocka_unit_test(test_spectral__from_eigs_matches_reference),
        cmocka_unit_test(test_spectral__from_eigs_any_order_and_implicit_zeros),
        cmocka_unit_test(test_spectral__from_eigs_closed_forms),
        cmocka_unit_test(test_spectral__rank_one_and_zero),
        cmocka_unit_test(test_spectral__from_eigs_rejects_bad_input),
        cmocka_unit_test(test_spectral__compute_rejects_non_matrices),
        cmocka_unit_test(test_spectral__nonfinite_matrix_gives_nan),
        cmocka_unit_test(test_spectral__zero_matrix),
        cmocka_unit_test(test_spectral__transpose_gives_same_statistics),
        cmocka_unit_test(test_spectral__fixture_f32),
        cmocka_unit_test(test_spectral__fixture_bf16),
        cmocka_unit_test(test_spectral__fixture_f16),
        cmocka_unit_test(test_spectral__metric_table),
        cmocka_unit_test(test_powerlaw__pruned_scan_equals_plain_scan),
        cmocka_unit_test(test_powerlaw__repeated_values),
        cmocka_unit_test(test_powerlaw__rejects_unsorted_or_nonpositive),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
