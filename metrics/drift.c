/* Streaming drift between two tensor views (see drift.h). Each chunk of elements is
 * widened block by block from both mapped views into two small stack buffers (or read in
 * place when both are aligned F32) and reduced by a kernel with 8 independent f64 lanes,
 * cloned for AVX-512/AVX2. Differences are taken in f64, where the difference of two f32
 * values is exact, so rel_fro keeps its precision even when W_t and W_r agree to many
 * digits. */
#include "drift.h"
#include "simd.h"
#include "error.h"

#include <immintrin.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BLOCK 2048      /* elements widened at a time per side: 2 x 8 KiB of f32 in L1 */
#define CHUNK (1 << 20) /* elements per scheduling unit; partial sums kept per chunk */

typedef struct {
    double dd, aa, bb, ab; /* sum d^2, sum a^2, sum b^2, sum a*b with d = a - b */
    double amax;           /* max |d| over the elements seen (NaN-blind: checked via sums) */
} acc;

/* GCC vector extensions: 8 f64 lanes per accumulator, lowered to whatever each clone
 * has (one zmm, two ymm, four xmm). Two sets of accumulators per 16 elements keep the
 * add chains from serialising on their latency. */
typedef float v8f __attribute__((vector_size(32)));
typedef double v8d __attribute__((vector_size(64)));
typedef int64_t v8l __attribute__((vector_size(64)));

typedef struct {
    v8d dd, aa, bb, ab, mx;
} lanes;

/* by pointer: vector arguments by value would depend on the clone's ABI */
static inline void step(lanes *L, const v8d *xp, const v8d *yp)
{
    v8d x = *xp, y = *yp, d = x - y;
    L->dd += d * d;
    L->aa += x * x;
    L->bb += y * y;
    L->ab += x * y;
    v8l abits = (v8l)d & INT64_MAX; /* |d|: clear the sign bits */
    v8l gt = (v8d)abits > L->mx;
    L->mx = (v8d)((abits & gt) | ((v8l)L->mx & ~gt));
}

static void fold(acc *s, const lanes *L0, const lanes *L1)
{
    for (int l = 0; l < 8; l++) {
        s->dd += L0->dd[l] + L1->dd[l];
        s->aa += L0->aa[l] + L1->aa[l];
        s->bb += L0->bb[l] + L1->bb[l];
        s->ab += L0->ab[l] + L1->ab[l];
        double m = L0->mx[l] > L1->mx[l] ? L0->mx[l] : L1->mx[l];
        s->amax = m > s->amax ? m : s->amax;
    }
}

static void tail(acc *s, double x, double y)
{
    double d = x - y, ad = fabs(d);
    s->dd += d * d;
    s->aa += x * x;
    s->bb += y * y;
    s->ab += x * y;
    s->amax = ad > s->amax ? ad : s->amax;
}

__attribute__((target_clones("avx512f", "avx2", "default"))) static void
kernel_f32(const float *a, const float *b, size_t n, acc *s)
{
    lanes L0, L1;
    memset(&L0, 0, sizeof L0);
    memset(&L1, 0, sizeof L1);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        v8f a0, a1, b0, b1;
        memcpy(&a0, a + i, 32);
        memcpy(&a1, a + i + 8, 32);
        memcpy(&b0, b + i, 32);
        memcpy(&b1, b + i + 8, 32);
        v8d x0 = __builtin_convertvector(a0, v8d), y0 = __builtin_convertvector(b0, v8d);
        v8d x1 = __builtin_convertvector(a1, v8d), y1 = __builtin_convertvector(b1, v8d);
        step(&L0, &x0, &y0);
        step(&L1, &x1, &y1);
    }
    fold(s, &L0, &L1);
    for (; i < n; i++)
        tail(s, a[i], b[i]);
}

__attribute__((target_clones("avx512f", "avx2", "default"))) static void
kernel_f64(const double *a, const double *b, size_t n, acc *s)
{
    lanes L0, L1;
    memset(&L0, 0, sizeof L0);
    memset(&L1, 0, sizeof L1);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        v8d a0, a1, b0, b1;
        memcpy(&a0, a + i, 64);
        memcpy(&a1, a + i + 8, 64);
        memcpy(&b0, b + i, 64);
        memcpy(&b1, b + i + 8, 64);
        step(&L0, &a0, &b0);
        step(&L1, &a1, &b1);
    }
    fold(s, &L0, &L1);
    for (; i < n; i++)
        tail(s, a[i], b[i]);
}

