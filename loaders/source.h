/* Checkpoint sources (DESIGN §2) and the files of one checkpoint.
 *
 * A source is opened from a path and detected as one of:
 *   git       a repository (bare or not); checkpoints are local and remote-tracking
 *             branches whose short name (remote prefix removed) matches the glob,
 *             deduplicated by name (a local branch wins over a remote one). Files are read
 *             from each branch's tree through libgit2: nothing is checked out and nothing
 *             in the repository is written. Git LFS pointer blobs are resolved to
 *             <commondir>/lfs/objects/<h[0:2]>/<h[2:4]>/<h> and memory-mapped.
 *   hf-cache  a Hugging Face hub cache folder models--ORG--NAME: refs/<ref> files hold
 *             commit ids, snapshots/<commit>/ holds symlinks into blobs/ (which must
 *             resolve inside the cache folder).
 *   folder    a plain folder whose subfolders matching the glob are checkpoints; a folder
 *             with no matching subfolder but weights or config.json of its own is a
 *             single checkpoint named after it.
 *   hf-hub    hf://ORG/NAME, the Hugging Face hub itself: checkpoints are the branches of
 *             the refs API, a checkpoint's files those of the tree API at its commit
 *             (listing downloads nothing). A file's content is fetched into the hub cache
 *             (huggingface_hub's layout, hub_cache.h) when it is first mapped, or ahead of
 *             use with cks_source_prefetch; a file already in the cache is used as is.
 *             Environment: HF_ENDPOINT, HF_TOKEN (else HF_TOKEN_PATH, else
 *             $HF_HOME/token), HF_HOME, HF_HUB_CACHE, HF_HUB_OFFLINE=1 (the repository's
 *             cache folder is then read as an hf-cache), HF_HUB_DOWNLOAD_TIMEOUT (seconds
 *             to connect, and without a byte, before a try is abandoned; default 10).
 * Checkpoints are ordered by step (cks_name_step below), equal steps by name. */
#ifndef CKS_SOURCE_H
#define CKS_SOURCE_H

#include "config.h"
#include "map.h"

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#define CKS_DEFAULT_GLOB    "ckpt_*"
#define CKS_MAX_CHECKPOINTS 100000 /* branches / refs / folders per source */
#define CKS_MAX_FILES       100000 /* files per checkpoint */
#define CKS_MAX_TREE_DEPTH  16     /* folder nesting inside a checkpoint */

typedef enum {
    CKS_SOURCE_GIT,
    CKS_SOURCE_HF_CACHE,
    CKS_SOURCE_FOLDER,
    CKS_SOURCE_HF_HUB
} cks_source_kind;

typedef struct cks_source cks_source;

typedef struct {
    const char *name;   /* branch / ref / folder name */
    int64_t step;       /* last run of digits in name, -1 when none */
    const char *commit; /* hex commit id; NULL for plain folders */
    const char *remote; /* git: remote of a remote-tracking branch, NULL for local */
} cks_ckpt_info;

/* Opens and detects a source. glob NULL means CKS_DEFAULT_GLOB. A source with no
 * checkpoint matching the glob is an error (CKS_ENOTFOUND) that lists what exists. */
int cks_source_open(cks_source **out, const char *path, const char *glob);
void cks_source_free(cks_source *s);

cks_source_kind cks_source_kind_of(const cks_source *s);
const char *cks_source_kind_name(cks_source_kind k); /* "git", "hf-cache", "folder", "hf-hub" */
const char *cks_source_path(const cks_source *s);
size_t cks_source_count(const cks_source *s);
/* Borrowed; lives as long as the source. i < count. */
const cks_ckpt_info *cks_source_ckpt(const cks_source *s, size_t i);
/* Finds a checkpoint by name; CKS_ENOTFOUND naming the source and the nearest names. */
int cks_source_find(const cks_source *s, const char *name, size_t *out);

/* Splits "SOURCE@REF" at its last '@' (when the whole text is not an existing path).
 * *path and *ref are new strings (free them); *ref is NULL when there is no '@'. */
int cks_source_spec_split(const char *spec, char **path, char **ref);

/* Step of a checkpoint name (DESIGN §2): the digits right after the last lower-case
 * "step" followed by digits (step143000, stage1-step140000-tokens294B -> 140000), else the
 * last run of digits (ckpt_9 -> 9); -1 when the name has no digits or they overflow
 * int64. Checkpoints sort by step, equal steps by name (byte order), -1 after all others,
 * by name. */
int64_t cks_name_step(const char *name);

/* ---- fetching ahead (hf-hub sources; for the others every call returns 0 at once) ----
 *
 * For a scan walking checkpoints c_0, c_1, ... with reference r, per checkpoint c_i:
 *     cks_source_wait(s, c_i)            its files are all in the cache (fetched now when no
 *                                        prefetch was started; the error of a failed file)
 *     cks_source_prefetch(s, c_{i+1})    the next one downloads while this one is analysed
 *     ... analyse c_i (cks_ckpt_open / cks_ckpt_map as usual) ...
 *     cks_source_evict(s, {r, c_i, c_{i+1}, ..., c_last})   with --evict
 * keeps the disk to about four checkpoints: reference, previous (c_i), current and the
 * one being prefetched. Calls may come from any thread. */

