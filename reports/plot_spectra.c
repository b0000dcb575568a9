/* Per-checkpoint spectral plots (plots.h families esd and alpha).
 *
 * ESD, drawn as WeightWatcher's plot_powerlaw draws it (log-log histogram of the
 * eigenvalues λ of WᵀW on logarithmic bins, the fitted power-law density as a dashed line,
 * a vertical line at xmin). The run file keeps only the K largest λ (/spectra, K <= 256)
 * of the R = min(rows, cols) there are, so the histogram covers [λ_K, λ_1], and both the
 * histogram and the fit are densities over all R eigenvalues: a bin holding c of them is
 * c / (R · width), and the tail of k eigenvalues >= xmin fitted by α (Clauset, Shalizi &
 * Newman 2009, eq. 2.2: p(x) = (α-1)/xmin · (x/xmin)^-α over the tail) contributes
 * (k/R) · p(x). Where K covers the tail the two agree in scale by construction.
 *
 * Alpha histogram: alpha over every matrix at the checkpoint, with the 2..6 band that
 * WeightWatcher calls well trained (heavy-tailed but not over-fitted) shaded. */
#include "plots_impl.h"
#include "error.h"
#include "tensor.h"

#include <fnmatch.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ESD_FIT_POINTS 64
#define ALPHA_LO       2.0 /* WeightWatcher: alpha in [2, 6] for well-trained layers */
#define ALPHA_HI       6.0

/* The /spectral values of one checkpoint that the ESD needs, one per tensor column. */
typedef struct {
    double *alpha, *xmin, *tail, *ks;
} fit_row;

static void fit_row_release(fit_row *f)
{
    free(f->alpha);
    free(f->xmin);
    free(f->tail);
    free(f->ks);
}

static int read_fit_value(cks_plot_ctx *c, const char *name, size_t at, double **out)
{
    char path[64];
    size_t cols;
    snprintf(path, sizeof path, "/spectral/%s", name);
    *out = NULL;
    if (!cks_store_exists(c->v->store, path))
        return 0;
    int err = cks_runview_read_at(c->v, path, at, out, &cols);
    if (!err && cols != c->v->nt) {
        free(*out);
        *out = NULL;
        return cks_error_set(CKS_EFORMAT, "%s: %s has %zu columns for %zu tensors", c->v->path,
                             path, cols, c->v->nt);
    }
    return err;
}

static double at_or_nan(const double *v, size_t j)
{
    return v ? v[j] : NAN;
}

/* Writes the histogram block $h and returns the number of bins written (0: no λ > 0). */
static size_t esd_histogram(cks_buf *b, double *lam, size_t m, double r, double *ylo)
{
    double lo = INFINITY, hi = 0;
    for (size_t i = 0; i < m; i++)
        lo = fmin(lo, lam[i]), hi = fmax(hi, lam[i]);
    size_t nb = m / 4 < 8 ? 8 : m / 4 > 40 ? 40 : m / 4;
    if (!(hi > lo))
        nb = 1;
    double l0 = log10(lo), l1 = log10(hi) + 1e-9, w = (l1 - l0) / (double)nb;
    if (nb == 1) /* one distinct value: a bin of +-1 % around it */
        l0 = log10(lo * 0.99), w = log10(1.01 / 0.99);
    size_t counts[40] = {0};
    for (size_t i = 0; i < m; i++) {
        size_t k = (size_t)((log10(lam[i]) - l0) / w);
        counts[k < nb ? k : nb - 1]++;
    }
    double dmin = INFINITY;
    for (size_t k = 0; k < nb; k++) {
        double a = pow(10, l0 + k * w), z = pow(10, l0 + (k + 1) * w);
        if (counts[k])
            dmin = fmin(dmin, (double)counts[k] / (r * (z - a)));
    }
    *ylo = dmin / 3; /* bars stand on a floor below the smallest density */
    cks_buf_puts(b, "$h << EOD\n");
    size_t written = 0;
    for (size_t k = 0; k < nb; k++) {
        double a = pow(10, l0 + k * w), z = pow(10, l0 + (k + 1) * w);
        if (!counts[k])
            continue;
        double dens = (double)counts[k] / (r * (z - a));
        cks_buf_printf(b, "%.10g %.10g %.10g %.10g %.10g %.10g\n", sqrt(a * z), dens, a, z, *ylo,
                       dens);
        written++;
    }
    cks_buf_puts(b, "EOD\n");
    return written;
}

static int cmp_desc(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x < y) - (x > y);
}