/* Two tensors stored in the same 16-bit dtype (K2's fp16, the demo's bf16): loads are fused
 * with widening (bf16: one AND and one shift split 32 values into even and odd halves, the
 * same way on both sides, so elements stay paired), and the four sums are taken in f32 over
 * runs of HALF_RUN vectors before they are added in f64. Converting every element to f64
 * leaves these pairs compute-bound at a third of the memory bandwidth; the f32 partials carry
 * a relative error below 2^-20, far under the stored precision (2^-8, 2^-11), and the
 * difference of two nearby 16-bit values is exact in f32. */
#define HALF_RUN 8

typedef struct {
    __m512 dd, aa, bb, ab;
} half_part;

__attribute__((target("avx512f,avx512dq"))) static inline void half_step(half_part *p, __m512 x,
                                                                         __m512 y, __m512 *mx)
{
    __m512 d = _mm512_sub_ps(x, y);
    p->dd = _mm512_fmadd_ps(d, d, p->dd);
    p->aa = _mm512_fmadd_ps(x, x, p->aa);
    p->bb = _mm512_fmadd_ps(y, y, p->bb);
    p->ab = _mm512_fmadd_ps(x, y, p->ab);
    *mx = _mm512_range_ps(*mx, d, 0x0b); /* larger magnitude, sign cleared */
}

/* Returns the number of elements consumed (a multiple of 32 * HALF_RUN); the caller
 * finishes the rest. A run whose f32 partials or maximum are not finite (a NaN or Inf
 * element, or values above 2^64 whose squares overflow f32) is widened and summed again
 * in f64 by kernel_f32, so that finite tensors always give finite drift. */
__attribute__((target("avx512f,avx512bw,avx512dq"))) static size_t
half_pair_avx512(const unsigned char *a, const unsigned char *b, size_t n, cks_dtype dt, acc *s)
{
    const __m512i hi16 = _mm512_set1_epi32((int)0xffff0000u);
    const int bf = dt == CKS_DT_BF16;
    __m512d dd = _mm512_setzero_pd(), aa = dd, bb = dd, ab = dd;
    __m512 mx = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 32 * HALF_RUN <= n; i += 32 * HALF_RUN) {
        half_part p0, p1;
        p0.dd = p0.aa = p0.bb = p0.ab = _mm512_setzero_ps();
        p1 = p0;
        __m512 rmx = _mm512_setzero_ps();
        for (int r = 0; r < HALF_RUN; r++) {
            size_t j = i + 32 * (size_t)r;
            __m512 x0, x1, y0, y1;
            if (bf) {
                __m512i xa = _mm512_loadu_si512((const void *)(a + 2 * j));
                __m512i yb = _mm512_loadu_si512((const void *)(b + 2 * j));
                x0 = _mm512_castsi512_ps(_mm512_and_si512(xa, hi16));
                x1 = _mm512_castsi512_ps(_mm512_slli_epi32(xa, 16));
                y0 = _mm512_castsi512_ps(_mm512_and_si512(yb, hi16));
                y1 = _mm512_castsi512_ps(_mm512_slli_epi32(yb, 16));
            } else {
                x0 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(a + 2 * j)));
                x1 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(a + 2 * j + 32)));
                y0 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(b + 2 * j)));
                y1 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(b + 2 * j + 32)));
            }
            half_step(&p0, x0, y0, &rmx);
            half_step(&p1, x1, y1, &rmx);
        }
        /* fpclass 0x99: QNaN, SNaN, +Inf, -Inf */
        __m512 all =
            _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(p0.dd, p1.dd), _mm512_add_ps(p0.aa, p1.aa)),
                          _mm512_add_ps(_mm512_add_ps(p0.bb, p1.bb), rmx));
        if (__builtin_expect((_mm512_fpclass_ps_mask(all, 0x99) |
                              _mm512_fpclass_ps_mask(_mm512_add_ps(p0.ab, p1.ab), 0x99)) != 0,
                             0)) {
            float fa[32 * HALF_RUN], fb[32 * HALF_RUN];
            cks_widen_f32(dt, a + 2 * i, fa, 32 * HALF_RUN);
            cks_widen_f32(dt, b + 2 * i, fb, 32 * HALF_RUN);
            kernel_f32(fa, fb, 32 * HALF_RUN, s);
            continue;
        }
        mx = _mm512_max_ps(mx, rmx);
        dd = cks_simd_wsum(cks_simd_wsum(dd, p0.dd), p1.dd);
        aa = cks_simd_wsum(cks_simd_wsum(aa, p0.aa), p1.aa);
        bb = cks_simd_wsum(cks_simd_wsum(bb, p0.bb), p1.bb);
        ab = cks_simd_wsum(cks_simd_wsum(ab, p0.ab), p1.ab);
    }
    s->dd += _mm512_reduce_add_pd(dd);
    s->aa += _mm512_reduce_add_pd(aa);
    s->bb += _mm512_reduce_add_pd(bb);
    s->ab += _mm512_reduce_add_pd(ab);
    double m = _mm512_reduce_max_ps(mx);
    s->amax = m > s->amax ? m : s->amax;
    return i;
}

