/* Streaming norms. Each thread takes contiguous chunks; within a chunk elements are
 * widened to f32 in cache-sized blocks and accumulated in f64 around a common shift c
 * (the first element, rounded to the stored precision), which keeps the variance free of
 * catastrophic cancellation when |mean| >> std (RMSNorm weights near 1). Differences are
 * taken in f64, so they are exact. AVX-512 and AVX2 kernels are chosen at run time. */
#include "norms.h"
#include "simd.h"
#include "error.h"

#include <float.h>
#include <immintrin.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#define BLOCK 2048      /* elements widened at a time: 8 KiB of f32, stays in L1 */
#define CHUNK (1 << 20) /* elements per scheduling unit between threads */

typedef struct {
    double s1, s2, amax;
    int64_t nan, inf, n;
} acc;

/* Portable kernel; the SIMD ones below compute exactly the same sums in a different
 * order. Non-finite lanes contribute nothing but their counts. */
static void kernel_scalar(const float *x, size_t n, double c, acc *a)
{
    for (size_t i = 0; i < n; i++) {
        float v = x[i], av = fabsf(v);
        int fin = av <= FLT_MAX;              /* false for NaN and Inf */
        double d = fin ? (double)v - c : 0.0; /* difference in f64: exact */
        a->s1 += d;
        a->s2 += d * d;
        if (fin && av > a->amax)
            a->amax = av;
        a->nan += v != v;
        a->inf += av == INFINITY;
        a->n += fin;
    }
}

/* Counts NaN and Inf lanes of a block that held a non-finite value (rare path). */
static void count_nonfinite(const float *x, size_t n, acc *a)
{
    for (size_t i = 0; i < n; i++) {
        a->nan += x[i] != x[i];
        a->inf += fabsf(x[i]) == INFINITY;
    }
}

__attribute__((target("avx512f,avx512dq"))) static void kernel_avx512(const float *x, size_t n,
                                                                      double c, acc *a)
{
    const __m512 fmax = _mm512_set1_ps(FLT_MAX), cf = _mm512_set1_ps((float)c);
    const __m512d cc = _mm512_set1_pd(c);
    __m512d s1a = _mm512_setzero_pd(), s1b = s1a, s2a = s1a, s2b = s1a;
    __m512 amax = _mm512_setzero_ps();
    int64_t bad = 0;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 v = _mm512_loadu_ps(x + i), av = _mm512_abs_ps(v);
        __mmask16 fin = _mm512_cmp_ps_mask(av, fmax, _CMP_LE_OQ);
        if (__builtin_expect(fin != 0xffff, 0)) {
            count_nonfinite(x + i, 16, a);
            bad += 16 - __builtin_popcount(fin);
        }
        amax = _mm512_mask_max_ps(amax, fin, amax, av);
        v = _mm512_mask_mov_ps(cf, fin, v); /* non-finite lanes become c: difference 0 */
        __m512d lo = _mm512_sub_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(v)), cc);
        __m512d hi = _mm512_sub_pd(
            _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1))), cc);
        s1a = _mm512_add_pd(s1a, lo);
        s1b = _mm512_add_pd(s1b, hi);
        s2a = _mm512_fmadd_pd(lo, lo, s2a);
        s2b = _mm512_fmadd_pd(hi, hi, s2b);
    }
    a->s1 += _mm512_reduce_add_pd(_mm512_add_pd(s1a, s1b));
    a->s2 += _mm512_reduce_add_pd(_mm512_add_pd(s2a, s2b));
    float m = _mm512_reduce_max_ps(amax);
    if (m > a->amax)
        a->amax = m;
    a->n += (int64_t)i - bad;
    kernel_scalar(x + i, n - i, c, a);
}

