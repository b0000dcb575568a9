/* Vectorised row kernels of the forward pass: exp, softmax, SiLU-gating and logsumexp.
 *
 * exp is Cephes' expf (Moshier, Cephes Math Library: range reduction by ln 2 in two parts,
 * degree-6 polynomial), relative error about 2e-7; it is written so the compiler
 * vectorises it (glibc's scalar expf would cost a fifth of a forward pass in the softmax,
 * SwiGLU and the vocabulary logsumexp). Arguments below -87.34 give 0, above 88.376 they
 * are clamped (exp(88.376) = 2.4e38, finite); NaN stays NaN. */
#ifndef CKS_VMATH_H
#define CKS_VMATH_H

#include <stdint.h>

/* x[i] = exp(x[i]) for i < n. */
void cks_vexp(float *x, int64_t n);

/* In place softmax of x[0..n), computed like torch.softmax in float32: subtract the
 * maximum, exponentiate, divide by the sum (accumulated in double). n >= 1. */
void cks_vsoftmax(float *x, int64_t n);

/* g[i] = silu(g[i]) * u[i] = g / (1 + exp(-g)) * u  (LLaMA's SwiGLU, act_fn(gate) * up). */
void cks_vswiglu(float *g, const float *u, int64_t n);

/* max of x[0..n), n >= 1 (NaN elements are skipped; they reach the sums below). */
float cks_vmax(const float *x, int64_t n);

/* sum(exp(x[i] - m)) for i < n: terms in float, summed in double blocks. */
double cks_vsumexp(const float *x, int64_t n, float m);

/* log(sum(exp(x[0..n)))) in double: max subtracted, terms exp'd in float, summed in
 * double. n >= 1; x is not modified. */
double cks_vlogsumexp(const float *x, int64_t n);

/* sum of x[i] * y[i] for i < n, in float (the order of a vectorised reduction). */
float cks_vdot(const float *x, const float *y, int64_t n);

/* y[i] += a * x[i] for i < n. */
void cks_vaxpy(float a, const float *x, float *y, int64_t n);

#endif
