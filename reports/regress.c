/* The regression gate over a run file (see regress.h): finds the checkpoint under test and
 * the one before it, reads every score series with its stderr and sample count, resolves
 * each score's direction and tolerance, checks that a baseline belongs to the same model,
 * and judges each score with cks_gate_compare. */
#include "regress.h"
#include "error.h"
#include "grow.h"
#include "evals.h"
#include "json.h"

#include <fnmatch.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- checkpoints ---- */

/* Step order (DESIGN §2): by step, names without digits after, ties by name. */
static int ckpt_cmp(const cks_store_ckpt *a, const cks_store_ckpt *b)
{
    int64_t sa = a->step < 0 ? INT64_MAX : a->step, sb = b->step < 0 ? INT64_MAX : b->step;
    if (sa != sb)
        return sa < sb ? -1 : 1;
    return strcmp(a->name, b->name);
}

static int set_ckpt(cks_gate_ckpt *out, const cks_store_ckpt *c)
{
    if (!(out->name = strdup(c->name)))
        return cks_error_set(CKS_ENOMEM, "out of memory");
    out->step = c->step;
    return 0;
}

static int choose_checkpoints(cks_store *s, const cks_gate_options *o, cks_gate_report *r,
                              size_t *at_row, size_t *prev_row)
{
    cks_store_ckpt *c;
    size_t n, at = SIZE_MAX, prev = SIZE_MAX;
    int err = cks_store_checkpoints(s, &c, &n);
    if (err)
        return err;
    for (size_t i = 0; i < n; i++) {
        int complete = strcmp(c[i].status, "complete") == 0;
        if (o->at ? strcmp(c[i].name, o->at) == 0
                  : complete && (at == SIZE_MAX || ckpt_cmp(&c[i], &c[at]) > 0))
            at = i;
    }
    if (at == SIZE_MAX) {
        err = o->at ? cks_error_set(CKS_ENOTFOUND, "%s: no checkpoint '%s' (--at)", r->run_path,
                                    o->at)
                    : cks_error_set(CKS_EINVAL, "%s holds no complete checkpoint", r->run_path);
        goto done;
    }
    for (size_t i = 0; i < n && !o->no_previous; i++)
        if (strcmp(c[i].status, "complete") == 0 && ckpt_cmp(&c[i], &c[at]) < 0 &&
            (prev == SIZE_MAX || ckpt_cmp(&c[i], &c[prev]) > 0))
            prev = i;
    if ((err = set_ckpt(&r->at, &c[at])) == 0 && prev != SIZE_MAX)
        err = set_ckpt(&r->prev, &c[prev]);
    *at_row = at;
    *prev_row = prev;
done:
    cks_store_ckpts_free(c, n);
    return err;
}

/* ---- score series ---- */

typedef struct {
    cks_gate_metric *m;
    size_t n, cap;
} metric_vec;

static cks_gate_metric *metric_add(metric_vec *v, const char *id)
{
    if (cks_grow(&v->m, &v->cap, v->n, sizeof *v->m, 64) != 0)
        return NULL;
    cks_gate_metric *m = &v->m[v->n];
    memset(m, 0, sizeof *m);
    if (!(m->id = strdup(id)))
        return NULL;
    m->at = m->prev = m->base = (cks_gate_point){NAN, NAN, NAN};
    m->prev_lo = m->prev_hi = NAN;
    v->n++;
    return m;
}

/* Element `row` of a 1-D series; NaN when path is absent. *rows_out checks the shape. */
static int series_at(cks_store *s, const char *path, size_t nrows, size_t row, size_t row2,
                     double *v, double *v2)
{
    double *buf;
    size_t rows, cols;
    *v = *v2 = NAN;
    if (!cks_store_exists(s, path))
        return 0;
    int err = cks_store_read_matrix(s, path, &buf, &rows, &cols);
    if (err)
        return err;
    if (cols != 1 || rows != nrows) {
        free(buf);
        return cks_error_set(CKS_EFORMAT, "%s: %s is %zux%zu, not a series of %zu checkpoints",
                             cks_store_path(s), path, rows, cols, nrows);
    }
    *v = buf[row];
    if (row2 != SIZE_MAX)
        *v2 = buf[row2];
    free(buf);
    return 0;
}

