/* Git LFS pointer files (https://github.com/git-lfs/git-lfs/blob/main/docs/spec.md).
 *
 * A pointer is UTF-8 text of at most CKS_LFS_POINTER_MAX bytes, lines "key value\n", first
 * line "version https://git-lfs.github.com/spec/v1" (or the pre-release
 * "https://hawser.github.com/spec/v1"), then sorted keys including
 *   oid sha256:<exactly 64 lowercase hex digits>
 *   size <decimal bytes, no sign, at most CKS_LFS_MAX_SIZE>
 * The oid becomes a path, so it is checked character by character before any use. */
#ifndef CKS_LFS_H
#define CKS_LFS_H

#include <stddef.h>
#include <stdint.h>

#define CKS_LFS_POINTER_MAX 1024
#define CKS_LFS_MAX_SIZE    ((uint64_t)1 << 50) /* 1 PiB */

typedef struct {
    char oid[65];
    uint64_t size;
} cks_lfs_pointer;

/* 1 when buf starts like an LFS pointer (so it must parse), 0 otherwise. */
int cks_lfs_is_pointer(const char *buf, size_t len);

/* Parses a pointer; CKS_EFORMAT with a message naming display and the bad line. */
int cks_lfs_pointer_parse(const char *buf, size_t len, const char *display, cks_lfs_pointer *out);

/* <lfs_dir>/objects/<h0h1>/<h2h3>/<oid> into buf; CKS_ELIMIT when it does not fit. */
int cks_lfs_object_path(const char *lfs_dir, const cks_lfs_pointer *p, char *buf, size_t cap);

#endif
