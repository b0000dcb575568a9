/* Private to the unpickler (pickle.c, the machine; pickle_torch.c, the whitelist and
 * what its callables build): the object pool, the stacks and the shared helpers. */
#ifndef CKS_PICKLE_VM_H
#define CKS_PICKLE_VM_H

#include "pickle.h"

#include <stddef.h>
#include <stdint.h>

typedef enum {
    K_NONE,
    K_BOOL,
    K_INT,
    K_FLOAT,
    K_STR,
    K_TUPLE,
    K_LIST,
    K_DICT,
    K_GLOBAL,
    K_STORAGE,
    K_TENSOR
} pkind;

#define NONE_IDX UINT32_MAX

typedef struct {
    uint8_t kind;
    uint8_t sub;     /* K_DICT: 1 for OrderedDict; K_GLOBAL: row of the whitelist */
    uint32_t n, cap; /* containers: items used / allocated (a dict: key, value, ...) */
    union {
        int64_t i; /* K_INT, K_BOOL */
        double f;
        struct {
            const char *p; /* borrowed from the input */
            uint32_t len;
        } s;
        uint32_t *items;
        uint32_t rec; /* K_STORAGE, K_TENSOR: index into their records */
    } u;
} pobj;

typedef struct {
    const char *key;
    uint32_t keylen;
    cks_dtype dtype;
    int64_t numel;
} pstorage;

typedef struct {
    uint32_t storage;
    cks_dtype dtype;
    int64_t offset;
    int ndim;
    int64_t shape[CKS_MAX_DIMS], stride[CKS_MAX_DIMS];
} ptensor;

/* The machine. Every array grows by doubling up to its CKS_PK_MAX_* limit. */
typedef struct {
    const unsigned char *p; /* the pickle: len bytes, read at pos */
    size_t len, pos, op_at; /* op_at: offset of the current opcode, for messages */
    const char *disp;       /* the file, for messages */
    pobj *objs;             /* the object pool */
    size_t nobj, capobj;
    uint32_t *stack; /* object indices */
    size_t sp, capstack;
    size_t marks[CKS_PK_MAX_DEPTH]; /* stack heights at each open MARK */
    int nmarks;
    uint32_t *memo; /* object indices, NONE_IDX when unset */
    size_t nmemo, capmemo;
    pstorage *st; /* one per BINPERSID */
    size_t nst, capst;
    ptensor *tn; /* one per tensor rebuilt */
    size_t ntn, captn;
    size_t items; /* items in all containers, against CKS_PK_MAX_ITEMS */
} vm;

/* Sets the message "<file>: data.pkl byte <opcode offset>: <text>" and returns code. */
int cks_pkvm_fail(const vm *v, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* "None", "int", "OrderedDict", ... for messages. */
const char *cks_pkvm_kind_name(const vm *v, uint32_t o);
/* Grows *buf (elements of size elem) to hold need, doubling, never past limit: 0,
 * CKS_ELIMIT or CKS_ENOMEM, no message (cks_pkvm_grow_err sets it). */
int cks_pkvm_grow(void **buf, size_t *cap, size_t need, size_t elem, size_t limit);
int cks_pkvm_grow_err(const vm *v, int code, const char *what, size_t limit);
/* A new object of kind in the pool; its index in *out. Indices stay valid, pointers
 * into v->objs do not survive this call. */
int cks_pkvm_new(vm *v, pkind kind, uint32_t *out);
int cks_pkvm_push(vm *v, uint32_t o);
/* Stack height at the innermost MARK (0 when none). */
size_t cks_pkvm_mark_base(const vm *v);
/* Pop / peek above the innermost MARK; "stack underflow" otherwise. */
int cks_pkvm_pop(vm *v, uint32_t *o);
int cks_pkvm_top(vm *v, uint32_t *o);

/* pickle_torch.c: the opcodes that name or call globals, and the result. */
int cks_pkvm_op_global(vm *v);
int cks_pkvm_op_stack_global(vm *v);
int cks_pkvm_op_persid(vm *v);
int cks_pkvm_op_reduce(vm *v);
int cks_pkvm_op_build(vm *v);
int cks_pkvm_extract(vm *v, cks_pk_state_dict *out);

#endif
