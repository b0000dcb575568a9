/* The regression gate's decision for one score: a value at the checkpoint under test
 * against a reference value (the previous checkpoint or a pinned baseline), given the
 * score's direction and a tolerance. Pure arithmetic, no I/O.
 *
 * Tolerance: a list of terms, the first that applies decides (default "se:2,rel:0.01"):
 *   abs:X  a change of X in the score's own units;
 *   rel:X  X times |reference| (does not apply when the reference is 0);
 *   se:K   K standard errors of the difference, sigma = sqrt(se_a^2 + se_r^2) (the two
 *          results taken as independent samples; lm-eval evaluates the same documents, so
 *          this overstates the noise of a paired difference: the gate errs towards calm).
 *          A side's standard error is its stored stderr; when that is absent, a binomial
 *          score (acc, ...) with a known sample count n uses the binomial standard error
 *          sqrt(p(1-p)/n), and the decision uses Newcombe's hybrid score interval for the
 *          difference of two proportions, built from the Wilson score intervals of both
 *          sides at z = K (Newcombe 1998, Statistics in Medicine 17:873, method 10), which
 *          stays sensible at p near 0 or 1 where sqrt(p(1-p)/n) vanishes. se:K does not
 *          apply when a side has neither.
 * Severity, for "higher" or "lower is better", with the change g in the better direction:
 *   regression   the score got worse by more than the tolerance
 *   warning      it got worse within the tolerance (a drop within noise), or it cannot be
 *                judged: a NaN value, no known direction, no applicable tolerance term, or
 *                sample counts that differ between the two sides (then "unchanged" and
 *                "improvement" become warnings, a regression stays one)
 *   improvement  it got better by more than the tolerance
 *   unchanged    otherwise (better within the tolerance, or equal)
 * "equal" scores (reproducibility gates) are a regression when they moved by more than
 * the tolerance either way, else unchanged. */
#ifndef CKS_GATE_H
#define CKS_GATE_H

#include "eval_metrics.h"

#include <stddef.h>

#define CKS_TOL_MAX_TERMS    4
#define CKS_GATE_NOTE        256
#define CKS_GATE_DEFAULT_TOL "se:2,rel:0.01"

typedef enum { CKS_TOL_ABS, CKS_TOL_REL, CKS_TOL_SE } cks_tol_kind;

typedef struct {
    struct {
        cks_tol_kind kind;
        double x;
    } t[CKS_TOL_MAX_TERMS];
    int n;
} cks_tolerance;

/* Parses "se:2,rel:0.01" (terms comma-separated, each X finite and >= 0, se:K > 0).
 * CKS_EINVAL with a message quoting spec. */
int cks_tolerance_parse(const char *spec, cks_tolerance *out);
/* Canonical text of a tolerance ("se:2,rel:0.01") into buf. */
const char *cks_tolerance_format(const cks_tolerance *t, char *buf, size_t cap);

/* Severities, from best to worst (so the worst of several is the maximum). */
typedef enum {
    CKS_SEV_UNCHANGED = 0,
    CKS_SEV_IMPROVEMENT,
    CKS_SEV_WARNING,
    CKS_SEV_REGRESSION
} cks_severity;

const char *cks_severity_name(cks_severity s); /* "unchanged", ..., "regression" */

/* One side of a comparison. */
typedef struct {
    double value;
    double stderr_; /* NaN when unknown */
    double n;       /* samples (documents, tokens); NaN when unknown */
} cks_gate_point;

typedef struct {
    cks_severity severity;
    double delta;             /* value - reference */
    double sigma;             /* standard error of delta; NaN when unknown */
    double z;                 /* delta / sigma; NaN when sigma is unknown or 0 */
    double worse_tol;         /* how far it may get worse before it is a regression (NaN: none) */
    double better_tol;        /* how far it must get better to be an improvement */
    char rule[48];            /* the term that decided: "se:2", "rel:0.01", "wilson:2", "" */
    char note[CKS_GATE_NOTE]; /* why, for warnings and regressions; "" otherwise */
    int interval;             /* 1: decided on the interval [lo, hi] of the change */
    double lo, hi;            /* that interval (as scaled for se:K); NaN otherwise */
} cks_gate_result;

/* Judges a against reference r (names used in notes). binomial marks a proportion whose
 * binomial standard error may stand in for a missing stderr. */
void cks_gate_compare(const cks_gate_point *a, const cks_gate_point *r, cks_direction dir,
                      int binomial, const cks_tolerance *tol, const char *a_name,
                      const char *r_name, cks_gate_result *out);

/* Judges a against r when the change a - r comes with a 95 % interval [lo, hi] of its
 * own (DESIGN §3's block bootstrap of the paired per-token differences, dnll_prev_lo/hi):
 * the tolerance's first term that applies gives a margin t (abs:X: X; rel:X: X |r|) or,
 * for se:K, a margin of 0 with the interval's halves scaled by K / 1.959964 (se:2 is
 * about the 95 % interval itself). With the change g measured in the worse direction:
 *   regression   the whole interval lies worse than the margin (lower is better: lo > t)
 *   improvement  the whole interval lies better than the margin (hi < -t)
 *   warning      the change is worse but the interval reaches within the margin (a drop
 *                within noise), or it cannot be judged (as cks_gate_compare)
 *   unchanged    otherwise
 * "equal" scores: a regression when the interval lies wholly beyond the margin either
 * way. A NaN bound falls back to cks_gate_compare. */
void cks_gate_compare_interval(const cks_gate_point *a, const cks_gate_point *r, double lo,
                               double hi, cks_direction dir, const cks_tolerance *tol,
                               const char *a_name, const char *r_name, cks_gate_result *out);

/* Wilson score interval of a proportion p of n trials at z (Wilson 1927): centre
 * (p + z^2/2n)/(1 + z^2/n), half-width z/(1 + z^2/n) * sqrt(p(1-p)/n + z^2/4n^2). */
void cks_wilson_interval(double p, double n, double z, double *lo, double *hi);

#endif
