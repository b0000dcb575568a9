/* Norms against closed forms: constant tensors, arithmetic sequences, +-1 patterns around
 * a large mean (cancellation), NaN/Inf counting, every float dtype, and the threaded path
 * equal to the serial one. */
#include "testutil.h"

#include "error.h"
#include "norms.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static cks_tensor view(cks_dtype dt, const void *data, int64_t n)
{
    cks_tensor t;
    memset(&t, 0, sizeof t);
    t.name = "t";
    t.dtype = dt;
    t.ndim = 1;
    t.shape[0] = n;
    t.numel = n;
    t.data = data;
    t.nbytes = (size_t)n * cks_dtype_size(dt);
    return t;
}

static void test_norms__constant(void **state)
{
    enum { N = 1000 };
    float x[N];
    for (int i = 0; i < N; i++)
        x[i] = -3.0f;
    cks_tensor t = view(CKS_DT_F32, x, N);
    cks_norms r;
    assert_int_equal(cks_norms_compute(&t, 1, &r), 0);
    assert_close(r.fro, 3.0 * sqrt(N), 1e-15, 0);
    assert_close(r.rms, 3.0, 1e-15, 0);
    assert_close(r.mean, -3.0, 1e-15, 0);
    assert_close(r.std, 0.0, 0, 1e-15);
    assert_close(r.absmax, 3.0, 0, 0);
    assert_int_equal(r.nan, 0);
    assert_int_equal(r.count, N);
}

/* x_i = i for i = 1..n: sum = n(n+1)/2, sum of squares = n(n+1)(2n+1)/6,
 * population variance = (n^2 - 1)/12. */
static void test_norms__arithmetic_sequence(void **state)
{
    const int64_t n = 3000001; /* several chunks: exercises the threaded path */
    double *x = malloc((size_t)n * sizeof *x);
    for (int64_t i = 0; i < n; i++)
        x[i] = (double)(i + 1);
    cks_tensor t = view(CKS_DT_F64, x, n);
    cks_norms r1, r2;
    assert_int_equal(cks_norms_compute(&t, 1, &r1), 0);
    assert_int_equal(cks_norms_compute(&t, 2, &r2), 0);
    double nn = (double)n;
    assert_close(r1.mean, (nn + 1) / 2, 1e-12, 0);
    assert_close(r1.std, sqrt((nn * nn - 1) / 12), 1e-9, 0);
    assert_close(r1.fro, sqrt(nn * (nn + 1) * (2 * nn + 1) / 6), 1e-12, 0);
    assert_close(r1.absmax, nn, 0, 0);
    /* threads only reorder the f64 sums (n * eps ~ 1e-9 relative) */
    assert_close(r2.mean, r1.mean, 1e-9, 0);
    assert_close(r2.std, r1.std, 1e-9, 0);
    assert_close(r2.fro, r1.fro, 1e-9, 0);
    assert_int_equal(r2.count, n);
    free(x);
}

/* 1 +- 1e-4 alternating: mean 1, std exactly the f32 deviation; a naive E[x^2]-E[x]^2 in
 * f32 would lose it entirely. */
static void test_norms__small_std_around_large_mean(void **state)
{
    enum { N = 1 << 16 };
    static float x[N];
    const float hi = 1.0f + 1e-4f, lo = 1.0f - 1e-4f;
    for (int i = 0; i < N; i++)
        x[i] = i % 2 ? hi : lo;
    cks_tensor t = view(CKS_DT_F32, x, N);
    cks_norms r;
    assert_int_equal(cks_norms_compute(&t, 1, &r), 0);
    double m = ((double)hi + lo) / 2, sd = ((double)hi - lo) / 2;
    assert_close(r.mean, m, 1e-14, 0);
    assert_close(r.std, sd, 1e-9, 0);
}

static void test_norms__nan_and_inf_counted_apart(void **state)
{
    float x[8] = {1, NAN, -2, INFINITY, 2, -INFINITY, NAN, -1};
    cks_tensor t = view(CKS_DT_F32, x, 8);
    cks_norms r;
    assert_int_equal(cks_norms_compute(&t, 1, &r), 0);
    assert_int_equal(r.nan, 2);
    assert_int_equal(r.inf, 2);
    assert_int_equal(r.count, 4);
    assert_close(r.mean, 0.0, 0, 1e-15);
    assert_close(r.fro, sqrt(10.0), 1e-15, 0);
    assert_close(r.absmax, 2.0, 0, 0);
    float y[2] = {NAN, NAN};
    t = view(CKS_DT_F32, y, 2);
    assert_int_equal(cks_norms_compute(&t, 1, &r), 0);
    assert_true(isnan(r.fro) && isnan(r.mean));
    assert_int_equal(r.nan, 2);
}

