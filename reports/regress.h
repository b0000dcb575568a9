/* The regression gate over a run file (DESIGN §7): every score series of the run file,
 * at one checkpoint, against the checkpoint before it and against a pinned baseline.
 *
 * Scores (metric ids are run-file paths without the leading '/'):
 *   evals/<task>/<metric>   imported lm-eval scores (evals.h); stderr from
 *                           <metric>_stderr, sample count from n_samples
 *   eval/<set>/<metric>     the built-in perplexity (nll, ppl, bpb, top1_acc; any other
 *                           1-D series there except the count "tokens", which is the
 *                           sample count, and the kl family's comparisons with another
 *                           checkpoint, kl_*, top1_agree_*, forgot_*, learned_*, dnll_*,
 *                           which are not scores; --include may still name them)
 * Held-out nll against the previous checkpoint is judged on the block-bootstrap 95 %
 * interval of its change when the run file has one at the checkpoint (dnll_prev_lo and
 * dnll_prev_hi, scan --metrics ppl,kl): cks_gate_compare_interval (gate.h). Its previous
 * checkpoint is the same (the last complete one by step), so the interval is that of the
 * change judged. Against a baseline, nll is judged on the tolerance alone.
 *   <path>/<tensor>         one tensor's value in an [N, T] dataset (norms/fro/lm_head.weight),
 *                           only when an --include glob names it: weights statistics are
 *                           not scores, but a reproducibility gate may pin them ("equal")
 * Per score, the direction is the first of: a --direction rule, the baseline's recorded
 * direction, the file's higher_is_better attribute (v0.4), the known-name table
 * (eval_metrics.h); else unknown. The tolerance is the first of: a --tolerance rule, the
 * baseline's, CKS_GATE_DEFAULT_TOL. A rule's pattern is an fnmatch(3) glob matched against
 * the whole id when it holds a '/', else against the metric name (the last component);
 * later rules win over earlier ones.
 *
 * The checkpoint under test is --at or the newest complete one by step; "previous" is
 * the last complete checkpoint with a smaller step (ties: name order). */
#ifndef CKS_REGRESS_H
#define CKS_REGRESS_H

#include "gate.h"
#include "store.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

#define CKS_BASELINE_FORMAT    "ckptscope-baseline"
#define CKS_BASELINE_VERSION   1
#define CKS_BASELINE_MAX_BYTES (64u << 20)
#define CKS_GATE_MAX_METRICS   1000000
#define CKS_GATE_MAX_ID        1024

typedef struct {
    const char *pattern;
    cks_direction dir;
} cks_gate_dir_rule;

typedef struct {
    const char *pattern;
    cks_tolerance tol;
} cks_gate_tol_rule;

/* ---- the pinned baseline ---- */

typedef struct {
    char *id;
    double value, stderr_, n; /* NaN when the file has null */
    cks_direction dir;
    int has_tol;
    cks_tolerance tol;
} cks_baseline_metric;

typedef struct {
    char *path;
    char *model;    /* NULL when the run file named none */
    char *source;   /* informative: where the run was read from */
    json_t *config; /* the run's config.json as an object, or NULL */
    char *ckpt;
    int64_t step;
    cks_baseline_metric *m; /* sorted by id */
    size_t n;
} cks_baseline;

/* Reads and checks a baseline file (format, version, fields, limits). CKS_EFORMAT naming
 * the file and the field. */
int cks_baseline_read(const char *path, cks_baseline *out);
void cks_baseline_release(cks_baseline *b);

/* ---- the comparison ---- */

typedef struct {
    const char *at; /* NULL: the newest complete checkpoint */
    const cks_gate_dir_rule *dirs;
    size_t ndirs;
    const cks_gate_tol_rule *tols;
    size_t ntols;
    const cks_baseline *baseline; /* NULL: none */
    int no_previous;              /* compare with the baseline only */
    /* NULL/0: every score series. Else only the ids matching one of these globs, which
     * may also name per-tensor values of [N, T] datasets: <group>/<metric>/<tensor>,
     * e.g. norms/fro/model.norm.weight (their direction is unknown unless given) */
    const char *const *include;
    size_t ninclude;
} cks_gate_options;

typedef struct {
    char *id;
    cks_direction dir;
    const char *dir_from; /* "option", "baseline", "file", "table" or "none" */
    cks_tolerance tol;
    int binomial;
    const char *unit; /* NULL when none */
    cks_gate_point at, prev, base;
    int in_run, in_baseline;
    int vs_prev, vs_base; /* which comparisons were made */
    cks_gate_result prev_r, base_r;
    /* eval/<set>/nll with the kl family: the block-bootstrap 95 % interval of the change
     * from the previous checkpoint (dnll_prev_lo, dnll_prev_hi at the checkpoint), NaN
     * when absent */
    double prev_lo, prev_hi;
} cks_gate_metric;

typedef struct {
    char *name;
    int64_t step;
} cks_gate_ckpt;

typedef struct {
    char *run_path;
    char *model, *source;   /* the run file's model and source attributes (NULL: none) */
    json_t *config;         /* parsed config attribute or NULL */
    cks_gate_ckpt at, prev; /* prev.name NULL when there is no previous checkpoint */
    const cks_baseline *baseline;
    int no_previous;    /* the previous checkpoint was not asked for */
    cks_gate_metric *m; /* sorted by id */
    size_t n;
    size_t prev_skipped; /* scores with no value at either checkpoint: not compared */
    size_t base_missing; /* scores of the run not in the baseline */
    size_t base_ignored; /* scores of the baseline --include does not select */
    size_t count[2][4];  /* [previous, baseline][severity] */
} cks_gate_report;

/* Runs the gate. Errors (CKS_EINVAL/CKS_EFORMAT/CKS_ENOTFOUND): no scores in the run
 * file, an unknown --at, nothing to compare with, a baseline of another model. */
int cks_gate_run(cks_store *s, const cks_gate_options *o, cks_gate_report *out);
void cks_gate_report_release(cks_gate_report *r);

/* The worst severity over both comparisons. */
cks_severity cks_gate_worst(const cks_gate_report *r);

/* Writes the baseline of r's checkpoint (every score with a value there, with its
 * resolved direction and tolerance) atomically to path. *written receives the number of
 * scores, *left_out the ones without a value. */
int cks_baseline_write(const cks_gate_report *r, const char *path, size_t *written,
                       size_t *left_out);

/* ---- output ---- */

/* Markdown summary: the verdict, a table of regressions first, then warnings,
 * improvements, and the unchanged ones folded. fail_on is the severity that fails. */
int cks_gate_write_markdown(const cks_gate_report *r, cks_severity fail_on, FILE *f);
/* JUnit XML: one <testsuite> per comparison made, one <testcase> per score in it, a
 * <failure> for each at or above fail_on. */
int cks_gate_write_junit(const cks_gate_report *r, cks_severity fail_on, FILE *f);

#endif
