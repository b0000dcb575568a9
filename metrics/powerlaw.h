/* Power-law fit of the tail of a positive sample, exactly as DESIGN §3 defines it
 * (continuous maximum likelihood with xmin chosen by the minimum Kolmogorov-Smirnov
 * distance: Clauset, Shalizi & Newman 2009, SIAM Review 51:661, §3.1 and §3.3).
 *
 * For a candidate xmin the tail is every x >= xmin, x_1 <= ... <= x_k;
 *   alpha = 1 + k / sum ln(x_i / xmin),  F(x) = 1 - (x / xmin)^(1 - alpha),
 *   D = max_i max(|i/k - F(x_i)|, |(i-1)/k - F(x_i)|).
 * Candidates are the distinct values whose tail has k >= CKS_POWERLAW_MIN_TAIL; a
 * candidate whose tail is one repeated value has no MLE (the sum is 0) and is skipped.
 * The smallest D wins; on equal D the smaller xmin. */
#ifndef CKS_POWERLAW_H
#define CKS_POWERLAW_H

#include <stdint.h>

#define CKS_POWERLAW_MIN_TAIL 10

typedef struct {
    double alpha, xmin, ks; /* NaN when there is no candidate */
    int64_t tail;           /* k of the winning candidate; 0 when none */
} cks_powerlaw;

/* Fits x[0..n), which must be positive, finite and ascending (CKS_EINVAL otherwise).
 * nthreads (<= 0: one) bounds the OpenMP threads of the KS scan. Allocates 2n doubles
 * of scratch (CKS_ENOMEM). */
int cks_powerlaw_fit(const double *x, int64_t n, int nthreads, cks_powerlaw *out);

#endif