__attribute__((target("avx2,fma"))) static void kernel_avx2(const float *x, size_t n, double c,
                                                            acc *a)
{
    const __m256 fmax = _mm256_set1_ps(FLT_MAX), cf = _mm256_set1_ps((float)c);
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256d cc = _mm256_set1_pd(c);
    __m256d s1a = _mm256_setzero_pd(), s1b = s1a, s2a = s1a, s2b = s1a;
    __m256 amax = _mm256_setzero_ps();
    int64_t bad = 0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i), av = _mm256_and_ps(v, absmask);
        __m256 fin = _mm256_cmp_ps(av, fmax, _CMP_LE_OQ);
        int m = _mm256_movemask_ps(fin);
        if (__builtin_expect(m != 0xff, 0)) {
            count_nonfinite(x + i, 8, a);
            bad += 8 - __builtin_popcount((unsigned)m);
        }
        amax = _mm256_max_ps(amax, _mm256_and_ps(av, fin));
        v = _mm256_blendv_ps(cf, v, fin);
        __m256d lo = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(v)), cc);
        __m256d hi = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)), cc);
        s1a = _mm256_add_pd(s1a, lo);
        s1b = _mm256_add_pd(s1b, hi);
        s2a = _mm256_fmadd_pd(lo, lo, s2a);
        s2b = _mm256_fmadd_pd(hi, hi, s2b);
    }
    double t1[4], t2[4];
    float tm[8];
    _mm256_storeu_pd(t1, _mm256_add_pd(s1a, s1b));
    _mm256_storeu_pd(t2, _mm256_add_pd(s2a, s2b));
    _mm256_storeu_ps(tm, amax);
    for (int l = 0; l < 4; l++) {
        a->s1 += t1[l];
        a->s2 += t2[l];
    }
    for (int l = 0; l < 8; l++)
        if (tm[l] > a->amax)
            a->amax = tm[l];
    a->n += (int64_t)i - bad;
    kernel_scalar(x + i, n - i, c, a);
}

/* 16-bit dtypes (BF16, F16): widening fused into the loop, and partial sums over runs of
 * RUN vectors taken in f32 before they are added in f64. Converting every element to
 * f64 makes these kernels compute-bound at half the memory bandwidth on double-pumped
 * AVX-512 cores; the f32 partials carry a relative error below 2^-20, far under the
 * stored precision (2^-8 for BF16, 2^-11 for F16). Two accumulator pairs hide the FMA
 * latency. Blocks holding a NaN or Inf are counted on a slow path. */
#define RUN 8

static void kernel(const float *x, size_t n, double c, acc *a);

/* A run of the 16-bit kernels that held something not finite in f32 (NaN, Inf, or an
 * overflowed partial), widened and done again by the f32 kernel: every lane classified,
 * sums in f64. n <= 32 * RUN. */
static void redo_run(cks_dtype dt, const unsigned char *s, size_t n, double c, acc *a)
{
    float tmp[32 * RUN];
    cks_widen_f32(dt, s, tmp, n);
    kernel(tmp, n, c, a);
}

/* 32 widened values (two vectors) from 16-bit storage at s. */
__attribute__((target("avx512f,avx512bw,avx512dq"))) static inline void
load32_avx512(const unsigned char *s, int bf, __m512 *va, __m512 *vb)
{
    if (bf) { /* 32 bf16: odd ones are the high halves, even ones shift up */
        __m512i x = _mm512_loadu_si512((const void *)s);
        *va = _mm512_castsi512_ps(_mm512_and_si512(x, _mm512_set1_epi32((int)0xffff0000u)));
        *vb = _mm512_castsi512_ps(_mm512_slli_epi32(x, 16));
    } else {
        *va = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)s));
        *vb = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(s + 32)));
    }
}

/* Full runs of RUN x 32 values; returns how many values it took (the caller does the
 * rest). Lanes are not classified: five vector ops per 16 values (widen, vrangeps for
 * the absolute maximum (imm 0x0b), sub, add, fma), which is what one thread is bound by.
 * A NaN or Inf propagates into the run's partials or maximum, as does an f32 overflow of
 * a partial (|x - c| above 2^64); such a run is widened and done again by the f32 kernel,
 * which classifies every lane and sums in f64. */