static void run_chunk(const cks_tensor *t, const cks_tensor *r, int wide, int64_t lo, int64_t hi,
                      acc *s)
{
    const unsigned char *pa = t->data, *pb = r->data;
    size_t ea = cks_dtype_size(t->dtype), eb = cks_dtype_size(r->dtype);
    memset(s, 0, sizeof *s);
    if (!wide && t->dtype == CKS_DT_F32 && r->dtype == CKS_DT_F32 && ((uintptr_t)pa & 3) == 0 &&
        ((uintptr_t)pb & 3) == 0) {
        /* read in place, in the same blocks as the widening path below so that the
         * order of the sums (and so every bit of the result) does not depend on it */
        for (int64_t i = lo; i < hi; i += BLOCK)
            kernel_f32((const float *)pa + i, (const float *)pb + i,
                       (size_t)(hi - i < BLOCK ? hi - i : BLOCK), s);
        return;
    }
    if (!wide && t->dtype == r->dtype && (t->dtype == CKS_DT_BF16 || t->dtype == CKS_DT_F16) &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq")) {
        size_t done = half_pair_avx512(pa + (size_t)lo * 2, pb + (size_t)lo * 2, (size_t)(hi - lo),
                                       t->dtype, s);
        lo += (int64_t)done; /* the remaining < 256 elements take the general path */
    }
    if (wide) {
        double ba[BLOCK / 2], bb[BLOCK / 2]; /* same 16 KiB as the f32 path */
        for (int64_t i = lo; i < hi; i += BLOCK / 2) {
            size_t k = (size_t)(hi - i < BLOCK / 2 ? hi - i : BLOCK / 2);
            cks_widen_f64(t->dtype, pa + (size_t)i * ea, ba, k);
            cks_widen_f64(r->dtype, pb + (size_t)i * eb, bb, k);
            kernel_f64(ba, bb, k, s);
        }
        return;
    }
    float fa[BLOCK], fb[BLOCK];
    for (int64_t i = lo; i < hi; i += BLOCK) {
        size_t k = (size_t)(hi - i < BLOCK ? hi - i : BLOCK);
        cks_widen_f32(t->dtype, pa + (size_t)i * ea, fa, k);
        cks_widen_f32(r->dtype, pb + (size_t)i * eb, fb, k);
        kernel_f32(fa, fb, k, s);
    }
}

static int check_pair(const cks_tensor *t, const cks_tensor *r)
{
    if (!cks_dtype_is_float(t->dtype) || !cks_dtype_is_float(r->dtype))
        return cks_error_set(CKS_EUNSUPPORTED, "tensor '%s': drift needs float dtypes, not %s/%s",
                             t->name, cks_dtype_name(t->dtype), cks_dtype_name(r->dtype));
    int same = t->ndim == r->ndim && t->numel == r->numel;
    for (int d = 0; same && d < t->ndim; d++)
        same = t->shape[d] == r->shape[d];
    if (!same) {
        char a[128], b[128];
        cks_tensor_shape_str(t, a, sizeof a);
        cks_tensor_shape_str(r, b, sizeof b);
        return cks_error_set(CKS_EFORMAT, "tensor '%s': shape %s differs from the reference's %s",
                             t->name, a, b);
    }
    return 0;
}

