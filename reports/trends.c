/* The trends page (report.h): draws every plot of the run as PNG into a private temporary
 * folder, embeds each as a base64 data URI, adds the checkpoint table and the newest
 * complete checkpoint's report, and removes the folder. One file, no network resource. */
#include "report_impl.h"
#include "error.h"
#include "plots.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_SETS_IN_TABLE 6 /* eval sets given a column in the checkpoint table */

/* Page sections, one per plot family, in page order. */
static const struct {
    const char *family, *id, *title, *intro;
    int grid; /* two figures per row */
} sections[] = {
    {"eval", "eval", "Held-out perplexity",
     "Perplexity and bits per UTF-8 byte of each held-out set against step (/eval).", 0},
    {"kl", "kl", "Function space",
     "How far each checkpoint's next-token distributions moved on each held-out set: the "
     "KL divergence from the previous checkpoint's and from the reference's (nats), top-1 "
     "agreement with the previous checkpoint, forgetting events (the previous checkpoint's "
     "top-1 was right, this one's is not) and learning events (the reverse), and top-1 "
     "accuracy (/eval/&lt;set&gt;/kl_prev, ...).",
     1},
    {"memorization", "memo", "Memorisation",
     "Greedy continuations of training sequences (prompt k tokens, continuation l): the "
     "fraction of continuation tokens reproduced, of sequences reproduced in full, and the "
     "longest reproduced prefix, per training data set (/memo).",
     1},
    {"evals", "evals", "Eval scores",
     "Imported lm-eval scores against step, with bands of one standard error (/evals).", 1},
    {"median", "medians", "Per-kind medians",
     "The median over the tensors of each kind against step: drift against the previous "
     "checkpoint and the reference (rel_fro), rms, power-law alpha and stable rank.",
     1},
    {"heatmap", "heatmaps", "Layer \xc3\x97 step heatmaps",
     "One per metric and tensor kind: where in the network and when in training the "
     "weights moved. Grey cells have no value.",
     1},
    {"esd", "esd", "Eigenvalue spectra",
     "Empirical spectral densities of chosen matrices on log-log axes, with the power law "
     "fitted to the tail (dashed) and xmin marked, as WeightWatcher draws them.",
     1},
    {"alpha", "alpha", "Alpha over all matrices",
     "The histogram of the power-law exponent alpha of every matrix; 2 to 6 shaded.", 0},
};
#define NSECTIONS (sizeof sections / sizeof sections[0])

/* Reads a drawn plot into memory: at most CKS_REPORT_MAX_IMAGE bytes. */
static int read_image(const char *dir, const char *file, unsigned char **out, size_t *n)
{
    char path[4352];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    FILE *f = fopen(path, "rb");
    if (!f)
        return cks_error_set(CKS_EIO, "%s: %s", path, strerror(errno));
    unsigned char *buf = NULL;
    size_t len = 0, cap = 0;
    int err = 0;
    for (;;) {
        if (len == cap) {
            cap = cap ? 2 * cap : 65536;
            unsigned char *p = cap <= CKS_REPORT_MAX_IMAGE ? realloc(buf, cap) : NULL;
            if (!p) {
                err = cap > CKS_REPORT_MAX_IMAGE
                          ? cks_error_set(CKS_ELIMIT, "%s: larger than %u bytes", path,
                                          CKS_REPORT_MAX_IMAGE)
                          : cks_error_set(CKS_ENOMEM, "out of memory");
                break;
            }
            buf = p;
        }
        size_t r = fread(buf + len, 1, cap - len, f);
        len += r;
        if (r == 0) {
            if (ferror(f))
                err = cks_error_set(CKS_EIO, "%s: read failed", path);
            break;
        }
    }
    fclose(f);
    if (err) {
        free(buf);
        return err;
    }
    *out = buf;
    *n = len;
    return 0;
}

