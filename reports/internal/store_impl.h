/* Internals shared by store.c (file lifecycle, lock, transactions), store_attrs.c (HDF5
 * errors, string attributes), store_tables.c (checkpoints, tensors) and store_values.c
 * (datasets). Not a public header. */
#ifndef CKS_STORE_IMPL_H
#define CKS_STORE_IMPL_H

#include "store.h"

#include <hdf5.h>

struct cks_store {
    char *path, *tmp, *lock, *dir;
    int lockfd;    /* writer lock (flock on PATH.lock); -1 for readers */
    int in_tx;     /* fid is PATH.tmp opened read-write */
    int tx_failed; /* a write of this transaction failed: it can only be aborted */
    int fresh;     /* cks_store_create_tx: PATH does not exist until the first commit */
    hid_t fid;     /* PATH read-only between transactions; H5I_INVALID_HID when closed */
    cks_store_hook hook;
    void *hook_ctx;
};

/* Sets a message from fmt plus the innermost HDF5 error on the stack (then clears it). */
int cks_store_h5err(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* CKS_EINVAL unless a transaction is open. */
int cks_store_need_tx(const cks_store *s, const char *what);
/* Closes a dataset that was written to. Its chunk cache is flushed here, so this is
 * where a full disk shows up: ignoring it would commit a file without the data. Returns
 * err, or the close failure when err is 0. */
int cks_store_close_written(cks_store *s, hid_t d, const char *path, int err);
/* Marks the open transaction failed when err != 0 (commit then refuses it); returns err. */
int cks_store_fail(cks_store *s, int err);
/* A variable-length UTF-8 string type (close it). */
hid_t cks_store_str_type(void);
/* String attributes on an open object; read: CKS_ENOTFOUND (no message) when absent,
 * CKS_EFORMAT when not a string or longer than limit. */
int cks_store_attr_read(hid_t obj, const char *name, size_t limit, const char *display, char **out);
int cks_store_attr_write(hid_t obj, const char *name, const char *value, const char *display);

/* Names collected by the H5Aiterate2 / H5Literate callbacks: push copies name; on
 * failure it sets err (and the message) and returns -1, which stops the iteration. */
typedef struct {
    char **names;
    size_t n, cap;
    int err;
} cks_store_names;
herr_t cks_store_names_push(cks_store_names *l, const char *name);

/* store_tables.c: create the empty /checkpoints and /tensors; the length of a table. */
int cks_store_init_tables(cks_store *s);
int cks_store_table_len(cks_store *s, const char *path, size_t *n);
/* store_values.c: bring every row-indexed dataset to N rows (and tensor matrices to T
 * columns) before a commit; write NaN over one row of every row-indexed dataset. */
int cks_store_extend_all(cks_store *s);
int cks_store_clear_row(cks_store *s, size_t row);

#endif