static void test_norms__half_types(void **state)
{
    enum { N = 4099 }; /* not a multiple of the block or vector width */
    uint16_t bf[N], hf[N];
    double s = 0, ss = 0, amax = 0;
    for (int i = 0; i < N; i++) {
        float v = (float)((i % 17) - 8) * 0.125f; /* exact in bf16 and f16 */
        bf[i] = cks_f32_to_bf16(v);
        hf[i] = cks_f32_to_f16(v);
        s += v;
        ss += (double)v * v;
        amax = fabs(v) > amax ? fabs(v) : amax;
    }
    cks_dtype dts[2] = {CKS_DT_BF16, CKS_DT_F16};
    const void *data[2] = {bf, hf};
    for (int k = 0; k < 2; k++) {
        cks_tensor t = view(dts[k], data[k], N);
        cks_norms r;
        assert_int_equal(cks_norms_compute(&t, 2, &r), 0);
        assert_close(r.mean, s / N, 1e-12, 1e-15);
        assert_close(r.fro, sqrt(ss), 1e-13, 0);
        assert_close(r.std, sqrt(ss / N - (s / N) * (s / N)), 1e-12, 0);
        assert_close(r.absmax, amax, 0, 0);
    }
}

/* NaN and Inf inside whole BF16/F16 blocks (2048 values) send those blocks to the scalar
 * kernel; the clean block between them and the partial last block are counted too. */
static void test_norms__nonfinite_in_half_vectors(void **state)
{
    enum { N = 7000 };
    static uint16_t bf[N], hf[N];
    for (int i = 0; i < N; i++) {
        float v = (i % 3) - 1.0f; /* -1, 0, 1 */
        bf[i] = cks_f32_to_bf16(v);
        hf[i] = cks_f32_to_f16(v);
    }
    /* 3 NaN, 2 Inf: in the first and third block and the partial last one */
    const int nan_at[3] = {5, 4500, 6998}, inf_at[2] = {40, 4700};
    for (int k = 0; k < 3; k++) {
        bf[nan_at[k]] = 0x7fc0;
        hf[nan_at[k]] = 0x7e00;
    }
    bf[inf_at[0]] = 0x7f80, hf[inf_at[0]] = 0x7c00;
    bf[inf_at[1]] = 0xff80, hf[inf_at[1]] = 0xfc00;
    double s = 0, ss = 0;
    int64_t fin = 0;
    for (int i = 0; i < N; i++) {
        int skip =
            i == inf_at[0] || i == inf_at[1] || i == nan_at[0] || i == nan_at[1] || i == nan_at[2];
        if (!skip) {
            double v = (i % 3) - 1.0;
            s += v, ss += v * v, fin++;
        }
    }
    const void *data[2] = {bf, hf};
    cks_dtype dts[2] = {CKS_DT_BF16, CKS_DT_F16};
    for (int k = 0; k < 2; k++) {
        cks_tensor t = view(dts[k], data[k], N);
        cks_norms r;
        assert_int_equal(cks_norms_compute(&t, 1, &r), 0);
        assert_int_equal(r.nan, 3);
        assert_int_equal(r.inf, 2);
        assert_int_equal(r.count, fin);
        assert_close(r.mean, s / (double)fin, 1e-7, 1e-9);
        assert_close(r.fro, sqrt(ss), 1e-7, 0);
        assert_close(r.absmax, 1.0, 0, 0);
    }
}

/* BF16 values whose squares overflow f32 (|x| > 2^64) are finite, and their norms too:
 * such blocks leave the f32 partials of the 16-bit kernels and are summed in f64. The
 * expected values are the sums in double of the exact widened values. */
