/* A rows×cols float32 matrix that lives in memory when it is small and in an unlinked,
 * memory-mapped scratch file when it is large: the residual stream of layer-major
 * evaluation (every token of a held-out set, hidden_size floats each).
 *
 * Both cases hand out plain pointers into one mapping. In the file case the space is
 * reserved up front with posix_fallocate (a full disk is an error here, not a SIGBUS
 * later), and cks_rowstore_release() starts write-back of rows a caller has finished
 * with and drops them from the process's resident set, so resident memory stays at the
 * rows in use. The file is unlinked at creation: nothing is left behind, even after a
 * crash. */
#ifndef CKS_ROWSTORE_H
#define CKS_ROWSTORE_H

#include <stddef.h>
#include <stdint.h>

/* Default size above which the store is a scratch file. */
#define CKS_ROWSTORE_MEM_MAX ((size_t)2 << 30) /* 2 GiB */

typedef struct cks_rowstore cks_rowstore;

/* Creates a zero-filled store. mem_max: largest size kept in anonymous memory (0 means
 * CKS_ROWSTORE_MEM_MAX); tmpdir: folder for the scratch file (NULL: $TMPDIR or /tmp). */
int cks_rowstore_new(cks_rowstore **out, int64_t rows, int64_t cols, size_t mem_max,
                     const char *tmpdir);
void cks_rowstore_free(cks_rowstore *s);

/* Pointer to row r (r < rows); rows are contiguous, valid until cks_rowstore_free. */
float *cks_rowstore_row(const cks_rowstore *s, int64_t r);
/* Rows [r, r+n) will not be touched for a while: written back and dropped from the
 * resident set when file-backed; a no-op in memory. Their contents are kept. */
void cks_rowstore_release(cks_rowstore *s, int64_t r, int64_t n);
/* 1 when backed by a scratch file. */
int cks_rowstore_is_file(const cks_rowstore *s);

#endif
