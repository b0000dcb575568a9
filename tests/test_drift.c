/* Drift between tensor views (metrics/drift.h), checked against analytic cases, the
 * fixture generator's straight line W_k = W_0 + t_k D (DESIGN's closed form: the distance
 * to checkpoint 0 grows linearly in t_k), and a plain long-double loop written here from
 * the DESIGN §3 definitions. numpy checks on fixture files are in tests/cli/test_scan.py. */
#include "drift.h"
#include "error.h"
#include "fixture.h"
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static cks_tensor view(const char *name, cks_dtype dt, const void *data, int64_t rows, int64_t cols)
{
    cks_tensor t;
    memset(&t, 0, sizeof t);
    t.name = name;
    t.dtype = dt;
    t.ndim = cols ? 2 : 1;
    t.shape[0] = rows;
    t.shape[1] = cols;
    t.numel = rows * (cols ? cols : 1);
    t.data = data;
    t.nbytes = (size_t)t.numel * cks_dtype_size(dt);
    t.layer = -1;
    t.kind = CKS_KIND_OTHER;
    return t;
}

/* The definitions of DESIGN §3 in long double, one element at a time. */
static void reference(const double *a, const double *b, int64_t n, cks_drift *out)
{
    long double dd = 0, aa = 0, bb = 0, ab = 0, mx = 0;
    for (int64_t i = 0; i < n; i++) {
        long double d = (long double)a[i] - b[i];
        dd += d * d;
        aa += (long double)a[i] * a[i];
        bb += (long double)b[i] * b[i];
        ab += (long double)a[i] * b[i];
        if (fabsl(d) > mx)
            mx = fabsl(d);
    }
    out->rel_fro = (double)(sqrtl(dd) / sqrtl(bb));
    out->cos = (double)(ab / (sqrtl(aa) * sqrtl(bb)));
    out->absmax_delta = (double)mx;
}

static void test_drift__identical_is_zero(void **state)
{
    float a[100];
    for (int i = 0; i < 100; i++)
        a[i] = (float)sin(i * 0.37) * 0.02f;
    float b[100];
    memcpy(b, a, sizeof a);
    cks_tensor ta = view("w", CKS_DT_F32, a, 10, 10), tb = view("w", CKS_DT_F32, b, 10, 10);
    cks_drift d;
    assert_int_equal(cks_drift_compute(&ta, 300, &tb, 300, 1, &d), 0);
    /* exact: identical inputs give exactly 0 distance and cosine 1 */
    assert_true(d.rel_fro == 0.0);
    assert_true(d.cos == 1.0);
    assert_true(d.absmax_delta == 0.0);
    assert_true(isnan(d.rel_fro_per_kstep)); /* equal steps */
    assert_int_equal(cks_drift_compute(&ta, 300, &tb, 100, 1, &d), 0);
    assert_true(d.rel_fro_per_kstep == 0.0);
}

static void test_drift__analytic_shift(void **state)
{
    /* W_r = 1, W_t = 1.5 everywhere: ||W_t - W_r|| / ||W_r|| = 0.5 sqrt(n) / sqrt(n) */
    float r[1000], t[1000];
    for (int i = 0; i < 1000; i++) {
        r[i] = 1.0f;
        t[i] = 1.5f;
    }
    cks_tensor tt = view("w", CKS_DT_F32, t, 1000, 0), tr = view("w", CKS_DT_F32, r, 1000, 0);
    cks_drift d;
    assert_int_equal(cks_drift_compute(&tt, 300, &tr, 100, 2, &d), 0);
    assert_close(d.rel_fro, 0.5, 1e-15, 0);
    assert_close(d.cos, 1.0, 1e-15, 0);
    assert_close(d.absmax_delta, 0.5, 0, 0);
    assert_close(d.rel_fro_per_kstep, 0.5 * 1000 / 200, 1e-15, 0); /* 2.5 per 1000 steps */
    /* the formula as DESIGN writes it: negative when the reference is the later one */
    assert_int_equal(cks_drift_compute(&tt, 100, &tr, 300, 2, &d), 0);
    assert_close(d.rel_fro_per_kstep, -2.5, 1e-15, 0);
}

