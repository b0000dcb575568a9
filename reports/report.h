/* Reports of a run file (DESIGN §6).
 *
 * The checkpoint report: the run (source, metric families, config.json), the checkpoint
 * (name, step, commit, status), its held-out perplexities (/eval), function space against
 * the previous checkpoint and the reference (/eval/<set>/kl_prev ...: KL, its percentiles,
 * top-1 agreement, forgetting and learning, dnll with its bootstrap interval),
 * memorisation (/memo) and imported eval scores (/evals, with standard errors), a table
 * of every tensor (layer, kind, shape, norms, drift against the previous checkpoint and
 * the reference, spectral figures), and the
 * outliers: the CKS_REPORT_TOP largest drifts, tensors holding NaN or Inf, and alpha
 * outside [CKS_REPORT_ALPHA_LO, CKS_REPORT_ALPHA_HI]. As aligned text, Markdown, JSON or
 * a standalone HTML page. A value that is missing (NaN: not computed, not applicable) is
 * "-" in text, Markdown and HTML and null in JSON, never a made-up number.
 *
 * JSON (field names are part of the interface):
 *   {"run": {"path", "source", "created_by", "metrics", "checkpoints", "ref"},
 *    "checkpoint": {"name", "step", "commit", "status", "analysed_at", "index"},
 *    "config": {...config.json...} | null,
 *    "eval": [{"set", <metric>: number|null, ...}],
 *    "evals": [{"task", "n_samples", "metrics": [{"name", "value", "stderr"}]}],
 *    "memo": [{"set", "sequences", "token_match", "full_match", "prefix_match", ...}],
 *    "tensors": [{"name", "layer", "kind", "rows", "cols",
 *                 "norms": {...}, "drift_prev": {...}, "drift_ref": {...},
 *                 "spectral": {...}, "flags": [str...]}],
 *    "outliers": {"largest_drift_prev": [{"name", "rel_fro"}],
 *                 "largest_drift_ref": [{"name", "rel_fro"}],
 *                 "nonfinite": [{"name", "nan", "inf"}],
 *                 "alpha_outside": [{"name", "alpha"}]},
 *    "missing": [group...]}
 * A group object holds every metric dataset of that group in the run file ("rms",
 * "rel_fro", "alpha", ...); an "eval" set holds every series of /eval/<set> (with the kl
 * family kl_prev, top1_agree_prev, dnll_prev_lo, ..., top1_acc). "missing" names the
 * groups (norms, drift_prev, drift_ref, spectral, eval, evals, memo) the run file does
 * not have. Flags: "largest_drift_prev",
 * "largest_drift_ref", "nan", "inf", "alpha_low", "alpha_high".
 *
 * The trends page: one self-contained HTML file for the whole run: every plot of plots.h
 * embedded as a PNG data URI, a table of the checkpoints with their headline figures,
 * the newest complete checkpoint's report, and links between the sections. No network
 * resource, no script, no external style sheet: it reads offline. */
#ifndef CKS_REPORT_H
#define CKS_REPORT_H

#include "runview.h"
#include "textbuf.h"

#include <stddef.h>

#define CKS_REPORT_TOP       5   /* largest drifts listed among the outliers */
#define CKS_REPORT_ALPHA_LO  2.0 /* WeightWatcher's well-trained range of alpha */
#define CKS_REPORT_ALPHA_HI  6.0
#define CKS_REPORT_MAX_IMAGE (64u << 20) /* bytes of one plot embedded in the trends page */

typedef enum {
    CKS_REPORT_TEXT = 0,
    CKS_REPORT_MARKDOWN,
    CKS_REPORT_JSON,
    CKS_REPORT_HTML
} cks_report_format;

/* "text", "markdown", "json", "html"; CKS_EINVAL otherwise. */
int cks_report_format_parse(const char *s, cks_report_format *out);

/* Appends the report of the checkpoint at step position at (0 <= at < v->n) to out. */
int cks_report_checkpoint(cks_runview *v, size_t at, cks_report_format format, cks_buf *out);

typedef struct {
    const char *gnuplot; /* executable; NULL: "gnuplot" on PATH */
    int timeout_ms;      /* per plot; 0: the default */
    int jobs;            /* gnuplots at once; 0: the online CPUs */
    const char *tmpdir;  /* where plots are drawn before they are embedded; NULL: $TMPDIR
                            or /tmp. The folder made there is removed afterwards. */
    void (*progress)(void *ctx, size_t done, const char *file);
    void *progress_ctx;
} cks_trends_opts;

/* Appends the trends page of the whole run to out. Needs gnuplot (see plots.h). */
int cks_report_trends(cks_runview *v, const cks_trends_opts *o, cks_buf *out);

#endif