/* The positive eigenvalues stored for tensor column j at step position at, largest first:
 * *lam (free it) holds *m of them. */
static int esd_read(cks_plot_ctx *c, const cks_store_tensor *t, size_t at, double **lam, size_t *m)
{
    char *esc = cks_store_escape_name(t->name), *path = NULL;
    size_t k = 0;
    if (!esc || !(path = malloc(strlen(esc) + 10))) {
        free(esc);
        return cks_error_set(CKS_ENOMEM, "out of memory");
    }
    sprintf(path, "/spectra/%s", esc);
    free(esc);
    size_t rows, cols;
    char pname[160];
    int err = cks_store_shape(c->v->store, path, &rows, &cols);
    if (!err && cols > CKS_PLOT_MAX_EIGS)
        err =
            cks_error_set(CKS_ELIMIT,
                          "%s: /spectra of %s keeps %zu eigenvalues per "
                          "checkpoint, more than %d",
                          c->v->path, cks_printable(pname, sizeof pname, t->name, strlen(t->name)),
                          cols, CKS_PLOT_MAX_EIGS);
    if (!err)
        err = cks_runview_read_at(c->v, path, at, lam, &k);
    free(path);
    if (err)
        return err;
    *m = 0;
    for (size_t i = 0; i < k; i++)
        if (isfinite((*lam)[i]) && (*lam)[i] > 0)
            (*lam)[(*m)++] = (*lam)[i];
    qsort(*lam, *m, sizeof **lam, cmp_desc);
    return 0;
}

/* The fitted density (k/R)(α-1)/xmin (x/xmin)^-α from xmin to the largest eigenvalue, and
 * the xmin marker. */
static void esd_fit(cks_buf *b, double alpha, double xmin, double tail, double r, double xh)
{
    cks_buf_puts(b, "$f << EOD\n");
    for (int i = 0; i < ESD_FIT_POINTS; i++) {
        double x = xmin * pow(fmax(xh, xmin * 1.0001) / xmin, i / (ESD_FIT_POINTS - 1.0));
        double p = (tail / r) * (alpha - 1) / xmin * pow(x / xmin, -alpha);
        cks_buf_printf(b, "%.10g %.10g\n", x, p);
    }
    cks_buf_puts(b, "EOD\n");
    cks_buf_printf(b,
                   "set arrow 1 from %.10g, graph 0 to %.10g, graph 1 nohead lw 2 dt 2 "
                   "lc rgb '#d62728' front\n",
                   xmin, xmin);
}

/* The ESD of tensor column j at step position at. */
static int esd_one(cks_plot_ctx *c, size_t j, size_t at, const fit_row *fit)
{
    const cks_store_tensor *t = &c->v->tensor[j];
    const cks_store_ckpt *ck = cks_runview_ckpt(c->v, at);
    char tname[128], cname[96], title[320], stem[200];
    cks_printable(tname, sizeof tname, t->name, strlen(t->name));
    cks_printable(cname, sizeof cname, ck->name, strlen(ck->name));
    snprintf(title, sizeof title, "ESD of %s at %s (step %lld)", tname, cname, (long long)ck->step);
    double *lam = NULL, r = (double)(t->rows < t->cols ? t->rows : t->cols);
    size_t m = 0;
    int err = esd_read(c, t, at, &lam, &m);
    if (err)
        return err;
    if (m < 2 || !(r >= (double)m)) {
        free(lam);
        return cks_plot_skip(c, "esd", title, "%zu positive eigenvalues stored for this checkpoint",
                             m);
    }
    double alpha = at_or_nan(fit->alpha, j), xmin = at_or_nan(fit->xmin, j);
    double tail = at_or_nan(fit->tail, j), ks = at_or_nan(fit->ks, j);
    int has_fit = isfinite(alpha) && alpha > 1 && isfinite(xmin) && xmin > 0 && tail >= 1;

    cks_buf *b = &c->s, lbl;
    snprintf(stem, sizeof stem, "esd_%s", t->name);
    cks_buf_init(&lbl);
    cks_buf_puts(&lbl, "ESD of ");
    cks_buf_put_text(&lbl, t->name, 100, NULL);
    cks_buf_puts(&lbl, " at ");
    cks_buf_put_text(&lbl, ck->name, 60, NULL);
    cks_buf_printf(&lbl, " (step %lld)", (long long)ck->step);
    cks_plot_begin(c, stem, 900, 600, cks_buf_text(&lbl));
    cks_buf_release(&lbl);
    cks_buf_puts(b, "set logscale xy\nset format x '%g'\nset format y '%g'\n"
                    "set xlabel 'eigenvalue of W^T W (squared singular value)'\n"
                    "set ylabel 'density: eigenvalues per unit, over all min(rows, cols)'\n"
                    "set key inside top right opaque box lc rgb '#cccccc'\n");
    double ylo, xl = lam[m - 1], xh = lam[0];
    size_t bins = esd_histogram(b, lam, m, r, &ylo);
    free(lam);
    if (has_fit) {
        esd_fit(b, alpha, xmin, tail, r, xh);
        xl = fmin(xl, xmin);
    }
    cks_buf_printf(b, "set xrange [%.10g:%.10g]\nset yrange [%.10g:*]\n", xl / 1.3, xh * 1.3, ylo);
    cks_plot_log_tics(b, "x", xl / 1.3, xh * 1.3);
    if ((double)m < r)
        cks_buf_printf(b,
                       "set label 2 'the run file keeps the largest %zu of %.0f' at graph "
                       "0.02, graph 0.04 tc rgb '#555555'\n",
                       m, r);
    cks_buf_printf(b,
                   "plot $h using 1:2:3:4:5:6 with boxxyerror fs solid 1.0 border lc rgb "
                   "'#1f4e79' fc rgb '#9ecae1' title '%zu eigenvalues in %zu log bins'",
                   m, bins);
    if (has_fit)
        cks_buf_printf(b,
                       ", \\\n  $f using 1:2 with lines lw 2.5 dt 2 lc rgb '#d62728' title "
                       "'power law: alpha = %.3f, tail k = %.0f, KS D = %.3f', \\\n"
                       "  keyentry with lines lw 2 dt 2 lc rgb '#d62728' title 'xmin = %.4g'",
                       alpha, tail, ks, xmin);
    cks_buf_puts(b, has_fit ? "\n" : "\n# no power-law fit at this checkpoint\n");
    return cks_plot_finish(c, "esd", title);
}