typedef struct {
    cks_store *s;
    size_t nrows, at, prev;
    metric_vec *v;
    const char *const *include;
    size_t ninclude;
} loader;

static int included(const loader *l, const char *id, int series);

/* One score at path with its stderr series (may be absent) and sample-count series. */
static int load_score(loader *l, const char *path, const char *se_path, const char *n_path,
                      const cks_eval_metric_info *info)
{
    cks_gate_metric *m = metric_add(l->v, path + 1);
    char *hib = NULL;
    int err;
    if (!m)
        return cks_error_set(CKS_ENOMEM, "out of memory");
    m->in_run = 1;
    if ((err = series_at(l->s, path, l->nrows, l->at, l->prev, &m->at.value, &m->prev.value)) ||
        (se_path && (err = series_at(l->s, se_path, l->nrows, l->at, l->prev, &m->at.stderr_,
                                     &m->prev.stderr_))) ||
        (n_path && (err = series_at(l->s, n_path, l->nrows, l->at, l->prev, &m->at.n, &m->prev.n))))
        return err;
    m->dir = CKS_DIR_UNKNOWN;
    m->dir_from = "none";
    if (info) {
        m->dir = info->direction;
        m->dir_from = "table";
        m->binomial = info->binomial;
        m->unit = info->unit;
    }
    err = cks_store_get_attr(l->s, path, "higher_is_better", &hib);
    if (err == 0 && cks_direction_parse(hib, &m->dir) == 0)
        m->dir_from = "file";
    free(hib);
    return err == CKS_ENOTFOUND ? 0 : err;
}

static int has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* The kl family's comparisons of a set with another checkpoint (DESIGN §4): distances
 * and differences, not scores of this checkpoint. */
static int is_comparison(const char *nm)
{
    static const char *const prefix[] = {"kl_", "top1_agree_", "forgot_", "learned_", "dnll_"};
    for (size_t i = 0; i < sizeof prefix / sizeof prefix[0]; i++)
        if (strncmp(nm, prefix[i], strlen(prefix[i])) == 0)
            return 1;
    return 0;
}

/* The bootstrap interval of nll's change from the previous checkpoint, when stored. */
static int load_interval(loader *l, cks_gate_metric *m, const char *gpath)
{
    char lo[CKS_GATE_MAX_ID + 16], hi[CKS_GATE_MAX_ID + 16];
    double unused;
    snprintf(lo, sizeof lo, "%s/dnll_prev_lo", gpath);
    snprintf(hi, sizeof hi, "%s/dnll_prev_hi", gpath);
    int err = series_at(l->s, lo, l->nrows, l->at, SIZE_MAX, &m->prev_lo, &unused);
    return err ? err : series_at(l->s, hi, l->nrows, l->at, SIZE_MAX, &m->prev_hi, &unused);
}

