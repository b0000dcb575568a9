/* Tensor views and the tensor-name mapper.
 *
 * A view describes one tensor stored row-major in a mapped file: it borrows its name and
 * its bytes from whoever produced it (a cks_tensor_list, whose files must stay mapped
 * while the view is used). Format readers (safetensors.h, torchbin.h) fill a
 * cks_tensor_list; metric code reads views and widens blocks.
 *
 * Most views are contiguous. A *row-block view* (GPT-NeoX's fused query_key_value seen as
 * its q, k and v, DESIGN §2) takes block_rows consecutive rows every block_stride rows of
 * the stored tensor: its bytes are cks_tensor_nseg() separate runs. Code that walks the
 * bytes itself goes through cks_tensor_seg(), or makes a contiguous copy of the one
 * tensor with cks_tensor_gather(). */
#ifndef CKS_TENSOR_H
#define CKS_TENSOR_H

#include "dtype.h"

#include <stddef.h>
#include <stdint.h>

#define CKS_MAX_DIMS 8

typedef enum {
    CKS_KIND_Q = 0,
    CKS_KIND_K,
    CKS_KIND_V,
    CKS_KIND_O,
    CKS_KIND_GATE,
    CKS_KIND_UP,
    CKS_KIND_DOWN,
    CKS_KIND_ATTN_NORM,
    CKS_KIND_MLP_NORM,
    CKS_KIND_Q_NORM,
    CKS_KIND_K_NORM,
    CKS_KIND_EMBED,
    CKS_KIND_FINAL_NORM,
    CKS_KIND_LM_HEAD,
    CKS_KIND_OTHER,
    /* the bias of each weight kind above, in the same order ("q_bias", ...) */
    CKS_KIND_Q_BIAS,
    CKS_KIND_K_BIAS,
    CKS_KIND_V_BIAS,
    CKS_KIND_O_BIAS,
    CKS_KIND_GATE_BIAS,
    CKS_KIND_UP_BIAS,
    CKS_KIND_DOWN_BIAS,
    CKS_KIND_ATTN_NORM_BIAS,
    CKS_KIND_MLP_NORM_BIAS,
    CKS_KIND_Q_NORM_BIAS,
    CKS_KIND_K_NORM_BIAS,
    CKS_KIND_EMBED_BIAS,
    CKS_KIND_FINAL_NORM_BIAS,
    CKS_KIND_LM_HEAD_BIAS,
    CKS_KIND_BIAS_LAST = CKS_KIND_LM_HEAD_BIAS,
    CKS_KIND_COUNT
} cks_kind;

typedef struct {
    const char *name; /* borrowed from the list's string storage */
    cks_dtype dtype;
    int ndim; /* 0..CKS_MAX_DIMS; a 0-d tensor has numel 1 */
    int64_t shape[CKS_MAX_DIMS];
    int64_t numel;    /* product of shape, checked */
    const void *data; /* first byte, inside a mapping; may be unaligned */
    size_t nbytes;    /* numel * dtype size */
    int layer;        /* from the name, -1 when none */
    cks_kind kind;    /* from the name */
    int file;         /* index of the file holding it, in its producer's file table */
    /* row-block view: shape[0] rows made of blocks of block_rows rows, the first at data,
       the next block_stride rows further; 0 for a contiguous tensor */
    int64_t block_rows, block_stride;
} cks_tensor;

/* A growable list of views with owned names. Readers append; consumers index. */
typedef struct {
    cks_tensor *items;
    size_t count, cap;
    char **names;     /* owned copies (their order is not items' order) */
    size_t *by_name;  /* indices of items sorted by name (cks_tensor_list_index), or NULL */
    size_t n_indexed; /* count when by_name was built: pushing more makes it stale */
} cks_tensor_list;

void cks_tensor_list_init(cks_tensor_list *l);
void cks_tensor_list_release(cks_tensor_list *l);
/* Appends a copy of *t, duplicating t->name; fills layer and kind from the name.
 * Returns CKS_ENOMEM or 0. */
int cks_tensor_list_push(cks_tensor_list *l, const cks_tensor *t);
/* Index of the tensor with this name, or -1: a binary search once the list is indexed
 * (and nothing was pushed since), a linear scan otherwise. A checkpoint may hold a
 * million tensors (CKS_MAX_TENSORS): code that looks up every tensor of one list in
 * another must index it, or it is quadratic. */
long cks_tensor_list_find(const cks_tensor_list *l, const char *name);
/* Builds the name index that cks_tensor_list_find uses (names must be unique). CKS_ENOMEM
 * or 0. */
int cks_tensor_list_index(cks_tensor_list *l);
/* Sorts by (layer, kind, name) with non-layer tensors (-1) first: the natural reading
 * order embed, layers 0..L-1, norm, lm_head ... An index is rebuilt for the new order. */
void cks_tensor_list_sort(cks_tensor_list *l);

/* Sets *numel to the product of shape[0..ndim) and checks it times the dtype size
 * equals nbytes. Returns 0, or CKS_EFORMAT (no message: the caller names the file). */
int cks_tensor_check_extent(cks_dtype dt, int ndim, const int64_t *shape, size_t nbytes,
                            int64_t *numel);

/* Maps a Hugging Face LLaMA tensor name to its layer (or -1) and kind (the llama row of
 * model_family.h; cks_model_family_classify maps the names of any family). */
void cks_tensor_classify(const char *name, int *layer, cks_kind *kind);
/* "q", ..., "other", "q_bias", ... */
const char *cks_kind_name(cks_kind k);
/* Reverse of cks_kind_name; CKS_ENOTFOUND when unknown. */
int cks_kind_from_name(const char *s, cks_kind *out);
/* The bias kind of a weight kind (k < CKS_KIND_OTHER), and back. */
cks_kind cks_kind_bias(cks_kind k);
int cks_kind_is_bias(cks_kind k);
cks_kind cks_kind_weight(cks_kind bias);

/* 1 for an ordinary contiguous view, 0 for a row-block view. */
int cks_tensor_is_contiguous(const cks_tensor *t);
/* Contiguous runs of a view's stored bytes, in element order: 1 for a contiguous view,
 * one per block otherwise. Run i starts at the returned pointer and holds *nelem
 * elements. */
int64_t cks_tensor_nseg(const cks_tensor *t);
const void *cks_tensor_seg(const cks_tensor *t, int64_t i, size_t *nelem);
/* The stored bytes a view's runs lie in (first byte of the first run to the last byte of
 * the last), for page hints. */
void cks_tensor_span(const cks_tensor *t, const void **p, size_t *len);
/* A contiguous copy of t in *out: for a contiguous t, *out = *t and *owned = NULL; for a
 * row-block view, its runs copied into a new buffer (*owned, free it after the last use
 * of *out). CKS_ENOMEM when the copy does not fit. */
int cks_tensor_gather(const cks_tensor *t, cks_tensor *out, void **owned);

/* "64x160" (or "scalar") into buf; returns buf. */
const char *cks_tensor_shape_str(const cks_tensor *t, char *buf, size_t cap);

/* 1 when the tensor is a 2-D float matrix (spectral statistics apply). */
int cks_tensor_is_matrix(const cks_tensor *t);

#endif
