/* Gathers the figures of one checkpoint for its report (report_impl.h): the run's
 * attributes, every per-tensor metric of the norms, drift and spectral groups at the
 * checkpoint's row, the eval series, and the outlier flags. */
#include "report_impl.h"
#include "error.h"
#include "json.h"
#include "tensor.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *path, *key;
} group_defs[CKS_REPORT_NGROUPS] = {
    {"/norms", "norms"},
    {"/drift/prev", "drift_prev"},
    {"/drift/ref", "drift_ref"},
    {"/spectral", "spectral"},
};

static const char *flag_names[CKS_REPORT_NFLAGS] = {
    "largest_drift_prev", "largest_drift_ref", "nan", "inf", "alpha_low", "alpha_high"};
static const char *flag_short[CKS_REPORT_NFLAGS] = {"drift-prev!", "drift-ref!", "NaN",
                                                    "Inf",         "alpha<2",    "alpha>6"};

const char *cks_report_flag_name(int bit)
{
    return bit >= 0 && bit < CKS_REPORT_NFLAGS ? flag_names[bit] : "";
}

const char *cks_report_flag_short(int bit)
{
    return bit >= 0 && bit < CKS_REPORT_NFLAGS ? flag_short[bit] : "";
}

static void series_release(cks_report_series *s, size_t n)
{
    for (size_t i = 0; s && i < n; i++) {
        free(s[i].name);
        cks_store_names_free(s[i].metric, s[i].n);
        free(s[i].value);
        free(s[i].err);
    }
    free(s);
}

void cks_report_release(cks_report_data *r)
{
    for (int g = 0; g < CKS_REPORT_NGROUPS; g++) {
        cks_store_names_free(r->g[g].names, r->g[g].n);
        free(r->g[g].vals);
    }
    series_release(r->eval, r->neval);
    series_release(r->evals, r->nevals);
    series_release(r->memo, r->nmemo);
    free(r->source);
    free(r->created_by);
    free(r->metrics);
    free(r->ref);
    free(r->config_text);
    json_decref(r->config);
    free(r->flags);
    free(r->order);
    memset(r, 0, sizeof *r);
}

double cks_report_value(const cks_report_data *r, int g, const char *name, size_t j)
{
    const cks_report_group *gr = &r->g[g];
    for (size_t k = 0; k < gr->n; k++)
        if (strcmp(gr->names[k], name) == 0)
            return gr->vals[k * r->v->nt + j];
    return NAN;
}

static char *join(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", a, b);
    return p;
}