static void test_drift__orthogonal_and_opposite(void **state)
{
    float a[64], b[64], c[64];
    for (int i = 0; i < 64; i++) {
        a[i] = i % 2 ? 0.0f : 3.0f;
        b[i] = i % 2 ? 3.0f : 0.0f; /* orthogonal to a, same norm */
        c[i] = -a[i];
    }
    cks_tensor ta = view("w", CKS_DT_F32, a, 8, 8), tb = view("w", CKS_DT_F32, b, 8, 8);
    cks_tensor tc = view("w", CKS_DT_F32, c, 8, 8);
    cks_drift d;
    assert_int_equal(cks_drift_compute(&tb, 1, &ta, 0, 1, &d), 0);
    assert_close(d.cos, 0.0, 0, 1e-15);
    assert_close(d.rel_fro, sqrt(2.0), 1e-15, 0); /* ||b - a||^2 = ||a||^2 + ||b||^2 */
    assert_close(d.absmax_delta, 3.0, 0, 0);
    assert_int_equal(cks_drift_compute(&tc, 1, &ta, 0, 1, &d), 0);
    assert_close(d.cos, -1.0, 1e-15, 0);
    assert_close(d.rel_fro, 2.0, 1e-15, 0);
    assert_close(d.absmax_delta, 6.0, 0, 0);
}

/* The fixture's checkpoints lie on a line, W_k = W_0 + t_k D with t_k = step_k / 1000, so
 * against checkpoint 0: rel_fro(k) = t_k ||D|| / ||W_0||, i.e. rel_fro(2) = 2 rel_fro(1)
 * and rel_fro_per_kstep is the same constant ||D|| / ||W_0|| for every k. */
static void straight_line(cks_dtype dt, double rtol)
{
    cks_fx_spec spec;
    cks_fx_spec_default(&spec, NULL);
    spec.model.dtype = dt;
    cks_fx_tensor ts[64];
    int nt = cks_fx_tensors(&spec.model, ts, 64);
    size_t es = cks_dtype_size(dt);
    for (int i = 0; i < nt; i++) {
        int64_t n = ts[i].shape[0] * (ts[i].ndim == 2 ? ts[i].shape[1] : 1);
        double *v[3];
        unsigned char *raw[3];
        cks_tensor tv[3];
        for (int k = 0; k < 3; k++) {
            v[k] = malloc((size_t)n * sizeof(double));
            raw[k] = malloc((size_t)n * es);
            cks_fx_tensor_values(&spec, ts[i].name, n, k, v[k]);
            for (int64_t j = 0; j < n; j++) { /* values are exactly representable in dt */
                if (dt == CKS_DT_F64) {
                    memcpy(raw[k] + 8 * j, &v[k][j], 8);
                } else if (dt == CKS_DT_F32) {
                    float f = (float)v[k][j];
                    memcpy(raw[k] + 4 * j, &f, 4);
                } else {
                    uint16_t h = dt == CKS_DT_BF16 ? cks_f32_to_bf16((float)v[k][j])
                                                   : cks_f32_to_f16((float)v[k][j]);
                    memcpy(raw[k] + 2 * j, &h, 2);
                }
            }
            tv[k] =
                view(ts[i].name, dt, raw[k], ts[i].shape[0], ts[i].ndim == 2 ? ts[i].shape[1] : 0);
        }
        cks_drift d1, d2, ref;
        assert_int_equal(cks_drift_compute(&tv[1], 100, &tv[0], 0, 2, &d1), 0);
        assert_int_equal(cks_drift_compute(&tv[2], 200, &tv[0], 0, 2, &d2), 0);
        /* closed form, up to the rounding of the stored values to dt */
        assert_close(d2.rel_fro, 2 * d1.rel_fro, rtol, 0);
        assert_close(d2.rel_fro_per_kstep, d1.rel_fro_per_kstep, rtol, 0);
        /* and the definitions, element by element, on the very same stored values */
        reference(v[2], v[0], n, &ref);
        assert_close(d2.rel_fro, ref.rel_fro, 1e-12, 0);
        assert_close(d2.cos, ref.cos, 1e-12, 0);
        assert_close(d2.absmax_delta, ref.absmax_delta, 1e-12, 0);
        for (int k = 0; k < 3; k++) {
            free(v[k]);
            free(raw[k]);
        }
    }
}

static void test_drift__fixture_line_f64(void **state)
{
    straight_line(CKS_DT_F64, 1e-12);
}

