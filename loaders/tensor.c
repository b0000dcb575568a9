/* Tensor lists and the one name -> (layer, kind) mapper for Hugging Face LLaMA names. */
#include "tensor.h"
#include "checked.h"
#include "error.h"

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
    /* within a layer: the order HF modules run in */
    static const int rank[CKS_KIND_COUNT] = {
        [CKS_KIND_ATTN_NORM] = 0, [CKS_KIND_Q] = 1,           [CKS_KIND_K] = 2,
        [CKS_KIND_V] = 3,         [CKS_KIND_O] = 4,           [CKS_KIND_MLP_NORM] = 5,
        [CKS_KIND_GATE] = 6,      [CKS_KIND_UP] = 7,          [CKS_KIND_DOWN] = 8,
        [CKS_KIND_EMBED] = 0,     [CKS_KIND_FINAL_NORM] = 10, [CKS_KIND_LM_HEAD] = 11,
        [CKS_KIND_OTHER] = 12,
    };
    return rank[k];
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
    "q",         "k",        "v",     "o",          "gate",    "up",    "down",
    "attn_norm", "mlp_norm", "embed", "final_norm", "lm_head", "other",
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

void cks_tensor_classify(const char *name, int *layer, cks_kind *kind)
{
    static const struct {
        const char *suffix;
        cks_kind kind;
    } layer_kinds[] = {
        {"self_attn.q_proj.weight", CKS_KIND_Q},
        {"self_attn.k_proj.weight", CKS_KIND_K},
        {"self_attn.v_proj.weight", CKS_KIND_V},
        {"self_attn.o_proj.weight", CKS_KIND_O},
        {"mlp.gate_proj.weight", CKS_KIND_GATE},
        {"mlp.up_proj.weight", CKS_KIND_UP},
        {"mlp.down_proj.weight", CKS_KIND_DOWN},
        {"input_layernorm.weight", CKS_KIND_ATTN_NORM},
        {"post_attention_layernorm.weight", CKS_KIND_MLP_NORM},
    };
    *layer = -1;
    *kind = CKS_KIND_OTHER;
    if (strcmp(name, "model.embed_tokens.weight") == 0) {
        *kind = CKS_KIND_EMBED;
        return;
    }
    if (strcmp(name, "model.norm.weight") == 0) {
        *kind = CKS_KIND_FINAL_NORM;
        return;
    }
    if (strcmp(name, "lm_head.weight") == 0) {
        *kind = CKS_KIND_LM_HEAD;
        return;
    }
    static const char prefix[] = "model.layers.";
    if (strncmp(name, prefix, sizeof prefix - 1) != 0)
        return;
    const char *p = name + sizeof prefix - 1;
    long n = 0;
    int digits = 0;
    while (*p >= '0' && *p <= '9' && digits < 9) {
        n = n * 10 + (*p - '0');
        p++;
        digits++;
    }
    if (digits == 0 || *p != '.')
        return;
    p++;
    *layer = (int)n;
    for (size_t i = 0; i < sizeof layer_kinds / sizeof layer_kinds[0]; i++) {
        if (strcmp(p, layer_kinds[i].suffix) == 0) {
            *kind = layer_kinds[i].kind;
            return;
        }
    }
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
