/* The unpickler's whitelist and what its callables build (pickle.h lists them): the
 * globals a state dict names, persistent ids of storages, the tensor rebuild functions
 * of torch/_utils.py, OrderedDict's BUILD, and the final name -> tensor records.
 * Nothing is imported or called: each global is a row of a table. */
#include "error.h"
#include "pickle_vm.h"

#include <stdlib.h>
#include <string.h>

#define MAX_GLOBAL_LINE 256 /* "module\n" and "name\n" of GLOBAL */
#define MAX_KEY         255 /* storage key bytes */

typedef enum { G_ODICT, G_REBUILD, G_REBUILD_V2, G_REBUILD_V3, G_PARAM, G_STORAGE, G_DTYPE } gkind;

/* The whole whitelist. Storage classes map to the one dtype table. */
static const struct {
    const char *module, *name;
    gkind kind;
    cks_dtype dtype;
} globals[] = {
    {"collections", "OrderedDict", G_ODICT, CKS_DT_F32},
    {"torch._utils", "_rebuild_tensor", G_REBUILD, CKS_DT_F32},
    {"torch._utils", "_rebuild_tensor_v2", G_REBUILD_V2, CKS_DT_F32},
    {"torch._utils", "_rebuild_tensor_v3", G_REBUILD_V3, CKS_DT_F32},
    {"torch._utils", "_rebuild_parameter", G_PARAM, CKS_DT_F32},
    {"torch", "FloatStorage", G_STORAGE, CKS_DT_F32},
    {"torch", "HalfStorage", G_STORAGE, CKS_DT_F16},
    {"torch", "BFloat16Storage", G_STORAGE, CKS_DT_BF16},
    {"torch", "DoubleStorage", G_STORAGE, CKS_DT_F64},
    {"torch", "LongStorage", G_STORAGE, CKS_DT_I64},
    {"torch", "IntStorage", G_STORAGE, CKS_DT_I32},
    {"torch", "ShortStorage", G_STORAGE, CKS_DT_I16},
    {"torch", "CharStorage", G_STORAGE, CKS_DT_I8},
    {"torch", "ByteStorage", G_STORAGE, CKS_DT_U8},
    {"torch", "BoolStorage", G_STORAGE, CKS_DT_BOOL},
    {"torch", "UntypedStorage", G_STORAGE, CKS_DT_U8},
    {"torch.storage", "UntypedStorage", G_STORAGE, CKS_DT_U8},
    {"torch", "float32", G_DTYPE, CKS_DT_F32},
    {"torch", "float16", G_DTYPE, CKS_DT_F16},
    {"torch", "bfloat16", G_DTYPE, CKS_DT_BF16},
    {"torch", "float64", G_DTYPE, CKS_DT_F64},
    {"torch", "int8", G_DTYPE, CKS_DT_I8},
    {"torch", "uint8", G_DTYPE, CKS_DT_U8},
    {"torch", "int16", G_DTYPE, CKS_DT_I16},
    {"torch", "uint16", G_DTYPE, CKS_DT_U16},
    {"torch", "int32", G_DTYPE, CKS_DT_I32},
    {"torch", "uint32", G_DTYPE, CKS_DT_U32},
    {"torch", "int64", G_DTYPE, CKS_DT_I64},
    {"torch", "uint64", G_DTYPE, CKS_DT_U64},
    {"torch", "bool", G_DTYPE, CKS_DT_BOOL},
    {"torch", "float8_e4m3fn", G_DTYPE, CKS_DT_F8_E4M3},
    {"torch", "float8_e5m2", G_DTYPE, CKS_DT_F8_E5M2},
};

