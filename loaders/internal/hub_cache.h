/* The Hugging Face hub cache, written as huggingface_hub writes it, so that transformers
 * and the hf-cache source read what the hub source fetched (and the other way round):
 *
 *   <HF_HUB_CACHE>/models--ORG--NAME/blobs/<sha256 or git blob id>     the content
 *                                    blobs/<name>.incomplete            a download
 *                                    snapshots/<commit>/<path>          relative symlink
 *                                                                       ../../blobs/<name>
 *                                    refs/<branch>                      the commit (text)
 *   <HF_HUB_CACHE>/.locks/models--ORG--NAME/<name>.lock                 flock(2) while a
 *                                                                       blob is fetched
 *   <HF_HUB_CACHE>/.locks/models--ORG--NAME/ckptscope-scan.lock         flock(2), shared by
 *                                                                       scans, exclusive
 *                                                                       by one that evicts
 *
 * Nothing is written outside these two folders: a folder on the way that is a symlink or
 * a file is refused, and an existing snapshot entry that resolves outside the repository
 * folder is refused, not followed. Names (blob, commit, branch, path) must have been
 * checked by hub_api.c before they get here. */
#ifndef CKS_HUB_CACHE_H
#define CKS_HUB_CACHE_H

#include <stddef.h>

typedef struct {
    char *dir;   /* <hub>/models--ORG--NAME */
    char *locks; /* <hub>/.locks/models--ORG--NAME */
} cks_hub_cache;

/* Names the folders; no I/O. repo is "ORG/NAME" (checked). */
int cks_hub_cache_init(cks_hub_cache *c, const char *hub, const char *repo);
void cks_hub_cache_release(cks_hub_cache *c);

/* Creates the repository folder with blobs/, snapshots/, refs/ and the lock folder. */
int cks_hub_cache_create(const cks_hub_cache *c);

/* snapshots/<commit>/<path>: *found = 1 and its resolved path in buf when it is a
 * regular file inside the repository folder; 0 when absent or a dangling link;
 * CKS_EFORMAT when it resolves outside the repository folder or is not a file. */
int cks_hub_cache_lookup(const cks_hub_cache *c, const char *commit, const char *path, char *buf,
                         size_t cap, int *found);

/* blobs/<blob><suffix> into buf. */
int cks_hub_cache_blob_path(const cks_hub_cache *c, const char *blob, const char *suffix, char *buf,
                            size_t cap);

/* Makes snapshots/<commit>/<path> a relative symlink to blobs/<blob> (replacing a dangling
 * one). *created = 1 when this call made it. */
int cks_hub_cache_link(const cks_hub_cache *c, const char *commit, const char *path,
                       const char *blob, int *created);

/* Removes snapshots/<commit>/<path> when it is still the symlink to blobs/<blob>, then
 * the folders above it that became empty (up to snapshots/). Best effort. */
void cks_hub_cache_unlink(const cks_hub_cache *c, const char *commit, const char *path,
                          const char *blob);

/* Writes refs/<branch> = commit (atomically, by rename) unless it already says so. */
int cks_hub_cache_write_ref(const cks_hub_cache *c, const char *branch, const char *commit);

/* Takes the lock of one blob (blocks while another process holds it); *fd to close. */
int cks_hub_cache_lock(const cks_hub_cache *c, const char *blob, int *fd);

/* Creates the cache folders and takes the scan lock, shared or exclusive, without
 * waiting: CKS_EEXISTS naming the cache folder when another process holds it in a way
 * that conflicts. *fd to close (which releases it). */
int cks_hub_cache_claim(const cks_hub_cache *c, int exclusive, int *fd);

#endif
