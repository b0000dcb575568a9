/* A restricted unpickler for the data.pkl of torch.save checkpoints: it understands a
 * state dict (name -> tensor) and nothing else. Nothing in the file is ever executed or
 * imported; globals are looked up in a fixed table and only interpreted.
 *
 * Input: a pickle (protocol 2 as torch.save writes it; the protocol 4 opcodes FRAME,
 * MEMOIZE, STACK_GLOBAL and BINUNICODE8 are accepted too). Opcodes accepted:
 *   PROTO FRAME STOP MARK  EMPTY_DICT EMPTY_LIST EMPTY_TUPLE TUPLE TUPLE1 TUPLE2 TUPLE3
 *   BINUNICODE SHORT_BINUNICODE BINUNICODE8  BININT BININT1 BININT2 LONG1 LONG4 (<= 8
 *   bytes)  BINFLOAT NEWTRUE NEWFALSE NONE  BINPUT LONG_BINPUT MEMOIZE BINGET LONG_BINGET
 *   GLOBAL STACK_GLOBAL REDUCE BUILD SETITEM SETITEMS APPEND APPENDS BINPERSID
 * Globals accepted (anything else is refused, naming it):
 *   collections.OrderedDict                      REDUCE with () makes an empty dict
 *   torch._utils._rebuild_tensor(storage, offset, size, stride)
 *   torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad,
 *                                   backward_hooks[, metadata])
 *   torch._utils._rebuild_tensor_v3(storage, offset, size, stride, requires_grad,
 *                                   backward_hooks, dtype[, metadata])  (torch >= 2.1, for
 *                                   float8 and uint16/32/64: storage untyped, dtype given)
 *   torch._utils._rebuild_parameter(tensor, requires_grad, backward_hooks)
 *   torch.{Float,Half,BFloat16,Double,Long,Int,Short,Char,Byte,Bool}Storage,
 *   torch[.storage].UntypedStorage               storage types in persistent ids only
 *   torch.<dtype> (float32, float16, bfloat16, ...)  dtype arguments of v3 only
 * Persistent ids (BINPERSID) must be ('storage', <storage type>, key, location, numel).
 * BUILD is accepted only on an OrderedDict with a None or dict state (a module's
 * state_dict() carries its _metadata that way) and the state is dropped. Backward
 * hooks must be empty; v2/v3 metadata must be None or empty (it would carry conj/neg
 * bits that change the values).
 *
 * Checks made: every length against the bytes left; strings valid UTF-8 of at most
 * CKS_PK_MAX_STRING bytes; integers fit int64; memo indices below CKS_PK_MAX_MEMO and
 * defined when read; the stack at most CKS_PK_MAX_STACK deep and MARKs nested at most
 * CKS_PK_MAX_DEPTH; at most CKS_PK_MAX_OBJECTS objects and CKS_PK_MAX_ITEMS container
 * items; every opcode's operands of the right kind; at STOP exactly one object, a
 * dict, remains and no byte follows. The result is a dict of string keys (non-empty,
 * no NUL) to tensors; shape and stride of at most CKS_MAX_DIMS non-negative entries.
 * The interpreter is a loop over opcodes with explicit stacks: no recursion, and work
 * linear in the input. Geometry against the archive (contiguity, extent, storage
 * entries) is checked by the caller (torchbin.h). */
#ifndef CKS_PICKLE_H
#define CKS_PICKLE_H

#include "dtype.h"
#include "tensor.h"

#include <stddef.h>
#include <stdint.h>

#define CKS_PK_MAX_BYTES   (256u << 20) /* data.pkl size; real ones are kilobytes */
#define CKS_PK_MAX_STRING  (1u << 20)   /* bytes per string */
#define CKS_PK_MAX_STACK   (1 << 16)    /* torch batches SETITEMS by 1000 pairs */
#define CKS_PK_MAX_DEPTH   64           /* nested MARKs; a state dict needs 4 */
#define CKS_PK_MAX_MEMO    (1 << 22)    /* memo slots (~15 per tensor) */
#define CKS_PK_MAX_OBJECTS (1 << 22)
#define CKS_PK_MAX_ITEMS   (1 << 23) /* items in all tuples, lists and dicts */

/* One entry of the state dict. Strings are owned by the cks_pk_state_dict. */
typedef struct {
    const char *name;        /* the state dict key */
    const char *key;         /* storage key: the bytes are in "<archive>/data/<key>" */
    cks_dtype storage_dtype; /* element type of the storage (U8 for untyped storages) */
    int64_t storage_numel;   /* elements of storage_dtype the persistent id declares */
    cks_dtype dtype;         /* element type of the tensor */
    int64_t offset;          /* storage offset, in elements of dtype */
    int ndim;
    int64_t shape[CKS_MAX_DIMS];
    int64_t stride[CKS_MAX_DIMS]; /* in elements */
} cks_pk_tensor;

typedef struct {
    cks_pk_tensor *items; /* in the order the pickle lists them */
    size_t count;
    char *strings; /* storage for names and keys */
} cks_pk_state_dict;

/* Unpickles a state dict from len bytes at p. display names the file in messages
 * ("<file>: data.pkl byte N: ..."). On error *out is untouched. */
int cks_pickle_state_dict(const unsigned char *p, size_t len, const char *display,
                          cks_pk_state_dict *out);
void cks_pk_state_dict_release(cks_pk_state_dict *sd);

#endif