static void test_norms__huge_finite_bf16(void **state)
{
    enum { N = 5000 };
    static uint16_t bf[N];
    double s = 0, ss = 0, amax = 0;
    for (int i = 0; i < N; i++) {
        float v = i == 300 ? 3e30f : i == 301 ? -1e25f : (float)(i % 5) * 0.25f;
        bf[i] = cks_f32_to_bf16(v);
        double w = cks_bf16_to_f32(bf[i]); /* the stored value, exactly */
        s += w, ss += w * w;
        amax = fabs(w) > amax ? fabs(w) : amax;
    }
    cks_tensor t = view(CKS_DT_BF16, bf, N);
    cks_norms r;
    assert_int_equal(cks_norms_compute(&t, 1, &r), 0);
    assert_int_equal(r.nan, 0);
    assert_int_equal(r.inf, 0);
    assert_true(isfinite(r.fro) && isfinite(r.std));
    assert_close(r.fro, sqrt(ss), 1e-12, 0);
    assert_close(r.mean, s / N, 1e-12, 0);
    assert_close(r.absmax, amax, 0, 0);
}

/* Whole 16-bit blocks with F16's subnormals, its largest value and negative zero, against
 * sums in double of the exact widened values: the f32 partials of 8 values per lane carry
 * at most 8 * 2^-24 of the sum of their magnitudes (norms.c), so 1e-6 relative. */
static void test_norms__half_extremes(void **state)
{
    enum { N = 2 * 2048 + 9 };
    static uint16_t h[2][N];
    for (int k = 0; k < 2; k++) {
        double s = 0, ss = 0, amax = 0;
        uint64_t x = 88172645463325252ull;
        for (int i = 0; i < N; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            float v = (float)((double)(x >> 11) / 9007199254740992.0 - 0.5);
            if (i % 11 == 3)
                v *= 1e-5f; /* F16 subnormals: below 6.1e-5 */
            if (i == 1000 || i == 3000)
                v = i == 1000 ? 65504.0f : -65504.0f;
            if (i % 13 == 0)
                v = -0.0f;
            h[k][i] = k ? cks_f32_to_f16(v) : cks_f32_to_bf16(v);
            double w = k ? cks_f16_to_f32(h[k][i]) : cks_bf16_to_f32(h[k][i]);
            s += w, ss += w * w;
            amax = fabs(w) > amax ? fabs(w) : amax;
        }
        cks_tensor t = view(k ? CKS_DT_F16 : CKS_DT_BF16, h[k], N);
        cks_norms r;
        assert_int_equal(cks_norms_compute(&t, 1, &r), 0);
        assert_int_equal(r.count, N);
        assert_close(r.fro, sqrt(ss), 1e-6, 0);
        assert_close(r.mean, s / N, 1e-6, 1e-6 * sqrt(ss / N));
        assert_close(r.absmax, amax, 0, 0);
    }
}

/* F64 values that f32 cannot hold: 1 + k * 2^-40 */
static void test_norms__f64_keeps_precision(void **state)
{
    double x[4];
    for (int i = 0; i < 4; i++)
        x[i] = 1.0 + i * ldexp(1.0, -40);
    cks_tensor t = view(CKS_DT_F64, x, 4);
    cks_norms r;
    assert_int_equal(cks_norms_compute(&t, 1, &r), 0);
    /* mean 1 + 1.5 * 2^-40, population std sqrt(1.25) * 2^-40 */
    assert_close(r.mean - 1.0, 1.5 * ldexp(1.0, -40), 1e-6, 0);
    assert_close(r.std, sqrt(1.25) * ldexp(1.0, -40), 1e-6, 0);
}

static void test_norms__refuses_integer_dtype(void **state)
{
    int32_t x[3] = {1, 2, 3};
    cks_tensor t = view(CKS_DT_I32, x, 3);
    cks_norms r;
    assert_int_equal(cks_norms_compute(&t, 1, &r), CKS_EUNSUPPORTED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_norms__constant),
        cmocka_unit_test(test_norms__arithmetic_sequence),
        cmocka_unit_test(test_norms__small_std_around_large_mean),
        cmocka_unit_test(test_norms__nan_and_inf_counted_apart),
        cmocka_unit_test(test_norms__half_types),
        cmocka_unit_test(test_norms__nonfinite_in_half_vectors),
        cmocka_unit_test(test_norms__huge_finite_bf16),
        cmocka_unit_test(test_norms__half_extremes),
        cmocka_unit_test(test_norms__f64_keeps_precision),
        cmocka_unit_test(test_norms__refuses_integer_dtype),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
