/* The metric families `scan` writes, as one table: each family is a run-file group
 * ("/norms", "/drift/prev", ...) holding one [N, T] dataset per metric name, filled for one
 * tensor at a time by its compute function. Adding a family (ppl, a new statistic) is one
 * table row in scan_metrics.c; `--metrics` names families by their option name. */
#ifndef CKS_SCAN_METRICS_H
#define CKS_SCAN_METRICS_H

#include "metric_info.h"
#include "tensor.h"

#include <stddef.h>
#include <stdint.h>

#define SCAN_MAX_GROUPS 16
#define SCAN_SPECTRA_K  256 /* largest eigenvalues kept per matrix in /spectra/<tensor> */

/* One tensor of the checkpoint being scanned, and the same tensor in the drift
 * references (NULL when there is none, e.g. the first complete checkpoint). */
typedef struct {
    const cks_tensor *t;
    int64_t step;
    const cks_tensor *prev, *ref;
    int64_t prev_step, ref_step;
    int threads;
    float *top;   /* SCAN_SPECTRA_K floats, NaN-filled by the caller */
    int *has_top; /* set to 1 by a family that filled top */
} scan_input;

typedef struct {
    const char *option; /* its name in --metrics ("drift" enables two groups) */
    const char *path;   /* group in the run file */
    /* names, descriptions and units, in the order compute writes them; NULL when the
     * family is not built into this binary */
    const cks_metric_info *(*metrics)(size_t *count);
    /* Writes count values for in->t (NaN where a value does not apply). A non-zero
     * return (message set) leaves them NaN; scan reports it as a warning. NULL for a
     * family computed once per checkpoint rather than per tensor (ppl: scan_ppl.c). */
    int (*compute)(const scan_input *in, double *out);
} scan_group;

/* The whole table, in run-file order. */
const scan_group *scan_groups(size_t *n);

/* Parses a comma-separated list of family names into the enabled groups (in table order)
 * and a canonical spelling of the list (table order, no duplicates) into canon[cap].
 * CKS_EINVAL with a message naming an unknown or unavailable name and the known ones. */
int scan_groups_parse(const char *list, const scan_group **out, size_t *n, char *canon, size_t cap);

/* Every per-tensor family built into this binary, comma-separated (the default of
 * --metrics; ppl joins it when --eval is given). */
const char *scan_default_metrics(void);

#endif
