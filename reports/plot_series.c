/* Line plots against step (plots.h families eval, evals and median): one data block per
 * line, "step value [stderr]" rows in step order, NaN where a checkpoint has no value so
 * gnuplot breaks the line there; points are drawn too, so a value between two gaps shows. */
#include "plots_impl.h"
#include "error.h"
#include "tensor.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef cks_plot_series series;

void cks_plot_series_release(series *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(s[i].name);
        free(s[i].y);
        free(s[i].err);
    }
}

int cks_plot_any_finite(const double *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (isfinite(v[i]))
            return 1;
    return 0;
}

/* 1 when path is a float series with one value per checkpoint. Anything else under /eval
 * or /evals (a group, a [N, tokens] matrix such as token_nll) is not drawn as a line. */
int cks_plot_is_series(cks_plot_ctx *c, const char *path)
{
    size_t rows, cols;
    if (!cks_store_exists(c->v->store, path))
        return 0;
    if (cks_store_shape(c->v->store, path, &rows, &cols) != 0) {
        cks_error_clear();
        return 0;
    }
    return rows == c->v->n && cols == 1;
}

/* "/<a>/<b>/<c>" (NULL parts end it) as a new string. */
char *cks_plot_path3(const char *a, const char *b, const char *c)
{
    size_t n = strlen(a) + strlen(b) + (c ? strlen(c) : 0) + 4;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "/%s/%s%s%s", a, b, c ? "/" : "", c ? c : "");
    return p;
}

/* Draws the lines (and bands, when a series has errors) of s[0..n) into the current
 * script and finishes the plot. ylog: logarithmic y axis. */
int cks_plot_draw_lines(cks_plot_ctx *c, const series *s, size_t n, int ylog, const char *family,
                        const char *title)
{
    cks_buf *b = &c->s;
    const cks_runview *v = c->v;
    cks_plot_step_axis(c);
    if (ylog)
        cks_buf_puts(b, "set logscale y\nset format y '%g'\n");
    for (size_t i = 0; i < n; i++) {
        cks_buf_printf(b, "$d%zu << EOD\n", i);
        for (size_t k = 0; k < v->n; k++) {
            cks_buf_printf(b, "%lld ", (long long)v->step[k]);
            cks_plot_num(b, s[i].y[k]);
            if (s[i].err) {
                cks_buf_puts(b, " ");
                cks_plot_num(b, s[i].err[k]);
            }
            cks_buf_puts(b, "\n");
        }
        cks_buf_puts(b, "EOD\n");
    }
    cks_buf_puts(b, "plot ");
    for (size_t i = 0; i < n; i++) {
        if (s[i].err)
            cks_buf_printf(b,
                           "$d%zu using 1:($2-$3):($2+$3) with filledcurves "
                           "fc rgb '%s' fs transparent solid 0.18 noborder notitle, \\\n  ",
                           i, cks_plot_color(i));
        cks_buf_printf(b,
                       "$d%zu using 1:2 with linespoints lw 2 pt 7 ps 0.55 dt %zu "
                       "lc rgb '%s' title ",
                       i, 1 + (i / 14) % 4, cks_plot_color(i));
        cks_plot_label(b, s[i].name);
        cks_buf_puts(b, i + 1 < n ? ", \\\n  " : "\n");
    }
    return cks_plot_finish(c, family, title);
}

/* Every series' finite values, for the log-scale decision. */
int cks_plot_series_want_log(const series *s, size_t n, size_t len, double ratio)
{
    int ok = 1, any = 0;
    for (size_t i = 0; i < n && ok; i++) {
        ok = cks_plot_wants_log(s[i].y, len, 1.0) || !cks_plot_any_finite(s[i].y, len);
        any |= cks_plot_any_finite(s[i].y, len);
    }
    if (!ok || !any)
        return 0;
    double lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < len; k++)
            if (isfinite(s[i].y[k]))
                lo = fmin(lo, s[i].y[k]), hi = fmax(hi, s[i].y[k]);
    return hi / lo >= ratio;
}