/* Every group/name pair under group ("/evals" or "/eval"). */
static int load_group(loader *l, const char *group, int builtin)
{
    char **sets = NULL, **names = NULL;
    size_t nsets = 0, nnames = 0;
    int err = 0;
    if (!cks_store_exists(l->s, group))
        return 0;
    if ((err = cks_store_list(l->s, group, &sets, &nsets)) != 0)
        return err;
    for (size_t i = 0; i < nsets && !err; i++) {
        char gpath[CKS_GATE_MAX_ID];
        snprintf(gpath, sizeof gpath, "%s/%s", group, sets[i]);
        if ((err = cks_store_list(l->s, gpath, &names, &nnames)) != 0) {
            if (err == CKS_EFORMAT) /* a dataset directly under the group: not ours */
                err = 0;
            cks_error_clear();
            names = NULL;
            continue;
        }
        for (size_t k = 0; k < nnames && !err; k++) {
            const char *nm = names[k];
            char path[CKS_GATE_MAX_ID], se[CKS_GATE_MAX_ID + 8], np[CKS_GATE_MAX_ID];
            size_t rows, cols;
            if (builtin ? strcmp(nm, "tokens") == 0 || strcmp(nm, "bytes") == 0
                        : strcmp(nm, CKS_EVALS_NSAMPLES) == 0 || has_suffix(nm, "_stderr"))
                continue;
            snprintf(path, sizeof path, "%s/%s", gpath, nm);
            if (!included(l, path + 1, !(builtin && is_comparison(nm))))
                continue;
            /* per-token losses and other [N, K] datasets are not scores */
            if (cks_store_shape(l->s, path, &rows, &cols) != 0 || cols != 1) {
                cks_error_clear();
                continue;
            }
            snprintf(se, sizeof se, "%s_stderr", path);
            snprintf(np, sizeof np, "%s/%s", gpath, builtin ? "tokens" : CKS_EVALS_NSAMPLES);
            err = load_score(l, path, builtin ? NULL : se, np,
                             builtin ? cks_ppl_metric_lookup(nm) : cks_eval_metric_lookup(nm));
            if (!err && builtin && strcmp(nm, "nll") == 0 && l->prev != SIZE_MAX)
                err = load_interval(l, &l->v->m[l->v->n - 1], gpath);
        }
        cks_store_names_free(names, nnames);
        names = NULL;
    }
    cks_store_names_free(sets, nsets);
    return err;
}

/* Whether a score is gated: all series when there is no --include, else the ids that
 * match one of its globs. */
static int included(const loader *l, const char *id, int series)
{
    if (l->ninclude == 0)
        return series;
    for (size_t i = 0; i < l->ninclude; i++)
        if (fnmatch(l->include[i], id, 0) == 0)
            return 1;
    return 0;
}

/* One [N, T] dataset: a score per tensor column that --include names. */
static int load_matrix(loader *l, const char *path, const cks_store_tensor *t, size_t nt)
{
    double *at = NULL, *prev = NULL;
    size_t rows, cols;
    int err = cks_store_shape(l->s, path, &rows, &cols);
    if (err)
        return err;
    if (rows != l->nrows || cols > nt)
        return cks_error_set(CKS_EFORMAT,
                             "%s: %s is %zux%zu, the file has %zu checkpoints and "
                             "%zu tensors",
                             cks_store_path(l->s), path, rows, cols, l->nrows, nt);
    if (!(at = malloc((cols + 1) * sizeof *at)) || !(prev = malloc((cols + 1) * sizeof *prev))) {
        free(at);
        return cks_error_set(CKS_ENOMEM, "out of memory");
    }
    if ((err = cks_store_read_row(l->s, path, l->at, at, cols)) == 0 && l->prev != SIZE_MAX)
        err = cks_store_read_row(l->s, path, l->prev, prev, cols);
    for (size_t c = 0; c < cols && !err; c++) {
        char id[CKS_GATE_MAX_ID];
        if ((size_t)snprintf(id, sizeof id, "%s/%s", path + 1, t[c].name) >= sizeof id ||
            !included(l, id, 0))
            continue;
        cks_gate_metric *m = metric_add(l->v, id);
        if (!m) {
            err = cks_error_set(CKS_ENOMEM, "out of memory");
            break;
        }
        m->in_run = 1;
        m->dir_from = "none";
        m->at.value = at[c];
        m->prev.value = l->prev != SIZE_MAX ? prev[c] : NAN;
    }
    free(at);
    free(prev);
    return err;
}