static int lookup_global(vm *v, const char *mod, size_t ml, const char *name, size_t nl)
{
    for (size_t g = 0; g < sizeof globals / sizeof globals[0]; g++) {
        if (strlen(globals[g].module) == ml && memcmp(globals[g].module, mod, ml) == 0 &&
            strlen(globals[g].name) == nl && memcmp(globals[g].name, name, nl) == 0) {
            uint32_t o;
            int err = cks_pkvm_new(v, K_GLOBAL, &o);
            if (err)
                return err;
            v->objs[o].sub = (uint8_t)g;
            return cks_pkvm_push(v, o);
        }
    }
    char m[96], n[96];
    return cks_pkvm_fail(
        v, CKS_EUNSUPPORTED,
        "global '%s.%s' is not allowed: a state dict needs only collections.OrderedDict, "
        "torch._utils._rebuild_tensor*, torch.*Storage and torch dtypes (nothing was "
        "executed)",
        cks_printable(m, sizeof m, mod, ml), cks_printable(n, sizeof n, name, nl));
}

/* GLOBAL: "module\nname\n" inline. */
int cks_pkvm_op_global(vm *v)
{
    const char *line[2];
    size_t len[2];
    for (int k = 0; k < 2; k++) {
        size_t room = v->len - v->pos;
        const unsigned char *nl =
            memchr(v->p + v->pos, '\n', room < MAX_GLOBAL_LINE ? room : MAX_GLOBAL_LINE);
        if (!nl)
            return cks_pkvm_fail(v, CKS_EFORMAT, "GLOBAL without a newline in its first %d bytes",
                                 MAX_GLOBAL_LINE);
        line[k] = (const char *)v->p + v->pos;
        len[k] = (size_t)(nl - (v->p + v->pos));
        v->pos += len[k] + 1;
    }
    return lookup_global(v, line[0], len[0], line[1], len[1]);
}

/* STACK_GLOBAL: module and name are strings on the stack. */
int cks_pkvm_op_stack_global(vm *v)
{
    uint32_t mod = 0, name = 0;
    int err;
    if ((err = cks_pkvm_pop(v, &name)) != 0 || (err = cks_pkvm_pop(v, &mod)) != 0)
        return err;
    if (v->objs[mod].kind != K_STR || v->objs[name].kind != K_STR)
        return cks_pkvm_fail(v, CKS_EFORMAT, "STACK_GLOBAL on a %s and a %s, not two strings",
                             cks_pkvm_kind_name(v, mod), cks_pkvm_kind_name(v, name));
    return lookup_global(v, v->objs[mod].u.s.p, v->objs[mod].u.s.len, v->objs[name].u.s.p,
                         v->objs[name].u.s.len);
}

static int is_str(const vm *v, uint32_t o, const char *s)
{
    const pobj *x = &v->objs[o];
    return x->kind == K_STR && x->u.s.len == strlen(s) && memcmp(x->u.s.p, s, x->u.s.len) == 0;
}

static int valid_key(const pobj *x)
{
    if (x->kind != K_STR || x->u.s.len == 0 || x->u.s.len > MAX_KEY)
        return 0;
    for (uint32_t i = 0; i < x->u.s.len; i++) {
        char c = x->u.s.p[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              c == '_' || c == '-' || c == '.'))
            return 0;
    }
    return 1;
}

