/* cks-kernels: norms, drift and 16-bit widening over a fixed set of generated tensors,
 * printed one case per line ("case key=value ..." with 17 significant digits), so that two
 * builds can be compared: tests/check_simd_equal.py holds the -DCKS_SIMD=OFF build's lines
 * against the SIMD build's within the rounding the kernels state. Every dtype, whole
 * 16-bit blocks and partial ones, several chunks and threads, NaN, Inf, values whose
 * squares overflow f32, F16 subnormals, unaligned views. */
#include "drift.h"
#include "dtype.h"
#include "norms.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng = 88172645463325252ull;

static double uniform(void) /* [-0.5, 0.5) */
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0 - 0.5;
}

static void put(cks_dtype dt, unsigned char *p, int64_t i, double v)
{
    size_t es = cks_dtype_size(dt);
    float f = (float)v;
    uint16_t h;
    switch (dt) {
    case CKS_DT_F64:
        memcpy(p + i * (int64_t)es, &v, 8);
        break;
    case CKS_DT_F32:
        memcpy(p + i * (int64_t)es, &f, 4);
        break;
    default:
        h = dt == CKS_DT_BF16 ? cks_f32_to_bf16(f) : cks_f32_to_f16(f);
        memcpy(p + i * (int64_t)es, &h, 2);
        break;
    }
}

/* kind 0: offset noise; 1: with NaN and Inf; 2: huge finite values (|x| > 2^64; F16 holds
 * at most 65504, which it gets instead); 3: tiny values (F16 subnormals) and zeros. */
static unsigned char *make(cks_dtype dt, int64_t n, int kind, double shift, size_t offset)
{
    size_t es = cks_dtype_size(dt);
    unsigned char *base = malloc((size_t)n * es + offset), *p = base + offset;
    for (int64_t i = 0; i < n; i++) {
        double v = 0.5 + 0.02 * uniform() + shift * sin((double)i * 0.37);
        if (kind == 1 && i % 1777 == 11)
            v = i % 2 ? NAN : (i % 3 ? INFINITY : -INFINITY);
        if (kind == 2 && i % 2111 == 17)
            v = dt == CKS_DT_F16 ? 65504.0 : 3e30 * (i % 2 ? 1 : -1);
        if (kind == 3)
            v = i % 5 == 0 ? 0.0 : uniform() * 1e-5;
        put(dt, p, i, v);
    }
    return base;
}

static cks_tensor view(cks_dtype dt, const unsigned char *data, int64_t n)
{
    cks_tensor t;
    memset(&t, 0, sizeof t);
    t.name = "w";
    t.dtype = dt;
    t.ndim = 1;
    t.shape[0] = n;
    t.numel = n;
    t.data = data;
    t.nbytes = (size_t)n * cks_dtype_size(dt);
    t.layer = -1;
    return t;
}

static int norms_case(const char *name, cks_dtype dt, int64_t n, int kind, size_t offset,
                      int threads)
{
    unsigned char *b = make(dt, n, kind, 0.0, offset);
    cks_tensor t = view(dt, b + offset, n);
    cks_norms r;
    int err = cks_norms_compute(&t, threads, &r);
    if (!err)
        printf("norms_%s_%s fro=%.17g rms=%.17g mean=%.17g std=%.17g absmax=%.17g nan=%lld "
               "inf=%lld count=%lld\n",
               name, cks_dtype_name(dt), r.fro, r.rms, r.mean, r.std, r.absmax, (long long)r.nan,
               (long long)r.inf, (long long)r.count);
    free(b);
    return err;
}

static int drift_case(const char *name, cks_dtype da, cks_dtype db, int64_t n, int kind,
                      int threads)
{
    uint64_t seed = rng;
    unsigned char *a = make(da, n, kind, 1e-3, 0);
    rng = seed; /* the same noise on both sides: they differ by the shift term only */
    unsigned char *b = make(db, n, kind, 0.0, 0);
    cks_tensor ta = view(da, a, n), tb = view(db, b, n);
    cks_drift d;
    int err = cks_drift_compute(&ta, 2000, &tb, 1000, threads, &d);
    if (!err)
        printf("drift_%s_%s_%s rel_fro=%.17g cos=%.17g absmax_delta=%.17g\n", name,
               cks_dtype_name(da), cks_dtype_name(db), d.rel_fro, d.cos, d.absmax_delta);
    free(a);
    free(b);
    return err;
}

/* FNV-1a over the widened bits of every 16-bit pattern: the widening is exact. */
static void widen_case(cks_dtype dt)
{
    static unsigned char raw[2 * 65536 + 1];
    static float out[65536];
    for (uint32_t i = 0; i < 65536; i++) {
        uint16_t h = (uint16_t)i;
        memcpy(raw + 1 + 2 * i, &h, 2);
    }
    cks_widen_f32(dt, raw + 1, out, 65536);
    uint64_t hash = 1469598103934665603ull;
    const unsigned char *p = (const unsigned char *)out;
    for (size_t i = 0; i < sizeof out; i++)
        hash = (hash ^ p[i]) * 1099511628211ull;
    printf("widen_%s hash=%llu\n", cks_dtype_name(dt), (unsigned long long)hash);
}

int main(void)
{
    const cks_dtype all[4] = {CKS_DT_F32, CKS_DT_BF16, CKS_DT_F16, CKS_DT_F64};
    const int64_t blocks = 3 * 2048 + 77, chunks = (5 << 19) + 333;
    int err = 0;
    for (int k = 0; k < 4 && !err; k++) {
        err = norms_case("blocks", all[k], blocks, 0, 0, 1);
        err = err ? err : norms_case("chunks", all[k], chunks, 0, 0, 2);
        err = err ? err : norms_case("nonfinite", all[k], blocks, 1, 0, 1);
        err = err ? err : norms_case("huge", all[k], blocks, 2, 0, 1);
        err = err ? err : norms_case("tiny", all[k], blocks, 3, 0, 1);
        err = err ? err : norms_case("unaligned", all[k], blocks, 0, 1, 1);
        err = err ? err : drift_case("blocks", all[k], all[k], blocks, 0, 1);
        err = err ? err : drift_case("chunks", all[k], all[k], chunks, 0, 2);
        err = err ? err : drift_case("nonfinite", all[k], all[k], blocks, 1, 1);
        err = err ? err : drift_case("huge", all[k], all[k], blocks, 2, 1);
        err = err ? err : drift_case("tiny", all[k], all[k], blocks, 3, 1);
        err = err ? err : drift_case("mixed", all[k], all[(k + 1) % 4], blocks, 0, 1);
    }
    widen_case(CKS_DT_BF16);
    widen_case(CKS_DT_F16);
    if (err) {
        fprintf(stderr, "cks-kernels: a computation failed (%d)\n", err);
        return 1;
    }
    return ferror(stdout) ? 1 : 0;
}
