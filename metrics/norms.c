/* Streaming norms. Each thread takes contiguous chunks; within a chunk elements are
 * accumulated in f64 around a common shift c (the first element, rounded to the stored
 * precision), which keeps the variance free of catastrophic cancellation when |mean| >>
 * std (RMSNorm weights near 1). The vector kernels (simd.h) sum a block of up to VBLOCK
 * elements without looking at single lanes and check the block afterwards; a block that
 * held a NaN or Inf (or whose 16-bit partial sums overflowed) is done again by the scalar
 * kernel, which classifies every element. */
#include "norms.h"
#include "error.h"
#include "simd.h"

#include <float.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* BLOCK: elements widened at a time (8 KiB of f32 stays in L1). VBLOCK: elements a vector
 * kernel sums before it checks them (the check, some 60 instructions, is lost in the sums).
 * CHUNK: elements per scheduling unit between threads. */
#define BLOCK  2048
#define VBLOCK 16384
#define CHUNK  (1 << 20)

typedef struct {
    double s1, s2, amax;
    int64_t nan, inf, n;
} acc;

/* The classifying kernel: every element finite or counted as NaN or Inf. The vector
 * kernels below compute the same sums of the finite blocks in another order. */
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

/* n <= VBLOCK f32 values summed in f64 lanes (16 per step, two accumulator pairs to hide
 * the add latency) and their largest magnitude as bits; returns 1, adding nothing, when
 * one of them is NaN or Inf (magnitude bits above FLT_MAX's). */
CKS_CLONES static int block_f32(const float *x, size_t n, double c, acc *a)
{
    const cks_v8d cc = (cks_v8d){0} + c;
    cks_v8d s1a = {0}, s1b = {0}, s2a = {0}, s2b = {0};
    cks_v16u mx = {0};
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        cks_v16u raw;
        cks_v_load(&raw, x + i);
        cks_v16f v = (cks_v16f)raw;
        cks_v16u mag = raw & 0x7fffffffu;
        cks_v_max32(&mx, &mag);
        cks_v8d dl, dh;
        cks_v_widen2(&v, &dl, &dh);
        dl -= cc;
        dh -= cc;
        s1a += dl;
        s1b += dh;
        s2a += dl * dl;
        s2b += dh * dh;
    }
    uint32_t m = cks_v_hmax32(&mx);
    for (size_t j = i; j < n; j++) {
        uint32_t b;
        memcpy(&b, x + j, 4);
        m = (b & 0x7fffffffu) > m ? b & 0x7fffffffu : m;
    }
    if (m > 0x7f7fffffu)
        return 1;
    s1a += s1b;
    s2a += s2b;
    double t1 = cks_v_hsum(&s1a), t2 = cks_v_hsum(&s2a);
    for (; i < n; i++) {
        double d = (double)x[i] - c;
        t1 += d;
        t2 += d * d;
    }
    float fm;
    memcpy(&fm, &m, 4);
    a->s1 += t1;
    a->s2 += t2;
    a->amax = fm > a->amax ? fm : a->amax;
    a->n += (int64_t)n;
    return 0;
}

static void kernel(const float *x, size_t n, double c, acc *a)
{
    for (size_t i = 0; i < n; i += VBLOCK) {
        size_t k = n - i < VBLOCK ? n - i : VBLOCK;
        if (block_f32(x + i, k, c, a))
            kernel_scalar(x + i, k, c, a);
    }
}

/* 16-bit dtypes (BF16, F16): widening fused into the loop, and partial sums over runs of
 * RUN vectors taken in f32 before they are added in f64. Converting every element to f64
 * makes these kernels compute-bound at half the memory bandwidth; each f32 lane adds
 * RUN values, so a partial carries a relative error below RUN * 2^-24 = 2^-21 of the sum
 * of its terms' magnitudes, far under the stored precision (2^-8 for BF16, 2^-11 for
 * F16). Lanes are not classified: the largest magnitude is taken on the raw 16-bit
 * patterns, whose order is the values' (Inf and NaN above every finite one), and a block
 * whose maximum is Inf or NaN, or whose sums are not finite (an f32 partial overflowed:
 * |x - c| above 2^64), is widened and done again by the scalar kernel. */