/* BINPERSID: ('storage', <storage type>, key, location, numel) -> a storage. */
int cks_pkvm_op_persid(vm *v)
{
    uint32_t pid = 0, o = 0;
    int err = cks_pkvm_pop(v, &pid);
    if (err)
        return err;
    const pobj *t = &v->objs[pid];
    if (t->kind != K_TUPLE || t->n != 5 || !is_str(v, t->u.items[0], "storage"))
        return cks_pkvm_fail(v, CKS_EUNSUPPORTED,
                             "a persistent id that is not ('storage', type, key, location, numel)");
    const pobj *ty = &v->objs[t->u.items[1]], *key = &v->objs[t->u.items[2]],
               *loc = &v->objs[t->u.items[3]], *num = &v->objs[t->u.items[4]];
    if (ty->kind != K_GLOBAL || globals[ty->sub].kind != G_STORAGE)
        return cks_pkvm_fail(v, CKS_EUNSUPPORTED,
                             "a persistent id whose type is a %s, not a torch "
                             "storage type",
                             cks_pkvm_kind_name(v, t->u.items[1]));
    if (!valid_key(key))
        return cks_pkvm_fail(v, CKS_EFORMAT,
                             "a storage key that is not 1..%d characters of "
                             "[0-9A-Za-z_.-]",
                             MAX_KEY);
    if (loc->kind != K_STR || num->kind != K_INT || num->u.i < 0)
        return cks_pkvm_fail(v, CKS_EFORMAT,
                             "a persistent id with a bad location or element count");
    int rc =
        cks_pkvm_grow((void **)&v->st, &v->capst, v->nst + 1, sizeof *v->st, CKS_PK_MAX_OBJECTS);
    if (rc)
        return cks_pkvm_grow_err(v, rc, "storages", CKS_PK_MAX_OBJECTS);
    v->st[v->nst] = (pstorage){key->u.s.p, key->u.s.len, globals[ty->sub].dtype, num->u.i};
    if ((err = cks_pkvm_new(v, K_STORAGE, &o)) != 0)
        return err;
    v->objs[o].u.rec = (uint32_t)v->nst++;
    return cks_pkvm_push(v, o);
}

/* A tuple of at most CKS_MAX_DIMS non-negative ints into dims; returns the count or -1. */
static int int_tuple(const vm *v, uint32_t o, int64_t *dims)
{
    const pobj *t = &v->objs[o];
    if (t->kind != K_TUPLE || t->n > CKS_MAX_DIMS)
        return -1;
    for (uint32_t i = 0; i < t->n; i++) {
        const pobj *x = &v->objs[t->u.items[i]];
        if (x->kind != K_INT || x->u.i < 0)
            return -1;
        dims[i] = x->u.i;
    }
    return (int)t->n;
}

static int empty_dict_or_none(const vm *v, uint32_t o, int none_ok)
{
    const pobj *x = &v->objs[o];
    return (x->kind == K_DICT && x->n == 0) || (none_ok && x->kind == K_NONE);
}

/* _rebuild_tensor / _v2 / _v3 (torch/_utils.py): checks the arguments, records the
 * geometry. */