typedef struct {
    const char *ckpt;     /* checkpoint whose file last made progress */
    uint64_t done, total; /* bytes received / to receive since fetching last went idle */
    double seconds;       /* since then */
    int files_done, files_total;
} cks_fetch_progress;

/* Called from the downloading threads (serialised; at most a few times a second, and
 * at the end of every file) while anything is being fetched. The CLI prints from it. */
typedef void (*cks_fetch_progress_fn)(void *ctx, const cks_fetch_progress *p);
void cks_source_set_progress(cks_source *s, cks_fetch_progress_fn fn, void *ctx);

/* Starts fetching every file of checkpoint idx in the background (listing it first) and
 * returns at once. Files are fetched by a pool of threads, several in flight. Calling it
 * again for the same checkpoint while it runs does nothing. */
int cks_source_prefetch(cks_source *s, size_t idx);

/* Waits until every file of checkpoint idx is in the cache, prefetching it if that was
 * not started. Returns the first failure (a file whose hash mismatched twice, a refusal,
 * the network) with its message; the checkpoint then counts as failed. A failed file
 * stays failed for the life of the source: mapping it returns the same error. */
int cks_source_wait(cks_source *s, size_t idx);

/* Deletes the blobs this source downloaded (never anything else) that no checkpoint in
 * keep[0..nkeep) needs, with the snapshot links it made to them. Listing a kept
 * checkpoint may take a request; when one fails nothing is deleted. Blobs being fetched
 * are kept. *freed (may be NULL) gets the bytes deleted. */
int cks_source_evict(cks_source *s, const size_t *keep, size_t nkeep, uint64_t *freed);

/* Files in flight at once (default 4, at most 64). Takes effect for later prefetches. */
int cks_source_set_fetch_threads(cks_source *s, int n);

/* 1 when mapping a checkpoint's files downloads them (hf-hub, not HF_HUB_OFFLINE): opening
 * its weights then costs the whole checkpoint, not a header read. */
int cks_source_fetches(const cks_source *s);

/* Claims the source's cache until the source is freed, against other processes using the
 * same cache folder for the same repository: shared (any number of them), or exclusive
 * (one that evicts: it may delete blobs another process still needs). CKS_EEXISTS, naming
 * the cache folder, when another process holds a claim that conflicts. Creates the cache
 * folders. 0 at once for the sources that do not fetch. */
int cks_source_claim_cache(cks_source *s, int exclusive);

/* From now on cks_source_wait returns CKS_EINTR within a fraction of a second of *flag
 * becoming non-zero (a signal handler sets it), abandoning the transfers in flight; the
 * source fetches nothing more after that. flag outlives the source; NULL: waits are not
 * interrupted (the default). */
void cks_source_set_interrupt(cks_source *s, const volatile sig_atomic_t *flag);

/* ---- the files of one checkpoint ---- */

typedef struct {
    const char *path;    /* relative, '/'-separated */
    uint64_t size;       /* bytes of content (for LFS, the pointer's size) */
    int lfs;             /* stored as a Git LFS pointer */
    int present;         /* 0 when the content is not on disk (LFS object missing) */
    const char *lfs_oid; /* sha256 hex for LFS files, else NULL */
    const char *locator; /* private: blob id or absolute path */
} cks_file_info;

typedef struct cks_ckpt cks_ckpt;

/* Lists the files of checkpoint idx. A malformed LFS pointer, or an LFS object whose
 * size differs from its pointer, is an error naming the branch and file; a missing LFS
 * object is not (the file has present = 0, see cks_ckpt_complete). The checkpoint keeps
 * a borrowed pointer to s, which must outlive it. */
int cks_ckpt_open(cks_ckpt **out, const cks_source *s, size_t idx);
void cks_ckpt_free(cks_ckpt *c);

const cks_ckpt_info *cks_ckpt_info_of(const cks_ckpt *c);
const cks_source *cks_ckpt_source(const cks_ckpt *c);
size_t cks_ckpt_nfiles(const cks_ckpt *c);
const cks_file_info *cks_ckpt_file(const cks_ckpt *c, size_t i);
/* Index of a file by relative path, or -1. */
long cks_ckpt_find_file(const cks_ckpt *c, const char *path);
/* 1 when every file's content is present. */
int cks_ckpt_complete(const cks_ckpt *c);
/* The command that would fetch a missing file, into buf. */
const char *cks_ckpt_fetch_hint(const cks_ckpt *c, const char *path, char *buf, size_t cap);

/* Maps a file's content. CKS_ENOTFOUND when the checkpoint has no such file;
 * CKS_EINCOMPLETE (message with the fetch command) when its LFS object is missing. */
int cks_ckpt_map(const cks_ckpt *c, const char *path, cks_map **out);
/* Reads a small file whole, NUL-terminated; CKS_ELIMIT past limit bytes. */
int cks_ckpt_read(const cks_ckpt *c, const char *path, size_t limit, char **out, size_t *len);
/* Reads and validates config.json. */
int cks_ckpt_config(const cks_ckpt *c, cks_config *out);
/* "branch:path" or "folder/path", for messages. */
const char *cks_ckpt_display(const cks_ckpt *c, const char *path, char *buf, size_t cap);

#endif
