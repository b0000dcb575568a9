/* What ckptscope knows about score names: whether higher or lower is better, whether a
 * value is a proportion of n independent trials (so its binomial standard error can be
 * computed from n), and a unit. One table for the lm-eval-harness metrics imported into
 * /evals/<task>/<metric> and one for the built-in perplexity series /eval/<set>/<metric>.
 *
 * Directions follow lm-eval-harness's own higher_is_better tables (v0.3 task classes,
 * v0.4 metric registry): e.g. crows_pairs' likelihood_difference and pct_stereotype are
 * "lower is better" there, and so here. A name not in the tables has no direction: the
 * gate says so ("direction unknown") instead of guessing. */
#ifndef CKS_EVAL_METRICS_H
#define CKS_EVAL_METRICS_H

#include <stddef.h>

typedef enum {
    CKS_DIR_UNKNOWN = 0,
    CKS_DIR_HIGHER, /* higher is better */
    CKS_DIR_LOWER,  /* lower is better */
    CKS_DIR_EQUAL   /* must not change beyond the tolerance either way (reproducibility) */
} cks_direction;

typedef struct {
    const char *name;
    cks_direction direction;
    int binomial;     /* a fraction of n independent 0/1 outcomes (acc, exact_match, ...) */
    const char *unit; /* NULL when none applies */
    const char *what; /* a few words for the dataset's description attribute */
} cks_eval_metric_info;

/* The entry of an lm-eval metric name; a filter suffix (",strict-match") is ignored.
 * NULL when the name is not known. The entry is static. */
const cks_eval_metric_info *cks_eval_metric_lookup(const char *metric);

/* The built-in perplexity series (nll, ppl, bpb, tokens, top1_acc) in the order scan writes them:
 * the one table of their units and descriptions. The entries are static. */
const cks_eval_metric_info *cks_ppl_metrics(size_t *count);
/* The entry of a built-in perplexity series name; NULL otherwise. */
const cks_eval_metric_info *cks_ppl_metric_lookup(const char *name);

/* "higher", "lower", "equal", "unknown". */
const char *cks_direction_name(cks_direction d);
/* Parses "higher"/"lower"/"equal" (also "higher_is_better"-style "true"/"false");
 * -1 when s is none of them. */
int cks_direction_parse(const char *s, cks_direction *out);

#endif