static acc reduce(const cks_tensor *t, const cks_tensor *r, int wide, int nthreads, int *err)
{
    int64_t n = t->numel, nchunks = (n + CHUNK - 1) / CHUNK;
    acc total = {0};
    *err = 0;
    if (nthreads < 1)
        nthreads = 1;
    if (nchunks < 2 || nthreads == 1) {
        /* the same chunk boundaries as the threaded path, so results match it bit for bit */
        for (int64_t ci = 0; ci < (nchunks ? nchunks : 1); ci++) {
            acc part;
            int64_t lo = ci * CHUNK, hi = lo + CHUNK < n ? lo + CHUNK : n;
            run_chunk(t, r, wide, lo, hi, &part);
            total.dd += part.dd;
            total.aa += part.aa;
            total.bb += part.bb;
            total.ab += part.ab;
            total.amax = part.amax > total.amax ? part.amax : total.amax;
        }
        return total;
    }
    acc *part = malloc((size_t)nchunks * sizeof *part);
    if (!part) {
        *err = cks_error_set(CKS_ENOMEM, "tensor '%s': out of memory", t->name);
        return total;
    }
    int nt = nthreads < nchunks ? nthreads : (int)nchunks;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
    for (int64_t ci = 0; ci < nchunks; ci++) {
        int64_t lo = ci * CHUNK, hi = lo + CHUNK < n ? lo + CHUNK : n;
        run_chunk(t, r, wide, lo, hi, &part[ci]);
    }
    for (int64_t ci = 0; ci < nchunks; ci++) {
        total.dd += part[ci].dd;
        total.aa += part[ci].aa;
        total.bb += part[ci].bb;
        total.ab += part[ci].ab;
        total.amax = part[ci].amax > total.amax ? part[ci].amax : total.amax;
    }
    free(part);
    return total;
}

int cks_drift_compute(const cks_tensor *t, int64_t step_t, const cks_tensor *r, int64_t step_r,
                      int nthreads, cks_drift *out)
{
    if (!cks_tensor_is_contiguous(t) || !cks_tensor_is_contiguous(r)) {
        /* row-block views: a contiguous copy of each, one tensor pair at a time (tensor.h) */
        cks_tensor gt, gr;
        void *ot = NULL, * or = NULL;
        int err = cks_tensor_gather(t, &gt, &ot);
        if (!err)
            err = cks_tensor_gather(r, &gr, & or);
        if (!err)
            err = cks_drift_compute(&gt, step_t, &gr, step_r, nthreads, out);
        free(or);
        free(ot);
        return err;
    }
    int err = check_pair(t, r);
    if (err)
        return err;
    int wide = t->dtype == CKS_DT_F64 || r->dtype == CKS_DT_F64;
    acc s = reduce(t, r, wide, nthreads, &err);
    if (err)
        return err;
    cks_drift d;
    if (!isfinite(s.dd) || !isfinite(s.aa) || !isfinite(s.bb) || !isfinite(s.ab)) {
        /* a NaN or Inf element (or an overflow of an F64 square): nothing is meaningful */
        d.rel_fro = d.cos = d.absmax_delta = d.rel_fro_per_kstep = NAN;
        d.diff_fro = d.fro_t = d.fro_r = NAN;
        *out = d;
        return 0;
    }
    d.diff_fro = sqrt(s.dd);
    d.fro_t = sqrt(s.aa);
    d.fro_r = sqrt(s.bb);
    d.absmax_delta = s.amax;
    d.rel_fro = s.bb > 0 ? d.diff_fro / d.fro_r : NAN;
    /* sqrt(aa*bb) rather than sqrt(aa)*sqrt(bb): identical tensors give exactly 1, since
     * sqrt(x*x) == x in IEEE arithmetic */
    if (s.aa > 0 && s.bb > 0) {
        double c = s.ab / sqrt(s.aa * s.bb);
        d.cos = c > 1 ? 1 : c < -1 ? -1 : c;
    } else {
        d.cos = NAN;
    }
    d.rel_fro_per_kstep = step_t >= 0 && step_r >= 0 && step_t != step_r
                              ? d.rel_fro * 1000.0 / (double)(step_t - step_r)
                              : NAN;
    *out = d;
    return 0;
}

static const cks_metric_info drift_metrics[] = {
    {"rel_fro", "relative Frobenius distance ||W_t - W_r||_F / ||W_r||_F", "1"},
    {"cos", "cosine similarity <W_t, W_r> / (||W_t||_F ||W_r||_F)", "1"},
    {"absmax_delta", "largest absolute element change max |W_t - W_r|", NULL},
    {"rel_fro_per_kstep", "rel_fro * 1000 / (step_t - step_r)", "1/(1000 steps)"},
};

const cks_metric_info *cks_drift_metrics(size_t *count)
{
    *count = sizeof drift_metrics / sizeof drift_metrics[0];
    return drift_metrics;
}

void cks_drift_values(const cks_drift *d, double *out)
{
    out[0] = d->rel_fro;
    out[1] = d->cos;
    out[2] = d->absmax_delta;
    out[3] = d->rel_fro_per_kstep;
}