/* Width and height from a PNG's IHDR chunk (bytes 16..23), 0 when it is not one. */
static void png_size(const unsigned char *p, size_t n, unsigned *w, unsigned *h)
{
    *w = *h = 0;
    if (n < 24 || memcmp(p, "\x89PNG\r\n\x1a\n", 8) != 0 || memcmp(p + 12, "IHDR", 4) != 0)
        return;
    *w = (unsigned)p[16] << 24 | (unsigned)p[17] << 16 | (unsigned)p[18] << 8 | p[19];
    *h = (unsigned)p[20] << 24 | (unsigned)p[21] << 16 | (unsigned)p[22] << 8 | p[23];
}

static int figure(cks_buf *b, const char *dir, const cks_plot_item *it, size_t k)
{
    unsigned char *img = NULL;
    size_t n = 0;
    unsigned w, h;
    int err = read_image(dir, it->file, &img, &n);
    if (err)
        return err;
    png_size(img, n, &w, &h);
    cks_buf_printf(b, "<figure id=\"fig%zu\"><img src=\"data:image/png;base64,", k);
    cks_buf_put_base64(b, img, n);
    cks_buf_puts(b, "\"");
    if (w && h)
        cks_buf_printf(b, " width=\"%u\" height=\"%u\"", w, h);
    cks_buf_puts(b, " alt=\"");
    cks_report_html_text(b, it->title);
    cks_buf_puts(b, "\"><figcaption>");
    cks_report_html_text(b, it->title);
    cks_buf_puts(b, " <span class=\"muted\">(");
    cks_report_html_text(b, it->file);
    cks_buf_puts(b, ")</span></figcaption></figure>\n");
    free(img);
    return 0;
}

/* The part of a heatmap title before ": ": the metric, used to group the heatmaps. */
static size_t metric_prefix(const char *title)
{
    const char *p = strstr(title, ": ");
    return p ? (size_t)(p - title) : strlen(title);
}

static int section(cks_buf *b, const cks_plot_list *l, size_t s, const char *dir)
{
    int err = 0, grouped = strcmp(sections[s].family, "heatmap") == 0;
    size_t drawn = 0, skipped = 0, groups = 0;
    cks_buf_printf(b, "<h2 id=\"%s\">%s<a class=\"top\" href=\"#top\">top</a></h2>\n<p>%s</p>\n",
                   sections[s].id, sections[s].title, sections[s].intro);
    /* heatmaps: a line of links to each metric's group */
    if (grouped) {
        cks_buf_puts(b, "<p>");
        const char *last = NULL;
        size_t lastn = 0;
        for (size_t i = 0; i < l->n; i++) {
            const cks_plot_item *it = &l->item[i];
            if (strcmp(it->family, "heatmap") != 0 || !it->file)
                continue;
            size_t pn = metric_prefix(it->title);
            if (last && pn == lastn && strncmp(last, it->title, pn) == 0)
                continue;
            cks_buf_printf(b, "%s<a href=\"#heat%zu\">", groups ? " &middot; " : "", groups);
            cks_buf_put(b, it->title, pn); /* our own text: metric names */
            cks_buf_puts(b, "</a>");
            last = it->title, lastn = pn, groups++;
        }
        cks_buf_puts(b, "</p>\n");
        groups = 0;
    }
    const char *last = NULL;
    size_t lastn = 0;
    int open = 0;
    for (size_t i = 0; i < l->n && !err; i++) {
        const cks_plot_item *it = &l->item[i];
        if (strcmp(it->family, sections[s].family) != 0 || !it->file)
            continue;
        size_t pn = metric_prefix(it->title);
        if (grouped && !(last && pn == lastn && strncmp(last, it->title, pn) == 0)) {
            if (open)
                cks_buf_puts(b, "</div>\n");
            cks_buf_printf(b, "<h3 id=\"heat%zu\">", groups++);
            cks_report_html_text(b, "");
            cks_buf_put(b, it->title, pn);
            cks_buf_puts(b, "</h3>\n");
            open = 0;
            last = it->title, lastn = pn;
        }
        if (!open) {
            cks_buf_printf(b, "<div%s>\n", sections[s].grid ? " class=\"grid\"" : "");
            open = 1;
        }
        err = figure(b, dir, it, i);
        drawn++;
    }
    if (open)
        cks_buf_puts(b, "</div>\n");
    for (size_t i = 0; i < l->n; i++) {
        const cks_plot_item *it = &l->item[i];
        if (strcmp(it->family, sections[s].family) != 0 || it->file)
            continue;
        cks_buf_puts(b, skipped++ ? "<li>" : "<ul class=\"muted\">\n<li>");
        cks_report_html_text(b, it->title);
        cks_buf_puts(b, ": not drawn: ");
        cks_report_html_text(b, it->reason);
        cks_buf_puts(b, "</li>\n");
    }
    if (skipped)
        cks_buf_puts(b, "</ul>\n");
    if (!drawn && !skipped)
        cks_buf_puts(b, "<p class=\"muted\">Nothing to show.</p>\n");
    return err;
}