/* Walks group for [N, T] datasets (axes "checkpoint,tensor"), depth-bounded. */
static int load_matrices(loader *l, const char *group, const cks_store_tensor *t, size_t nt,
                         int depth)
{
    char **names = NULL;
    size_t n = 0;
    int err = cks_store_list(l->s, group, &names, &n);
    if (err)
        return err;
    for (size_t i = 0; i < n && !err; i++) {
        char path[CKS_GATE_MAX_ID], *axes = NULL;
        size_t rows, cols;
        snprintf(path, sizeof path, "%s/%s", strcmp(group, "/") ? group : "", names[i]);
        if (depth == 0 && (strcmp(names[i], "evals") == 0 || strcmp(names[i], "eval") == 0 ||
                           strcmp(names[i], "spectra") == 0))
            continue; /* scores of their own, and eigenvalue rows */
        if (cks_store_shape(l->s, path, &rows, &cols) != 0) {
            char **sub = NULL;
            size_t nsub = 0;
            cks_error_clear(); /* a group, or not a float dataset */
            if (depth < 8 && cks_store_list(l->s, path, &sub, &nsub) == 0) {
                cks_store_names_free(sub, nsub);
                err = load_matrices(l, path, t, nt, depth + 1);
            } else {
                cks_error_clear();
            }
            continue;
        }
        if (cks_store_get_attr(l->s, path, "axes", &axes) == 0 &&
            strcmp(axes, "checkpoint,tensor") == 0)
            err = load_matrix(l, path, t, nt);
        else
            cks_error_clear();
        free(axes);
    }
    cks_store_names_free(names, n);
    return err;
}

static int cmp_metric(const void *a, const void *b)
{
    return strcmp(((const cks_gate_metric *)a)->id, ((const cks_gate_metric *)b)->id);
}

static int cmp_base_id(const void *key, const void *b)
{
    return strcmp(key, ((const cks_baseline_metric *)b)->id);
}

static const cks_baseline_metric *baseline_find(const cks_baseline *b, const char *id)
{
    return b ? bsearch(id, b->m, b->n, sizeof *b->m, cmp_base_id) : NULL;
}

/* Adds the baseline's scores the run file does not have (those --include selects). */
static int add_baseline_only(const loader *l, metric_vec *v, const cks_baseline *b, size_t *ignored)
{
    size_t have = v->n;
    for (size_t i = 0; b && i < b->n; i++) {
        int found = 0;
        if (!included(l, b->m[i].id, 1)) {
            (*ignored)++;
            continue;
        }
        for (size_t k = 0; k < have && !found; k++)
            found = strcmp(v->m[k].id, b->m[i].id) == 0;
        if (found)
            continue;
        cks_gate_metric *m = metric_add(v, b->m[i].id);
        if (!m)
            return cks_error_set(CKS_ENOMEM, "out of memory");
        m->dir_from = "none";
    }
    return 0;
}

/* ---- policy ---- */

static int rule_matches(const char *pattern, const char *id)
{
    const char *leaf = strrchr(id, '/');
    const char *subject = strchr(pattern, '/') || !leaf ? id : leaf + 1;
    return fnmatch(pattern, subject, 0) == 0;
}

static void resolve_policy(cks_gate_metric *m, const cks_gate_options *o,
                           const cks_baseline_metric *bm, const cks_tolerance *dflt)
{
    if (bm && bm->dir != CKS_DIR_UNKNOWN) {
        m->dir = bm->dir;
        m->dir_from = "baseline";
    }
    for (size_t i = o->ndirs; i-- > 0;) {
        if (rule_matches(o->dirs[i].pattern, m->id)) {
            m->dir = o->dirs[i].dir;
            m->dir_from = "option";
            break;
        }
    }
    m->tol = bm && bm->has_tol ? bm->tol : *dflt;
    for (size_t i = o->ntols; i-- > 0;) {
        if (rule_matches(o->tols[i].pattern, m->id)) {
            m->tol = o->tols[i].tol;
            break;
        }
    }
}