/* Every [N, T] dataset of a group at the checkpoint's row. */
static int collect_group(cks_report_data *r, int g)
{
    cks_report_group *gr = &r->g[g];
    cks_runview *v = r->v;
    gr->path = group_defs[g].path;
    gr->key = group_defs[g].key;
    if (!cks_store_exists(v->store, gr->path))
        return 0;
    gr->present = 1;
    char **names = NULL;
    size_t n = 0;
    int err = cks_store_list(v->store, gr->path, &names, &n);
    if (err)
        return err;
    gr->vals = malloc((n * v->nt > 0 ? n * v->nt : 1) * sizeof *gr->vals);
    gr->names = calloc(n ? n : 1, sizeof *gr->names);
    if (!gr->vals || !gr->names)
        err = cks_error_set(CKS_ENOMEM, "out of memory");
    for (size_t k = 0; k < n && !err; k++) {
        char *path = join(gr->path, names[k]);
        double *row = NULL;
        size_t cols;
        if (!path) {
            err = cks_error_set(CKS_ENOMEM, "out of memory");
            break;
        }
        err = cks_runview_read_at(v, path, r->at, &row, &cols);
        char pp[256];
        if (!err && cols != v->nt)
            err = cks_error_set(CKS_EFORMAT, "%s: %s has %zu columns for %zu tensors", v->path,
                                cks_printable(pp, sizeof pp, path, strlen(path)), cols, v->nt);
        if (!err) {
            memcpy(gr->vals + gr->n * v->nt, row, v->nt * sizeof *row);
            gr->names[gr->n++] = names[k];
            names[k] = NULL;
        }
        free(row);
        free(path);
    }
    cks_store_names_free(names, n);
    return err;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* The value at the checkpoint of a 1-D series, or NaN (*ok 0) for other shapes. */
static int series_value(cks_report_data *r, const char *path, double *out, int *ok)
{
    size_t rows, cols;
    double *row = NULL;
    *out = NAN;
    *ok = 0;
    int err = cks_store_shape(r->v->store, path, &rows, &cols);
    if (err == CKS_EFORMAT) { /* a group or a non-float dataset: not a series */
        cks_error_clear();
        return 0;
    }
    if (err || cols != 1)
        return err;
    if ((err = cks_runview_read_at(r->v, path, r->at, &row, &cols)))
        return err;
    *out = row[0];
    *ok = 1;
    free(row);
    return 0;
}

/* Sets (/eval/<set>/<metric>) or tasks (/evals/<task>/<metric> and <metric>_stderr). */
static int collect_series(cks_report_data *r, const char *group, int with_err,
                          cks_report_series **out, size_t *nout)
{
    char **sets = NULL;
    size_t n = 0;
    int err = cks_store_list(r->v->store, group, &sets, &n);
    if (err)
        return err;
    cks_report_series *s = calloc(n ? n : 1, sizeof *s);
    if (!s)
        err = cks_error_set(CKS_ENOMEM, "out of memory");
    size_t k = 0;
    for (size_t i = 0; i < n && !err; i++) {
        char *gpath = join(group, sets[i]), **names = NULL;
        size_t nn = 0;
        if (!gpath || (err = cks_store_list(r->v->store, gpath, &names, &nn))) {
            err = err ? err : cks_error_set(CKS_ENOMEM, "out of memory");
            free(gpath);
            break;
        }
        cks_report_series *e = &s[k];
        e->metric = calloc(nn ? nn : 1, sizeof *e->metric);
        e->value = malloc((nn ? nn : 1) * sizeof *e->value);
        e->err = malloc((nn ? nn : 1) * sizeof *e->err);
        e->name = strdup(sets[i]);
        if (!e->metric || !e->value || !e->err || !e->name)
            err = cks_error_set(CKS_ENOMEM, "out of memory");
        e->n_samples = NAN;
        for (size_t m = 0; m < nn && !err; m++) {
            if (with_err && ends_with(names[m], "_stderr"))
                continue;
            if (with_err && strcmp(names[m], "n_samples") == 0) { /* a count, not a score */
                char *p = join(gpath, names[m]);
                int ok;
                err = p ? series_value(r, p, &e->n_samples, &ok)
                        : cks_error_set(CKS_ENOMEM, "out of memory");
                free(p);
                continue;
            }
            char *p = join(gpath, names[m]), *ep = NULL;
            int ok = 0, eok;
            double val, ev = NAN;
            if (!p) {
                err = cks_error_set(CKS_ENOMEM, "out of memory");
                break;
            }
            err = series_value(r, p, &val, &ok);
            if (!err && ok && with_err && (ep = malloc(strlen(p) + 8))) {
                sprintf(ep, "%s_stderr", p);
                if (cks_store_exists(r->v->store, ep))
                    err = series_value(r, ep, &ev, &eok);
            }
            if (!err && ok) {
                e->metric[e->n] = names[m];
                names[m] = NULL;
                e->value[e->n] = val;
                e->err[e->n++] = ev;
            }
            free(p);
            free(ep);
        }
        k++;
        cks_store_names_free(names, nn);
        free(gpath);
    }
    cks_store_names_free(sets, n);
    *out = s;
    *nout = k;
    return err;
}

/* Display order: embed, the layers (kinds in their natural order), then the rest. */
static int bucket(const cks_store_tensor *t, cks_kind *k)
{
    if (cks_kind_from_name(t->kind, k) != 0)
        *k = CKS_KIND_OTHER;
    if (*k == CKS_KIND_EMBED)
        return 0;
    return t->layer >= 0 ? 1 : 2;
}

static int cmp_tensor(const void *a, const void *b, void *ctx)
{
    const cks_runview *v = ctx;
    const cks_store_tensor *x = &v->tensor[*(const size_t *)a];
    const cks_store_tensor *y = &v->tensor[*(const size_t *)b];
    cks_kind kx, ky;
    int bx = bucket(x, &kx), by = bucket(y, &ky);
    if (bx != by)
        return bx - by;
    if (x->layer != y->layer)
        return x->layer < y->layer ? -1 : 1;
    if (kx != ky)
        return (int)kx - (int)ky;
    return strcmp(x->name, y->name);
}

/* The CKS_REPORT_TOP tensors with the largest finite positive value of metric, largest
 * first (ties: tensor order). */
static size_t top_n(const cks_report_data *r, int g, const char *metric, size_t *top)
{
    size_t n = 0;
    for (size_t j = 0; j < r->v->nt; j++) {
        double x = cks_report_value(r, g, metric, j);
        size_t k;
        if (!(isfinite(x) && x > 0))
            continue;
        if (n < CKS_REPORT_TOP)
            k = n++;
        else if (x > cks_report_value(r, g, metric, top[n - 1]))
            k = n - 1;
        else
            continue;
        while (k > 0 && x > cks_report_value(r, g, metric, top[k - 1])) {
            top[k] = top[k - 1];
            k--;
        }
        top[k] = j;
    }
    return n;
}

static void set_flags(cks_report_data *r)
{
    for (size_t j = 0; j < r->v->nt; j++) {
        double nan_count = cks_report_value(r, CKS_REPORT_NORMS, "nan", j),
               inf_count = cks_report_value(r, CKS_REPORT_NORMS, "inf", j),
               alpha = cks_report_value(r, CKS_REPORT_SPECTRAL, "alpha", j);
        r->flags[j] = (nan_count > 0 ? CKS_REPORT_FLAG_NAN : 0) |
                      (inf_count > 0 ? CKS_REPORT_FLAG_INF : 0) |
                      (alpha < CKS_REPORT_ALPHA_LO ? CKS_REPORT_FLAG_ALPHA_LOW : 0) |
                      (alpha > CKS_REPORT_ALPHA_HI ? CKS_REPORT_FLAG_ALPHA_HIGH : 0);
    }
    r->ntop_prev = top_n(r, CKS_REPORT_DRIFT_PREV, "rel_fro", r->top_prev);
    r->ntop_ref = top_n(r, CKS_REPORT_DRIFT_REF, "rel_fro", r->top_ref);
    for (size_t i = 0; i < r->ntop_prev; i++)
        r->flags[r->top_prev[i]] |= CKS_REPORT_FLAG_DRIFT_PREV;
    for (size_t i = 0; i < r->ntop_ref; i++)
        r->flags[r->top_ref[i]] |= CKS_REPORT_FLAG_DRIFT_REF;
}

static int root_attrs(cks_report_data *r)
{
    int err = 0;
    if ((err = cks_runview_attr(r->v, "/", "source", &r->source)) ||
        (err = cks_runview_attr(r->v, "/", "created_by", &r->created_by)) ||
        (err = cks_runview_attr(r->v, "/", "metrics", &r->metrics)) ||
        (err = cks_runview_attr(r->v, "/", "config", &r->config_text)))
        return err;
    if (cks_store_exists(r->v->store, "/drift/ref"))
        err = cks_runview_attr(r->v, "/drift/ref", "ref", &r->ref);
    else if (!(r->ref = strdup("")))
        err = cks_error_set(CKS_ENOMEM, "out of memory");
    /* the config the scan stored; one that does not parse is shown as missing */
    if (!err && r->config_text[0] &&
        cks_json_parse(r->config_text, strlen(r->config_text), "config", 1, &r->config) != 0) {
        cks_error_clear();
        r->config = NULL;
    }
    return err;
}

int cks_report_collect(cks_report_data *r, cks_runview *v, size_t at)
{
    memset(r, 0, sizeof *r);
    r->v = v;
    r->at = at;
    r->ck = cks_runview_ckpt(v, at);
    int err = root_attrs(r);
    for (int g = 0; g < CKS_REPORT_NGROUPS && !err; g++)
        err = collect_group(r, g);
    if (!err && (r->has_eval = cks_store_exists(v->store, "/eval")))
        err = collect_series(r, "/eval", 0, &r->eval, &r->neval);
    if (!err && (r->has_evals = cks_store_exists(v->store, "/evals")))
        err = collect_series(r, "/evals", 1, &r->evals, &r->nevals);
    if (!err && (r->has_memo = cks_store_exists(v->store, "/memo")))
        err = collect_series(r, "/memo", 0, &r->memo, &r->nmemo);
    if (!err) {
        r->flags = calloc(v->nt ? v->nt : 1, sizeof *r->flags);
        r->order = malloc((v->nt ? v->nt : 1) * sizeof *r->order);
        if (!r->flags || !r->order)
            err = cks_error_set(CKS_ENOMEM, "out of memory");
    }
    if (err) {
        cks_report_release(r);
        return err;
    }
    for (size_t j = 0; j < v->nt; j++)
        r->order[j] = j;
    qsort_r(r->order, v->nt, sizeof *r->order, cmp_tensor, v);
    set_flags(r);
    return 0;
}

static const cks_report_column all_columns[] = {
    {"RMS", CKS_REPORT_NORMS, "rms", 0},
    {"ABSMAX", CKS_REPORT_NORMS, "absmax", 0},
    {"NAN", CKS_REPORT_NORMS, "nan", 1},
    {"INF", CKS_REPORT_NORMS, "inf", 1},
    {"DRIFT_PREV", CKS_REPORT_DRIFT_PREV, "rel_fro", 0},
    {"DRIFT_REF", CKS_REPORT_DRIFT_REF, "rel_fro", 0},
    {"COS_REF", CKS_REPORT_DRIFT_REF, "cos", 0},
    {"ALPHA", CKS_REPORT_SPECTRAL, "alpha", 0},
    {"STABLE_RANK", CKS_REPORT_SPECTRAL, "stable_rank", 0},
    {"SPIKES", CKS_REPORT_SPECTRAL, "num_spikes", 1},
};

size_t cks_report_columns(const cks_report_data *r, cks_report_column *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < sizeof all_columns / sizeof all_columns[0] && n < cap; i++) {
        const cks_report_group *g = &r->g[all_columns[i].group];
        for (size_t k = 0; k < g->n; k++)
            if (strcmp(g->names[k], all_columns[i].metric) == 0) {
                out[n++] = all_columns[i];
                break;
            }
    }
    return n;
}

