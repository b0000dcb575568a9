/* The restricted unpickler's machine (what it accepts: pickle.h): a loop over opcodes
 * with an explicit value stack, mark stack and memo. Objects live in one pool and refer
 * to each other by index, so nothing here recurses and nothing is freed piecemeal.
 * Opcode semantics follow CPython's Lib/pickle.py (_Unpickler) and Lib/pickletools.py;
 * the opcodes that touch globals are in pickle_torch.c. */
#include "error.h"
#include "pickle_vm.h"
#include "utf8.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cks_pkvm_fail(const vm *v, int code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return cks_error_set(code, "%s: data.pkl byte %zu: %s", v->disp, v->op_at, msg);
}

const char *cks_pkvm_kind_name(const vm *v, uint32_t o)
{
    static const char *const names[] = {"None", "bool", "int",    "float",   "str",   "tuple",
                                        "list", "dict", "global", "storage", "tensor"};
    const pobj *x = &v->objs[o];
    return x->kind == K_DICT && x->sub ? "OrderedDict" : names[x->kind];
}

/* Grows *buf (elements of size elem) to hold need, doubling, never past limit. */
int cks_pkvm_grow(void **buf, size_t *cap, size_t need, size_t elem, size_t limit)
{
    if (need <= *cap)
        return 0;
    if (need > limit)
        return CKS_ELIMIT;
    size_t nc = *cap ? *cap : 16;
    while (nc < need)
        nc *= 2;
    if (nc > limit)
        nc = limit;
    void *nb = realloc(*buf, nc * elem);
    if (!nb)
        return CKS_ENOMEM;
    *buf = nb;
    *cap = nc;
    return 0;
}

int cks_pkvm_grow_err(const vm *v, int code, const char *what, size_t limit)
{
    return code == CKS_ENOMEM
               ? cks_error_set(CKS_ENOMEM, "out of memory")
               : cks_pkvm_fail(v, CKS_ELIMIT, "more than %zu %s (limit)", limit, what);
}

int cks_pkvm_new(vm *v, pkind kind, uint32_t *out)
{
    int rc = cks_pkvm_grow((void **)&v->objs, &v->capobj, v->nobj + 1, sizeof *v->objs,
                           CKS_PK_MAX_OBJECTS);
    if (rc)
        return cks_pkvm_grow_err(v, rc, "objects", CKS_PK_MAX_OBJECTS);
    memset(&v->objs[v->nobj], 0, sizeof *v->objs);
    v->objs[v->nobj].kind = (uint8_t)kind;
    *out = (uint32_t)v->nobj++;
    return 0;
}

int cks_pkvm_push(vm *v, uint32_t o)
{
    int rc = cks_pkvm_grow((void **)&v->stack, &v->capstack, v->sp + 1, sizeof *v->stack,
                           CKS_PK_MAX_STACK);
    if (rc)
        return cks_pkvm_grow_err(v, rc, "values on the stack", CKS_PK_MAX_STACK);
    v->stack[v->sp++] = o;
    return 0;
}

size_t cks_pkvm_mark_base(const vm *v)
{
    return v->nmarks ? v->marks[v->nmarks - 1] : 0;
}

int cks_pkvm_pop(vm *v, uint32_t *o)
{
    if (v->sp <= cks_pkvm_mark_base(v))
        return cks_pkvm_fail(v, CKS_EFORMAT, "stack underflow");
    *o = v->stack[--v->sp];
    return 0;
}

/* The object on top of the stack, which must exist above the current mark. */
int cks_pkvm_top(vm *v, uint32_t *o)
{
    if (v->sp <= cks_pkvm_mark_base(v))
        return cks_pkvm_fail(v, CKS_EFORMAT, "stack underflow");
    *o = v->stack[v->sp - 1];
    return 0;
}

/* Ends the innermost MARK: its items are stack[*base, v->sp). */
static int pop_mark(vm *v, size_t *base)
{
    if (v->nmarks == 0)
        return cks_pkvm_fail(v, CKS_EFORMAT, "no MARK to end");
    *base = v->marks[--v->nmarks];
    return 0;
}

/* Appends k items to container o. */
static int append(vm *v, uint32_t o, const uint32_t *items, size_t k)
{
    if (k > CKS_PK_MAX_ITEMS - v->items)
        return cks_pkvm_fail(v, CKS_ELIMIT, "more than %d container items (limit)",
                             CKS_PK_MAX_ITEMS);
    pobj *x = &v->objs[o];
    size_t cap = x->cap;
    int rc = cks_pkvm_grow((void **)&x->u.items, &cap, (size_t)x->n + k, sizeof *x->u.items,
                           CKS_PK_MAX_ITEMS);
    if (rc)
        return cks_pkvm_grow_err(v, rc, "container items", CKS_PK_MAX_ITEMS);
    x->cap = (uint32_t)cap;
    if (k)
        memcpy(x->u.items + x->n, items, k * sizeof *items);
    x->n += (uint32_t)k;
    v->items += k;
    return 0;
}