#define RUN 8

/* n values (a multiple of 32 * RUN, at most VBLOCK) of a 16-bit block at s. */
CKS_VINLINE int block_half(const unsigned char *s, size_t n, int bf, double c, acc *a)
{
    const cks_v16f cf = (cks_v16f){0} + (float)c;
    cks_v8d s1 = {0}, s2 = {0};
    cks_v32h mx = {0};
    for (size_t run = 0; run < n / (32 * RUN); run++) {
        cks_v16f p1a = {0}, p1b = {0}, p2a = {0}, p2b = {0};
        for (int r = 0; r < RUN; r++) {
            cks_v16u w;
            cks_v_load(&w, s + 64 * (RUN * run + (size_t)r));
            cks_v32h h = (cks_v32h)w & 0x7fff;
            cks_v_max16(&mx, &h);
            cks_v16f va, vb;
            if (bf)
                cks_v_bf16x32(&w, &va, &vb);
            else
                cks_v_f16x32(&w, &va, &vb);
            cks_v16f da = va - cf, db = vb - cf;
            p1a += da;
            p1b += db;
            p2a += da * da;
            p2b += db * db;
        }
        cks_v_wsum(&s1, &p1a);
        cks_v_wsum(&s1, &p1b);
        cks_v_wsum(&s2, &p2a);
        cks_v_wsum(&s2, &p2b);
    }
    uint32_t m = cks_v_hmax16(&mx);
    double t1 = cks_v_hsum(&s1), t2 = cks_v_hsum(&s2);
    if (m >= (bf ? 0x7f80u : 0x7c00u) || !isfinite(t1 + t2))
        return 1;
    float fm = bf ? cks_bf16_to_f32((uint16_t)m) : cks_f16_to_f32((uint16_t)m);
    a->s1 += t1;
    a->s2 += t2;
    a->amax = fm > a->amax ? fm : a->amax;
    a->n += (int64_t)n;
    return 0;
}

/* Whole runs of a 16-bit tensor in blocks of up to VBLOCK; returns how many values it
 * took (the caller does the rest, fewer than 32 * RUN). A failed block is widened and
 * done again by the scalar kernel, BLOCK values at a time. */
static size_t half_blocks(const unsigned char *s, size_t n, cks_dtype dt, double c, acc *a,
                          int (*block)(const unsigned char *, size_t, double, acc *))
{
    size_t i = 0, whole = n - n % (32 * RUN);
    while (i < whole) {
        size_t k = whole - i < VBLOCK ? whole - i : VBLOCK;
        if (block(s + 2 * i, k, c, a)) {
            float tmp[BLOCK];
            for (size_t j = 0; j < k; j += BLOCK) {
                size_t m = k - j < BLOCK ? k - j : BLOCK;
                cks_widen_f32(dt, s + 2 * (i + j), tmp, m);
                kernel_scalar(tmp, m, c, a);
            }
        }
        i += k;
    }
    return i;
}

CKS_CLONES static int block_bf16(const unsigned char *s, size_t n, double c, acc *a)
{
    return block_half(s, n, 1, c, a);
}

CKS_CLONES static int block_f16(const unsigned char *s, size_t n, double c, acc *a)
{
    return block_half(s, n, 0, c, a);
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
    if (t->dtype == CKS_DT_BF16 || t->dtype == CKS_DT_F16)
        lo += (int64_t)half_blocks(base + (size_t)lo * 2, (size_t)(hi - lo), t->dtype, c, a,
                                   t->dtype == CKS_DT_BF16 ? block_bf16 : block_f16);
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
