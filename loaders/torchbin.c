/* torch.save checkpoints into tensor views (checks: torchbin.h): opens the archive,
 * unpickles the state dict, and turns each (storage key, offset, shape, stride) into a
 * view of the storage entry's bytes in the mapped file. */
#include "torchbin.h"
#include "checked.h"
#include "error.h"
#include "pickle.h"
#include "torchzip.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SHOW(s) cks_printable((char[160]){0}, 160, (s), strlen(s))

static int cmp_key(const void *a, const void *b)
{
    const cks_pk_tensor *x = *(const cks_pk_tensor *const *)a,
                        *y = *(const cks_pk_tensor *const *)b;
    return strcmp(x->key, y->key);
}

static int cmp_name(const void *a, const void *b)
{
    const cks_pk_tensor *x = *(const cks_pk_tensor *const *)a,
                        *y = *(const cks_pk_tensor *const *)b;
    return strcmp(x->name, y->name);
}

/* Sorting pointers by key and by name finds, in O(n log n), storages declared twice
 * with different types and names listed twice. */
static int check_consistency(const char *disp, const cks_pk_state_dict *sd)
{
    const cks_pk_tensor **ix = malloc((sd->count ? sd->count : 1) * sizeof *ix);
    int err = 0;
    if (!ix)
        return cks_error_set(CKS_ENOMEM, "out of memory");
    for (size_t i = 0; i < sd->count; i++)
        ix[i] = &sd->items[i];
    qsort(ix, sd->count, sizeof *ix, cmp_key);
    for (size_t i = 1; i < sd->count && !err; i++) {
        const cks_pk_tensor *a = ix[i - 1], *b = ix[i];
        if (strcmp(a->key, b->key) == 0 &&
            (a->storage_dtype != b->storage_dtype || a->storage_numel != b->storage_numel))
            err = cks_error_set(CKS_EFORMAT,
                                "%s: storage '%s' is declared as %lld %s elements for '%s' and "
                                "%lld %s elements for '%s'",
                                disp, a->key, (long long)a->storage_numel,
                                cks_dtype_name(a->storage_dtype), SHOW(a->name),
                                (long long)b->storage_numel, cks_dtype_name(b->storage_dtype),
                                SHOW(b->name));
    }
    qsort(ix, sd->count, sizeof *ix, cmp_name);
    for (size_t i = 1; i < sd->count && !err; i++)
        if (strcmp(ix[i - 1]->name, ix[i]->name) == 0)
            err = cks_error_set(CKS_EFORMAT, "%s: tensor '%s' appears twice in data.pkl", disp,
                                SHOW(ix[i]->name));
    free(ix);
    return err;
}

