/* Tensor lists, kinds and row-block views (the name -> (layer, kind) mapper is model_family.c). */
#include "tensor.h"
#include "checked.h"
#include "error.h"
#include "model_family.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cks_tensor_list_init(cks_tensor_list *l)
{
    memset(l, 0, sizeof *l);
}

void cks_tensor_list_release(cks_tensor_list *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->count; i++)
        free(l->names[i]);
    free(l->names);
    free(l->items);
    free(l->by_name);
    memset(l, 0, sizeof *l);
}

int cks_tensor_list_push(cks_tensor_list *l, const cks_tensor *t)
{
    if (l->count == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        cks_tensor *items = realloc(l->items, cap * sizeof *items);
        if (!items)
            return cks_error_set(CKS_ENOMEM, "out of memory growing a tensor list");
        l->items = items;
        char **names = realloc(l->names, cap * sizeof *names);
        if (!names)
            return cks_error_set(CKS_ENOMEM, "out of memory growing a tensor list");
        l->names = names;
        l->cap = cap;
    }
    char *name = strdup(t->name);
    if (!name)
        return cks_error_set(CKS_ENOMEM, "out of memory copying a tensor name");
    cks_tensor *dst = &l->items[l->count];
    *dst = *t;
    dst->name = name;
    cks_tensor_classify(name, &dst->layer, &dst->kind);
    l->names[l->count++] = name;
    return 0;
}

long cks_tensor_list_find(const cks_tensor_list *l, const char *name)
{
    if (l->by_name && l->n_indexed == l->count) {
        size_t lo = 0, hi = l->count;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            int c = strcmp(l->items[l->by_name[mid]].name, name);
            if (c == 0)
                return (long)l->by_name[mid];
            if (c < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        return -1;
    }
    for (size_t i = 0; i < l->count; i++)
        if (strcmp(l->items[i].name, name) == 0)
            return (long)i;
    return -1;
}

typedef struct {
    const char *name;
    size_t at;
} named;

static int cmp_named(const void *pa, const void *pb)
{
    return strcmp(((const named *)pa)->name, ((const named *)pb)->name);
}

int cks_tensor_list_index(cks_tensor_list *l)
{
    size_t n = l->count ? l->count : 1;
    named *tmp = malloc(n * sizeof *tmp);
    size_t *ix = tmp ? realloc(l->by_name, n * sizeof *ix) : NULL;
    if (!ix) {
        free(tmp);
        return cks_error_set(CKS_ENOMEM, "out of memory indexing a tensor list");
    }
    for (size_t i = 0; i < l->count; i++)
        tmp[i] = (named){l->items[i].name, i};
    qsort(tmp, l->count, sizeof *tmp, cmp_named);
    for (size_t i = 0; i < l->count; i++)
        ix[i] = tmp[i].at;
    free(tmp);
    l->by_name = ix;
    l->n_indexed = l->count;
    return 0;
}

static int kind_rank(cks_kind k)
{
    /* within a layer: the order HF modules run in; a bias right after its weight */
    static const int rank[CKS_KIND_OTHER + 1] = {
        [CKS_KIND_ATTN_NORM] = 0,   [CKS_KIND_Q] = 1,        [CKS_KIND_K] = 2,
        [CKS_KIND_V] = 3,           [CKS_KIND_Q_NORM] = 4,   [CKS_KIND_K_NORM] = 5,
        [CKS_KIND_O] = 6,           [CKS_KIND_MLP_NORM] = 7, [CKS_KIND_GATE] = 8,
        [CKS_KIND_UP] = 9,          [CKS_KIND_DOWN] = 10,    [CKS_KIND_EMBED] = 0,
        [CKS_KIND_FINAL_NORM] = 11, [CKS_KIND_LM_HEAD] = 12, [CKS_KIND_OTHER] = 13,
    };
    if (cks_kind_is_bias(k))
        return 2 * rank[cks_kind_weight(k)] + 1;
    return 2 * rank[(unsigned)k <= CKS_KIND_OTHER ? k : CKS_KIND_OTHER];
}

static int group(const cks_tensor *t)
{
    /* embed first, then layers, then final norm / lm_head / others */
    if (t->layer >= 0)
        return 1;
    return t->kind == CKS_KIND_EMBED ? 0 : 2;
}

static int cmp_tensor(const void *pa, const void *pb)
{
    const cks_tensor *a = pa, *b = pb;
    int ga = group(a), gb = group(b);
    if (ga != gb)
        return ga - gb;
    if (a->layer != b->layer)
        return a->layer < b->layer ? -1 : 1;
    int ra = kind_rank(a->kind), rb = kind_rank(b->kind);
    if (ra != rb)
        return ra - rb;
    return strcmp(a->name, b->name);
}

void cks_tensor_list_sort(cks_tensor_list *l)
{
    if (l->count > 1)
        qsort(l->items, l->count, sizeof *l->items, cmp_tensor);
    /* names[] only owns the strings; its order does not matter. The index holds
     * positions, which moved. */
    if (l->by_name && cks_tensor_list_index(l) != 0) {
        free(l->by_name); /* out of memory: lookups fall back to the linear scan */
        l->by_name = NULL;
        cks_error_clear();
    }
}

int cks_tensor_check_extent(cks_dtype dt, int ndim, const int64_t *shape, size_t nbytes,
                            int64_t *numel)
{
    int64_t n = 1;
    if (ndim < 0 || ndim > CKS_MAX_DIMS)
        return CKS_EFORMAT;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || cks_mul_i64(n, shape[i], &n))
            return CKS_EFORMAT;
    }
    size_t bytes;
    if ((uint64_t)n > SIZE_MAX || cks_mul_size((size_t)n, cks_dtype_size(dt), &bytes) ||
        bytes != nbytes)
        return CKS_EFORMAT;
    *numel = n;
    return 0;
}