/* The ESD tensors: the glob's matches, or one matrix of each kind in the middle layer
 * plus embed and lm_head. Only tensors with a /spectra dataset count. */
static size_t esd_choose(cks_plot_ctx *c, size_t *idx, size_t *matched)
{
    const cks_runview *v = c->v;
    size_t n = 0;
    *matched = 0;
    for (size_t j = 0; j < v->nt; j++) {
        const cks_store_tensor *t = &v->tensor[j];
        cks_kind k;
        int want;
        if (c->o->tensors)
            want = fnmatch(c->o->tensors, t->name, 0) == 0;
        else
            want = cks_kind_from_name(t->kind, &k) == 0 &&
                   ((k <= CKS_KIND_DOWN && t->layer == v->nlayers / 2) || k == CKS_KIND_EMBED ||
                    k == CKS_KIND_LM_HEAD);
        char *esc = want ? cks_store_escape_name(t->name) : NULL, *path;
        if (!esc || !(path = malloc(strlen(esc) + 10))) {
            free(esc);
            continue;
        }
        sprintf(path, "/spectra/%s", esc);
        if (cks_store_exists(v->store, path)) {
            (*matched)++;
            if (n < CKS_PLOT_MAX_ESD)
                idx[n++] = j;
        }
        free(path);
        free(esc);
    }
    return n;
}

int cks_plot_esd(cks_plot_ctx *c, size_t at)
{
    const cks_runview *v = c->v;
    if (!cks_store_exists(v->store, "/spectra"))
        return cks_plot_skip(c, "esd", "empirical spectral densities",
                             "the run file has no /spectra (scan --metrics spectral keeps the "
                             "largest eigenvalues of each matrix)");
    size_t *idx = malloc((v->nt ? v->nt : 1) * sizeof *idx), matched;
    fit_row fit = {0};
    if (!idx)
        return cks_error_set(CKS_ENOMEM, "out of memory");
    int err = 0;
    size_t n = esd_choose(c, idx, &matched);
    if (n == 0)
        err = cks_plot_skip(c, "esd", "empirical spectral densities",
                            c->o->tensors ? "no tensor with a /spectra dataset matches --tensors"
                                          : "no matrix of the middle layer has a /spectra dataset");
    if (!err && n && !(err = read_fit_value(c, "alpha", at, &fit.alpha)) &&
        !(err = read_fit_value(c, "xmin", at, &fit.xmin)) &&
        !(err = read_fit_value(c, "tail", at, &fit.tail)))
        err = read_fit_value(c, "ks", at, &fit.ks);
    for (size_t i = 0; i < n && !err; i++)
        err = esd_one(c, idx[i], at, &fit);
    if (!err && matched > n)
        err = cks_plot_skip(c, "esd", "more empirical spectral densities",
                            "%zu more tensors match; at most %d are drawn", matched - n,
                            CKS_PLOT_MAX_ESD);
    fit_row_release(&fit);
    free(idx);
    return err;
}

