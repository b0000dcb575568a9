/* The plot driver (plots.h): prepares the output folder, finds gnuplot, runs each family,
 * and writes index.txt. Also the script pieces every family shares: terminal and style,
 * the step axis, numbers and labels, file names. */
#include "plots_impl.h"
#include "error.h"
#include "grow.h"
#include "gnuplot.h"
#include "tensor.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define INDEX_FILE "index.txt"

static const cks_plot_metric metrics[] = {
    {"/drift/prev/rel_fro", "rel_fro against the previous checkpoint", "drift_prev_rel_fro",
     "drift"},
    {"/drift/ref/rel_fro", "rel_fro against the reference checkpoint", "drift_ref_rel_fro",
     "drift"},
    {"/norms/rms", "rms", "norms_rms", "norms"},
    {"/spectral/alpha", "power-law alpha", "spectral_alpha", "spectral"},
    {"/spectral/stable_rank", "stable rank", "spectral_stable_rank", "spectral"},
};

const cks_plot_metric *cks_plot_metrics(size_t *n)
{
    *n = sizeof metrics / sizeof metrics[0];
    return metrics;
}

void cks_plot_metric_title(cks_plot_ctx *c, const cks_plot_metric *m, const char *prefix, char *out,
                           size_t cap)
{
    char *ref = NULL, name[96] = "";
    if (strncmp(m->path, "/drift/ref/", 11) == 0 &&
        cks_runview_attr(c->v, "/drift/ref", "ref", &ref) == 0 && ref[0])
        cks_printable(name, sizeof name, ref, strlen(ref));
    cks_error_clear();
    free(ref);
    if (name[0])
        snprintf(out, cap, "%srel_fro against the reference %s", prefix, name);
    else
        snprintf(out, cap, "%s%s", prefix, m->label);
}

size_t cks_plot_kind_columns(const cks_runview *v, int kind, size_t *idx)
{
    size_t n = 0;
    for (size_t j = 0; j < v->nt; j++) {
        cks_kind k;
        if (cks_kind_from_name(v->tensor[j].kind, &k) != 0)
            k = CKS_KIND_OTHER;
        if ((int)k == kind)
            idx[n++] = j;
    }
    return n;
}

static const struct {
    const char *name;
    unsigned bit;
} families[] = {
    {"eval", CKS_PLOT_EVAL},     {"evals", CKS_PLOT_EVALS},       {"heatmap", CKS_PLOT_HEATMAP},
    {"median", CKS_PLOT_MEDIAN}, {"esd", CKS_PLOT_ESD},           {"alpha", CKS_PLOT_ALPHA},
    {"kl", CKS_PLOT_KL},         {"memorization", CKS_PLOT_MEMO},
};
#define NFAMILIES (sizeof families / sizeof families[0])

int cks_plot_families_parse(const char *list, unsigned *out)
{
    unsigned bits = 0;
    for (const char *p = list; *p;) {
        size_t len = strcspn(p, ","), i;
        for (i = 0; i < NFAMILIES; i++)
            if (strlen(families[i].name) == len && strncmp(families[i].name, p, len) == 0)
                break;
        if (i == NFAMILIES || len == 0)
            return cks_error_set(CKS_EINVAL,
                                 "unknown plot family '%.*s' (known: eval, evals, heatmap, "
                                 "median, esd, alpha, kl, memorization)",
                                 (int)(len > 64 ? 64 : len), p);
        bits |= families[i].bit;
        p += len;
        if (*p == ',')
            p++;
    }
    if (!bits)
        return cks_error_set(CKS_EINVAL, "empty list of plot families");
    *out = bits;
    return 0;
}

/* ---- the list ---- */

void cks_plot_list_init(cks_plot_list *l)
{
    memset(l, 0, sizeof *l);
}

void cks_plot_list_release(cks_plot_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->item[i].family);
        free(l->item[i].file);
        free(l->item[i].title);
        free(l->item[i].reason);
    }
    free(l->item);
    cks_plot_list_init(l);
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static int list_add(cks_plot_list *l, const char *family, const char *file, const char *title,
                    const char *reason)
{
    int err = cks_grow(&l->item, &l->cap, l->n, sizeof *l->item, 32);
    if (err)
        return err;
    cks_plot_item *it = &l->item[l->n];
    it->family = strdup(family);
    it->file = dup_or_null(file);
    it->title = strdup(title);
    it->reason = dup_or_null(reason);
    if (!it->family || !it->title || (file && !it->file) || (reason && !it->reason)) {
        free(it->family);
        free(it->file);
        free(it->title);
        free(it->reason);
        return cks_error_set(CKS_ENOMEM, "out of memory");
    }
    l->n++;
    return 0;
}