__attribute__((target("avx512f,avx512bw,avx512dq"))) static size_t
half_avx512(const unsigned char *s, size_t n, cks_dtype dt, double c, acc *a)
{
    const __m512 cf = _mm512_set1_ps((float)c);
    const int bf = dt == CKS_DT_BF16;
    __m512d s1 = _mm512_setzero_pd(), s2 = s1;
    __m512 amax = _mm512_setzero_ps();
    int64_t fast = 0;
    size_t i = 0;
    for (; i + 32 * RUN <= n; i += 32 * RUN) {
        __m512 p1a = _mm512_setzero_ps(), p2a = p1a, p1b = p1a, p2b = p1a, ra = p1a;
        for (int r = 0; r < RUN; r++) {
            __m512 va, vb;
            load32_avx512(s + 2 * (i + 32 * (size_t)r), bf, &va, &vb);
            ra = _mm512_range_ps(ra, va, 0x0b);
            ra = _mm512_range_ps(ra, vb, 0x0b);
            __m512 da = _mm512_sub_ps(va, cf), db = _mm512_sub_ps(vb, cf);
            p1a = _mm512_add_ps(p1a, da);
            p1b = _mm512_add_ps(p1b, db);
            p2a = _mm512_fmadd_ps(da, da, p2a);
            p2b = _mm512_fmadd_ps(db, db, p2b);
        }
        /* anything not finite propagates into the sum (an overflow of it only redoes a
         * run needlessly); fpclass 0x99: QNaN, SNaN, +Inf, -Inf */
        __m512 any =
            _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(p1a, p1b), _mm512_add_ps(p2a, p2b)), ra);
        __mmask16 bad = _mm512_fpclass_ps_mask(any, 0x99);
        if (__builtin_expect(bad != 0, 0)) {
            redo_run(dt, s + 2 * i, 32 * RUN, c, a);
            continue;
        }
        amax = _mm512_max_ps(amax, ra);
        s1 = cks_simd_wsum(cks_simd_wsum(s1, p1a), p1b);
        s2 = cks_simd_wsum(cks_simd_wsum(s2, p2a), p2b);
        fast += 32 * RUN;
    }
    a->s1 += _mm512_reduce_add_pd(s1);
    a->s2 += _mm512_reduce_add_pd(s2);
    float m = _mm512_reduce_max_ps(amax);
    if (m > a->amax)
        a->amax = m;
    a->n += fast;
    return i;
}

__attribute__((target("avx2,fma,f16c"))) static inline __m256 load8_avx2(const unsigned char *p,
                                                                         int bf)
{
    __m128i h = _mm_loadu_si128((const __m128i *)p);
    if (bf)
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    return _mm256_cvtph_ps(h);
}

__attribute__((target("avx2,fma"))) static inline __m256d widen_sum_avx2(__m256d s, __m256 p)
{
    s = _mm256_add_pd(s, _mm256_cvtps_pd(_mm256_castps256_ps128(p)));
    return _mm256_add_pd(s, _mm256_cvtps_pd(_mm256_extractf128_ps(p, 1)));
}

/* The AVX2 form of half_avx512: full runs of RUN x 16 values, unclassified lanes (the
 * absolute maximum through and + max, whose second operand carries a NaN into the run's
 * maximum), runs with anything not finite done again by the f32 kernel. */
__attribute__((target("avx2,fma,f16c"))) static size_t half_avx2(const unsigned char *s, size_t n,
                                                                 cks_dtype dt, double c, acc *a)
{
    const __m256 cf = _mm256_set1_ps((float)c), fmax = _mm256_set1_ps(FLT_MAX);
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const int bf = dt == CKS_DT_BF16;
    __m256d s1 = _mm256_setzero_pd(), s2 = s1;
    __m256 amax = _mm256_setzero_ps();
    int64_t fast = 0;
    size_t i = 0;
    for (; i + 16 * RUN <= n; i += 16 * RUN) {
        __m256 p1a = _mm256_setzero_ps(), p2a = p1a, p1b = p1a, p2b = p1a, ra = p1a;
        for (int r = 0; r < RUN; r++) {
            const unsigned char *q = s + 2 * (i + 16 * (size_t)r);
            __m256 va = load8_avx2(q, bf), vb = load8_avx2(q + 16, bf);
            ra = _mm256_max_ps(ra, _mm256_and_ps(va, absmask));
            ra = _mm256_max_ps(ra, _mm256_and_ps(vb, absmask));
            __m256 da = _mm256_sub_ps(va, cf), db = _mm256_sub_ps(vb, cf);
            p1a = _mm256_add_ps(p1a, da);
            p1b = _mm256_add_ps(p1b, db);
            p2a = _mm256_fmadd_ps(da, da, p2a);
            p2b = _mm256_fmadd_ps(db, db, p2b);
        }
        /* as in half_avx512; |x| <= FLT_MAX is false for NaN and Inf */
        __m256 any =
            _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(p1a, p1b), _mm256_add_ps(p2a, p2b)), ra);
        __m256 all = _mm256_cmp_ps(_mm256_and_ps(any, absmask), fmax, _CMP_LE_OQ);
        if (__builtin_expect(_mm256_movemask_ps(all) != 0xff, 0)) {
            redo_run(dt, s + 2 * i, 16 * RUN, c, a);
            continue;
        }
        amax = _mm256_max_ps(amax, ra);
        s1 = widen_sum_avx2(widen_sum_avx2(s1, p1a), p1b);
        s2 = widen_sum_avx2(widen_sum_avx2(s2, p2a), p2b);
        fast += 16 * RUN;
    }
    double t1[4], t2[4];
    float tm[8];
    _mm256_storeu_pd(t1, s1);
    _mm256_storeu_pd(t2, s2);
    _mm256_storeu_ps(tm, amax);
    for (int l = 0; l < 4; l++) {
        a->s1 += t1[l];
        a->s2 += t2[l];
    }
    for (int l = 0; l < 8; l++)
        if (tm[l] > a->amax)
            a->amax = tm[l];
    a->n += fast;
    return i;
}