static const char *const kind_names[CKS_KIND_COUNT] = {
    "q",
    "k",
    "v",
    "o",
    "gate",
    "up",
    "down",
    "attn_norm",
    "mlp_norm",
    "q_norm",
    "k_norm",
    "embed",
    "final_norm",
    "lm_head",
    "other",
    "q_bias",
    "k_bias",
    "v_bias",
    "o_bias",
    "gate_bias",
    "up_bias",
    "down_bias",
    "attn_norm_bias",
    "mlp_norm_bias",
    "q_norm_bias",
    "k_norm_bias",
    "embed_bias",
    "final_norm_bias",
    "lm_head_bias",
};

const char *cks_kind_name(cks_kind k)
{
    return (unsigned)k < CKS_KIND_COUNT ? kind_names[k] : "other";
}

int cks_kind_from_name(const char *s, cks_kind *out)
{
    for (int i = 0; i < CKS_KIND_COUNT; i++) {
        if (strcmp(kind_names[i], s) == 0) {
            *out = (cks_kind)i;
            return 0;
        }
    }
    return CKS_ENOTFOUND;
}

_Static_assert(CKS_KIND_LM_HEAD_BIAS - CKS_KIND_Q_BIAS == CKS_KIND_LM_HEAD - CKS_KIND_Q,
               "one bias kind per weight kind, in the same order");

cks_kind cks_kind_bias(cks_kind k)
{
    return (unsigned)k < CKS_KIND_OTHER ? (cks_kind)(CKS_KIND_Q_BIAS + k) : CKS_KIND_OTHER;
}

int cks_kind_is_bias(cks_kind k)
{
    return k >= CKS_KIND_Q_BIAS && k <= CKS_KIND_BIAS_LAST;
}

cks_kind cks_kind_weight(cks_kind bias)
{
    return cks_kind_is_bias(bias) ? (cks_kind)(bias - CKS_KIND_Q_BIAS) : bias;
}

void cks_tensor_classify(const char *name, int *layer, cks_kind *kind)
{
    cks_model_family_classify(NULL, name, layer, kind);
}

const char *cks_tensor_shape_str(const cks_tensor *t, char *buf, size_t cap)
{
    size_t k = 0;
    if (cap == 0)
        return buf;
    buf[0] = '\0';
    if (t->ndim == 0)
        snprintf(buf, cap, "scalar");
    for (int d = 0; d < t->ndim && k < cap; d++) {
        int n = snprintf(buf + k, cap - k, "%s%lld", d ? "x" : "", (long long)t->shape[d]);
        if (n < 0)
            break;
        k += (size_t)n;
    }
    return buf;
}

int cks_tensor_is_matrix(const cks_tensor *t)
{
    return t->ndim == 2 && cks_dtype_is_float(t->dtype) && t->shape[0] > 0 && t->shape[1] > 0;
}

int cks_tensor_is_contiguous(const cks_tensor *t)
{
    return t->block_rows <= 0;
}

/* Elements per row: the product of the dimensions after the first (1 for 1-D). */
static size_t row_elems(const cks_tensor *t)
{
    size_t r = 1;
    for (int d = 1; d < t->ndim; d++)
        r *= (size_t)t->shape[d];
    return r;
}

int64_t cks_tensor_nseg(const cks_tensor *t)
{
    if (cks_tensor_is_contiguous(t) || t->ndim < 1)
        return 1;
    return t->shape[0] / t->block_rows;
}

const void *cks_tensor_seg(const cks_tensor *t, int64_t i, size_t *nelem)
{
    if (cks_tensor_is_contiguous(t) || t->ndim < 1) {
        *nelem = (size_t)t->numel;
        return t->data;
    }
    size_t row = row_elems(t), es = cks_dtype_size(t->dtype);
    *nelem = (size_t)t->block_rows * row;
    return (const unsigned char *)t->data + (size_t)(i * t->block_stride) * row * es;
}

void cks_tensor_span(const cks_tensor *t, const void **p, size_t *len)
{
    int64_t n = cks_tensor_nseg(t);
    size_t last;
    const unsigned char *end = cks_tensor_seg(t, n - 1, &last);
    *p = t->data;
    *len = (size_t)(end - (const unsigned char *)t->data) + last * cks_dtype_size(t->dtype);
}

int cks_tensor_gather(const cks_tensor *t, cks_tensor *out, void **owned)
{
    *out = *t;
    *owned = NULL;
    if (cks_tensor_is_contiguous(t))
        return 0;
    unsigned char *buf = malloc(t->nbytes ? t->nbytes : 1), *p = buf;
    if (!buf)
        return cks_error_set(CKS_ENOMEM, "out of memory copying the %zu bytes of %s", t->nbytes,
                             t->name);
    size_t es = cks_dtype_size(t->dtype);
    for (int64_t i = 0; i < cks_tensor_nseg(t); i++) {
        size_t n;
        const void *src = cks_tensor_seg(t, i, &n);
        memcpy(p, src, n * es);
        p += n * es;
    }
    out->data = buf;
    out->block_rows = out->block_stride = 0;
    *owned = buf;
    return 0;
}