/* ---- script pieces ---- */

static const char *ext(const cks_plot_ctx *c)
{
    return c->o->format == CKS_PLOT_SVG ? "svg" : "png";
}

static int file_taken(const cks_plot_ctx *c, const char *name)
{
    for (size_t i = 0; i < c->list->n; i++)
        if (c->list->item[i].file && strcmp(c->list->item[i].file, name) == 0)
            return 1;
    return strcmp(name, INDEX_FILE) == 0;
}

/* c->file = stem with every byte outside [A-Za-z0-9._-] as '_', at most 120 of them, then
 * "-2", "-3" ... when two stems meet, and the extension. */
static void make_file_name(cks_plot_ctx *c, const char *stem)
{
    char safe[128];
    size_t k = 0;
    for (const char *p = stem; *p && k < 120; p++) {
        char ch = *p;
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                 ch == '.' || ch == '_' || ch == '-';
        safe[k++] = ok ? ch : '_';
    }
    safe[k] = '\0';
    if (safe[0] == '.' || k == 0) /* no hidden files, no empty names */
        safe[0] = '_', safe[k ? k : 1] = '\0';
    snprintf(c->file, sizeof c->file, "%s.%s", safe, ext(c));
    for (int i = 2; file_taken(c, c->file); i++)
        snprintf(c->file, sizeof c->file, "%s-%d.%s", safe, i, ext(c));
}

void cks_plot_label(cks_buf *b, const char *s)
{
    cks_gnuplot_quote(b, s);
}

/* NaN is gnuplot's undefined value: a line stops before it and resumes after it. (Not
 * `set datafile missing 'NaN'`: that makes gnuplot 5.4 draw lines across the gap.) */
void cks_plot_num(cks_buf *b, double x)
{
    if (isfinite(x))
        cks_buf_printf(b, "%.10g", x);
    else
        cks_buf_puts(b, "NaN");
}

void cks_plot_log_tics(cks_buf *b, const char *axis, double lo, double hi)
{
    if (!(lo > 0) || !(hi > lo) || hi / lo >= 1000)
        return;
    char list[512];
    size_t k = 0;
    for (double d = pow(10, floor(log10(lo))); d <= hi && k < sizeof list - 64; d *= 10)
        for (int m = 1; m <= 5; m += m == 1 ? 1 : 3)
            if (m * d >= lo && m * d <= hi)
                k += (size_t)snprintf(list + k, sizeof list - k, "%s'%g' %.10g", k ? ", " : "",
                                      m * d, m * d);
    if (k) /* else no 1-2-5 value inside: gnuplot's own tics */
        cks_buf_printf(b, "set %stics (%s)\n", axis, list);
}

const char *cks_plot_color(size_t i)
{
    /* Tableau 10, then darker shades: distinguishable, colour-blind friendlier than rainbow */
    static const char *cycle[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                  "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
                                  "#0b3c5d", "#a64d00", "#145214", "#7a1414"};
    return cycle[i % (sizeof cycle / sizeof cycle[0])];
}

void cks_plot_begin(cks_plot_ctx *c, const char *stem, int width, int height, const char *title)
{
    cks_buf *b = &c->s;
    make_file_name(c, stem);
    cks_buf_clear(b);
    cks_buf_printf(b, "# ckptscope plot: %s (gnuplot -d %s.gp re-draws it)\n", c->file, c->file);
    if (c->o->format == CKS_PLOT_SVG)
        cks_buf_printf(b,
                       "set terminal svg size %d,%d noenhanced font 'sans-serif,12' "
                       "background rgb 'white'\n",
                       width, height);
    else
        cks_buf_printf(b,
                       "set terminal pngcairo size %d,%d noenhanced font 'DejaVu Sans,11' "
                       "background rgb 'white'\n",
                       width, height);
    cks_buf_printf(b, "set output '%s'\n", c->file); /* made of [A-Za-z0-9._-] only */
    cks_buf_puts(b, "set encoding utf8\n"
                    "set termoption noenhanced\n"
                    "set border 3 lw 1 lc rgb '#555555'\n"
                    "set tics nomirror out\n"
                    "set grid back lc rgb '#dddddd' lw 1 dt 1\n"
                    "set key outside right top vertical Left reverse samplen 2 spacing 1.1\n"
                    "set title ");
    snprintf(c->title, sizeof c->title, "%s", title);
    cks_plot_label(b, title);
    cks_buf_puts(b, "\n");
}