/* ---- eval: held-out perplexity and bits per byte ---- */

static int eval_metric(cks_plot_ctx *c, char **sets, size_t nsets, const char *metric,
                       const char *what, const char *stem)
{
    series s[CKS_PLOT_MAX_LINES];
    size_t n = 0, more = 0;
    char *first = NULL, title[256];
    int err = 0;
    snprintf(title, sizeof title, "held-out %s against step, per eval set", what);
    for (size_t i = 0; i < nsets && !err; i++) {
        char *path = cks_plot_path3("eval", sets[i], metric);
        double *y = NULL;
        size_t cols;
        if (!path)
            return cks_error_set(CKS_ENOMEM, "out of memory");
        if (!cks_plot_is_series(c, path)) {
            free(path);
            continue;
        }
        if ((err = cks_runview_read(c->v, path, 1, &y, &cols)) == 0 &&
            cks_plot_any_finite(y, c->v->n)) {
            if (n == CKS_PLOT_MAX_LINES) {
                more++;
                free(y);
            } else {
                s[n++] = (series){strdup(sets[i]), y, NULL};
                if (!first)
                    first = strdup(path);
            }
        } else {
            free(y);
        }
        free(path);
    }
    if (!err && n == 0)
        err = cks_plot_skip(c, "eval", title, "no /eval/<set>/%s dataset holds a value", metric);
    else if (!err) {
        cks_plot_begin(c, stem, 960, 560, title);
        cks_plot_axis_label(c, "y", first ? first : "", what);
        if (more)
            cks_buf_printf(&c->s,
                           "set label 1 '%zu more sets not drawn' at graph 0.01, "
                           "graph 0.97 tc rgb '#777777'\n",
                           more);
        err = cks_plot_draw_lines(c, s, n, cks_plot_series_want_log(s, n, c->v->n, 10), "eval",
                                  title);
    }
    cks_plot_series_release(s, n);
    free(first);
    return err;
}

int cks_plot_eval(cks_plot_ctx *c)
{
    char **sets = NULL;
    size_t nsets = 0;
    if (!cks_store_exists(c->v->store, "/eval")) {
        const char *why = "the run file has no /eval group (held-out perplexity is measured by "
                          "the forward pass: scan --metrics ppl)";
        int err = cks_plot_skip(c, "eval", "held-out perplexity against step", "%s", why);
        return err ? err
                   : cks_plot_skip(c, "eval", "held-out bits per byte against step", "%s", why);
    }
    int err = cks_store_list(c->v->store, "/eval", &sets, &nsets);
    if (!err)
        err = eval_metric(c, sets, nsets, "ppl", "perplexity", "eval_ppl");
    if (!err)
        err = eval_metric(c, sets, nsets, "bpb", "bits per byte", "eval_bpb");
    cks_store_names_free(sets, nsets);
    return err;
}

/* ---- evals: imported lm-eval scores with standard-error bands ---- */

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* The metrics of one task as series (stderr when <metric>_stderr exists), each with the
 * path of its dataset in paths[] (for its unit). n_samples, the document count that
 * `evals import` keeps beside the scores, is not a score. */
