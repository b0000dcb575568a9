/* Streaming norms. Each thread takes contiguous chunks; within a chunk elements are
 * widened to f32 in cache-sized blocks and accumulated in f64 around a common shift c
 * (the first element), which keeps the variance free of catastrophic cancellation when
 * |mean| >> std (RMSNorm weights near 1). Kernels are cloned for AVX-512/AVX2. */
#include "norms.h"
#include "error.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#define BLOCK 2048          /* elements widened at a time: 8 KiB of f32, stays in L1 */
#define CHUNK (1 << 20)     /* elements per scheduling unit between threads */

typedef struct {
    double s1, s2, amax;
    int64_t nan, inf, n;
} acc;

__attribute__((target_clones("avx512f", "avx2", "default"))) static void
kernel(const float *x, size_t n, float c, acc *a)
{
    /* 8 lanes of independent f64 partial sums so the compiler can vectorise */
    double s1[8] = {0}, s2[8] = {0};
    float amax[8] = {0};
    int64_t nnan = 0, ninf = 0, nfin = 0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        for (int l = 0; l < 8; l++) {
            float v = x[i + l];
            float av = fabsf(v);
            int fin = av <= 3.402823466e38f; /* false for NaN and Inf */
            float d = fin ? v - c : 0.0f;
            double dd = d;
            s1[l] += dd;
            s2[l] += dd * dd;
            amax[l] = fin && av > amax[l] ? av : amax[l];
            nnan += v != v;
            ninf += av == INFINITY;
            nfin += fin;
        }
    }
    for (; i < n; i++) {
        float v = x[i], av = fabsf(v);
        int fin = av <= 3.402823466e38f;
        float d = fin ? v - c : 0.0f;
        s1[0] += d;
        s2[0] += (double)d * d;
        amax[0] = fin && av > amax[0] ? av : amax[0];
        nnan += v != v;
        ninf += av == INFINITY;
        nfin += fin;
    }
    for (int l = 0; l < 8; l++) {
        a->s1 += s1[l];
        a->s2 += s2[l];
        if (amax[l] > a->amax)
            a->amax = amax[l];
    }
    a->nan += nnan;
    a->inf += ninf;
    a->n += nfin;
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

static void run_chunk(const cks_tensor *t, int64_t lo, int64_t hi, float c, acc *a)
{
    size_t es = cks_dtype_size(t->dtype);
    const unsigned char *base = t->data;
    float buf[BLOCK];
    if (t->dtype == CKS_DT_F32 && ((uintptr_t)base & 3) == 0) {
        kernel((const float *)base + lo, (size_t)(hi - lo), c, a);
        return;
    }
    for (int64_t i = lo; i < hi; i += BLOCK) {
        size_t k = (size_t)(hi - i < BLOCK ? hi - i : BLOCK);
        cks_widen_f32(t->dtype, base + (size_t)i * es, buf, k);
        kernel(buf, k, c, a);
    }
}

int cks_norms_compute(const cks_tensor *t, int nthreads, cks_norms *out)
{
    if (!cks_dtype_is_float(t->dtype))
        return cks_error_set(CKS_EUNSUPPORTED, "tensor '%s': norms need a float dtype, not %s",
                             t->name, cks_dtype_name(t->dtype));
    /* shift by the first finite element (scan at most a few; 0 if none) */
    float c = 0.0f;
    {
        float probe[64];
        size_t k = t->numel < 64 ? (size_t)t->numel : 64;
        cks_widen_f32(t->dtype, t->data, probe, k);
        for (size_t i = 0; i < k; i++) {
            if (isfinite(probe[i])) {
                c = probe[i];
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
        double m1 = total.s1 / nn;               /* mean of (x - c) */
        double var = total.s2 / nn - m1 * m1;     /* shift-invariant */
        if (var < 0)
            var = 0;
        r.mean = c + m1;
        r.std = sqrt(var);
        /* sum x^2 = sum (d + c)^2 = s2 + 2 c s1 + n c^2 */
        double ss = total.s2 + 2.0 * c * total.s1 + nn * (double)c * c;
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