static void kernel(const float *x, size_t n, double c, acc *a)
{
    if (__builtin_cpu_supports("avx512dq"))
        kernel_avx512(x, n, c, a);
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        kernel_avx2(x, n, c, a);
    else
        kernel_scalar(x, n, c, a);
}

/* F64 tensors keep their precision: the same accumulation without narrowing to f32. */
static void kernel64(const double *x, size_t n, double c, acc *a)
{
    for (size_t i = 0; i < n; i++) {
        double v = x[i], av = fabs(v);
        int fin = av <= 1.7976931348623157e308;
        double d = fin ? v - c : 0.0;
        a->s1 += d;
        a->s2 += d * d;
        if (fin && av > a->amax)
            a->amax = av;
        a->nan += v != v;
        a->inf += av == INFINITY;
        a->n += fin;
    }
}

static void acc_add(acc *a, const acc *b)
{
    a->s1 += b->s1;
    a->s2 += b->s2;
    if (b->amax > a->amax)
        a->amax = b->amax;
    a->nan += b->nan;
    a->inf += b->inf;
    a->n += b->n;
}

static void run_chunk(const cks_tensor *t, int64_t lo, int64_t hi, double c, acc *a)
{
    size_t es = cks_dtype_size(t->dtype);
    const unsigned char *base = t->data;
    float buf[BLOCK];
    if (t->dtype == CKS_DT_F64) {
        double dbuf[BLOCK / 2];
        for (int64_t i = lo; i < hi; i += BLOCK / 2) {
            size_t k = (size_t)(hi - i < BLOCK / 2 ? hi - i : BLOCK / 2);
            memcpy(dbuf, base + (size_t)i * 8, k * 8);
            kernel64(dbuf, k, c, a);
        }
        return;
    }
    if (t->dtype == CKS_DT_F32 && ((uintptr_t)base & 3) == 0) {
        kernel((const float *)base + lo, (size_t)(hi - lo), c, a);
        return;
    }
    if (t->dtype == CKS_DT_BF16 || t->dtype == CKS_DT_F16) {
        size_t done = 0, n = (size_t)(hi - lo);
        if (__builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq"))
            done = half_avx512(base + (size_t)lo * 2, n, t->dtype, c, a);
        else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                 cks_cpu_has_f16c())
            done = half_avx2(base + (size_t)lo * 2, n, t->dtype, c, a);
        lo += (int64_t)done;
    }
    for (int64_t i = lo; i < hi; i += BLOCK) {
        size_t k = (size_t)(hi - i < BLOCK ? hi - i : BLOCK);
        cks_widen_f32(t->dtype, base + (size_t)i * es, buf, k);
        kernel(buf, k, c, a);
    }
}

