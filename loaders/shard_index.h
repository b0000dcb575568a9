/* Shard index files: model.safetensors.index.json and pytorch_model.bin.index.json share
 * one layout, {"metadata": {...}, "weight_map": {"<tensor>": "<shard file>", ...}}.
 * Checks: weight_map is an object of strings; every shard name is a safe relative path
 * (no "..", not absolute: cks_path_check_relative); at most CKS_MAX_TENSORS entries. */
#ifndef CKS_SHARD_INDEX_H
#define CKS_SHARD_INDEX_H

#include <stddef.h>

typedef struct {
    char **files; /* distinct shard names, sorted */
    size_t nfiles;
    char **tensors;  /* tensor names, in file order */
    size_t *file_of; /* index into files for each tensor */
    size_t ntensors;
} cks_shard_index;

int cks_shard_index_parse(const char *text, size_t len, const char *display, cks_shard_index *out);
void cks_shard_index_release(cks_shard_index *ix);

#endif