static int task_series(cks_plot_ctx *c, const char *task, series *s, char **paths, size_t *n)
{
    char *group = cks_plot_path3("evals", task, NULL), **names = NULL;
    size_t nn = 0;
    if (!group)
        return cks_error_set(CKS_ENOMEM, "out of memory");
    int err = cks_store_list(c->v->store, group, &names, &nn);
    free(group);
    for (size_t i = 0; i < nn && !err && *n < CKS_PLOT_MAX_LINES; i++) {
        if (ends_with(names[i], "_stderr") || strcmp(names[i], "n_samples") == 0)
            continue;
        char *path = cks_plot_path3("evals", task, names[i]), *epath = NULL;
        double *y = NULL, *e = NULL;
        size_t cols;
        size_t elen = path ? strlen(path) + 8 : 0;
        if (!path || !(epath = malloc(elen))) {
            free(path);
            err = cks_error_set(CKS_ENOMEM, "out of memory");
            break;
        }
        snprintf(epath, elen, "%s_stderr", path);
        if (cks_plot_is_series(c, path)) {
            err = cks_runview_read(c->v, path, 1, &y, &cols);
            if (!err && cks_plot_is_series(c, epath))
                err = cks_runview_read(c->v, epath, 1, &e, &cols);
        }
        if (!err && y && cks_plot_any_finite(y, c->v->n)) {
            paths[*n] = path;
            s[(*n)++] = (series){strdup(names[i]), y, e};
            path = NULL;
            y = e = NULL;
        }
        free(y);
        free(e);
        free(path);
        free(epath);
    }
    cks_store_names_free(names, nn);
    return err;
}

/* One plot of the task's metrics that share unit (lm-eval's accuracies and perplexities
 * differ by orders of magnitude: lambada_openai has both). */
static int task_plot(cks_plot_ctx *c, const char *task, const series *all, char **units, size_t n,
                     size_t first, int several, const char *title)
{
    series s[CKS_PLOT_MAX_LINES];
    size_t k = 0;
    for (size_t i = first; i < n; i++)
        if (strcmp(units[i], units[first]) == 0)
            s[k++] = all[i];
    cks_buf label;
    char stem[200];
    cks_buf_init(&label);
    cks_buf_puts(&label, "eval scores of task ");
    cks_buf_put_text(&label, task, 80, NULL);
    cks_buf_puts(&label, " (band: +-1 standard error)");
    snprintf(stem, sizeof stem, "evals_%s%s%s", task, several ? "_" : "",
             several ? (units[first][0] ? units[first] : "other") : "");
    cks_plot_begin(c, stem, 960, 560, cks_buf_text(&label));
    cks_buf_release(&label);
    cks_buf_puts(&c->s, "set ylabel ");
    cks_buf_puts(&label, "score");
    if (units[first][0] && strcmp(units[first], "1") != 0) {
        cks_buf_puts(&label, " [");
        cks_buf_put_text(&label, units[first], 40, NULL);
        cks_buf_puts(&label, "]");
    }
    cks_plot_label(&c->s, cks_buf_text(&label));
    cks_buf_puts(&c->s, "\n");
    cks_buf_release(&label);
    return cks_plot_draw_lines(c, s, k, cks_plot_series_want_log(s, k, c->v->n, 10), "evals",
                               title);
}

static int task_plots(cks_plot_ctx *c, const char *task, const char *title)
{
    series s[CKS_PLOT_MAX_LINES];
    char *paths[CKS_PLOT_MAX_LINES], *units[CKS_PLOT_MAX_LINES];
    size_t n = 0, nu = 0;
    int err = task_series(c, task, s, paths, &n);
    for (size_t i = 0; i < n && !err; i++, nu++)
        err = cks_runview_attr(c->v, paths[i], "unit", &units[i]);
    if (!err && n == 0)
        err = cks_plot_skip(c, "evals", title, "no metric of the task holds a value");
    int several = 0;
    for (size_t i = 1; i < n && !err; i++)
        several |= strcmp(units[i], units[0]) != 0;
    for (size_t i = 0; i < n && !err; i++) {
        int seen = 0;
        for (size_t k = 0; k < i; k++)
            seen |= strcmp(units[k], units[i]) == 0;
        if (!seen)
            err = task_plot(c, task, s, units, n, i, several, title);
    }
    for (size_t i = 0; i < n; i++)
        free(paths[i]);
    for (size_t i = 0; i < nu; i++)
        free(units[i]);
    cks_plot_series_release(s, n);
    return err;
}