static int rebuild_tensor(vm *v, gkind g, uint32_t args, uint32_t *out)
{
    const pobj *a = &v->objs[args];
    uint32_t n = a->n, lo = g == G_REBUILD ? 4 : g == G_REBUILD_V2 ? 6 : 7;
    const char *fn = g == G_REBUILD      ? "_rebuild_tensor"
                     : g == G_REBUILD_V2 ? "_rebuild_tensor_v2"
                                         : "_rebuild_tensor_v3";
    if (n < lo || n > (g == G_REBUILD ? 4 : lo + 1))
        return cks_pkvm_fail(v, CKS_EFORMAT, "%s called with %u arguments", fn, n);
    const uint32_t *it = a->u.items;
    const pobj *st = &v->objs[it[0]], *off = &v->objs[it[1]];
    ptensor t = {.ndim = 0};
    if (st->kind != K_STORAGE || off->kind != K_INT || off->u.i < 0)
        return cks_pkvm_fail(v, CKS_EFORMAT, "%s without a storage and a non-negative offset", fn);
    t.storage = st->u.rec;
    t.offset = off->u.i;
    t.dtype = v->st[t.storage].dtype;
    int nd = int_tuple(v, it[2], t.shape), ns = int_tuple(v, it[3], t.stride);
    if (nd < 0 || ns != nd)
        return cks_pkvm_fail(
            v,
            v->objs[it[2]].kind == K_TUPLE && v->objs[it[2]].n > CKS_MAX_DIMS ? CKS_ELIMIT
                                                                              : CKS_EFORMAT,
            "%s with a size and stride that are not equal-length tuples of at most %d "
            "non-negative ints",
            fn, CKS_MAX_DIMS);
    t.ndim = nd;
    if (g != G_REBUILD) {
        if (v->objs[it[4]].kind != K_BOOL || !empty_dict_or_none(v, it[5], 0))
            return cks_pkvm_fail(
                v, CKS_EUNSUPPORTED,
                "%s with a requires_grad that is not a bool or non-empty backward hooks", fn);
        if (g == G_REBUILD_V3) {
            const pobj *d = &v->objs[it[6]];
            if (d->kind != K_GLOBAL || globals[d->sub].kind != G_DTYPE)
                return cks_pkvm_fail(v, CKS_EFORMAT, "%s with a dtype argument that is a %s", fn,
                                     cks_pkvm_kind_name(v, it[6]));
            t.dtype = globals[d->sub].dtype;
        }
        if (n > lo && !empty_dict_or_none(v, it[lo], 1))
            return cks_pkvm_fail(
                v, CKS_EUNSUPPORTED,
                "%s with tensor metadata (conjugate or negative bits would change the "
                "stored values)",
                fn);
    }
    int rc =
        cks_pkvm_grow((void **)&v->tn, &v->captn, v->ntn + 1, sizeof *v->tn, CKS_PK_MAX_OBJECTS);
    if (rc)
        return cks_pkvm_grow_err(v, rc, "tensors", CKS_PK_MAX_OBJECTS);
    v->tn[v->ntn] = t;
    int err = cks_pkvm_new(v, K_TENSOR, out);
    if (!err)
        v->objs[*out].u.rec = (uint32_t)v->ntn++;
    return err;
}

/* REDUCE: callable(*args), for the whitelisted callables only. */
int cks_pkvm_op_reduce(vm *v)
{
    uint32_t args = 0, fn = 0, out = 0;
    int err;
    if ((err = cks_pkvm_pop(v, &args)) != 0 || (err = cks_pkvm_pop(v, &fn)) != 0)
        return err;
    const pobj *f = &v->objs[fn], *a = &v->objs[args];
    if (f->kind != K_GLOBAL)
        return cks_pkvm_fail(v, CKS_EUNSUPPORTED,
                             "REDUCE on a %s, which is not an allowed callable",
                             cks_pkvm_kind_name(v, fn));
    gkind g = globals[f->sub].kind;
    if (a->kind != K_TUPLE)
        return cks_pkvm_fail(v, CKS_EFORMAT, "REDUCE of %s.%s with a %s for arguments",
                             globals[f->sub].module, globals[f->sub].name,
                             cks_pkvm_kind_name(v, args));
    switch (g) {
    case G_ODICT:
        if (a->n != 0)
            return cks_pkvm_fail(v, CKS_EUNSUPPORTED,
                                 "collections.OrderedDict called with arguments");
        if ((err = cks_pkvm_new(v, K_DICT, &out)) != 0)
            return err;
        v->objs[out].sub = 1;
        break;
    case G_REBUILD:
    case G_REBUILD_V2:
    case G_REBUILD_V3:
        if ((err = rebuild_tensor(v, g, args, &out)) != 0)
            return err;
        break;
    case G_PARAM: /* _rebuild_parameter(data, requires_grad, backward_hooks) */
        if (a->n != 3 || v->objs[a->u.items[0]].kind != K_TENSOR ||
            v->objs[a->u.items[1]].kind != K_BOOL || !empty_dict_or_none(v, a->u.items[2], 0))
            return cks_pkvm_fail(v, CKS_EUNSUPPORTED,
                                 "_rebuild_parameter with arguments other than (tensor, bool, {})");
        out = a->u.items[0];
        break;
    default:
        return cks_pkvm_fail(v, CKS_EUNSUPPORTED,
                             "REDUCE on %s.%s is not allowed (it is not a function)",
                             globals[f->sub].module, globals[f->sub].name);
    }
    return cks_pkvm_push(v, out);
}

