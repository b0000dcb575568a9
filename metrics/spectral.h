/* Spectral statistics of a weight matrix (DESIGN §3, following WeightWatcher's
 * definitions). For W (m×n) with λ_i = σ_i² the min(m, n) eigenvalues of WᵀW:
 *   sigma_max = σ1; log_spectral_norm = log10 λ1; log_norm = log10 ||W||_F²;
 *   stable_rank = ||W||_F² / λ1;
 *   entropy = -Σ p_i ln p_i / ln R, p_i = λ_i / Σλ over the R nonzero λ (NaN when R < 2);
 *   effective_rank = exp(-Σ q_i ln q_i), q_i = σ_i / Σσ (Roy & Vetterli 2007);
 *   alpha, xmin, ks, tail: the power-law fit of powerlaw.h over the nonzero λ (NaN, tail 0,
 *     when min(m, n) < 10 or no candidate xmin has a tail of 10); alpha_weighted = α·log10 λ1;
 *   num_spikes = #{λ > λ+}, λ+ = (||W||_F² / (m·n))·(√m + √n)² (Marchenko–Pastur edge);
 *   mp_softrank = λ+ / λ1.
 * "Nonzero", exactly: λ > λ1·max(m, n)·2⁻⁵². Below that an eigenvalue computed from the
 * Gram matrix is rounding noise (σ < σ1·√(max(m,n)·ε), ~1.5e-6·σ1 at n = 11008), so it
 * counts as zero for entropy, effective_rank and the fit. When λ1 = 0 (W = 0) every
 * value but sigma_max = 0 and num_spikes = 0 is NaN. */
#ifndef CKS_SPECTRAL_H
#define CKS_SPECTRAL_H

#include "metric_info.h"
#include "tensor.h"

#include <stddef.h>
#include <stdint.h>

typedef struct {
    double sigma_max, log_spectral_norm, log_norm, stable_rank, entropy, effective_rank;
    double alpha, xmin, ks, alpha_weighted, mp_softrank;
    int64_t tail, num_spikes; /* tail = k of the power-law fit */
} cks_spectral;

/* Spectral statistics of a 2-D float tensor (DESIGN §3). top (may be NULL) receives the
   ntop largest eigenvalues λ=σ² in descending order (NaN-padded when fewer). Values that
   cannot be computed (e.g. alpha when min(m,n) < 10) are NaN. nthreads bounds the BLAS/LAPACK
   and OpenMP threads used. CKS_EUNSUPPORTED for non-matrices. */
int cks_spectral_compute(const cks_tensor *t, int nthreads, int ntop, float *top,
                         cks_spectral *out);
/* The same from given eigenvalues (any order), for tests and for callers that have them. */
int cks_spectral_from_eigs(const double *lambda, int64_t n, int64_t rows, int64_t cols, double fro2,
                           cks_spectral *out);
/* Names, descriptions and units of the metrics, for the run file and reports: */
const cks_metric_info *cks_spectral_metrics(size_t *count); /* in the order of DESIGN §3 */

/* Details of the contract above:
 * - cks_spectral_compute: a tensor holding NaN or Inf has no spectrum: every value is NaN
 *   (tail and num_spikes 0, top all NaN) and the call succeeds, so that a scan goes on;
 *   the norms count such elements. Other errors: CKS_ELIMIT (see CKS_SPECTRAL_MAX_SIDE in
 *   esd.h), CKS_ENOMEM, CKS_ERROR (LAPACK failed). ntop < 0 is CKS_EINVAL.
 * - cks_spectral_from_eigs: n <= min(rows, cols) eigenvalues; the missing ones are zeros.
 *   fro2 = ||W||_F² when the caller knows it; NaN or <= 0 means Σλ. Negative eigenvalues
 *   within the rounding tolerance above count as zero; NaN, Inf or a clearly negative value
 *   is CKS_EINVAL. nthreads for the fit: one.
 * - Info strings are static; unit is "" for dimensionless values. */

/* Metric i (0 <= i < count, the order of cks_spectral_metrics) as a double, for writers of
 * one column per metric: tail and num_spikes as numbers; tail is NaN when there is no fit
 * and num_spikes NaN when there is no spectrum (sigma_max NaN). NaN for i >= count. */
double cks_spectral_value(const cks_spectral *s, size_t i);

#endif
