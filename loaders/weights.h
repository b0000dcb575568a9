/* The weights of one checkpoint: which files hold them (format detection from file
 * names), and all their tensors as views into mapped files.
 *
 * Detection, first match wins: model.safetensors.index.json (sharded safetensors),
 * model.safetensors, pytorch_model.bin.index.json (sharded PyTorch), pytorch_model.bin.
 * With an index, every shard it names must exist in the checkpoint, and each tensor it
 * lists must be found in the shard it names; a tensor in two files is an error.
 *
 * Tensors are named by the checkpoint's family (config.json's model_type, model_family.h; LLaMA
 * names when it is unknown or there is no config.json). A family's buffers (GPT-NeoX's
 * attention.bias, attention.masked_bias, rotary_emb.inv_freq in older Pythia files) are
 * not weights: they are kept apart (cks_weights_buffers), so every metric skips them. A
 * fused per-head [q|k|v] projection is replaced by its three row-block views
 * "<name>:q", "<name>:k", "<name>:v" (tensor.h), split with config.json's
 * num_attention_heads: one whose rows are not heads x 3 x head size is refused. */
#ifndef CKS_WEIGHTS_H
#define CKS_WEIGHTS_H

#include "map.h"
#include "source.h"
#include "tensor.h"

#define CKS_MAX_INDEX_BYTES (64u << 20) /* a shard index json; K2's is ~70 KiB */

typedef enum { CKS_FORMAT_NONE = 0, CKS_FORMAT_SAFETENSORS, CKS_FORMAT_PYTORCH } cks_format;

/* "safetensors", "pytorch", or NULL for NONE. */
const char *cks_format_name(cks_format f);

typedef struct {
    cks_format format;
    char **files; /* weight files, relative paths, sorted */
    size_t nfiles;
    char *index; /* the index file's path, or NULL */
} cks_weight_files;

/* The format a checkpoint's file names announce, without reading anything. */
cks_format cks_weight_format_detect(const cks_ckpt *c);

/* Finds the weight files of a checkpoint by name. CKS_ENOTFOUND (with a message) when
 * there are none. Reads the index json when there is one (its shards must be listed in
 * the checkpoint). */
int cks_weight_files_find(const cks_ckpt *c, cks_weight_files *out);
void cks_weight_files_release(cks_weight_files *wf);

typedef struct cks_weights cks_weights;

/* Maps every weight file and parses it. The views live until cks_weights_free. Tensors
 * are sorted in reading order (cks_tensor_list_sort). */
int cks_weights_open(cks_weights **out, const cks_ckpt *c);
void cks_weights_free(cks_weights *w);

cks_format cks_weights_format(const cks_weights *w);
const cks_tensor_list *cks_weights_tensors(const cks_weights *w);
/* The family's buffers found in the files (kind other; no metric applies). */
const cks_tensor_list *cks_weights_buffers(const cks_weights *w);
/* The family its config.json names, or NULL (unknown, absent or unreadable). */
const cks_model_family *cks_weights_family(const cks_weights *w);
/* 0, or CKS_EIO naming the file when one of the weight files faulted while being read
 * (see cks_map_check): call it after computing from the views, before trusting results. */
int cks_weights_check(const cks_weights *w);

/* The mapped file a tensor lives in (t->file), e.g. for cks_map_dontneed. */
const cks_map *cks_weights_file(const cks_weights *w, int file);

#endif