/* BUILD: only OrderedDict.__setstate__-like use with a None or dict state, which is how
 * a module's state_dict() carries _metadata; the state is dropped. */
int cks_pkvm_op_build(vm *v)
{
    uint32_t state = 0, inst = 0;
    int err;
    if ((err = cks_pkvm_pop(v, &state)) != 0 || (err = cks_pkvm_top(v, &inst)) != 0)
        return err;
    const pobj *x = &v->objs[inst], *s = &v->objs[state];
    if (x->kind != K_DICT || !x->sub)
        return cks_pkvm_fail(v, CKS_EUNSUPPORTED,
                             "BUILD on a %s (only an OrderedDict may be built)",
                             cks_pkvm_kind_name(v, inst));
    if (s->kind != K_NONE && s->kind != K_DICT)
        return cks_pkvm_fail(v, CKS_EUNSUPPORTED, "BUILD of an OrderedDict with a %s state",
                             cks_pkvm_kind_name(v, state));
    return 0;
}

/* The result: a dict of string keys to tensors, copied into out. */
int cks_pkvm_extract(vm *v, cks_pk_state_dict *out)
{
    const pobj *d = &v->objs[v->stack[0]];
    size_t n = d->n / 2, bytes = 0;
    if (d->kind != K_DICT)
        return cks_pkvm_fail(v, CKS_EFORMAT, "the pickle holds a %s, not a state dict",
                             cks_pkvm_kind_name(v, v->stack[0]));
    for (size_t i = 0; i < n; i++) {
        const pobj *k = &v->objs[d->u.items[2 * i]], *t = &v->objs[d->u.items[2 * i + 1]];
        char shown[128];
        if (k->kind != K_STR || k->u.s.len == 0 || memchr(k->u.s.p, 0, k->u.s.len))
            return cks_pkvm_fail(v, CKS_EFORMAT,
                                 "state dict entry %zu has a key that is a %s, not a "
                                 "non-empty name",
                                 i, cks_pkvm_kind_name(v, d->u.items[2 * i]));
        if (t->kind != K_TENSOR)
            return cks_pkvm_fail(v, CKS_EUNSUPPORTED, "state dict entry '%s' is a %s, not a tensor",
                                 cks_printable(shown, sizeof shown, k->u.s.p, k->u.s.len),
                                 cks_pkvm_kind_name(v, d->u.items[2 * i + 1]));
        bytes += k->u.s.len + 1 + v->st[v->tn[t->u.rec].storage].keylen + 1;
    }
    cks_pk_state_dict sd = {0};
    if (!(sd.items = calloc(n ? n : 1, sizeof *sd.items)) || !(sd.strings = malloc(bytes + 1))) {
        cks_pk_state_dict_release(&sd);
        return cks_error_set(CKS_ENOMEM, "out of memory");
    }
    char *w = sd.strings;
    for (size_t i = 0; i < n; i++) {
        const pobj *k = &v->objs[d->u.items[2 * i]];
        const ptensor *t = &v->tn[v->objs[d->u.items[2 * i + 1]].u.rec];
        const pstorage *s = &v->st[t->storage];
        cks_pk_tensor *r = &sd.items[i];
        memcpy(w, k->u.s.p, k->u.s.len);
        w[k->u.s.len] = '\0';
        r->name = w;
        w += k->u.s.len + 1;
        memcpy(w, s->key, s->keylen);
        w[s->keylen] = '\0';
        r->key = w;
        w += s->keylen + 1;
        r->storage_dtype = s->dtype;
        r->storage_numel = s->numel;
        r->dtype = t->dtype;
        r->offset = t->offset;
        r->ndim = t->ndim;
        memcpy(r->shape, t->shape, sizeof r->shape);
        memcpy(r->stride, t->stride, sizeof r->stride);
    }
    sd.count = n;
    *out = sd;
    return 0;
}