/* Replaces stack[base, sp) by one tuple of those items. */
static int make_tuple(vm *v, size_t base)
{
    uint32_t t = 0;
    int err = cks_pkvm_new(v, K_TUPLE, &t);
    if (!err)
        err = append(v, t, v->sp > base ? v->stack + base : NULL, v->sp - base);
    if (err)
        return err;
    v->sp = base;
    return cks_pkvm_push(v, t);
}

static int need(const vm *v, size_t n)
{
    if (v->len - v->pos < n)
        return cks_pkvm_fail(v, CKS_EFORMAT, "truncated: needs %zu more bytes, %zu left", n,
                             v->len - v->pos);
    return 0;
}

static uint64_t le(const unsigned char *p, int n)
{
    uint64_t x = 0;
    for (int i = n - 1; i >= 0; i--)
        x = (x << 8) | p[i];
    return x;
}

/* BINUNICODE and friends: a length of lenbytes bytes, then UTF-8. */
static int op_string(vm *v, int lenbytes)
{
    int err = need(v, (size_t)lenbytes);
    if (err)
        return err;
    uint64_t n = le(v->p + v->pos, lenbytes);
    v->pos += (size_t)lenbytes;
    if (n > CKS_PK_MAX_STRING)
        return cks_pkvm_fail(v, CKS_ELIMIT, "a string of %llu bytes (limit %u)",
                             (unsigned long long)n, CKS_PK_MAX_STRING);
    if ((err = need(v, (size_t)n)) != 0)
        return err;
    if (cks_utf8_check((const char *)v->p + v->pos, (size_t)n) != (size_t)n)
        return cks_pkvm_fail(v, CKS_EFORMAT, "a string that is not valid UTF-8");
    uint32_t o;
    if ((err = cks_pkvm_new(v, K_STR, &o)) != 0)
        return err;
    v->objs[o].u.s.p = (const char *)v->p + v->pos;
    v->objs[o].u.s.len = (uint32_t)n;
    v->pos += (size_t)n;
    return cks_pkvm_push(v, o);
}

static int push_scalar(vm *v, pkind kind, int64_t i, double f)
{
    uint32_t o = 0;
    int err = cks_pkvm_new(v, kind, &o);
    if (err)
        return err;
    if (kind == K_FLOAT)
        v->objs[o].u.f = f;
    else
        v->objs[o].u.i = i;
    return cks_pkvm_push(v, o);
}

/* BININT (signed 4 bytes), BININT1, BININT2 (unsigned), LONG1/LONG4 (two's complement,
 * little-endian, at most 8 bytes here). */
static int op_int(vm *v, int op)
{
    int err;
    size_t n = op == 'J' ? 4 : op == 'K' ? 1 : op == 'M' ? 2 : op == 0x8a ? 1 : 4;
    if ((err = need(v, n)) != 0)
        return err;
    uint64_t x = le(v->p + v->pos, (int)n);
    v->pos += n;
    if (op == 'J')
        return push_scalar(v, K_INT, (int32_t)(uint32_t)x, 0);
    if (op == 'K' || op == 'M')
        return push_scalar(v, K_INT, (int64_t)x, 0);
    if (x > 8) /* LONG1 / LONG4: x is the byte count */
        return cks_pkvm_fail(v, CKS_ELIMIT, "an integer of %llu bytes (at most 8)",
                             (unsigned long long)x);
    if ((err = need(v, (size_t)x)) != 0)
        return err;
    uint64_t u = le(v->p + v->pos, (int)x);
    if (x > 0 && x < 8 && (u >> (8 * x - 1)) & 1)
        u |= ~0ull << (8 * x); /* sign-extend */
    v->pos += (size_t)x;
    int64_t i;
    memcpy(&i, &u, sizeof i);
    return push_scalar(v, K_INT, i, 0);
}

static int op_float(vm *v)
{
    int err = need(v, 8);
    if (err)
        return err;
    uint64_t x = 0;
    for (int k = 0; k < 8; k++) /* big-endian IEEE 754 double */
        x = (x << 8) | v->p[v->pos + k];
    v->pos += 8;
    double f;
    memcpy(&f, &x, sizeof f);
    return push_scalar(v, K_FLOAT, 0, f);
}