static void test_drift__fixture_line_f32(void **state)
{
    /* f32 rounding of W_k (2^-24 of |W| ~ 1 for norm weights, whose steps are ~1e-3)
     * leaves ~1e-5 of noise on the ratio; bf16/f16 round more than a step moves, so
     * their straight line is not a line: see test_drift__mixed_dtypes for those */
    straight_line(CKS_DT_F32, 1e-4);
}

static void test_drift__mixed_dtypes(void **state)
{
    enum { N = 5000 };
    float a32[N];
    uint16_t b16[N], h16[N];
    double a[N], b[N], h[N];
    for (int i = 0; i < N; i++) {
        a32[i] = (float)(0.02 * cos(i * 0.11));
        b16[i] = cks_f32_to_bf16(a32[i] * 1.01f + 0.001f);
        h16[i] = cks_f32_to_f16(a32[i] * 0.99f);
        a[i] = a32[i];
        b[i] = cks_bf16_to_f32(b16[i]);
        h[i] = cks_f16_to_f32(h16[i]);
    }
    cks_tensor ta = view("w", CKS_DT_F32, a32, 50, 100), tb = view("w", CKS_DT_BF16, b16, 50, 100);
    cks_tensor th = view("w", CKS_DT_F16, h16, 50, 100);
    cks_drift d, ref;
    assert_int_equal(cks_drift_compute(&ta, 1, &tb, 0, 1, &d), 0);
    reference(a, b, N, &ref);
    assert_close(d.rel_fro, ref.rel_fro, 1e-12, 0);
    assert_close(d.cos, ref.cos, 1e-12, 0);
    assert_close(d.absmax_delta, ref.absmax_delta, 1e-15, 0);
    assert_int_equal(cks_drift_compute(&th, 1, &ta, 0, 1, &d), 0);
    reference(h, a, N, &ref);
    assert_close(d.rel_fro, ref.rel_fro, 1e-12, 0);
    assert_close(d.cos, ref.cos, 1e-12, 0);
}

static void test_drift__f64_keeps_small_differences(void **state)
{
    /* 1e-12 relative changes vanish in f32; with an F64 side the sums stay in f64 */
    double a[256], b[256];
    for (int i = 0; i < 256; i++) {
        b[i] = 1.0 + i * 1e-3;
        a[i] = b[i] * (1.0 + 1e-12);
    }
    cks_tensor ta = view("w", CKS_DT_F64, a, 16, 16), tb = view("w", CKS_DT_F64, b, 16, 16);
    cks_drift d;
    assert_int_equal(cks_drift_compute(&ta, 1, &tb, 0, 1, &d), 0);
    assert_close(d.rel_fro, 1e-12, 1e-3, 0);
}

static void test_drift__threads_deterministic(void **state)
{
    /* 3.5 chunks of 2^20: several threads, a partial last chunk, and an unaligned view */
    int64_t n = (int64_t)7 << 19;
    float *a = malloc((size_t)n * 4 + 4), *b = malloc((size_t)n * 4);
    double *da = malloc((size_t)n * 8), *db = malloc((size_t)n * 8);
    uint64_t x = 88172645463325252ull;
    for (int64_t i = 0; i < n; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        b[i] = (float)((double)(x >> 11) / 9007199254740992.0 - 0.5);
        a[i] = b[i] + (float)(1e-3 * sin((double)i));
        da[i] = a[i];
        db[i] = b[i];
    }
    cks_tensor ta = view("w", CKS_DT_F32, a, n / 512, 512),
               tb = view("w", CKS_DT_F32, b, n / 512, 512);
    cks_drift d1, d2, d3, du, ref;
    assert_int_equal(cks_drift_compute(&ta, 1, &tb, 0, 1, &d1), 0);
    assert_int_equal(cks_drift_compute(&ta, 1, &tb, 0, 2, &d2), 0);
    assert_int_equal(cks_drift_compute(&ta, 1, &tb, 0, 3, &d3), 0);
    assert_memory_equal(&d1, &d2, sizeof d1); /* bit for bit, whatever the thread count */
    assert_memory_equal(&d1, &d3, sizeof d1);
    reference(da, db, n, &ref);
    assert_close(d1.rel_fro, ref.rel_fro, 1e-12, 0);
    assert_close(d1.cos, ref.cos, 1e-12, 0);
    assert_close(d1.absmax_delta, ref.absmax_delta, 0, 0);
    /* the same values at an address that is not 4-byte aligned take the widening path */
    unsigned char *un = (unsigned char *)malloc((size_t)n * 4 + 2);
    memcpy(un + 2, a, (size_t)n * 4);
    cks_tensor tu = view("w", CKS_DT_F32, un + 2, n / 512, 512);
    assert_int_equal(cks_drift_compute(&tu, 1, &tb, 0, 2, &du), 0);
    assert_memory_equal(&d1, &du, sizeof d1);
    free(un);
    free(a);
    free(b);
    free(da);
    free(db);
}