static void format_dims(const int64_t *d, int n, char *buf, size_t cap)
{
    size_t k = (size_t)snprintf(buf, cap, "(");
    for (int i = 0; i < n && k < cap; i++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%lld", i ? ", " : "", (long long)d[i]);
    if (k < cap)
        snprintf(buf + k, cap - k, "%s)", n == 1 ? "," : "");
}

/* Element count of the shape; -1 when it overflows int64 (an empty dimension makes it
 * 0 whatever the others are). */
static int64_t shape_numel(const cks_pk_tensor *r)
{
    int64_t n = 1;
    for (int d = 0; d < r->ndim; d++)
        if (r->shape[d] == 0)
            return 0;
    for (int d = 0; d < r->ndim; d++)
        if (cks_mul_i64(n, r->shape[d], &n) != 0)
            return -1;
    return n;
}

/* Row-major contiguity as torch defines it (TensorImpl::compute_contiguous): a size-1
 * dimension's stride does not matter; an empty tensor is contiguous. Called once the
 * element count is known to fit, so the running product cannot overflow. */
static int is_contiguous(const cks_pk_tensor *r, int64_t numel)
{
    int64_t expect = 1;
    if (numel == 0)
        return 1;
    for (int d = r->ndim - 1; d >= 0; d--) {
        if (r->shape[d] != 1 && r->stride[d] != expect)
            return 0;
        expect *= r->shape[d];
    }
    return 1;
}

/* One record into a view of its storage entry. */
static int make_view(const cks_torchzip *z, const cks_pk_tensor *r, int file, cks_tensor *t)
{
    const char *disp = z->map->display;
    char entry[300], a[200], b[200];
    snprintf(entry, sizeof entry, "data/%s", r->key);
    const cks_zip_entry *e = cks_torchzip_find(z, entry);
    if (!e)
        return cks_error_set(CKS_EFORMAT,
                             "%s: tensor '%s' uses storage '%s', which is not in the archive (no "
                             "'%s/%s')",
                             disp, SHOW(r->name), r->key, z->prefix, entry);
    size_t ses = cks_dtype_size(r->storage_dtype), es = cks_dtype_size(r->dtype), sbytes, end;
    if (cks_mul_size((size_t)r->storage_numel, ses, &sbytes) != 0 || sbytes != e->size)
        return cks_error_set(CKS_EFORMAT,
                             "%s: storage '%s' declares %lld %s elements but its entry holds "
                             "%llu bytes",
                             disp, r->key, (long long)r->storage_numel,
                             cks_dtype_name(r->storage_dtype), (unsigned long long)e->size);
    memset(t, 0, sizeof *t);
    int64_t numel = shape_numel(r);
    if (numel >= 0 && !is_contiguous(r, numel)) {
        format_dims(r->shape, r->ndim, a, sizeof a);
        format_dims(r->stride, r->ndim, b, sizeof b);
        return cks_error_set(CKS_EUNSUPPORTED,
                             "%s: tensor '%s' is not contiguous (shape %s, stride %s); only "
                             "row-major tensors can be read in place (save it after "
                             ".contiguous())",
                             disp, SHOW(r->name), a, b);
    }
    if (numel < 0)
        return cks_error_set(CKS_EFORMAT, "%s: tensor '%s' has a shape of more than 2^63 elements",
                             disp, SHOW(r->name));
    t->numel = numel;
    if (cks_mul_size((size_t)numel, es, &t->nbytes) != 0 ||
        cks_mul_size((size_t)r->offset, es, &end) != 0 || cks_add_size(end, t->nbytes, &end) != 0 ||
        end > e->size)
        return cks_error_set(CKS_EFORMAT,
                             "%s: tensor '%s' (%lld %s elements at offset %lld) runs past its "
                             "storage '%s' of %llu bytes",
                             disp, SHOW(r->name), (long long)numel, cks_dtype_name(r->dtype),
                             (long long)r->offset, r->key, (unsigned long long)e->size);
    t->name = r->name;
    t->dtype = r->dtype;
    t->ndim = r->ndim;
    memcpy(t->shape, r->shape, sizeof t->shape);
    t->data = e->data + (end - t->nbytes);
    t->file = file;
    return 0;
}

int cks_torchbin_parse(const cks_map *m, int file, cks_tensor_list *out)
{
    cks_torchzip z;
    cks_pk_state_dict sd = {0};
    cks_tensor_list tmp;
    int err;
    if ((err = cks_torchzip_open(m, &z)) != 0)
        return err;
    cks_tensor_list_init(&tmp);
    const cks_zip_entry *pkl = cks_torchzip_find(&z, "data.pkl");
    if (pkl->size > CKS_PK_MAX_BYTES) {
        err = cks_error_set(CKS_ELIMIT, "%s: data.pkl has %llu bytes (limit %u)", m->display,
                            (unsigned long long)pkl->size, CKS_PK_MAX_BYTES);
        goto done;
    }
    if ((err = cks_torchzip_check_crc(&z, pkl)) != 0 ||
        (err = cks_pickle_state_dict(pkl->data, (size_t)pkl->size, m->display, &sd)) != 0 ||
        (err = check_consistency(m->display, &sd)) != 0)
        goto done;
    for (size_t i = 0; i < sd.count; i++) {
        cks_tensor t;
        if ((err = make_view(&z, &sd.items[i], file, &t)) != 0 ||
            (err = cks_tensor_list_push(&tmp, &t)) != 0)
            goto done;
    }
    for (size_t i = 0; i < tmp.count; i++) {
        if ((err = cks_tensor_list_push(out, &tmp.items[i])) != 0) {
            while (i-- > 0) { /* roll back: nothing appended on error */
                out->count--;
                free(out->names[out->count]);
            }
            goto done;
        }
    }
done:
    cks_tensor_list_release(&tmp);
    cks_pk_state_dict_release(&sd);
    cks_torchzip_release(&z);
    return err;
}