/* ---- identity of the run against the baseline ---- */

static const char *leaf_of(const char *path, char *buf, size_t cap)
{
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/')
        n--;
    const char *start = path + n;
    while (start > path && start[-1] != '/')
        start--;
    snprintf(buf, cap, "%.*s", (int)(path + n - start), start);
    size_t k = strlen(buf);
    if (k > 4 && strcmp(buf + k - 4, ".git") == 0)
        buf[k - 4] = '\0';
    return buf;
}

static int check_identity(const cks_gate_report *r, const cks_baseline *b)
{
    int compared = 0;
    if (b->model && r->model) {
        compared = 1;
        if (strcmp(b->model, r->model) != 0)
            return cks_error_set(CKS_EINVAL,
                                 "baseline %s is for model '%s', but %s holds model '%s': write "
                                 "a baseline for this model with --write-baseline",
                                 b->path, b->model, r->run_path, r->model);
    }
    if (b->config && r->config) {
        compared = 1;
        const char *key;
        json_t *v;
        json_object_foreach(b->config, key, v)
        {
            if (!json_equal(v, json_object_get(r->config, key)))
                return cks_error_set(CKS_EINVAL,
                                     "baseline %s is for another model: its config.json "
                                     "differs from %s's in '%s'",
                                     b->path, r->run_path, key);
        }
        if (json_object_size(b->config) != json_object_size(r->config))
            return cks_error_set(CKS_EINVAL,
                                 "baseline %s is for another model: its config.json has other "
                                 "fields than %s's",
                                 b->path, r->run_path);
    }
    if (!compared && b->source && r->source) {
        char lb[512], lr[512];
        compared = 1;
        if (strcmp(leaf_of(b->source, lb, sizeof lb), leaf_of(r->source, lr, sizeof lr)) != 0)
            return cks_error_set(CKS_EINVAL,
                                 "baseline %s was written for source '%s', but %s was read "
                                 "from '%s'",
                                 b->path, b->source, r->run_path, r->source);
    }
    if (!compared)
        return cks_error_set(CKS_EINVAL,
                             "cannot tell whether baseline %s belongs to %s: they share no "
                             "model name, config.json or source to compare",
                             b->path, r->run_path);
    return 0;
}

static int read_identity(cks_store *s, cks_gate_report *r)
{
    char *config = NULL;
    int err;
    if ((err = cks_store_get_attr(s, "/", "model", &r->model)) && err != CKS_ENOTFOUND)
        return err;
    if ((err = cks_store_get_attr(s, "/", "source", &r->source)) && err != CKS_ENOTFOUND)
        return err;
    if ((err = cks_store_get_attr(s, "/", "config", &config)) && err != CKS_ENOTFOUND)
        return err;
    if (config && config[0] && cks_json_parse(config, strlen(config), "config", 1, &r->config))
        cks_error_clear(); /* an unreadable config cannot identify the model */
    free(config);
    return 0;
}

/* ---- the gate ---- */

static void judge(cks_gate_report *r, const cks_gate_options *o)
{
    for (size_t i = 0; i < r->n; i++) {
        cks_gate_metric *m = &r->m[i];
        if (m->in_run && r->prev.name) {
            if (isnan(m->at.value) && isnan(m->prev.value)) {
                r->prev_skipped++;
            } else {
                m->vs_prev = 1;
                if (!isnan(m->prev_lo) && !isnan(m->prev_hi))
                    cks_gate_compare_interval(&m->at, &m->prev, m->prev_lo, m->prev_hi, m->dir,
                                              &m->tol, r->at.name, r->prev.name, &m->prev_r);
                else
                    cks_gate_compare(&m->at, &m->prev, m->dir, m->binomial, &m->tol, r->at.name,
                                     r->prev.name, &m->prev_r);
                r->count[0][m->prev_r.severity]++;
            }
        }
        if (!o->baseline)
            continue;
        if (!m->in_baseline) {
            r->base_missing++;
            continue;
        }
        m->vs_base = 1;
        cks_gate_compare(&m->at, &m->base, m->dir, m->binomial, &m->tol, r->at.name, "the baseline",
                         &m->base_r);
        if (!m->in_run)
            snprintf(m->base_r.note, sizeof m->base_r.note,
                     "in the baseline but not in the run file: the score is gone");
        r->count[1][m->base_r.severity]++;
    }
}