static int memo_put(vm *v, uint64_t idx)
{
    uint32_t o = 0;
    int err = cks_pkvm_top(v, &o);
    if (err)
        return err;
    if (idx >= CKS_PK_MAX_MEMO)
        return cks_pkvm_fail(v, CKS_ELIMIT, "memo index %llu (limit %d)", (unsigned long long)idx,
                             CKS_PK_MAX_MEMO);
    size_t old = v->capmemo;
    int rc = cks_pkvm_grow((void **)&v->memo, &v->capmemo, (size_t)idx + 1, sizeof *v->memo,
                           CKS_PK_MAX_MEMO);
    if (rc)
        return cks_pkvm_grow_err(v, rc, "memo slots", CKS_PK_MAX_MEMO);
    for (size_t k = old; k < v->capmemo; k++)
        v->memo[k] = NONE_IDX;
    v->memo[idx] = o;
    if (idx + 1 > v->nmemo)
        v->nmemo = (size_t)idx + 1;
    return 0;
}

static int memo_get(vm *v, uint64_t idx)
{
    if (idx >= v->nmemo || v->memo[idx] == NONE_IDX)
        return cks_pkvm_fail(v, CKS_EFORMAT, "memo reference %llu out of range (%zu slots defined)",
                             (unsigned long long)idx, v->nmemo);
    return cks_pkvm_push(v, v->memo[idx]);
}

/* BINPUT/LONG_BINPUT/MEMOIZE ('q', 'r', 0x94) and BINGET/LONG_BINGET ('h', 'j'). */
static int op_memo(vm *v, int op)
{
    if (op == 0x94)
        return memo_put(v, v->nmemo);
    size_t n = op == 'q' || op == 'h' ? 1 : 4;
    int err = need(v, n);
    if (err)
        return err;
    uint64_t idx = le(v->p + v->pos, (int)n);
    v->pos += n;
    return op == 'q' || op == 'r' ? memo_put(v, idx) : memo_get(v, idx);
}

/* SETITEM(S) / APPEND(S): add the items to the dict or list below them. */
static int op_add(vm *v, int op)
{
    size_t base = 0;
    uint32_t c = 0, pair[2] = {0, 0};
    int err, dict = op == 's' || op == 'u';
    if (op == 's') {
        if ((err = cks_pkvm_pop(v, &pair[1])) != 0 || (err = cks_pkvm_pop(v, &pair[0])) != 0)
            return err;
    } else if (op == 'a') {
        if ((err = cks_pkvm_pop(v, &pair[0])) != 0)
            return err;
    } else if ((err = pop_mark(v, &base)) != 0) {
        return err;
    }
    if (op == 's' || op == 'a') {
        if ((err = cks_pkvm_top(v, &c)) != 0)
            return err;
    } else if (base <= cks_pkvm_mark_base(v)) { /* the container sits just below the MARK */
        return cks_pkvm_fail(v, CKS_EFORMAT, "stack underflow");
    } else {
        c = v->stack[base - 1];
    }
    if (v->objs[c].kind != (dict ? K_DICT : K_LIST))
        return cks_pkvm_fail(v, CKS_EFORMAT, "%s on a %s", dict ? "SETITEM" : "APPEND",
                             cks_pkvm_kind_name(v, c));
    if (op == 's' || op == 'a')
        return append(v, c, pair, op == 's' ? 2 : 1);
    size_t k = v->sp - base;
    if (dict && k % 2)
        return cks_pkvm_fail(v, CKS_EFORMAT, "SETITEMS with an odd number of items");
    err = append(v, c, v->stack + base, k);
    v->sp = base;
    return err;
}

static int op_mark(vm *v)
{
    if (v->nmarks == CKS_PK_MAX_DEPTH)
        return cks_pkvm_fail(v, CKS_ELIMIT, "MARKs nested deeper than %d", CKS_PK_MAX_DEPTH);
    v->marks[v->nmarks++] = v->sp;
    return 0;
}

/* TUPLE (items since MARK), TUPLE1..3, EMPTY_TUPLE. */
static int op_tuple(vm *v, int op)
{
    size_t base = 0;
    if (op == 't') {
        int err = pop_mark(v, &base);
        return err ? err : make_tuple(v, base);
    }
    size_t k = op == ')' ? 0 : (size_t)(op - 0x85 + 1);
    if (v->sp - cks_pkvm_mark_base(v) < k)
        return cks_pkvm_fail(v, CKS_EFORMAT, "stack underflow");
    return make_tuple(v, v->sp - k);
}

