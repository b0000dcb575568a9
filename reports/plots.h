/* Trend and per-checkpoint plots of a run file, drawn by gnuplot (DESIGN §6).
 *
 * Families (the --only names):
 *   eval     held-out perplexity and bits per byte against step, one line per eval set
 *            (/eval/<set>/ppl, /eval/<set>/bpb); log y when the values span a decade
 *   evals    imported eval scores against step, one plot per task, one line per metric
 *            with a +-1 standard error band (/evals/<task>/<metric>, <metric>_stderr)
 *   heatmap  layer x step heatmaps, one per metric and tensor kind: rel_fro against the
 *            previous checkpoint and against the reference (/drift/prev, /drift/ref), rms
 *            (/norms), alpha and stable_rank (/spectral)
 *   median   the median over each kind's tensors of the same metrics against step, one
 *            line per kind
 *   esd      per checkpoint (--at): the empirical spectral density of chosen matrices on
 *            log-log axes with the fitted power law and xmin marked (/spectra, /spectral)
 *   alpha    per checkpoint: the histogram of alpha over all matrices, 2..6 shaded
 *   kl       function space against step, one line per eval set (scan --metrics kl):
 *            the KL divergence of the next-token distributions from the previous
 *            checkpoint's (/eval/<set>/kl_prev) and from the reference's (kl_ref), top-1
 *            agreement with the previous checkpoint (top1_agree_prev), forgetting and
 *            learning events (forgot_prev, learned_prev) and top-1 accuracy (top1_acc)
 *   memorization  memorisation of training data against step, one line per training
 *            data set (scan --metrics memorization): token_match, full_match and
 *            prefix_match of /memo/<set>
 * Checkpoints are drawn at their steps, sorted; a value that is missing (NaN: an
 * incomplete or failed checkpoint, a metric not computed) is a gap, never a zero. Steps
 * spread unevenly (dense early, as Pythia and LLM360 save them) are drawn on a
 * log(1 + step) axis. A family whose datasets are absent is skipped with the reason in
 * the list (and the index). */
#ifndef CKS_PLOTS_H
#define CKS_PLOTS_H

#include "runview.h"

#include <stddef.h>

#define CKS_PLOT_MAX_ESD   64        /* ESD plots drawn for one --tensors glob */
#define CKS_PLOT_MAX_EIGS  (1 << 20) /* eigenvalues of one /spectra row (scan keeps 256) */
#define CKS_PLOT_MAX_LINES 24        /* lines in one plot (eval sets, task metrics) */
#define CKS_PLOT_MAX_TASKS 200       /* imported eval tasks drawn */

typedef enum { CKS_PLOT_PNG = 0, CKS_PLOT_SVG = 1 } cks_plot_format;

enum {
    CKS_PLOT_EVAL = 1 << 0,
    CKS_PLOT_EVALS = 1 << 1,
    CKS_PLOT_HEATMAP = 1 << 2,
    CKS_PLOT_MEDIAN = 1 << 3,
    CKS_PLOT_ESD = 1 << 4,
    CKS_PLOT_ALPHA = 1 << 5,
    CKS_PLOT_KL = 1 << 6,
    CKS_PLOT_MEMO = 1 << 7,
    CKS_PLOT_ALL = (1 << 8) - 1
};

typedef struct {
    const char *outdir; /* created when missing (its parent must exist) */
    cks_plot_format format;
    unsigned families;   /* CKS_PLOT_* bits */
    int strict;          /* 1: the families were asked for by name; one that draws nothing
                            is an error (CKS_ENOTFOUND) instead of a skip */
    const char *at;      /* checkpoint of the esd and alpha plots; NULL: newest complete */
    const char *tensors; /* fnmatch glob choosing the ESD matrices; NULL: one of each kind
                            in the middle layer, plus embed and lm_head */
    const char *gnuplot; /* executable; NULL: "gnuplot" on PATH */
    int timeout_ms;      /* per plot; 0: CKS_GNUPLOT_TIMEOUT_MS */
    int jobs;            /* gnuplots at once; 0: the online CPUs (at most 64) */
    int keep_scripts;    /* also write each gnuplot script as <plot>.gp */
    /* called before each plot is drawn (progress); may be NULL */
    void (*progress)(void *ctx, size_t done, const char *file);
    void *progress_ctx;
} cks_plot_opts;

/* One entry of the index: a drawn plot (file set) or a skipped one (reason set). */
typedef struct {
    char *family; /* "eval", "evals", "heatmap", "median", "esd", "alpha", "kl",
                     "memorization" */
    char *file;   /* file name in outdir, or NULL */
    char *title;  /* what it shows, one line (names from the run file made printable) */
    char *reason; /* why it was not drawn, or NULL */
} cks_plot_item;

typedef struct {
    cks_plot_item *item;
    size_t n, cap;
    size_t at; /* step position of the per-checkpoint plots */
} cks_plot_list;

void cks_plot_list_init(cks_plot_list *l);
void cks_plot_list_release(cks_plot_list *l);

/* Draws every family in o->families into o->outdir and writes index.txt there (what was
 * drawn and what was skipped, and why). *out lists the same; it is filled as far as the
 * drawing got even on failure (naming every file written), so release it in every case. Errors: the
 * output folder cannot be created or written (CKS_EIO), gnuplot missing (CKS_ENOTFOUND naming the
 * Debian package) or failing (CKS_ERROR with its message), --at unknown (CKS_ENOTFOUND), nothing
 * drawn at all or a strict family that drew nothing (CKS_ENOTFOUND naming what is
 * missing). */
int cks_plots_draw(cks_runview *v, const cks_plot_opts *o, cks_plot_list *out);

/* Parses a comma-separated list of family names into CKS_PLOT_* bits; CKS_EINVAL naming an
 * unknown one and listing the known. */
int cks_plot_families_parse(const char *list, unsigned *out);

#endif
