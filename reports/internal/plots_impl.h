/* Internals shared by plots.c (driver, script preamble, index) and the plot families:
 * plot_series.c (eval, evals, median), plot_fspace.c (kl, memorization), plot_heatmap.c,
 * plot_spectra.c (esd, alpha).
 * Not a public header. */
#ifndef CKS_PLOTS_IMPL_H
#define CKS_PLOTS_IMPL_H

#include "gnuplot_pool.h"
#include "plots.h"
#include "textbuf.h"

#include <stddef.h>

typedef struct {
    cks_runview *v;
    const cks_plot_opts *o;
    char *gnuplot;          /* executable path */
    cks_gnuplot_pool *pool; /* draws the finished scripts */
    cks_plot_list *list;    /* what was drawn and skipped */
    cks_buf s;              /* the script being built */
    char file[256];         /* file name of the plot being built */
    char title[512];        /* its title (as given, quoted when written) */
    size_t drawn;
    int xlog; /* steps on a log(1 + step) axis */
} cks_plot_ctx;

/* A metric drawn as heatmap and median curve: dataset, short label, file-name stem, and
 * the scan --metrics family that writes it. */
typedef struct {
    const char *path;
    const char *label;
    const char *stem;
    const char *family;
} cks_plot_metric;

const cks_plot_metric *cks_plot_metrics(size_t *n);
/* Title of a metric's plots after prefix; for /drift/ref it names the reference. */
void cks_plot_metric_title(cks_plot_ctx *c, const cks_plot_metric *m, const char *prefix, char *out,
                           size_t cap);
/* Columns of the tensors of one kind (a cks_kind; unknown kinds count as other), in
 * tensor order, into idx; returns how many. */
size_t cks_plot_kind_columns(const cks_runview *v, int kind, size_t *idx);

/* Starts the script of a plot: terminal (png or svg at width x height), output file
 * <stem>.<ext> (stem made file-name safe and unique), common style, title. */
void cks_plot_begin(cks_plot_ctx *c, const char *stem, int width, int height, const char *title);
/* The x axis for steps: label, range, log(1 + step) when c->xlog, tics. */
void cks_plot_step_axis(cks_plot_ctx *c);
/* Tics at 1, 2, 5 x 10^k on a log axis spanning [lo, hi] when it covers less than three
 * decades (gnuplot would label one or two decades only); nothing otherwise. */
void cks_plot_log_tics(cks_buf *b, const char *axis, double lo, double hi);
/* A number for a data block: %.10g, or NaN (gnuplot's undefined value: a gap). */
void cks_plot_num(cks_buf *b, double x);
/* Appends a label: quoted name, made safe (cks_gnuplot_quote). */
void cks_plot_label(cks_buf *b, const char *s);
/* "metric [unit]" for an axis, from the dataset's unit attribute. */
void cks_plot_axis_label(cks_plot_ctx *c, const char *axis, const char *path, const char *metric);
/* The dataset's description attribute (what the metric is) as a second title line;
 * nothing when it has none. */
void cks_plot_description(cks_plot_ctx *c, const char *path);
/* Line colour i of the house cycle, as a gnuplot rgb literal. */
const char *cks_plot_color(size_t i);
/* Hands the script to the gnuplot pool and records the plot (family, title) as drawn
 * (a failure to draw it fails the whole cks_plots_draw). */
int cks_plot_finish(cks_plot_ctx *c, const char *family, const char *title);
/* Records a plot that was not drawn, with the reason (printf format). */
int cks_plot_skip(cks_plot_ctx *c, const char *family, const char *title, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* 1 when log scale helps: every finite value > 0 and max / min >= ratio. */
int cks_plot_wants_log(const double *v, size_t n, double ratio);

/* A line of a plot against step: key entry, v->n values in step order, standard errors
 * (a band) or NULL. (plot_series.c) */
typedef struct {
    char *name;
    double *y;
    double *err;
} cks_plot_series;
void cks_plot_series_release(cks_plot_series *s, size_t n);
int cks_plot_any_finite(const double *v, size_t n);
/* 1 when path is a float series with one value per checkpoint. */
int cks_plot_is_series(cks_plot_ctx *c, const char *path);
/* "/<a>/<b>/<c>" (c NULL: "/<a>/<b>") as a new string; NULL when out of memory. */
char *cks_plot_path3(const char *a, const char *b, const char *c);
/* Draws the lines (and bands) of s[0..n) into the current script and finishes the plot. */
int cks_plot_draw_lines(cks_plot_ctx *c, const cks_plot_series *s, size_t n, int ylog,
                        const char *family, const char *title);
/* 1 when every series is positive and together they span ratio or more. */
int cks_plot_series_want_log(const cks_plot_series *s, size_t n, size_t len, double ratio);

int cks_plot_eval(cks_plot_ctx *c);
int cks_plot_evals(cks_plot_ctx *c);
int cks_plot_medians(cks_plot_ctx *c);
int cks_plot_heatmaps(cks_plot_ctx *c);
int cks_plot_esd(cks_plot_ctx *c, size_t at);
int cks_plot_alpha_hist(cks_plot_ctx *c, size_t at);
int cks_plot_kl(cks_plot_ctx *c);   /* plot_fspace.c */
int cks_plot_memo(cks_plot_ctx *c); /* plot_fspace.c */

#endif