static int op_new(vm *v, pkind kind)
{
    uint32_t o;
    int err = cks_pkvm_new(v, kind, &o);
    return err ? err : cks_pkvm_push(v, o);
}

static int op_proto_frame(vm *v, int op)
{
    int err = need(v, op == 0x80 ? 1 : 8);
    if (err)
        return err;
    if (op == 0x80) {
        if (v->p[v->pos] > 5)
            return cks_pkvm_fail(v, CKS_EUNSUPPORTED, "pickle protocol %d", v->p[v->pos]);
        v->pos++;
        return 0;
    }
    uint64_t n = le(v->p + v->pos, 8); /* FRAME: a length hint; its opcodes follow inline */
    v->pos += 8;
    return n > v->len - v->pos ? cks_pkvm_fail(v, CKS_EFORMAT, "a frame past the end") : 0;
}

/* One opcode; returns 1 at STOP. */
static int step(vm *v, int op)
{
    switch (op) {
    case 0x80:
    case 0x95:
        return op_proto_frame(v, op);
    case '.':
        return 1;
    case '(':
        return op_mark(v);
    case '}':
        return op_new(v, K_DICT);
    case ']':
        return op_new(v, K_LIST);
    case ')':
    case 't':
    case 0x85:
    case 0x86:
    case 0x87:
        return op_tuple(v, op);
    case 'X':
        return op_string(v, 4);
    case 0x8c:
        return op_string(v, 1);
    case 0x8d:
        return op_string(v, 8);
    case 'J':
    case 'K':
    case 'M':
    case 0x8a:
    case 0x8b:
        return op_int(v, op);
    case 'G':
        return op_float(v);
    case 0x88:
    case 0x89:
        return push_scalar(v, K_BOOL, op == 0x88, 0);
    case 'N':
        return op_new(v, K_NONE);
    case 'q':
    case 'r':
    case 0x94:
    case 'h':
    case 'j':
        return op_memo(v, op);
    case 'c':
        return cks_pkvm_op_global(v);
    case 0x93:
        return cks_pkvm_op_stack_global(v);
    case 'R':
        return cks_pkvm_op_reduce(v);
    case 'b':
        return cks_pkvm_op_build(v);
    case 's':
    case 'u':
    case 'a':
    case 'e':
        return op_add(v, op);
    case 'Q':
        return cks_pkvm_op_persid(v);
    default:
        return cks_pkvm_fail(
            v, CKS_EUNSUPPORTED, "opcode 0x%02x%s%c%s is not accepted in a state dict", op,
            op >= 0x20 && op < 0x7f ? " ('" : "", op >= 0x20 && op < 0x7f ? op : ' ',
            op >= 0x20 && op < 0x7f ? "')" : "");
    }
}

static void vm_release(vm *v)
{
    for (size_t i = 0; i < v->nobj; i++)
        if (v->objs[i].kind == K_TUPLE || v->objs[i].kind == K_LIST || v->objs[i].kind == K_DICT)
            free(v->objs[i].u.items);
    free(v->objs);
    free(v->stack);
    free(v->memo);
    free(v->st);
    free(v->tn);
}

void cks_pk_state_dict_release(cks_pk_state_dict *sd)
{
    if (!sd)
        return;
    free(sd->items);
    free(sd->strings);
    memset(sd, 0, sizeof *sd);
}

int cks_pickle_state_dict(const unsigned char *p, size_t len, const char *display,
                          cks_pk_state_dict *out)
{
    vm v = {.p = p, .len = len, .disp = display};
    int rc = 0;
    if (len > CKS_PK_MAX_BYTES)
        return cks_error_set(CKS_ELIMIT, "%s: data.pkl has %zu bytes (limit %u)", display, len,
                             CKS_PK_MAX_BYTES);
    while (rc == 0) {
        v.op_at = v.pos;
        if (v.pos >= v.len) {
            rc = cks_pkvm_fail(&v, CKS_EFORMAT, "truncated: the pickle ends without STOP");
            break;
        }
        rc = step(&v, v.p[v.pos++]);
    }
    if (rc == 1) {
        if (v.nmarks != 0 || v.sp != 1)
            rc = cks_pkvm_fail(&v, CKS_EFORMAT,
                               "STOP with %zu values on the stack and %d open MARKs", v.sp,
                               v.nmarks);
        else if (v.pos != v.len)
            rc = cks_pkvm_fail(&v, CKS_EFORMAT, "%zu bytes after STOP", v.len - v.pos);
        else
            rc = cks_pkvm_extract(&v, out);
    }
    vm_release(&v);
    return rc;
}