int cks_norms_compute(const cks_tensor *t, int nthreads, cks_norms *out)
{
    if (!cks_tensor_is_contiguous(t)) { /* a row-block view: one contiguous copy (tensor.h) */
        cks_tensor g;
        void *own;
        int err = cks_tensor_gather(t, &g, &own);
        if (!err)
            err = cks_norms_compute(&g, nthreads, out);
        free(own);
        return err;
    }
    if (!cks_dtype_is_float(t->dtype))
        return cks_error_set(CKS_EUNSUPPORTED, "tensor '%s': norms need a float dtype, not %s",
                             t->name, cks_dtype_name(t->dtype));
    /* shift by the first finite element (scan at most a few; 0 if none); for non-F64
       dtypes it is rounded to f32, the precision the kernel subtracts it in */
    double c = 0.0;
    {
        double probe[64];
        size_t k = t->numel < 64 ? (size_t)t->numel : 64;
        cks_widen_f64(t->dtype, t->data, probe, k);
        for (size_t i = 0; i < k; i++) {
            if (isfinite(probe[i])) {
                c = t->dtype == CKS_DT_F64 ? probe[i] : (double)(float)probe[i];
                break;
            }
        }
    }
    int64_t n = t->numel, nchunks = (n + CHUNK - 1) / CHUNK;
    acc total = {0};
    if (nthreads < 1)
        nthreads = 1;
    if (nchunks < 2 || nthreads == 1) {
        /* the same chunk boundaries as the threaded path, so the sums match it bit for bit */
        for (int64_t ci = 0; ci < (nchunks ? nchunks : 1); ci++) {
            int64_t lo = ci * CHUNK, hi = lo + CHUNK < n ? lo + CHUNK : n;
            acc part = {0};
            run_chunk(t, lo, hi, c, &part);
            acc_add(&total, &part);
        }
    } else {
        /* partial sums per chunk, added in chunk order: the result does not depend on the
         * thread count or on which thread ran which chunk (a resumed scan must reproduce
         * an uninterrupted one exactly) */
        acc *part = calloc((size_t)nchunks, sizeof *part);
        if (!part)
            return cks_error_set(CKS_ENOMEM, "tensor '%s': out of memory", t->name);
        int nt = nthreads < nchunks ? nthreads : (int)nchunks;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
        for (int64_t ci = 0; ci < nchunks; ci++) {
            int64_t lo = ci * CHUNK, hi = lo + CHUNK < n ? lo + CHUNK : n;
            run_chunk(t, lo, hi, c, &part[ci]);
        }
        for (int64_t ci = 0; ci < nchunks; ci++)
            acc_add(&total, &part[ci]);
        free(part);
    }
    cks_norms r = {.nan = total.nan, .inf = total.inf, .count = total.n};
    if (total.n == 0) {
        r.fro = r.rms = r.mean = r.std = r.absmax = NAN;
    } else {
        double nn = (double)total.n;
        double m1 = total.s1 / nn;            /* mean of (x - c) */
        double var = total.s2 / nn - m1 * m1; /* shift-invariant */
        if (var < 0)
            var = 0;
        r.mean = c + m1;
        r.std = sqrt(var);
        /* sum x^2 = sum (d + c)^2 = s2 + 2 c s1 + n c^2 */
        double ss = total.s2 + 2.0 * c * total.s1 + nn * c * c;
        if (ss < 0)
            ss = 0;
        r.fro = sqrt(ss);
        r.rms = sqrt(ss / nn);
        r.absmax = total.amax;
    }
    *out = r;
    return 0;
}

static const cks_metric_info norms_metrics[] = {
    {"fro", "Frobenius norm ||W||_F over the finite elements", NULL},
    {"rms", "root mean square ||W||_F / sqrt(n) over the finite elements", NULL},
    {"mean", "mean of the finite elements", NULL},
    {"std", "population standard deviation of the finite elements", NULL},
    {"absmax", "largest absolute finite element", NULL},
    {"nan", "number of NaN elements", "elements"},
    {"inf", "number of infinite elements", "elements"},
};

const cks_metric_info *cks_norms_metrics(size_t *count)
{
    *count = sizeof norms_metrics / sizeof norms_metrics[0];
    return norms_metrics;
}

void cks_norms_values(const cks_norms *n, double *out)
{
    out[0] = n->fro;
    out[1] = n->rms;
    out[2] = n->mean;
    out[3] = n->std;
    out[4] = n->absmax;
    out[5] = (double)n->nan;
    out[6] = (double)n->inf;
}