/* Median over the 2-D matrices of an [N, T] dataset, per checkpoint; NULL when absent. */
static int matrix_medians(cks_runview *v, const char *path, double **out)
{
    double *m = NULL, *med = NULL, *scratch = NULL;
    size_t *idx = NULL, k = 0, cols;
    *out = NULL;
    if (!cks_store_exists(v->store, path))
        return 0;
    int err = cks_runview_read(v, path, v->nt, &m, &cols);
    if (err)
        return err;
    med = malloc(v->n * sizeof *med);
    idx = malloc((v->nt ? v->nt : 1) * sizeof *idx);
    scratch = malloc((v->nt ? v->nt : 1) * sizeof *scratch);
    if (!med || !idx || !scratch) {
        err = cks_error_set(CKS_ENOMEM, "out of memory");
    } else {
        for (size_t j = 0; j < v->nt; j++)
            if (v->tensor[j].cols > 0)
                idx[k++] = j;
        for (size_t i = 0; i < v->n; i++)
            med[i] = cks_runview_median(m + i * cols, idx, k, scratch);
    }
    free(m);
    free(idx);
    free(scratch);
    if (err)
        free(med);
    else
        *out = med;
    return err;
}

/* Sum over the tensors of an [N, T] count dataset, per checkpoint (NaN when none). */
static int row_sums(cks_runview *v, const char *path, double *sum)
{
    double *m = NULL;
    size_t cols;
    if (!cks_store_exists(v->store, path))
        return 0;
    int err = cks_runview_read(v, path, v->nt, &m, &cols);
    for (size_t i = 0; !err && i < v->n; i++)
        for (size_t j = 0; j < cols; j++)
            if (isfinite(m[i * cols + j]))
                sum[i] = isfinite(sum[i]) ? sum[i] + m[i * cols + j] : m[i * cols + j];
    free(m);
    return err;
}

static void num_cell(cks_buf *b, double x, int integer)
{
    char s[32];
    cks_report_num(s, sizeof s, x, integer);
    cks_buf_printf(b, "<td class=\"r\">%s</td>", s);
}

/* The headline figures of the checkpoint table, per checkpoint in step order: medians
 * over the matrices, NaN+Inf counts, perplexity of the first eval sets, their KL to the
 * previous checkpoint and the memorisation sets' token_match. */
typedef struct {
    double *med[3];    /* NULL when the run file lacks the metric */
    double *nonfinite; /* NaN when no count is stored */
    double *ppl[MAX_SETS_IN_TABLE];
    const char *pname[MAX_SETS_IN_TABLE]; /* borrowed from sets */
    size_t nppl;
    char **sets;
    size_t nsets;
    /* function space: KL to the previous checkpoint per eval set, token_match per
     * memorisation set (the first MAX_SETS_IN_TABLE of each) */
    double *fs[2 * MAX_SETS_IN_TABLE];
    const char *fsname[2 * MAX_SETS_IN_TABLE]; /* borrowed from sets or msets */
    const char *fshead[2 * MAX_SETS_IN_TABLE];
    size_t nfs;
    char **msets;
    size_t nmsets;
} headline;

static const char *med_paths[3] = {"/drift/prev/rel_fro", "/drift/ref/rel_fro", "/spectral/alpha"};
static const char *med_heads[3] = {"median drift (prev)", "median drift (ref)", "median alpha"};

