/* A set's function-space comparison of checkpoint t with a base c (DESIGN §3, §4, §8):
 * the per-position results of klrow.h aggregated over every scored position of the set,
 * in scoring order (documents, then positions), the same positions and windows for both.
 *
 *   kl                 mean of the per-position KL(P_c || P_t)
 *   kl_p50/p90/p99     its percentiles, gsl_stats_quantile_from_sorted_data (numpy's linear)
 *   kl_max             its maximum
 *   top1_agree         fraction of positions where arg_c == arg_t (ties: lowest id)
 *   forgot             fraction where arg_c == y and arg_t != y (Toneva et al. 2019)
 *   learned            fraction where arg_t == y and arg_c != y
 *   dnll               mean of nll_t − nll_c
 *   dnll_lo, dnll_hi   its 95 % block-bootstrap interval (bootstrap.h; blocks per document)
 *   top1_acc           fraction where arg_t == y (t alone; also what `ppl` reports)
 *   top1_acc_base      the same for c
 * Fractions are over all scored positions. Means are summed in float64 in scoring order.
 * A NaN kl (a broken model) makes kl and its percentiles NaN; a NaN nll makes dnll and its
 * interval NaN; with no positions every value is NaN. */
#ifndef CKS_KLSUM_H
#define CKS_KLSUM_H

#include "bootstrap.h"
#include "klrow.h"

#include <stdint.h>

typedef struct {
    int64_t positions;
    double kl, kl_p50, kl_p90, kl_p99, kl_max;
    double top1_agree, forgot, learned;
    double dnll, dnll_lo, dnll_hi;
    double top1_acc, top1_acc_base;
} cks_klsummary;

/* Aggregates pos[0..n): doc_npos[d] positions belong to document d, in order (Σ = n, else
 * CKS_EINVAL; they set the bootstrap's blocks). boot NULL: DESIGN's bootstrap. Errors:
 * the bootstrap's; no memory. */
int cks_klsummary_compute(cks_klsummary *out, const cks_klpos *pos, int64_t n,
                          const int64_t *doc_npos, int64_t ndocs, const cks_boot_options *boot);

#endif
