/* Streaming drift between two tensor views (see drift.h). Each chunk of elements is
 * widened block by block from both mapped views into two small stack buffers (or read in
 * place when both are aligned F32) and reduced by a kernel with 8 independent f64 lanes
 * (simd.h's vector style, cloned for AVX-512/AVX2). Differences are taken in f64, where
 * the difference of two f32 values is exact, so rel_fro keeps its precision even when W_t
 * and W_r agree to many digits. */
#include "drift.h"
#include "error.h"
#include "simd.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BLOCK  2048      /* elements widened at a time per side: 2 x 8 KiB of f32 in L1 */
#define VBLOCK 16384     /* pairs the 16-bit kernel sums before it checks them */
#define CHUNK  (1 << 20) /* elements per scheduling unit; partial sums kept per chunk */

typedef struct {
    double dd, aa, bb, ab; /* sum d^2, sum a^2, sum b^2, sum a*b with d = a - b */
    double amax;           /* max |d| over the elements seen (NaN-blind: checked via sums) */
} acc;

/* 8 f64 lanes per accumulator, lowered to whatever each clone has (one zmm, two ymm,
 * four xmm). Two sets of accumulators per 16 elements keep the add chains from
 * serialising on their latency. */
typedef cks_v8d v8d;
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

CKS_CLONES static void kernel_f32(const float *a, const float *b, size_t n, acc *s)
{
    lanes L0, L1;
    memset(&L0, 0, sizeof L0);
    memset(&L1, 0, sizeof L1);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        cks_v16f va, vb;
        memcpy(&va, a + i, sizeof va);
        memcpy(&vb, b + i, sizeof vb);
        v8d x0, x1, y0, y1;
        cks_v_widen2(&va, &x0, &x1);
        cks_v_widen2(&vb, &y0, &y1);
        step(&L0, &x0, &y0);
        step(&L1, &x1, &y1);
    }
    fold(s, &L0, &L1);
    for (; i < n; i++)
        tail(s, a[i], b[i]);
}

CKS_CLONES static void kernel_f64(const double *a, const double *b, size_t n, acc *s)
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
 * with widening (simd.h splits 32 values into odd and even elements; x86-64's F16
 * conversion instruction below, into the low and the high 16; either way both sides are
 * split alike, so elements stay paired, and the builds differ only in the order of f32
 * sums, within the rounding stated next), and the four sums are taken in f32 over runs of
 * HALF_RUN vectors before they are added in f64. Converting every element to f64 leaves
 * these pairs compute-bound at a third of the memory bandwidth; each f32 lane adds
 * HALF_RUN products, a relative error below HALF_RUN * 2^-24 = 2^-21 of the sum of their
 * magnitudes, far under the stored precision (2^-8, 2^-11), and the difference of two
 * nearby 16-bit values is exact in f32. A block of up to VBLOCK pairs is checked once: when its
 * sums are not finite (a NaN or Inf element, or values above 2^64 whose squares overflow
 * f32) or, for F16, a raw pattern is Inf or NaN (which the F16 load turns into finite
 * values), the block is widened and summed again in f64 by kernel_f32, so that finite
 * tensors always give finite drift. */
#define HALF_RUN 8

typedef struct {
    cks_v16f dd, aa, bb, ab;
} half_part;

CKS_VINLINE void half_step(half_part *p, const cks_v16f *x, const cks_v16f *y, cks_v16u *mx)
{
    cks_v16f d = *x - *y;
    p->dd += d * d;
    p->aa += *x * *x;
    p->bb += *y * *y;
    p->ab += *x * *y;
    cks_v16u mag = (cks_v16u)d & 0x7fffffffu;
    cks_v_max32(mx, &mag);
}

/* 32 values at p widened to f32 in two vectors (the same split on both sides, so elements
 * stay paired); raw collects what a caller needs to find Inf and NaN (see half_block). */
typedef void (*half_load)(const unsigned char *p, cks_v16f *x0, cks_v16f *x1, cks_v32h *raw);

CKS_VINLINE void load_bf16(const unsigned char *p, cks_v16f *x0, cks_v16f *x1, cks_v32h *raw)
{
    cks_v16u w;
    cks_v_load(&w, p);
    cks_v_bf16x32(&w, x0, x1);
}

CKS_VINLINE void load_f16(const unsigned char *p, cks_v16f *x0, cks_v16f *x1, cks_v32h *raw)
{
    cks_v16u w;
    cks_v_load(&w, p);
    cks_v32h h = (cks_v32h)w & 0x7fff;
    cks_v_max16(raw, &h);
    cks_v_f16x32(&w, x0, x1);
}

/* n pairs (a multiple of 32 * HALF_RUN, at most VBLOCK) of 16-bit blocks at a and b, widened
 * by load; check_raw: load turns Inf and NaN into finite values, and raw holds the largest
 * F16 magnitude pattern seen. */