int cks_gate_run(cks_store *s, const cks_gate_options *o, cks_gate_report *out)
{
    cks_gate_report r;
    metric_vec v = {NULL, 0, 0};
    cks_tolerance dflt;
    size_t nrows = 0, at = SIZE_MAX, prev = SIZE_MAX;
    int err;
    memset(&r, 0, sizeof r);
    r.baseline = o->baseline;
    r.no_previous = o->no_previous;
    if (!(r.run_path = strdup(cks_store_path(s))))
        return cks_error_set(CKS_ENOMEM, "out of memory");
    if ((err = cks_tolerance_parse(CKS_GATE_DEFAULT_TOL, &dflt)) || (err = read_identity(s, &r)) ||
        (err = cks_store_nrows(s, &nrows)) || (err = choose_checkpoints(s, o, &r, &at, &prev)))
        goto fail;
    if (o->baseline && (err = check_identity(&r, o->baseline)) != 0)
        goto fail;
    loader l = {s, nrows, at, prev, &v, o->include, o->ninclude};
    if ((err = load_group(&l, CKS_EVALS_GROUP, 0)) || (err = load_group(&l, "/eval", 1)))
        goto fail;
    if (o->ninclude) {
        cks_store_tensor *t = NULL;
        size_t nt = 0;
        if ((err = cks_store_tensors(s, &t, &nt)) == 0)
            err = load_matrices(&l, "/", t, nt, 0);
        cks_store_tensors_free(t, nt);
        if (err)
            goto fail;
    }
    if (v.n == 0) {
        err = cks_error_set(CKS_EINVAL,
                            "%s holds no scores%s: import lm-eval results with 'ckptscope "
                            "evals import', or scan with --metrics ppl",
                            r.run_path, o->ninclude ? " that --include selects" : "");
        goto fail;
    }
    if ((err = add_baseline_only(&l, &v, o->baseline, &r.base_ignored)) != 0)
        goto fail;
    qsort(v.m, v.n, sizeof *v.m, cmp_metric);
    r.m = v.m;
    r.n = v.n;
    v.m = NULL;
    for (size_t i = 0; i < r.n; i++) {
        const cks_baseline_metric *bm = baseline_find(o->baseline, r.m[i].id);
        if (bm) {
            r.m[i].in_baseline = 1;
            r.m[i].base = (cks_gate_point){bm->value, bm->stderr_, bm->n};
        }
        resolve_policy(&r.m[i], o, bm, &dflt);
    }
    judge(&r, o);
    *out = r;
    return 0;
fail:
    for (size_t i = 0; i < v.n; i++)
        free(v.m[i].id);
    free(v.m);
    cks_gate_report_release(&r);
    return err;
}

void cks_gate_report_release(cks_gate_report *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++)
        free(r->m[i].id);
    free(r->m);
    free(r->run_path);
    free(r->model);
    free(r->source);
    json_decref(r->config);
    free(r->at.name);
    free(r->prev.name);
    memset(r, 0, sizeof *r);
}

cks_severity cks_gate_worst(const cks_gate_report *r)
{
    cks_severity w = CKS_SEV_UNCHANGED;
    for (int c = 0; c < 2; c++)
        for (int s = 0; s < 4; s++)
            if (r->count[c][s] && (cks_severity)s > w)
                w = (cks_severity)s;
    return w;
}
