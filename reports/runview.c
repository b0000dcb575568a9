/* The read-only view of a run file used by plots and reports (runview.h): checkpoints
 * sorted by step, datasets permuted into that order and checked against the tables. */
#include "runview.h"
#include "error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void cks_runview_free(cks_runview *v)
{
    if (!v)
        return;
    cks_store_ckpts_free(v->ckpt, v->n);
    cks_store_tensors_free(v->tensor, v->nt);
    free(v->order);
    free(v->step);
    free(v->path);
    cks_store_free(v->store);
    free(v);
}

/* Orders rows by (step, row): the row breaks ties, so equal steps keep their row order. */
typedef struct {
    int64_t step;
    size_t row;
} keyed;

static int cmp_keyed(const void *a, const void *b)
{
    const keyed *x = a, *y = b;
    if (x->step != y->step)
        return x->step < y->step ? -1 : 1;
    return (x->row > y->row) - (x->row < y->row);
}

static int sort_by_step(cks_runview *v)
{
    keyed *k = malloc(v->n * sizeof *k);
    if (!k)
        return cks_error_set(CKS_ENOMEM, "out of memory");
    for (size_t i = 0; i < v->n; i++)
        k[i] = (keyed){v->ckpt[i].step, i};
    qsort(k, v->n, sizeof *k, cmp_keyed);
    for (size_t i = 0; i < v->n; i++) {
        v->order[i] = k[i].row;
        v->step[i] = k[i].step;
    }
    free(k);
    return 0;
}

int cks_runview_open(cks_runview **out, const char *path)
{
    cks_runview *v = calloc(1, sizeof *v);
    if (!v || !(v->path = strdup(path))) {
        free(v);
        return cks_error_set(CKS_ENOMEM, "out of memory");
    }
    int err = cks_store_open(&v->store, path, CKS_STORE_READ);
    if (!err)
        err = cks_store_checkpoints(v->store, &v->ckpt, &v->n);
    if (!err)
        err = cks_store_tensors(v->store, &v->tensor, &v->nt);
    if (err)
        goto fail;
    if (v->n == 0) {
        err = cks_error_set(CKS_EFORMAT, "%s holds no checkpoints (an empty run: nothing to show)",
                            path);
        goto fail;
    }
    if (!(v->order = malloc(v->n * sizeof *v->order)) ||
        !(v->step = malloc(v->n * sizeof *v->step))) {
        err = cks_error_set(CKS_ENOMEM, "out of memory");
        goto fail;
    }
    if ((err = sort_by_step(v)))
        goto fail;
    for (size_t j = 0; j < v->nt; j++)
        if (v->tensor[j].layer >= v->nlayers && v->tensor[j].layer < CKS_STORE_MAX_ROWS)
            v->nlayers = v->tensor[j].layer + 1;
    *out = v;
    return 0;
fail:
    cks_runview_free(v);
    return err;
}

const cks_store_ckpt *cks_runview_ckpt(const cks_runview *v, size_t i)
{
    return &v->ckpt[v->order[i]];
}

int cks_runview_read(cks_runview *v, const char *path, size_t want_cols, double **out, size_t *cols)
{
    double *raw = NULL, *sorted = NULL;
    size_t rows = 0, c = 0;
    int err = cks_store_read_matrix(v->store, path, &raw, &rows, &c);
    if (err)
        return err;
    if (rows != v->n || (want_cols && c != want_cols)) {
        char p[256]; /* dataset names come from the file */
        err = cks_error_set(CKS_EFORMAT, "%s: %s is %zux%zu, but the run has %zu checkpoints%s",
                            v->path, cks_printable(p, sizeof p, path, strlen(path)), rows, c, v->n,
                            want_cols ? " (and one column per tensor or value)" : "");
        free(raw);
        return err;
    }
    if (!(sorted = malloc((rows * c > 0 ? rows * c : 1) * sizeof *sorted))) {
        free(raw);
        return cks_error_set(CKS_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < v->n; i++)
        memcpy(sorted + i * c, raw + v->order[i] * c, c * sizeof *sorted);
    free(raw);
    *out = sorted;
    *cols = c;
    return 0;
}

int cks_runview_read_at(cks_runview *v, const char *path, size_t i, double **out, size_t *cols)
{
    size_t rows, c;
    int err = cks_store_shape(v->store, path, &rows, &c);
    if (err)
        return err;
    char p[256]; /* dataset names come from the file */
    if (rows != v->n)
        return cks_error_set(CKS_EFORMAT, "%s: %s has %zu rows, but the run has %zu checkpoints",
                             v->path, cks_printable(p, sizeof p, path, strlen(path)), rows, v->n);
    if ((err = cks_store_check_read(v->store, path, c)) != 0)
        return err;
    double *row = malloc((c ? c : 1) * sizeof *row);
    if (!row)
        return cks_error_set(CKS_ENOMEM, "out of memory");
    if ((err = cks_store_read_row(v->store, path, v->order[i], row, c))) {
        free(row);
        return err;
    }
    *out = row;
    *cols = c;
    return 0;
}

int cks_runview_has_values(cks_runview *v, const char *path)
{
    double *m = NULL;
    size_t rows, cols;
    if (!cks_store_exists(v->store, path))
        return 0;
    if (cks_store_read_matrix(v->store, path, &m, &rows, &cols) != 0) {
        cks_error_clear();
        return 0;
    }
    int any = 0;
    for (size_t i = 0; i < rows * cols && !any; i++)
        any = isfinite(m[i]);
    free(m);
    return any;
}

int cks_runview_attr(cks_runview *v, const char *path, const char *name, char **out)
{
    int err = cks_store_get_attr(v->store, path, name, out);
    if (err == CKS_ENOTFOUND) {
        cks_error_clear();
        if (!(*out = strdup("")))
            return cks_error_set(CKS_ENOMEM, "out of memory");
        return 0;
    }
    return err;
}

int cks_runview_find(cks_runview *v, const char *name, size_t *pos)
{
    for (size_t i = 0; i < v->n; i++) {
        if (strcmp(cks_runview_ckpt(v, i)->name, name) == 0) {
            *pos = i;
            return 0;
        }
    }
    char want[128], first[128], last[128];
    const char *a = cks_runview_ckpt(v, 0)->name, *b = cks_runview_ckpt(v, v->n - 1)->name;
    return cks_error_set(CKS_ENOTFOUND, "%s has no checkpoint '%s' (it holds %zu, '%s' ... '%s')",
                         v->path, cks_printable(want, sizeof want, name, strlen(name)), v->n,
                         cks_printable(first, sizeof first, a, strlen(a)),
                         cks_printable(last, sizeof last, b, strlen(b)));
}

size_t cks_runview_latest(const cks_runview *v)
{
    for (size_t i = v->n; i-- > 0;)
        if (strcmp(cks_runview_ckpt(v, i)->status, "complete") == 0)
            return i;
    return v->n - 1;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double cks_runview_median(const double *v, const size_t *idx, size_t n, double *scratch)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (isfinite(v[idx[i]]))
            scratch[k++] = v[idx[i]];
    if (k == 0)
        return NAN;
    qsort(scratch, k, sizeof *scratch, cmp_double);
    return k % 2 ? scratch[k / 2] : 0.5 * (scratch[k / 2 - 1] + scratch[k / 2]);
}