static void headline_release(headline *h)
{
    for (int k = 0; k < 3; k++)
        free(h->med[k]);
    for (size_t s = 0; s < h->nppl; s++)
        free(h->ppl[s]);
    for (size_t s = 0; s < h->nfs; s++)
        free(h->fs[s]);
    free(h->nonfinite);
    cks_store_names_free(h->sets, h->nsets);
    cks_store_names_free(h->msets, h->nmsets);
}

/* Adds /<group>/<set>/<metric> as a column of the table when it is a series; at most
 * MAX_SETS_IN_TABLE per head. */
static int fs_column(cks_runview *v, headline *h, const char *group, const char *set,
                     const char *metric, const char *head)
{
    size_t n = strlen(group) + strlen(set) + strlen(metric) + 4, rows, cols, same = 0;
    for (size_t k = 0; k < h->nfs; k++)
        same += h->fshead[k] == head;
    if (same >= MAX_SETS_IN_TABLE)
        return 0;
    char *path = malloc(n);
    if (!path)
        return cks_error_set(CKS_ENOMEM, "out of memory");
    snprintf(path, n, "/%s/%s/%s", group, set, metric);
    int err = 0;
    if (cks_store_exists(v->store, path) && cks_store_shape(v->store, path, &rows, &cols) == 0 &&
        cols == 1 && !(err = cks_runview_read(v, path, 1, &h->fs[h->nfs], &cols))) {
        h->fsname[h->nfs] = set;
        h->fshead[h->nfs++] = head;
    }
    if (!err)
        cks_error_clear();
    free(path);
    return err;
}

static int fs_columns(cks_runview *v, headline *h)
{
    static const char *kl_head = "KL prev", *tm_head = "token_match";
    int err = 0;
    for (size_t s = 0; s < h->nsets && !err; s++)
        err = fs_column(v, h, "eval", h->sets[s], "kl_prev", kl_head);
    if (!err && cks_store_exists(v->store, "/memo"))
        err = cks_store_list(v->store, "/memo", &h->msets, &h->nmsets);
    for (size_t s = 0; s < h->nmsets && !err; s++)
        err = fs_column(v, h, "memo", h->msets[s], "token_match", tm_head);
    return err;
}

static int headline_read(cks_runview *v, headline *h)
{
    int err = 0;
    memset(h, 0, sizeof *h);
    for (int k = 0; k < 3 && !err; k++)
        err = matrix_medians(v, med_paths[k], &h->med[k]);
    if (!err && !(h->nonfinite = malloc(v->n * sizeof *h->nonfinite)))
        err = cks_error_set(CKS_ENOMEM, "out of memory");
    for (size_t i = 0; !err && i < v->n; i++)
        h->nonfinite[i] = NAN;
    if (!err && !(err = row_sums(v, "/norms/nan", h->nonfinite)))
        err = row_sums(v, "/norms/inf", h->nonfinite);
    if (!err && cks_store_exists(v->store, "/eval"))
        err = cks_store_list(v->store, "/eval", &h->sets, &h->nsets);
    for (size_t s = 0; s < h->nsets && !err && h->nppl < MAX_SETS_IN_TABLE; s++) {
        size_t n = strlen(h->sets[s]) + 16, rows, cols;
        char *path = malloc(n);
        if (!path)
            return cks_error_set(CKS_ENOMEM, "out of memory");
        snprintf(path, n, "/eval/%s/ppl", h->sets[s]);
        if (cks_store_exists(v->store, path) &&
            cks_store_shape(v->store, path, &rows, &cols) == 0 && cols == 1 &&
            !(err = cks_runview_read(v, path, 1, &h->ppl[h->nppl], &cols)))
            h->pname[h->nppl++] = h->sets[s];
        if (!err) /* a set without a ppl series has no column */
            cks_error_clear();
        free(path);
    }
    return err ? err : fs_columns(v, h);
}

