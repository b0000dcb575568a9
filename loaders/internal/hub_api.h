/* The Hugging Face hub's JSON API, as the hub source reads it. Everything here parses
 * untrusted text from the network; nothing does I/O (the fuzz target calls these).
 *
 * hf://ORG/NAME        ORG and NAME each 1-96 characters of [A-Za-z0-9._-], not starting
 *                      or ending with '.' or '-', without ".." or "--" (the hub's rules;
 *                      the cache folder is models--ORG--NAME).
 * GET /api/models/ORG/NAME/refs
 *   {"branches": [{"name": str, "ref": "refs/heads/<name>", "targetCommit": 40 hex}, ...],
 *    "tags": [...], "converts": [...]}          only "branches" is read. A branch name
 *                      becomes a path under refs/, so it must be a safe relative path
 *                      (path.h) of at most 255 bytes; commits are 40 lowercase hex digits.
 * GET /api/models/ORG/NAME/tree/REV?recursive=true
 *   [{"type": "file", "oid": 40 hex (git blob id), "size": N, "path": str,
 *     "lfs": {"oid": 64 hex (sha256), "size": N, "pointerSize": n}},   (lfs optional)
 *    {"type": "directory", "oid": ..., "size": 0, "path": str}, ...]
 *   one page; further pages through the Link header's rel="next" URL. A file's path must
 *   be a safe relative path (no "..", not absolute, no empty or "." component, no
 *   backslash or control character) of at most 1024 bytes; its size at most
 *   CKS_LFS_MAX_SIZE; an LFS file's two sizes must agree. A path listed twice, or both as
 *   a file and as a folder holding files, is refused. Directories are skipped. */
#ifndef CKS_HUB_API_H
#define CKS_HUB_API_H

#include <stddef.h>
#include <stdint.h>

#define CKS_HUB_MAX_PAGE    ((size_t)64 << 20) /* bytes of one JSON response */
#define CKS_HUB_MAX_PAGES   10000              /* pages of one tree listing */
#define CKS_HUB_MAX_PATH    1024
#define CKS_HUB_MAX_REFNAME 255

typedef struct {
    char *name;
    char commit[41];
} cks_hub_ref;

typedef struct {
    cks_hub_ref *items;
    size_t count, cap;
} cks_hub_refs;

typedef struct {
    char *path;
    uint64_t size;
    int lfs;
    char blob[65]; /* the cache's blob name: sha256 for LFS files, else the git blob id */
} cks_hub_entry;

typedef struct {
    cks_hub_entry *items;
    size_t count, cap;
} cks_hub_tree;

/* 0 when repo is "ORG/NAME" by the rules above; CKS_EINVAL with a message otherwise. */
int cks_hub_repo_check(const char *repo);

/* Appends the branches of a refs response. display names the source in messages. */
int cks_hub_refs_parse(const char *text, size_t len, const char *display, cks_hub_refs *out);
void cks_hub_refs_release(cks_hub_refs *r);

/* Appends the files of one tree page (unsorted). */
int cks_hub_tree_parse(const char *text, size_t len, const char *display, cks_hub_tree *out);
/* Sorts by path and refuses duplicates and a file that is also a folder. */
int cks_hub_tree_finish(cks_hub_tree *t, const char *display);
void cks_hub_tree_release(cks_hub_tree *t);

/* The URL of rel="next" in a Link header value, as a new string in *out; *out = NULL
 * when there is none. Malformed text is CKS_EFORMAT. */
int cks_hub_link_next(const char *header, const char *display, char **out);

#endif