int cks_plot_evals(cks_plot_ctx *c)
{
    char **tasks = NULL;
    size_t ntasks = 0;
    if (!cks_store_exists(c->v->store, "/evals"))
        return cks_plot_skip(c, "evals", "imported eval scores against step",
                             "the run file has no /evals group (import lm-eval results with "
                             "ckptscope evals import)");
    int err = cks_store_list(c->v->store, "/evals", &tasks, &ntasks);
    for (size_t t = 0; t < ntasks && !err; t++) {
        char title[256], name[96];
        cks_printable(name, sizeof name, tasks[t], strlen(tasks[t]));
        snprintf(title, sizeof title, "eval scores of task %s against step (band: +-1 stderr)",
                 name);
        if (t >= CKS_PLOT_MAX_TASKS)
            err = cks_plot_skip(c, "evals", title, "more than %d tasks", CKS_PLOT_MAX_TASKS);
        else
            err = task_plots(c, tasks[t], title);
    }
    cks_store_names_free(tasks, ntasks);
    return err;
}

/* ---- median: per-kind medians of the heatmap metrics ---- */

static int median_plot(cks_plot_ctx *c, const cks_plot_metric *m, const char *title)
{
    const cks_runview *v = c->v;
    double *vals = NULL;
    size_t cols;
    int err = cks_runview_read(c->v, m->path, v->nt, &vals, &cols);
    if (err)
        return err;
    series s[CKS_KIND_COUNT];
    size_t n = 0;
    size_t *idx = malloc((v->nt ? v->nt : 1) * sizeof *idx);
    double *scratch = malloc((v->nt ? v->nt : 1) * sizeof *scratch);
    if (!idx || !scratch)
        err = cks_error_set(CKS_ENOMEM, "out of memory");
    for (int k = 0; k < CKS_KIND_COUNT && !err; k++) {
        size_t nk = cks_plot_kind_columns(v, k, idx);
        double *y = nk ? malloc(v->n * sizeof *y) : NULL;
        if (nk && !y) {
            err = cks_error_set(CKS_ENOMEM, "out of memory");
            break;
        }
        for (size_t i = 0; y && i < v->n; i++)
            y[i] = cks_runview_median(vals + i * cols, idx, nk, scratch);
        if (y && cks_plot_any_finite(y, v->n)) {
            char name[64];
            snprintf(name, sizeof name, "%s (%zu)", cks_kind_name((cks_kind)k), nk);
            s[n++] = (series){strdup(name), y, NULL};
        } else {
            free(y);
        }
    }
    if (!err && n == 0)
        err = cks_plot_skip(c, "median", title, "%s holds no value", m->path);
    else if (!err) {
        char stem[96];
        snprintf(stem, sizeof stem, "median_%s", m->stem);
        cks_plot_begin(c, stem, 960, 560, title);
        cks_plot_axis_label(c, "y", m->path, m->label);
        cks_plot_description(c, m->path);
        cks_buf_puts(&c->s, "set key title 'kind (tensors)'\n");
        err =
            cks_plot_draw_lines(c, s, n, cks_plot_series_want_log(s, n, v->n, 30), "median", title);
    }
    cks_plot_series_release(s, n);
    free(idx);
    free(scratch);
    free(vals);
    return err;
}

int cks_plot_medians(cks_plot_ctx *c)
{
    size_t nm;
    const cks_plot_metric *m = cks_plot_metrics(&nm);
    int err = 0;
    for (size_t i = 0; i < nm && !err; i++) {
        char title[256];
        cks_plot_metric_title(c, &m[i], "median per tensor kind: ", title, sizeof title);
        if (!cks_store_exists(c->v->store, m[i].path))
            err = cks_plot_skip(c, "median", title, "the run file has no %s (scan --metrics %s)",
                                m[i].path, m[i].family);
        else
            err = median_plot(c, &m[i], title);
    }
    return err;
}