int cks_plot_wants_log(const double *v, size_t n, double ratio)
{
    double lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(v[i]))
            continue;
        if (v[i] <= 0)
            return 0;
        lo = fmin(lo, v[i]);
        hi = fmax(hi, v[i]);
    }
    return isfinite(lo) && hi / lo >= ratio;
}

/* Uneven steps (Pythia, LLM360 and the demo save densely early) crowd the first
 * checkpoints into a sliver of a linear axis, where the largest changes happen: when the
 * gaps between consecutive steps differ by 20x or more, use log(1 + step). */
static int want_step_log(const cks_runview *v)
{
    if (v->n < 4 || v->step[0] < 0)
        return 0;
    int64_t lo = INT64_MAX, hi = 0;
    for (size_t i = 1; i < v->n; i++) {
        int64_t gap = v->step[i] - v->step[i - 1];
        if (gap <= 0)
            continue;
        lo = gap < lo ? gap : lo;
        hi = gap > hi ? gap : hi;
    }
    return hi > 0 && hi >= 20 * lo;
}

void cks_plot_step_axis(cks_plot_ctx *c)
{
    cks_buf *b = &c->s;
    const cks_runview *v = c->v;
    double lo = (double)v->step[0], hi = (double)v->step[v->n - 1];
    if (c->xlog) {
        cks_buf_puts(b, "set xlabel 'training step (log scale: 1 + step)'\n"
                        "set nonlinear x via log10(x + 1) inverse 10**x - 1\n"
                        "set xtics (");
        /* 0, then 1-2-5 per decade up to the last step (1 per decade past four decades,
         * where 2 and 5 would crowd), written short: 20k, 1M */
        cks_buf_puts(b, "'0' 0");
        int dense = hi < 1e4;
        for (double d = 1; d <= hi * 1.0001 && d < 1e18; d *= 10)
            for (int m = 1; m <= 5; m += m == 1 ? 1 : 3) {
                double x = m * d;
                char lbl[32];
                if ((m > 1 && !dense) || x > hi * 1.0001 || x < lo)
                    continue;
                if (x >= 1e6)
                    snprintf(lbl, sizeof lbl, "%gM", x / 1e6);
                else if (x >= 1e4)
                    snprintf(lbl, sizeof lbl, "%gk", x / 1e3);
                else
                    snprintf(lbl, sizeof lbl, "%g", x);
                cks_buf_printf(b, ", '%s' %.0f", lbl, x);
            }
        cks_buf_puts(b, ")\nunset mxtics\n");
        cks_buf_printf(b, "set xrange [%.10g:%.10g]\n", lo, hi * 1.05 + 1);
        return;
    }
    double pad = hi > lo ? 0.02 * (hi - lo) : 1;
    cks_buf_puts(b, "set xlabel 'training step'\n");
    cks_buf_printf(b, "set xrange [%.10g:%.10g]\n", lo - pad, hi + pad);
}

void cks_plot_axis_label(cks_plot_ctx *c, const char *axis, const char *path, const char *metric)
{
    char *unit = NULL;
    cks_buf label;
    cks_buf_init(&label);
    cks_buf_puts(&label, metric);
    if (cks_runview_attr(c->v, path, "unit", &unit) == 0 && unit[0] && strcmp(unit, "1") != 0)
        cks_buf_printf(&label, " [%s]", unit);
    cks_error_clear();
    free(unit);
    cks_buf_printf(&c->s, "set %slabel ", axis);
    cks_plot_label(&c->s, cks_buf_text(&label));
    cks_buf_puts(&c->s, "\n");
    cks_buf_release(&label);
}

void cks_plot_description(cks_plot_ctx *c, const char *path)
{
    char *d = NULL;
    if (cks_runview_attr(c->v, path, "description", &d) == 0 && d[0]) {
        /* "\n" is gnuplot's own escape in a double-quoted constant: no data in it */
        cks_buf_puts(&c->s, "set title ");
        cks_plot_label(&c->s, c->title);
        cks_buf_puts(&c->s, ".\"\\n\".");
        cks_plot_label(&c->s, d);
        cks_buf_puts(&c->s, "\n");
    }
    cks_error_clear();
    free(d);
}