/* One row per checkpoint in step order with its headline figures. */
static int checkpoint_table(cks_runview *v, const cks_report_data *latest, cks_buf *b)
{
    headline h;
    int err = headline_read(v, &h);
    if (err) {
        headline_release(&h);
        return err;
    }
    cks_buf_puts(b, "<div class=\"wide\"><table>\n<tr><th class=\"r\">step</th><th>checkpoint"
                    "</th><th>status</th><th>commit</th>");
    for (int k = 0; k < 3; k++)
        if (h.med[k])
            cks_buf_printf(b, "<th class=\"r\">%s</th>", med_heads[k]);
    cks_buf_puts(b, "<th class=\"r\">NaN+Inf</th>");
    for (size_t s = 0; s < h.nppl; s++) {
        cks_buf_puts(b, "<th class=\"r\">ppl ");
        cks_report_html_text(b, h.pname[s]);
        cks_buf_puts(b, "</th>");
    }
    for (size_t s = 0; s < h.nfs; s++) {
        cks_buf_printf(b, "<th class=\"r\">%s ", h.fshead[s]);
        cks_report_html_text(b, h.fsname[s]);
        cks_buf_puts(b, "</th>");
    }
    cks_buf_puts(b, "</tr>\n");
    for (size_t i = 0; i < v->n; i++) {
        const cks_store_ckpt *c = cks_runview_ckpt(v, i);
        int bad =
            strcmp(c->status, "complete") != 0 || (isfinite(h.nonfinite[i]) && h.nonfinite[i] > 0);
        int here = latest && i == latest->at;
        char commit[16];
        cks_buf_printf(b, "<tr%s><td class=\"r\">%lld</td><td>%s", bad ? " class=\"flag\"" : "",
                       (long long)c->step, here ? "<a href=\"#c-ckpt\">" : "");
        cks_report_html_text(b, c->name);
        cks_buf_printf(b, "%s</td><td>", here ? "</a>" : "");
        cks_report_html_text(b, c->status);
        cks_buf_puts(b, "</td><td><code>");
        snprintf(commit, sizeof commit, "%.10s", c->commit[0] ? c->commit : "-");
        cks_report_html_text(b, commit);
        cks_buf_puts(b, "</code></td>");
        for (int k = 0; k < 3; k++)
            if (h.med[k])
                num_cell(b, h.med[k][i], 0);
        num_cell(b, h.nonfinite[i], 1);
        for (size_t s = 0; s < h.nppl; s++)
            num_cell(b, h.ppl[s][i], 0);
        for (size_t s = 0; s < h.nfs; s++)
            num_cell(b, h.fs[s][i], 0);
        cks_buf_puts(b, "</tr>\n");
    }
    cks_buf_puts(b, "</table></div>\n");
    headline_release(&h);
    return 0;
}

static void run_summary(const cks_report_data *r, cks_buf *b)
{
    const cks_runview *v = r->v;
    size_t complete = 0, incomplete = 0, failed = 0;
    for (size_t i = 0; i < v->n; i++) {
        const char *st = cks_runview_ckpt(v, i)->status;
        complete += strcmp(st, "complete") == 0;
        incomplete += strcmp(st, "incomplete") == 0;
        failed += strcmp(st, "failed") == 0;
    }
    cks_buf cfg;
    cks_buf_init(&cfg);
    cks_report_config_line(r, &cfg);
    cks_buf_puts(b, "<table class=\"kv\">\n<tr><th>run file</th><td><code>");
    cks_report_html_text(b, v->path);
    cks_buf_puts(b, "</code></td></tr>\n<tr><th>source</th><td><code>");
    cks_report_html_text(b, r->source[0] ? r->source : "-");
    cks_buf_printf(b,
                   "</code></td></tr>\n<tr><th>checkpoints</th><td>%zu (steps %lld to %lld): "
                   "%zu complete, %zu incomplete, %zu failed</td></tr>\n<tr><th>metrics</th><td>",
                   v->n, (long long)v->step[0], (long long)v->step[v->n - 1], complete, incomplete,
                   failed);
    cks_report_html_text(b, r->metrics[0] ? r->metrics : "-");
    cks_buf_puts(b, "</td></tr>\n<tr><th>drift reference</th><td>");
    cks_report_html_text(b, r->ref[0] ? r->ref : "-");
    cks_buf_puts(b, "</td></tr>\n<tr><th>config</th><td>");
    cks_report_html_text(b, cks_buf_text(&cfg));
    cks_buf_puts(b, "</td></tr>\n<tr><th>made by</th><td>");
    cks_report_html_text(b, r->created_by[0] ? r->created_by : "-");
    cks_buf_puts(b, "</td></tr>\n</table>\n");
    cks_buf_release(&cfg);
}

