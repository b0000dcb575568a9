/* Per-tensor norms (DESIGN §3), one streaming pass in f64 accumulators.
 * Norms are taken over the finite elements; NaN and Inf elements are counted apart, so a
 * single bad value does not hide the statistics of the rest. */
#ifndef CKS_NORMS_H
#define CKS_NORMS_H

#include "metric_info.h"
#include "tensor.h"

#include <stdint.h>

typedef struct {
    double fro; /* sqrt(sum x^2) */
    double rms; /* fro / sqrt(n) */
    double mean;
    double std; /* population standard deviation */
    double absmax;
    int64_t nan;
    int64_t inf;
    int64_t count; /* finite elements used */
} cks_norms;

/* Computes the norms of a float tensor with up to nthreads threads (<= 0: one).
 * CKS_EUNSUPPORTED for non-float dtypes. Values are NaN when no element is finite. */
int cks_norms_compute(const cks_tensor *t, int nthreads, cks_norms *out);

/* The names, descriptions and units of the values cks_norms_values writes, in order:
 * fro, rms, mean, std, absmax, nan, inf (DESIGN §3). Static storage. */
const cks_metric_info *cks_norms_metrics(size_t *count);
/* Writes the cks_norms_metrics() values of n into out[count] (counts as doubles). */
void cks_norms_values(const cks_norms *n, double *out);

#endif