static void test_drift__rejects_mismatch(void **state)
{
    float a[32] = {0}, b[32] = {0};
    int32_t ints[32] = {0};
    cks_tensor ta = view("model.x.weight", CKS_DT_F32, a, 4, 8);
    cks_tensor tb = view("model.x.weight", CKS_DT_F32, b, 8, 4);
    cks_tensor tc = view("model.x.weight", CKS_DT_F32, b, 32, 0);
    cks_tensor ti = view("model.x.weight", CKS_DT_I32, ints, 4, 8);
    cks_drift d;
    assert_int_equal(cks_drift_compute(&ta, 1, &tb, 0, 1, &d), CKS_EFORMAT);
    assert_non_null(strstr(cks_error_last(), "model.x.weight"));
    assert_non_null(strstr(cks_error_last(), "4x8"));
    assert_non_null(strstr(cks_error_last(), "8x4"));
    assert_int_equal(cks_drift_compute(&ta, 1, &tc, 0, 1, &d), CKS_EFORMAT);
    assert_int_equal(cks_drift_compute(&ti, 1, &ta, 0, 1, &d), CKS_EUNSUPPORTED);
    assert_non_null(strstr(cks_error_last(), "I32"));
}

static void test_drift__undefined_is_nan(void **state)
{
    float a[16], z[16] = {0}, bad[16];
    for (int i = 0; i < 16; i++)
        a[i] = bad[i] = 1.0f + (float)i;
    bad[7] = NAN;
    cks_tensor ta = view("w", CKS_DT_F32, a, 16, 0), tz = view("w", CKS_DT_F32, z, 16, 0);
    cks_tensor tb = view("w", CKS_DT_F32, bad, 16, 0);
    cks_drift d;
    assert_int_equal(cks_drift_compute(&ta, 1, &tz, 0, 1, &d), 0);
    assert_true(isnan(d.rel_fro) && isnan(d.cos)); /* ||W_r|| = 0: no relative change */
    assert_close(d.absmax_delta, 16.0, 0, 0);
    assert_int_equal(cks_drift_compute(&ta, 1, &tb, 0, 1, &d), 0);
    assert_true(isnan(d.rel_fro) && isnan(d.cos) && isnan(d.absmax_delta));
    bad[7] = INFINITY;
    assert_int_equal(cks_drift_compute(&tb, 1, &ta, 0, 1, &d), 0);
    assert_true(isnan(d.rel_fro) && isnan(d.cos) && isnan(d.absmax_delta));
}

/* BF16 tensors holding finite values above 2^64, whose squares overflow f32: the 16-bit
 * kernel's f32 partials overflow and that block (the first of two whole blocks of 2048
 * pairs) is summed again in f64, so the drift is finite and matches the long-double
 * reference on the exact widened values; a NaN element still makes it NaN. */
static void test_drift__huge_finite_bf16(void **state)
{
    enum { N = 5000 };
    static uint16_t xa[N], xb[N];
    static double a[N], b[N];
    for (int i = 0; i < N; i++) {
        float va = i == 300 ? 3e30f : (float)(i % 7) * 0.125f;
        float vb = i == 300 ? 1e30f : i == 600 ? -2e25f : (float)(i % 5) * 0.25f;
        xa[i] = cks_f32_to_bf16(va);
        xb[i] = cks_f32_to_bf16(vb);
        a[i] = cks_bf16_to_f32(xa[i]);
        b[i] = cks_bf16_to_f32(xb[i]);
    }
    cks_tensor ta = view("w", CKS_DT_BF16, xa, N, 0), tb = view("w", CKS_DT_BF16, xb, N, 0);
    cks_drift d, want;
    assert_int_equal(cks_drift_compute(&ta, 1, &tb, 0, 1, &d), 0);
    reference(a, b, N, &want);
    assert_true(isfinite(d.rel_fro) && isfinite(d.cos));
    assert_close(d.rel_fro, want.rel_fro, 1e-12, 0);
    assert_close(d.cos, want.cos, 1e-12, 0);
    assert_close(d.absmax_delta, want.absmax_delta, 0, 0);
    xa[2700] = 0x7fc0; /* a NaN in the second block */
    assert_int_equal(cks_drift_compute(&ta, 1, &tb, 0, 1, &d), 0);
    assert_true(isnan(d.rel_fro) && isnan(d.cos));
}

