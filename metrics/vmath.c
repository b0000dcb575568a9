/* Vectorised exp and the row kernels built on it (see vmath.h). The loops are written for
 * the compiler to vectorise; on x86-64 each is compiled for AVX-512, AVX2 and the baseline
 * (simd.h's CKS_CLONES) and the best one is picked at load time, since the project builds
 * without -march. */
#include "vmath.h"
#include "simd.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#define EXP_BLOCK 256

/* Cephes expf. Inputs are clamped to [-87.34, 88.38] (so 2^n stays a normal float and
 * the result finite); below -87.34 the result is 0 and NaN stays NaN (a model with NaN
 * weights must not report a number). Branch-free so that the loops calling it vectorise
 * (vmath.c is compiled with -fno-trapping-math, which lets GCC turn the selects into
 * blends). */
static inline float exp_one(float in)
{
    const float lo = -87.3365447505531f, hi = 88.3762626647949f;
    float x = in > lo ? in : lo; /* NaN becomes lo here and is restored at the end */
    x = x < hi ? x : hi;
    float fx = floorf(x * 1.44269504088896341f + 0.5f); /* n = round(x / ln 2) */
    x = x - fx * 0.693359375f;                          /* x - n ln 2, in two parts */
    x = x - fx * -2.12194440e-4f;
    float z = x * x;
    float y = 1.9875691500e-4f;
    y = y * x + 1.3981999507e-3f;
    y = y * x + 8.3334519073e-3f;
    y = y * x + 4.1665795894e-2f;
    y = y * x + 1.6666665459e-1f;
    y = y * x + 5.0000001201e-1f;
    y = y * z + x + 1.0f;
    uint32_t b = (uint32_t)((int32_t)fx + 127) << 23; /* 2^n, n in [-126, 127] */
    float p;
    memcpy(&p, &b, 4);
    float r = in < lo ? 0.0f : y * p;
    return in == in ? r : in;
}

CKS_CLONES void cks_vexp(float *x, int64_t n)
{
#pragma omp simd
    for (int64_t i = 0; i < n; i++)
        x[i] = exp_one(x[i]);
}

CKS_CLONES float cks_vmax(const float *x, int64_t n)
{
    float m = x[0];
#pragma omp simd reduction(max : m)
    for (int64_t i = 0; i < n; i++)
        m = x[i] > m ? x[i] : m;
    return m;
}

/* exp(x[i] - m) into y (may alias x) and their sum: float lanes within a block, blocks
 * summed in double. */
CKS_CLONES static double exp_shift_sum(const float *x, float *y, int64_t n, float m)
{
    double total = 0;
    for (int64_t b = 0; b < n; b += EXP_BLOCK) {
        int64_t k = n - b < EXP_BLOCK ? n - b : EXP_BLOCK;
        float s = 0;
#pragma omp simd reduction(+ : s)
        for (int64_t i = 0; i < k; i++) {
            float v = exp_one(x[b + i] - m);
            y[b + i] = v;
            s += v;
        }
        total += s;
    }
    return total;
}

CKS_CLONES void cks_vsoftmax(float *x, int64_t n)
{
    float m = cks_vmax(x, n);
    double sum = exp_shift_sum(x, x, n, m);
    float inv = (float)(1.0 / sum);
#pragma omp simd
    for (int64_t i = 0; i < n; i++)
        x[i] *= inv;
}

CKS_CLONES void cks_vswiglu(float *g, const float *u, int64_t n)
{
#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        float v = g[i];
        g[i] = v / (1.0f + exp_one(-v)) * u[i];
    }
}

CKS_CLONES double cks_vsumexp(const float *x, int64_t n, float m)
{
    double total = 0;
    for (int64_t b = 0; b < n; b += EXP_BLOCK) {
        int64_t k = n - b < EXP_BLOCK ? n - b : EXP_BLOCK;
        float s = 0;
#pragma omp simd reduction(+ : s)
        for (int64_t i = 0; i < k; i++)
            s += exp_one(x[b + i] - m);
        total += s;
    }
    return total;
}

double cks_vlogsumexp(const float *x, int64_t n)
{
    float m = cks_vmax(x, n);
    return (double)m + log(cks_vsumexp(x, n, m));
}

CKS_CLONES float cks_vdot(const float *x, const float *y, int64_t n)
{
    float d = 0;
#pragma omp simd reduction(+ : d)
    for (int64_t i = 0; i < n; i++)
        d += x[i] * y[i];
    return d;
}

CKS_CLONES void cks_vaxpy(float a, const float *x, float *y, int64_t n)
{
#pragma omp simd
    for (int64_t i = 0; i < n; i++)
        y[i] += a * x[i];
}