static void remove_drawn(const char *dir, const cks_plot_list *l)
{
    char path[4352];
    for (size_t i = 0; i < l->n; i++) {
        if (!l->item[i].file)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, l->item[i].file);
        unlink(path);
    }
    snprintf(path, sizeof path, "%s/index.txt", dir);
    unlink(path);
    rmdir(dir);
}

static int page(cks_runview *v, const cks_plot_list *l, const char *dir, cks_buf *b)
{
    cks_report_data r;
    int err = cks_report_collect(&r, v, l->at);
    if (err)
        return err;
    cks_buf title;
    cks_buf_init(&title);
    cks_buf_puts(&title, "ckptscope trends: ");
    cks_buf_put_text(&title, r.source[0] ? r.source : v->path, 160, NULL);
    cks_report_html_begin(b, cks_buf_text(&title));
    cks_buf_puts(b, "<h1 id=\"top\">");
    cks_report_html_text(b, cks_buf_text(&title));
    cks_buf_release(&title);
    cks_buf_puts(b, "</h1>\n<nav><a href=\"#overview\">overview</a><a href=\"#checkpoints\">"
                    "checkpoints</a>");
    for (size_t s = 0; s < NSECTIONS; s++)
        cks_buf_printf(b, "<a href=\"#%s\">%s</a>", sections[s].id, sections[s].family);
    cks_buf_puts(b, "<a href=\"#c-ckpt\">latest checkpoint</a></nav>\n");
    cks_buf_puts(b, "<h2 id=\"overview\">Overview<a class=\"top\" href=\"#top\">top</a></h2>\n");
    run_summary(&r, b);
    cks_buf_puts(b, "<h2 id=\"checkpoints\">Checkpoints<a class=\"top\" href=\"#top\">top</a>"
                    "</h2>\n<p>In step order; highlighted: not complete, or holding NaN/Inf. "
                    "Medians over the 2-D matrices.</p>\n");
    err = checkpoint_table(v, &r, b);
    for (size_t s = 0; s < NSECTIONS && !err; s++)
        err = section(b, l, s, dir);
    if (!err) {
        cks_buf_puts(b, "<p><a href=\"#top\">top</a></p>\n");
        err = cks_report_html_body(&r, b, "c-");
    }
    cks_buf_puts(b, "<p class=\"muted\">Written by ckptscope report --trends. All plots are "
                    "embedded; the page loads nothing from elsewhere.</p>\n");
    cks_report_html_end(b);
    cks_report_release(&r);
    return err ? err : cks_buf_error(b);
}

int cks_report_trends(cks_runview *v, const cks_trends_opts *o, cks_buf *out)
{
    const char *tmp = o->tmpdir ? o->tmpdir : getenv("TMPDIR");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/ckptscope-trends-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    if (!mkdtemp(dir))
        return cks_error_set(CKS_EIO, "cannot make a temporary folder in %s: %s",
                             tmp && tmp[0] ? tmp : "/tmp", strerror(errno));
    cks_plot_opts p = {.outdir = dir,
                       .format = CKS_PLOT_PNG,
                       .families = CKS_PLOT_ALL,
                       .gnuplot = o->gnuplot,
                       .timeout_ms = o->timeout_ms,
                       .jobs = o->jobs,
                       .progress = o->progress,
                       .progress_ctx = o->progress_ctx};
    cks_plot_list l;
    int err = cks_plots_draw(v, &p, &l);
    if (!err)
        err = page(v, &l, dir, out);
    remove_drawn(dir, &l); /* the list names every file drawn, even after an error */
    cks_plot_list_release(&l);
    return err;
}
