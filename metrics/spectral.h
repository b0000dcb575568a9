/* TEMPORARY COPY (branch runfile): the API of metrics/spectral.h that the spectral branch
 * implements, so that `scan --metrics spectral` compiles before that branch is merged.
 * The spectral branch's header replaces this file; it should take cks_metric_info from
 * metric_info.h (shared with norms.h and drift.h) rather than define it again. */
#ifndef CKS_SPECTRAL_H
#define CKS_SPECTRAL_H

#include "metric_info.h"
#include "tensor.h"

#include <stddef.h>
#include <stdint.h>

typedef struct {
    double sigma_max, log_spectral_norm, log_norm, stable_rank, entropy, effective_rank;
    double alpha, xmin, ks, alpha_weighted, mp_softrank;
    int64_t tail, num_spikes;
} cks_spectral;

int cks_spectral_compute(const cks_tensor *t, int nthreads, int ntop, float *top,
                         cks_spectral *out);

const cks_metric_info *cks_spectral_metrics(size_t *count);

#endif
