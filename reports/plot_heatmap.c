/* Layer x step heatmaps (plots.h family heatmap): one per metric and per-layer tensor kind.
 * Each checkpoint's column spans half-way to its neighbours (on the drawn x scale), so
 * uneven steps keep their true positions; a cell is a filled box coloured by value, and a
 * missing value is no box at all: the grey background shows through as a gap. */
#include "plots_impl.h"
#include "error.h"
#include "tensor.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MISSING_GREY "#d9d9d9"

/* x as drawn: log10(1 + step) on a log step axis, the step otherwise. */
static double to_axis(const cks_plot_ctx *c, double step)
{
    return c->xlog ? log10(1.0 + step) : step;
}

static double from_axis(const cks_plot_ctx *c, double t)
{
    return c->xlog ? pow(10.0, t) - 1.0 : t;
}

/* Left and right edges of each checkpoint's column, in steps. */
static void column_edges(const cks_plot_ctx *c, double *lo, double *hi)
{
    const cks_runview *v = c->v;
    size_t n = v->n;
    for (size_t i = 0; i < n; i++) {
        double t = to_axis(c, (double)v->step[i]);
        double tl = i > 0 ? to_axis(c, (double)v->step[i - 1]) : NAN;
        double tr = i + 1 < n ? to_axis(c, (double)v->step[i + 1]) : NAN;
        double half_l = isfinite(tl) ? (t - tl) / 2 : NAN,
               half_r = isfinite(tr) ? (tr - t) / 2 : NAN;
        if (!isfinite(half_l))
            half_l = isfinite(half_r) ? half_r : (c->xlog ? 0.05 : 0.5);
        if (!isfinite(half_r))
            half_r = half_l;
        lo[i] = from_axis(c, t - half_l);
        hi[i] = from_axis(c, t + half_r);
        if (c->xlog && lo[i] < (double)v->step[0]) /* log(1 + x) needs x > -1 */
            lo[i] = (double)v->step[0];
    }
}

/* Positive finite values span at least ratio: a log colour scale. Zeros (rel_fro at the
 * reference itself) are left out of the decision and drawn at the lower end. */
static int cb_log(const double *vals, size_t n, double *lo_out)
{
    double lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(vals[i]))
            continue;
        if (vals[i] < 0)
            return 0;
        if (vals[i] > 0)
            lo = fmin(lo, vals[i]), hi = fmax(hi, vals[i]);
    }
    *lo_out = lo;
    return isfinite(lo) && hi / lo >= 100;
}

/* One heatmap of metric m for the tensors idx[0..nk) of one kind. vals is [n, T]. */
static int heatmap(cks_plot_ctx *c, const cks_plot_metric *m, const double *vals, const size_t *idx,
                   size_t nk, const char *kind, const double *xlo, const double *xhi)
{
    const cks_runview *v = c->v;
    cks_buf *b = &c->s;
    char title[320], stem[128], base[256];
    cks_plot_metric_title(c, m, "", base, sizeof base);
    snprintf(title, sizeof title, "%s: %s tensors, layer x step", base, kind);
    /* the kind's values, for the colour scale */
    size_t cells = 0;
    double *kv = malloc((v->n * nk > 0 ? v->n * nk : 1) * sizeof *kv);
    if (!kv)
        return cks_error_set(CKS_ENOMEM, "out of memory");
    for (size_t i = 0; i < v->n; i++)
        for (size_t j = 0; j < nk; j++)
            if (isfinite(kv[cells] = vals[i * v->nt + idx[j]]))
                cells++;
    if (cells == 0) {
        free(kv);
        return cks_plot_skip(c, "heatmap", title, "no %s tensor has a value in %s%s", kind, m->path,
                             strncmp(m->path, "/spectral", 9) == 0 ? " (2-D matrices only)" : "");
    }
    double poslo;
    int logc = cb_log(kv, cells, &poslo);
    free(kv);
    snprintf(stem, sizeof stem, "heatmap_%s_%s", m->stem, kind);
    cks_plot_begin(c, stem, 960, 520, title);
    cks_plot_step_axis(c);
    cks_buf_printf(b,
                   "set ylabel 'layer'\nset yrange [-0.5:%d.5]\nset ytics %d\nset mytics 1\n"
                   "set grid noxtics noytics\nset key off\n"
                   "set palette defined (0 '#440154', 0.25 '#3b528b', 0.5 '#21918c', "
                   "0.75 '#5ec962', 1 '#fde725')\n"
                   "set object 1 rectangle from graph 0, graph 0 to graph 1, graph 1 behind "
                   "fc rgb '%s' fs solid 1.0 noborder\n"
                   "set label 1 'grey: no value' at screen 0.99, screen 0.03 right "
                   "tc rgb '#666666'\n",
                   v->nlayers - 1, v->nlayers > 16 ? (v->nlayers + 15) / 16 : 1, MISSING_GREY);
    cks_plot_axis_label(c, "cb", m->path, m->label);
    cks_plot_description(c, m->path);
    if (logc) {
        cks_buf_puts(b, "set logscale cb\nset format cb '%g'\nset cbrange [");
        cks_plot_num(b, poslo);
        cks_buf_puts(b, ":*]\n");
    }
    cks_buf_puts(b, "$cells << EOD\n");
    for (size_t i = 0; i < v->n; i++) {
        for (size_t j = 0; j < nk; j++) {
            double z = vals[i * v->nt + idx[j]];
            int layer = v->tensor[idx[j]].layer;
            if (!isfinite(z) || layer < 0)
                continue;
            if (logc && z < poslo)
                z = poslo; /* zero: the lowest colour, not a gap */
            cks_buf_printf(b, "%lld %d ", (long long)v->step[i], layer);
            cks_plot_num(b, xlo[i]);
            cks_buf_puts(b, " ");
            cks_plot_num(b, xhi[i]);
            cks_buf_printf(b, " %g %g ", layer - 0.5, layer + 0.5);
            cks_plot_num(b, z);
            cks_buf_puts(b, "\n");
        }
    }
    cks_buf_puts(b, "EOD\nplot $cells using 1:2:3:4:5:6:7 with boxxyerror fs solid 1.0 noborder "
                    "fc palette notitle\n");
    return cks_plot_finish(c, "heatmap", title);
}