/* Writes <plot>.gp beside the plot (--scripts). */
static int keep_script(cks_plot_ctx *c)
{
    char path[4352];
    snprintf(path, sizeof path, "%s/%s.gp", c->o->outdir, c->file);
    FILE *f = fopen(path, "w");
    if (!f)
        return cks_error_set(CKS_EIO, "%s: %s", path, strerror(errno));
    size_t n = fwrite(c->s.data, 1, c->s.len, f);
    if (fclose(f) != 0 || n != c->s.len)
        return cks_error_set(CKS_EIO, "%s: write failed", path);
    return 0;
}

int cks_plot_finish(cks_plot_ctx *c, const char *family, const char *title)
{
    int err = cks_buf_error(&c->s);
    if (err)
        return err;
    if (c->o->progress)
        c->o->progress(c->o->progress_ctx, c->drawn, c->file);
    if (c->o->keep_scripts && (err = keep_script(c)))
        return err;
    char *script = c->s.data; /* the pool owns it from here */
    size_t len = c->s.len;
    cks_buf_init(&c->s);
    if ((err = cks_gnuplot_pool_submit(c->pool, script, len, c->file)))
        return err;
    c->drawn++;
    return list_add(c->list, family, c->file, title, NULL);
}

int cks_plot_skip(cks_plot_ctx *c, const char *family, const char *title, const char *fmt, ...)
{
    char reason[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    return list_add(c->list, family, NULL, title, reason);
}

/* ---- output folder and index ---- */

static int prepare_outdir(const char *dir, FILE **index)
{
    struct stat st;
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return cks_error_set(CKS_EIO, "cannot create the output folder %s: %s", dir,
                             strerror(errno));
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return cks_error_set(CKS_EIO, "the output folder %s is not a folder", dir);
    char path[4352];
    snprintf(path, sizeof path, "%s/%s", dir, INDEX_FILE);
    if (!(*index = fopen(path, "w")))
        return cks_error_set(CKS_EIO, "cannot write in the output folder %s: %s", dir,
                             strerror(errno));
    return 0;
}

static int write_index(FILE *f, const cks_runview *v, const cks_plot_opts *o,
                       const cks_plot_list *l, int xlog)
{
    cks_buf b;
    size_t drawn = 0;
    cks_buf_init(&b);
    const cks_store_ckpt *at = cks_runview_ckpt(v, l->at);
    cks_buf_puts(&b, "ckptscope plot index\nrun:         ");
    cks_buf_put_text(&b, v->path, 400, NULL);
    cks_buf_printf(&b,
                   "\ncheckpoints: %zu, steps %lld .. %lld%s\nper checkpoint (esd, alpha): ", v->n,
                   (long long)v->step[0], (long long)v->step[v->n - 1],
                   xlog ? " (x axis: log(1 + step))" : "");
    cks_buf_put_text(&b, at->name, 200, NULL);
    cks_buf_printf(&b, " (step %lld)\nformat:      %s\n", (long long)at->step,
                   o->format == CKS_PLOT_SVG ? "svg" : "png");
    int width = 8;
    for (size_t i = 0; i < l->n; i++) {
        drawn += l->item[i].file != NULL;
        if (l->item[i].file && (int)strlen(l->item[i].file) > width)
            width = (int)strlen(l->item[i].file);
        if (width > 44) /* a longer name (an ESD's tensor) just pushes its own line */
            width = 44;
    }
    for (int pass = 0; pass < 2; pass++) {
        cks_buf_printf(&b, "\n%s (%zu):\n", pass ? "skipped" : "drawn",
                       pass ? l->n - drawn : drawn);
        for (size_t i = 0; i < l->n; i++) {
            const cks_plot_item *it = &l->item[i];
            if ((it->file == NULL) != pass)
                continue;
            cks_buf_printf(&b, "  %-*s  %-8s ", width, pass ? "-" : it->file, it->family);
            cks_buf_put_text(&b, it->title, 300, NULL);
            if (pass) {
                cks_buf_puts(&b, ": ");
                cks_buf_put_text(&b, it->reason, 400, NULL);
            }
            cks_buf_puts(&b, "\n");
        }
    }
    int err = cks_buf_error(&b);
    if (!err && (fwrite(b.data, 1, b.len, f) != b.len || fflush(f) != 0))
        err = cks_error_set(CKS_EIO, "%s/%s: write failed: %s", o->outdir, INDEX_FILE,
                            strerror(errno));
    cks_buf_release(&b);
    return err;
}

/* A strict family that drew nothing: its first skip reason becomes the error. */
static int check_strict(const cks_plot_ctx *c)
{
    for (size_t f = 0; f < NFAMILIES; f++) {
        if (!(c->o->families & families[f].bit))
            continue;
        const cks_plot_item *first_skip = NULL;
        int drawn = 0;
        for (size_t i = 0; i < c->list->n; i++) {
            const cks_plot_item *it = &c->list->item[i];
            if (strcmp(it->family, families[f].name) != 0)
                continue;
            drawn |= it->file != NULL;
            if (!it->file && !first_skip)
                first_skip = it;
        }
        if (!drawn)
            return cks_error_set(CKS_ENOTFOUND, "%s: no %s plot can be drawn: %s", c->v->path,
                                 families[f].name,
                                 first_skip ? first_skip->reason : "nothing to draw");
    }
    return 0;
}

static int draw_families(cks_plot_ctx *c, size_t at)
{
    unsigned f = c->o->families;
    int err = 0;
    if (!err && (f & CKS_PLOT_EVAL))
        err = cks_plot_eval(c);
    if (!err && (f & CKS_PLOT_KL))
        err = cks_plot_kl(c);
    if (!err && (f & CKS_PLOT_MEMO))
        err = cks_plot_memo(c);
    if (!err && (f & CKS_PLOT_EVALS))
        err = cks_plot_evals(c);
    if (!err && (f & CKS_PLOT_MEDIAN))
        err = cks_plot_medians(c);
    if (!err && (f & CKS_PLOT_HEATMAP))
        err = cks_plot_heatmaps(c);
    if (!err && (f & CKS_PLOT_ESD))
        err = cks_plot_esd(c, at);
    if (!err && (f & CKS_PLOT_ALPHA))
        err = cks_plot_alpha_hist(c, at);
    return err;
}

static int plot_jobs(const cks_plot_opts *o)
{
    long n = o->jobs > 0 ? o->jobs : sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > CKS_GNUPLOT_MAX_JOBS ? CKS_GNUPLOT_MAX_JOBS : (int)n;
}

int cks_plots_draw(cks_runview *v, const cks_plot_opts *o, cks_plot_list *out)
{
    cks_plot_ctx c = {.v = v, .o = o, .list = out};
    FILE *index = NULL;
    size_t at;
    cks_plot_list_init(out);
    cks_buf_init(&c.s);
    int err = 0;
    if (o->at)
        err = cks_runview_find(v, o->at, &at);
    else
        at = cks_runview_latest(v);
    if (!err)
        err = cks_gnuplot_find(o->gnuplot, &c.gnuplot);
    if (!err)
        err = prepare_outdir(o->outdir, &index);
    if (err)
        goto done;
    out->at = at;
    c.xlog = want_step_log(v);
    if ((err = cks_gnuplot_pool_new(&c.pool, c.gnuplot, o->outdir, plot_jobs(o),
                                    o->timeout_ms > 0 ? o->timeout_ms : CKS_GNUPLOT_TIMEOUT_MS)))
        goto done;
    err = draw_families(&c, at);
    int waited = cks_gnuplot_pool_wait(c.pool); /* every submitted plot, even after an error */
    if (!err)
        err = waited;
    if (err)
        goto done;
    if ((err = write_index(index, v, o, out, c.xlog)))
        goto done;
    if (o->strict) /* the family asked for says more than "nothing" */
        err = check_strict(&c);
    if (!err && c.drawn == 0)
        err = cks_error_set(CKS_ENOTFOUND,
                            "%s: nothing to draw: the run file holds none of /eval, /evals, "
                            "/memo, /norms, /drift, /spectral (see %s/%s)",
                            v->path, o->outdir, INDEX_FILE);
done:
    if (index && fclose(index) != 0 && !err)
        err = cks_error_set(CKS_EIO, "%s/%s: %s", o->outdir, INDEX_FILE, strerror(errno));
    cks_gnuplot_pool_free(c.pool);
    cks_buf_release(&c.s);
    free(c.gnuplot);
    return err;
}