CKS_VINLINE int half_block(const unsigned char *a, const unsigned char *b, size_t n, half_load load,
                           int check_raw, acc *s)
{
    cks_v8d dd = {0}, aa = {0}, bb = {0}, ab = {0};
    cks_v16u mx = {0};
    cks_v32h raw = {0};
    for (size_t run = 0; run < n / (32 * HALF_RUN); run++) {
        half_part p0 = {{0}, {0}, {0}, {0}}, p1 = p0;
        for (int r = 0; r < HALF_RUN; r++) {
            size_t j = 64 * (HALF_RUN * run + (size_t)r);
            cks_v16f x0, x1, y0, y1;
            load(a + j, &x0, &x1, &raw);
            load(b + j, &y0, &y1, &raw);
            half_step(&p0, &x0, &y0, &mx);
            half_step(&p1, &x1, &y1, &mx);
        }
        cks_v_wsum(&dd, &p0.dd);
        cks_v_wsum(&dd, &p1.dd);
        cks_v_wsum(&aa, &p0.aa);
        cks_v_wsum(&aa, &p1.aa);
        cks_v_wsum(&bb, &p0.bb);
        cks_v_wsum(&bb, &p1.bb);
        cks_v_wsum(&ab, &p0.ab);
        cks_v_wsum(&ab, &p1.ab);
    }
    double tdd = cks_v_hsum(&dd), taa = cks_v_hsum(&aa), tbb = cks_v_hsum(&bb);
    double tab = cks_v_hsum(&ab);
    if (!isfinite(tdd + taa + tbb + tab) || (check_raw && cks_v_hmax16(&raw) >= 0x7c00u))
        return 1;
    uint32_t m = cks_v_hmax32(&mx);
    float fm;
    memcpy(&fm, &m, 4);
    s->dd += tdd;
    s->aa += taa;
    s->bb += tbb;
    s->ab += tab;
    s->amax = fm > s->amax ? fm : s->amax;
    return 0;
}

typedef int (*half_kernel)(const unsigned char *, const unsigned char *, size_t, acc *);

CKS_CLONES static int half_block_bf16(const unsigned char *a, const unsigned char *b, size_t n,
                                      acc *s)
{
    return half_block(a, b, n, load_bf16, 0, s);
}

/* Where the intrinsics below exist, this portable form serves only CPUs older than
 * x86-64-v3, so it is built once, for the baseline. */
#if defined(__x86_64__) && CKS_X86_CLONES
static int half_block_f16(const unsigned char *a, const unsigned char *b, size_t n, acc *s)
#else
CKS_CLONES static int half_block_f16(const unsigned char *a, const unsigned char *b, size_t n,
                                     acc *s)
#endif
{
    return half_block(a, b, n, load_f16, 1, s);
}

#if defined(__x86_64__) && CKS_X86_CLONES
/* Raw intrinsics, x86-64 only, for one measured reason: F16 pairs widened by simd.h's
 * portable shifts and multiply ran drift F16 at half the speed of the F16C/AVX-512
 * conversion instruction (bench_drift --mib 8 --threads 1, data in cache: 20-24 GB/s
 * against 43 GB/s, load 5 on 2 cores; GCC 12 converts _Float16 vectors one element at a
 * time, so the instruction is reached only through these). The instruction converts Inf
 * and NaN exactly: the sums carry them and no raw check is needed. */
#include <immintrin.h>

__attribute__((target("arch=x86-64-v4"), always_inline)) static inline void
load_f16_v4(const unsigned char *p, cks_v16f *x0, cks_v16f *x1, cks_v32h *raw)
{
    *x0 = (cks_v16f)_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
    *x1 = (cks_v16f)_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p + 32)));
}

__attribute__((target("arch=x86-64-v3"), always_inline)) static inline void
load_f16_v3(const unsigned char *p, cks_v16f *x0, cks_v16f *x1, cks_v32h *raw)
{
    typedef float v8f __attribute__((vector_size(32)));
    v8f q[4];
    for (int k = 0; k < 4; k++)
        q[k] = (v8f)_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + 16 * k)));
    *x0 = __builtin_shufflevector(q[0], q[1], 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    *x1 = __builtin_shufflevector(q[2], q[3], 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
}

__attribute__((target("arch=x86-64-v4"))) static int
half_block_f16_v4(const unsigned char *a, const unsigned char *b, size_t n, acc *s)
{
    return half_block(a, b, n, load_f16_v4, 0, s);
}

__attribute__((target("arch=x86-64-v3"))) static int
half_block_f16_v3(const unsigned char *a, const unsigned char *b, size_t n, acc *s)
{
    return half_block(a, b, n, load_f16_v3, 0, s);
}
#endif

static half_kernel half_kernel_for(cks_dtype dt)
{
    if (dt == CKS_DT_BF16)
        return half_block_bf16;
#if defined(__x86_64__) && CKS_X86_CLONES
    if (__builtin_cpu_supports("x86-64-v4"))
        return half_block_f16_v4;
    if (__builtin_cpu_supports("x86-64-v3"))
        return half_block_f16_v3;
#endif
    return half_block_f16;
}

/* Whole runs of a same-dtype 16-bit pair in blocks of up to VBLOCK; returns the number of
 * elements consumed (the caller finishes the rest, fewer than 32 * HALF_RUN). A failed
 * block is widened and summed again in f64, BLOCK pairs at a time. */
static size_t half_pairs(const unsigned char *a, const unsigned char *b, size_t n, cks_dtype dt,
                         acc *s)
{
    half_kernel block = half_kernel_for(dt);
    size_t i = 0, whole = n - n % (32 * HALF_RUN);
    while (i < whole) {
        size_t k = whole - i < VBLOCK ? whole - i : VBLOCK;
        if (block(a + 2 * i, b + 2 * i, k, s)) {
            float fa[BLOCK], fb[BLOCK];
            for (size_t j = 0; j < k; j += BLOCK) {
                size_t m = k - j < BLOCK ? k - j : BLOCK;
                cks_widen_f32(dt, a + 2 * (i + j), fa, m);
                cks_widen_f32(dt, b + 2 * (i + j), fb, m);
                kernel_f32(fa, fb, m, s);
            }
        }
        i += k;
    }
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
    if (!wide && t->dtype == r->dtype && (t->dtype == CKS_DT_BF16 || t->dtype == CKS_DT_F16))
        /* the remaining < 256 elements take the general path */
        lo += (int64_t)half_pairs(pa + (size_t)lo * 2, pb + (size_t)lo * 2, (size_t)(hi - lo),
                                  t->dtype, s);
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