/* Tensors of one kind with a layer, at most one per layer (the first in tensor order). */
static size_t layered(const cks_runview *v, size_t *idx, size_t n, unsigned char *seen)
{
    size_t k = 0;
    memset(seen, 0, (size_t)v->nlayers);
    for (size_t j = 0; j < n; j++) {
        int layer = v->tensor[idx[j]].layer;
        if (layer >= 0 && layer < v->nlayers && !seen[layer]) {
            seen[layer] = 1;
            idx[k++] = idx[j];
        }
    }
    return k;
}

static int metric_heatmaps(cks_plot_ctx *c, const cks_plot_metric *m, const double *xlo,
                           const double *xhi)
{
    const cks_runview *v = c->v;
    double *vals = NULL;
    size_t cols;
    int err = cks_runview_read(c->v, m->path, v->nt, &vals, &cols);
    if (err)
        return err;
    size_t *idx = malloc((v->nt ? v->nt : 1) * sizeof *idx);
    unsigned char *seen = malloc(v->nlayers ? (size_t)v->nlayers : 1);
    if (!idx || !seen)
        err = cks_error_set(CKS_ENOMEM, "out of memory");
    /* the kinds that come once per layer; embed, final_norm and lm_head have no layer */
    for (int k = CKS_KIND_Q; k <= CKS_KIND_MLP_NORM && !err; k++) {
        size_t nk = layered(v, idx, cks_plot_kind_columns(v, k, idx), seen);
        if (nk)
            err = heatmap(c, m, vals, idx, nk, cks_kind_name((cks_kind)k), xlo, xhi);
    }
    free(seen);
    free(idx);
    free(vals);
    return err;
}

int cks_plot_heatmaps(cks_plot_ctx *c)
{
    size_t nm;
    const cks_plot_metric *m = cks_plot_metrics(&nm);
    const cks_runview *v = c->v;
    if (v->nlayers == 0)
        return cks_plot_skip(c, "heatmap", "layer x step heatmaps",
                             "no tensor of the run has a layer number");
    double *xlo = malloc(v->n * sizeof *xlo), *xhi = malloc(v->n * sizeof *xhi);
    int err = 0;
    if (!xlo || !xhi)
        err = cks_error_set(CKS_ENOMEM, "out of memory");
    else
        column_edges(c, xlo, xhi);
    for (size_t i = 0; i < nm && !err; i++) {
        char title[256];
        cks_plot_metric_title(c, &m[i], "heatmaps: ", title, sizeof title);
        if (!cks_store_exists(v->store, m[i].path))
            err = cks_plot_skip(c, "heatmap", title, "the run file has no %s (scan --metrics %s)",
                                m[i].path, m[i].family);
        else
            err = metric_heatmaps(c, &m[i], xlo, xhi);
    }
    free(xlo);
    free(xhi);
    return err;
}
