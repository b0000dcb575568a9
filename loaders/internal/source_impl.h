/* Private contract between source.c / ckpt.c and the three source backends. */
#ifndef CKS_SOURCE_IMPL_H
#define CKS_SOURCE_IMPL_H

#include "source.h"

typedef struct {
    cks_file_info *items;
    size_t count, cap;
} cks_file_vec;

struct cks_source_ops {
    /* Appends the files of checkpoint idx to out (unsorted). */
    int (*list_files)(const cks_source *s, size_t idx, cks_file_vec *out);
    /* Maps one file that list_files produced (present == 1). */
    int (*map_file)(const cks_source *s, size_t idx, const cks_file_info *f, cks_map **out);
    /* The command that fetches a missing file. */
    const char *(*fetch_hint)(const cks_source *s, size_t idx, const char *path, char *buf,
                              size_t cap);
    void (*free_impl)(void *impl);
};

/* Fetching ahead (source.h), for sources that download (hf-hub). */
struct cks_fetch_ops {
    int (*prefetch)(cks_source *s, size_t idx);
    int (*wait)(cks_source *s, size_t idx);
    int (*evict)(cks_source *s, const size_t *keep, size_t nkeep, uint64_t *freed);
    void (*set_progress)(cks_source *s, cks_fetch_progress_fn fn, void *ctx);
    int (*set_threads)(cks_source *s, int n);
    int (*claim)(cks_source *s, int exclusive);
    void (*set_interrupt)(cks_source *s, const volatile sig_atomic_t *flag);
};

struct cks_source {
    cks_source_kind kind;
    char *path;
    char *glob;
    cks_ckpt_info *ckpts;
    size_t count, cap;
    const struct cks_source_ops *ops;
    const struct cks_fetch_ops *fetch; /* NULL: the files are on disk already */
    void *impl;
};

/* Backends: each returns 1 in *recognised when path is its kind; then 0 or an error.
 * They fill s->ckpts through cks_source_add (unsorted, unfiltered names are fine: the
 * glob is applied by cks_source_add) and set ops/impl. */
int cks_source_git_open(cks_source *s, int *recognised);
int cks_source_hf_open(cks_source *s, int *recognised);
int cks_source_folder_open(cks_source *s, int *recognised);
/* hf://ORG/NAME (recognised by the prefix; s->path is not a file system path). */
int cks_source_hub_open(cks_source *s, int *recognised);
/* The hf-cache backend on a given folder (HF_HUB_OFFLINE reads the hub's cache so). */
int cks_source_hf_open_dir(cks_source *s, const char *dir);

/* Adds a checkpoint if name matches s->glob (returns 0 and does nothing otherwise);
 * records non-matching names in *skipped (a few, for the error message). */
int cks_source_add(cks_source *s, const char *name, const char *commit, const char *remote);

int cks_file_vec_push(cks_file_vec *v, const char *path, uint64_t size, int lfs, int present,
                      const char *lfs_oid, const char *locator);
void cks_file_vec_release(cks_file_vec *v);

/* Recursive folder walk used by the hf-cache and folder backends: calls fn for every
 * non-directory entry under root (relative path, absolute path). Bounded by
 * CKS_MAX_TREE_DEPTH and CKS_MAX_FILES. */
int cks_walk_dir(const char *root, int (*fn)(void *ctx, const char *rel, const char *abs),
                 void *ctx);

#endif
