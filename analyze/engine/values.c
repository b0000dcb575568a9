/* An analysed checkpoint's values (see values.h): allocation, and the items of the
 * per-checkpoint families with their writing. */
#include "values.h"
#include "error.h"
#include "grow.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void item_release(cks_item *x)
{
    free(x->path);
    free(x->description);
    free(x->unit);
    free(x->axis);
    free(x->row);
    free(x->flags);
}

static char *dup_or_null(const char *s, int *oom)
{
    char *d = s ? strdup(s) : NULL;
    if (s && !d)
        *oom = 1;
    return d;
}

static int push(cks_items *it, const char *path, const char *description, const char *unit,
                const char *axis, double v, float *row, uint8_t *flags, size_t n)
{
    int oom = 0;
    if (cks_grow(&it->v, &it->cap, it->n, sizeof *it->v, 16) != 0) {
        free(row);
        free(flags);
        return CKS_ENOMEM;
    }
    cks_item *x = &it->v[it->n];
    memset(x, 0, sizeof *x);
    x->path = dup_or_null(path, &oom);
    x->description = dup_or_null(description ? description : "", &oom);
    x->unit = dup_or_null(unit, &oom);
    x->axis = dup_or_null(axis, &oom);
    x->value = v;
    x->row = row;
    x->flags = flags;
    x->n = n;
    if (oom) {
        item_release(x);
        return cks_error_set(CKS_ENOMEM, "out of memory");
    }
    it->n++;
    return 0;
}

int cks_items_series(cks_items *it, const char *path, double v, const char *description,
                     const char *unit)
{
    return push(it, path, description, unit, NULL, v, NULL, NULL, 0);
}

int cks_items_row(cks_items *it, const char *path, float *row, size_t n, const char *axis,
                  const char *description, const char *unit)
{
    if (!row && !(row = malloc(1)))
        return cks_error_set(CKS_ENOMEM, "out of memory");
    return push(it, path, description, unit, axis ? axis : "value", NAN, row, NULL, n);
}

int cks_items_row_u8(cks_items *it, const char *path, uint8_t *flags, size_t n, const char *axis,
                     const char *description, const char *unit)
{
    if (!flags && !(flags = malloc(1)))
        return cks_error_set(CKS_ENOMEM, "out of memory");
    return push(it, path, description, unit, axis ? axis : "value", NAN, NULL, flags, n);
}

void cks_items_release(cks_items *it)
{
    for (size_t i = 0; i < it->n; i++)
        item_release(&it->v[i]);
    free(it->v);
    memset(it, 0, sizeof *it);
}

int cks_items_write(const cks_items *it, cks_store *s, size_t row)
{
    int err = 0;
    for (size_t i = 0; i < it->n && !err; i++) {
        const cks_item *x = &it->v[i];
        err = x->row ? cks_store_write_row_f32(s, x->path, row, x->row, x->n, x->axis,
                                               x->description, x->unit)
              : x->flags
                  ? cks_store_write_row_u8(s, x->path, row, x->flags, x->n, x->axis, x->description,
                                           x->unit)
                  : cks_store_write_series(s, x->path, row, x->value, x->description, x->unit);
    }
    return err;
}

void cks_values_release(cks_values *v)
{
    free(v->cols);
    free(v->cur);
    free(v->vals);
    free(v->top);
    free(v->has_top);
    free(v->strings);
    cks_items_release(&v->items);
    memset(v, 0, sizeof *v);
}

int cks_values_alloc(cks_values *v, size_t n, size_t nvals)
{
    size_t cap = n ? n : 1, cells;
    memset(v, 0, sizeof *v);
    v->n = n;
    v->nvals = nvals;
    if (__builtin_mul_overflow(cap, nvals ? nvals : 1, &cells) ||
        !(v->cols = calloc(cap, sizeof *v->cols)) || !(v->cur = calloc(cap, sizeof *v->cur)) ||
        !(v->vals = malloc(cells * sizeof *v->vals)) ||
        !(v->top = malloc(cap * CKS_SPECTRA_K * sizeof *v->top)) ||
        !(v->has_top = calloc(cap, sizeof *v->has_top))) {
        cks_values_release(v);
        return cks_error_set(CKS_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < cells; i++)
        v->vals[i] = NAN;
    for (size_t i = 0; i < cap * CKS_SPECTRA_K; i++)
        v->top[i] = NAN;
    return 0;
}