/* Two tensors in the same 16-bit dtype take the fused kernel (blocks of 2048 pairs, f32
 * partial sums of 8 products per lane, each within 8 * 2^-24 of the sum of its terms'
 * magnitudes): random values with F16 subnormals and values near F16's largest, against
 * the long-double reference on the exact widened values. An F16 Inf or NaN in either
 * tensor, which the fused F16 load turns into a finite number, makes the drift NaN. */
static void test_drift__same_half_dtype_pairs(void **state)
{
    enum { N = 3 * 2048 + 77 };
    static uint16_t xa[N], xb[N];
    static double a[N], b[N];
    for (int k = 0; k < 2; k++) {
        cks_dtype dt = k ? CKS_DT_F16 : CKS_DT_BF16;
        uint64_t x = 2463534242ull;
        for (int i = 0; i < N; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            double u = (double)(x >> 11) / 9007199254740992.0 - 0.5;
            float va = (float)(0.05 * u), vb = va + (float)(1e-3 * sin(i * 0.3));
            if (i % 997 == 5) /* the extremes of F16: its largest value and subnormals */
                va = 65504.0f, vb = 60000.0f;
            if (i % 991 == 7)
                va = 3e-7f, vb = -6e-8f;
            xa[i] = k ? cks_f32_to_f16(va) : cks_f32_to_bf16(va);
            xb[i] = k ? cks_f32_to_f16(vb) : cks_f32_to_bf16(vb);
            a[i] = k ? cks_f16_to_f32(xa[i]) : cks_bf16_to_f32(xa[i]);
            b[i] = k ? cks_f16_to_f32(xb[i]) : cks_bf16_to_f32(xb[i]);
        }
        cks_tensor ta = view("w", dt, xa, N, 0), tb = view("w", dt, xb, N, 0);
        cks_drift d, want;
        assert_int_equal(cks_drift_compute(&ta, 1, &tb, 0, 1, &d), 0);
        reference(a, b, N, &want);
        assert_close(d.rel_fro, want.rel_fro, 1e-6, 0);
        assert_close(d.cos, want.cos, 1e-6, 0);
        assert_close(d.absmax_delta, want.absmax_delta, 0, 0);
        uint16_t keep = xb[3000];
        for (int s = 0; s < 2; s++) {
            xb[3000] = s ? (k ? 0x7e00 : 0x7fc0) : (k ? 0xfc00 : 0xff80); /* NaN, -Inf */
            assert_int_equal(cks_drift_compute(&ta, 1, &tb, 0, 1, &d), 0);
            assert_true(isnan(d.rel_fro) && isnan(d.cos) && isnan(d.absmax_delta));
        }
        xb[3000] = keep;
    }
}

static void test_drift__metric_table(void **state)
{
    size_t n;
    const cks_metric_info *m = cks_drift_metrics(&n);
    assert_int_equal(n, 4);
    const char *names[] = {"rel_fro", "cos", "absmax_delta", "rel_fro_per_kstep"};
    cks_drift d = {.rel_fro = 1, .cos = 2, .absmax_delta = 3, .rel_fro_per_kstep = 4};
    double v[4];
    cks_drift_values(&d, v);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(m[i].name, names[i]);
        assert_non_null(m[i].description);
        assert_close(v[i], (double)(i + 1), 0, 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_drift__identical_is_zero),
        cmocka_unit_test(test_drift__analytic_shift),
        cmocka_unit_test(test_drift__orthogonal_and_opposite),
        cmocka_unit_test(test_drift__fixture_line_f64),
        cmocka_unit_test(test_drift__fixture_line_f32),
        cmocka_unit_test(test_drift__mixed_dtypes),
        cmocka_unit_test(test_drift__f64_keeps_small_differences),
        cmocka_unit_test(test_drift__threads_deterministic),
        cmocka_unit_test(test_drift__rejects_mismatch),
        cmocka_unit_test(test_drift__undefined_is_nan),
        cmocka_unit_test(test_drift__huge_finite_bf16),
        cmocka_unit_test(test_drift__same_half_dtype_pairs),
        cmocka_unit_test(test_drift__metric_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