void cks_report_num(char *buf, size_t cap, double x, int integer)
{
    if (!isfinite(x))
        snprintf(buf, cap, "-");
    else if (integer && fabs(x) < 1e15)
        snprintf(buf, cap, "%.0f", x);
    else
        snprintf(buf, cap, "%.4g", x);
}

int cks_report_format_parse(const char *s, cks_report_format *out)
{
    static const char *names[] = {"text", "markdown", "json", "html"};
    for (int i = 0; i < 4; i++)
        if (strcmp(s, names[i]) == 0) {
            *out = (cks_report_format)i;
            return 0;
        }
    return cks_error_set(CKS_EINVAL, "unknown report format (known: text, markdown, json, html)");
}

int cks_report_checkpoint(cks_runview *v, size_t at, cks_report_format format, cks_buf *out)
{
    cks_report_data r;
    int err = cks_report_collect(&r, v, at);
    if (err)
        return err;
    switch (format) {
    case CKS_REPORT_TEXT:
        err = cks_report_text(&r, out);
        break;
    case CKS_REPORT_MARKDOWN:
        err = cks_report_markdown(&r, out);
        break;
    case CKS_REPORT_JSON: {
        json_t *doc = cks_report_json(&r);
        char *s = doc ? json_dumps(doc, JSON_INDENT(1) | JSON_PRESERVE_ORDER) : NULL;
        if (!s)
            err = cks_error_set(CKS_ENOMEM, "out of memory (JSON report)");
        else {
            cks_buf_puts(out, s);
            cks_buf_puts(out, "\n");
        }
        free(s);
        json_decref(doc);
        break;
    }
    case CKS_REPORT_HTML: {
        char title[256];
        cks_buf t;
        cks_buf_init(&t);
        cks_buf_puts(&t, "ckptscope report: ");
        cks_buf_put_text(&t, r.ck->name, 100, NULL);
        snprintf(title, sizeof title, "%s", cks_buf_text(&t));
        cks_buf_release(&t);
        cks_report_html_begin(out, title);
        cks_buf_printf(out, "<h1>ckptscope report</h1>\n");
        err = cks_report_html_body(&r, out, "");
        cks_report_html_end(out);
        break;
    }
    }
    cks_report_release(&r);
    return err ? err : cks_buf_error(out);
}
