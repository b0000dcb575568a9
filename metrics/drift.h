/* Drift of one tensor between two checkpoints (DESIGN §3): W_t at step t against a
 * reference W_r at step r (the previous complete checkpoint, or a fixed one).
 *
 *   rel_fro           = ||W_t - W_r||_F / ||W_r||_F
 *   cos               = <W_t, W_r> / (||W_t||_F ||W_r||_F)
 *   absmax_delta      = max_i |W_t[i] - W_r[i]|
 *   rel_fro_per_kstep = rel_fro * 1000 / (step_t - step_r)   (DESIGN's formula as
 *                       written: negative when the reference is the later checkpoint)
 *
 * One streaming pass over both mapped views: blocks are widened to f32 (f64 when either
 * side is stored as F64) and every sum is accumulated in f64, so neither tensor is ever
 * materialised. Two tensors in the same 16-bit dtype take partial sums over 256-element
 * runs in f32 first (relative error below 2^-20, far under their stored precision). Work is split
 * in fixed chunks whose partial sums are added in chunk order: the result does not depend on the
 * number of threads or on scheduling. */
#ifndef CKS_DRIFT_H
#define CKS_DRIFT_H

#include "metric_info.h"
#include "tensor.h"

#include <stdint.h>

typedef struct {
    double rel_fro;
    double cos;
    double absmax_delta;
    double rel_fro_per_kstep; /* NaN when the steps are equal or either is unknown (< 0) */
    double diff_fro;          /* ||W_t - W_r||_F */
    double fro_t, fro_r;      /* ||W_t||_F, ||W_r||_F */
} cks_drift;

/* Drift of t against r with up to nthreads threads (<= 0: one). The tensors must have the
 * same shape (CKS_EFORMAT naming both shapes otherwise) and float dtypes, which may differ
 * (each side is widened; CKS_EUNSUPPORTED for integer dtypes). Values that cannot be
 * computed are NaN, never a made-up number: all of them when either side holds a NaN or
 * Inf element; rel_fro when ||W_r|| = 0; cos when either norm is 0. Messages name the
 * tensor; the caller adds the checkpoints. */
int cks_drift_compute(const cks_tensor *t, int64_t step_t, const cks_tensor *r, int64_t step_r,
                      int nthreads, cks_drift *out);

/* The names, descriptions and units of the values cks_drift_values writes, in order:
 * rel_fro, cos, absmax_delta, rel_fro_per_kstep. Static storage. */
const cks_metric_info *cks_drift_metrics(size_t *count);
/* Writes the cks_drift_metrics() values of d into out[count]. */
void cks_drift_values(const cks_drift *d, double *out);

#endif