int cks_plot_alpha_hist(cks_plot_ctx *c, size_t at)
{
    const cks_runview *v = c->v;
    const cks_store_ckpt *ck = cks_runview_ckpt(v, at);
    char cname[96], title[256];
    cks_printable(cname, sizeof cname, ck->name, strlen(ck->name));
    snprintf(title, sizeof title, "histogram of alpha over all matrices at %s (step %lld)", cname,
             (long long)ck->step);
    if (!cks_store_exists(v->store, "/spectral/alpha"))
        return cks_plot_skip(c, "alpha", title,
                             "the run file has no /spectral/alpha (scan --metrics spectral)");
    fit_row fit = {0};
    int err = read_fit_value(c, "alpha", at, &fit.alpha);
    if (err)
        return err;
    size_t m = 0, outside = 0;
    double lo = INFINITY, hi = -INFINITY;
    for (size_t j = 0; j < v->nt; j++) {
        double a = fit.alpha[j];
        if (!isfinite(a))
            continue;
        fit.alpha[m++] = a;
        lo = fmin(lo, a), hi = fmax(hi, a);
        outside += a < ALPHA_LO || a > ALPHA_HI;
    }
    if (m == 0) {
        fit_row_release(&fit);
        return cks_plot_skip(c, "alpha", title, "no matrix has an alpha at this checkpoint");
    }
    double w = hi - lo <= 8 ? 0.25 : (hi - lo) / 32;
    double x0 = floor(fmin(lo, ALPHA_LO) / w) * w, x1 = ceil(fmax(hi, ALPHA_HI) / w) * w + w;
    size_t nb = (size_t)((x1 - x0) / w + 0.5);
    size_t *counts = calloc(nb ? nb : 1, sizeof *counts);
    if (!counts) {
        fit_row_release(&fit);
        return cks_error_set(CKS_ENOMEM, "out of memory");
    }
    size_t ymax = 0;
    for (size_t i = 0; i < m; i++) {
        size_t k = (size_t)((fit.alpha[i] - x0) / w);
        k = k < nb ? k : nb - 1;
        if (++counts[k] > ymax)
            ymax = counts[k];
    }
    cks_buf *b = &c->s;
    cks_buf lbl;
    cks_buf_init(&lbl);
    cks_buf_printf(&lbl, "alpha of %zu matrices at ", m);
    cks_buf_put_text(&lbl, ck->name, 60, NULL);
    cks_buf_printf(&lbl, " (step %lld): %zu outside %g..%g", (long long)ck->step, outside, ALPHA_LO,
                   ALPHA_HI);
    cks_plot_begin(c, "alpha_hist", 900, 540, cks_buf_text(&lbl));
    cks_buf_release(&lbl);
    cks_buf_printf(b,
                   "set xlabel 'alpha (power-law exponent of the ESD tail)'\n"
                   "set ylabel 'matrices'\nset xrange [%.10g:%.10g]\nset yrange [0:%zu]\n"
                   "set ytics %s\n"
                   "set key inside top right opaque box lc rgb '#cccccc'\n"
                   "set style fill solid 0.7 border lc rgb '#1f4e79'\nset boxwidth %.10g\n"
                   "set object 1 rectangle from %g, graph 0 to %g, graph 1 behind "
                   "fc rgb '#dcefdc' fs solid 1.0 noborder\n",
                   x0, x1, ymax + ymax / 4 + 1, ymax > 10 ? "autofreq" : "1", w * 0.92, ALPHA_LO,
                   ALPHA_HI);
    cks_buf_puts(b, "$a << EOD\n");
    for (size_t k = 0; k < nb; k++)
        if (counts[k])
            cks_buf_printf(b, "%.10g %zu\n", x0 + (k + 0.5) * w, counts[k]);
    cks_buf_printf(b,
                   "EOD\nplot $a using 1:2 with boxes lc rgb '#1f77b4' title 'matrices "
                   "per bin of %g', \\\n  keyentry with boxes fc rgb '#dcefdc' title "
                   "'%g <= alpha <= %g (WeightWatcher: well trained)' fs solid 1.0\n",
                   w, ALPHA_LO, ALPHA_HI);
    free(counts);
    fit_row_release(&fit);
    return cks_plot_finish(c, "alpha", title);
}
