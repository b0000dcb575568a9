/* The run file: one HDF5 file of time series per analysed run (DESIGN §4).
 *
 * Layout (readable from h5py/pandas without ckptscope):
 *   /                   attrs format = "ckptscope-run", format_version = 1 (int64),
 *                       source, config (config.json text), created_by; scan adds more
 *   /checkpoints        compound [N], chunked, extendible: name, step (int64), commit
 *                       (hex; "" for plain folders), status ("complete" | "incomplete" |
 *                       "failed"), analysed_at (ISO 8601 UTC)
 *   /tensors            compound [T], extendible: name, layer (int32, -1 when none), kind,
 *                       rows (shape[0]), cols (product of the other dims; 0 for 1-D)
 *   any other dataset   float64 or float32, row i belongs to row i of /checkpoints:
 *                       [N, T] tensor matrices (/norms/fro, /drift/prev/cos, ...),
 *                       [N] series (/eval/<set>/ppl, /evals/<task>/acc, ...),
 *                       [N, K] rows of other length (/spectra/<tensor>, token_nll).
 * All strings are variable-length UTF-8 (h5py returns str for attributes and bytes for
 * compound fields). Every row-indexed dataset is chunked one row per chunk (series: 64
 * rows), extendible in both dimensions, filled with NaN where nothing was written, and
 * carries attrs "description", "unit" (when one applies) and "axes" ("checkpoint,tensor",
 * "checkpoint" or "checkpoint,<name>"): the store keeps every dataset whose axes begin with
 * "checkpoint" at N rows and every "checkpoint,tensor" one at T columns, so new
 * checkpoints and new tensors leave NaN, never ragged datasets.
 *
 * Crash atomicity. The file at PATH is never modified in place. A write transaction
 * (cks_store_begin) copies PATH to PATH.tmp (reflink or copy_file_range), opens the copy,
 * and cks_store_commit closes it, fsyncs it, rename(2)s it over PATH and fsyncs the
 * folder. Whenever a process is killed, PATH is therefore either the previous or the new
 * complete file (HDF5 1.10 has no journal; an interrupted in-place flush could corrupt
 * it). Run files are small (K2: ~720 tensors x ~30 metrics x 8 bytes = 170 KiB per
 * checkpoint), so the copy costs little next to analysing a checkpoint.
 *
 * Writers are exclusive: opening for writing takes flock(2) on PATH.lock (created, holding
 * the writer's pid, removed when the writer closes). A second writer gets CKS_EEXISTS
 * naming the pid. Readers take no lock: they see the old or the new file.
 *
 * HDF5 errors never print (auto-printing is turned off); they become cks_error messages
 * naming the run file and the HDF5 reason. Every function returns 0 or a CKS_E* code. Not
 * thread-safe (serial HDF5): use one thread. */
#ifndef CKS_STORE_H
#define CKS_STORE_H

#include <stddef.h>
#include <stdint.h>

#define CKS_STORE_FORMAT         "ckptscope-run"
#define CKS_STORE_FORMAT_VERSION 1
#define CKS_STORE_MAX_STRING     (16u << 20) /* longest string attribute read from a file */
#define CKS_STORE_MAX_NAME       4096        /* longest name/commit/status field */
#define CKS_STORE_MAX_ROWS       1000000     /* checkpoints or tensors in one file */
#define CKS_STORE_MAX_CELLS      (1u << 28)  /* elements read by one cks_store_read_matrix */
#define CKS_STORE_SERIES_CHUNK   64          /* rows per chunk of 1-D datasets */
/* A read of more elements than this must be backed by data the file stores (at least 2
 * bytes per element): HDF5 fills unwritten chunks, so without it a few-KiB hostile file
 * could declare [16384, 16384] and make a reader allocate 2 GiB. Real runs: K2's [N, T]
 * datasets are 360 x ~720, /spectra 360 x 256, all fully written. */
#define CKS_STORE_SPARSE_CELLS (1u << 20)

typedef struct cks_store cks_store;

typedef enum { CKS_STORE_READ = 0, CKS_STORE_WRITE = 1 } cks_store_mode;

/* Root attributes of a new file. */
typedef struct {
    const char *source;     /* the analysed source (path) */
    const char *config;     /* config.json text; NULL or "" when unknown */
    const char *created_by; /* NULL: "ckptscope <version>" */
    /* NULL, or more root string attributes as name, value, ..., NULL: written with the
     * rest, so they exist from the file's first appearance */
    const char *const *attrs;
} cks_store_meta;

/* Creates a new, empty run file at path (no checkpoint, no tensor) and returns it open for
 * writing, locked. CKS_EEXISTS when path exists or another writer holds the lock. The new
 * file appears atomically (nothing at path until it is complete). */
int cks_store_create(cks_store **out, const char *path, const cks_store_meta *meta);

/* Creates a new run file at path inside a write transaction: the caller writes rows and
 * values, and nothing appears at path until cks_store_commit, which publishes the whole
 * file atomically (CKS_EEXISTS if path appeared meanwhile). cks_store_free or an abort
 * before the commit leaves no file behind. Used where a half-written file must never be
 * seen, as `merge` does. */
int cks_store_create_tx(cks_store **out, const char *path, const cks_store_meta *meta);

/* Opens an existing run file. CKS_STORE_WRITE also takes the writer lock (CKS_EEXISTS when
 * held) and removes a PATH.tmp left by a killed writer. A file that is not HDF5, not a
 * ckptscope run file (attribute format) or of another format_version is CKS_EFORMAT with a
 * message saying which; CKS_ENOTFOUND when path does not exist. */
int cks_store_open(cks_store **out, const char *path, cks_store_mode mode);

/* Aborts an open transaction (PATH unchanged), releases the lock, frees. NULL-safe. */
void cks_store_free(cks_store *s);

const char *cks_store_path(const cks_store *s);

/* ---- write transactions (writers only) ---- */

/* Starts a transaction on a copy of the file. Every write below needs one. */
int cks_store_begin(cks_store *s);
/* Makes the transaction's writes durable and visible at PATH, atomically. On failure
 * (ENOSPC, EIO) the transaction is aborted and PATH holds the previous file. */
int cks_store_commit(cks_store *s);
/* Drops the transaction's writes. */
void cks_store_abort(cks_store *s);

/* Test hook: fn(point, ctx) is called at the named points of a transaction, so tests can
 * kill the process there: "begin" (before the copy), "copied", "closed" (copy complete
 * and fsynced, before rename), "renamed" (before the folder fsync), "committed". */
typedef void (*cks_store_hook)(const char *point, void *ctx);
void cks_store_set_hook(cks_store *s, cks_store_hook fn, void *ctx);

/* ---- attributes (strings) ---- */

/* Reads string attribute name of object obj ("/" for the root, "/drift/ref", ...);
 * *out is a new string. CKS_ENOTFOUND (no message) when absent. */
int cks_store_get_attr(cks_store *s, const char *obj, const char *name, char **out);
/* Creates or replaces a string attribute (in a transaction). */
int cks_store_set_attr(cks_store *s, const char *obj, const char *name, const char *value);
/* Names of the attributes of object obj, sorted (free with cks_store_names_free).
 * CKS_ENOTFOUND when obj does not exist. */
int cks_store_attr_names(cks_store *s, const char *obj, char ***names, size_t *n);

/* ---- checkpoints: the rows ---- */

typedef struct {
    char *name;
    int64_t step;
    char *commit;      /* "" when the source has none */
    char *status;      /* "complete", "incomplete" or "failed" */
    char *analysed_at; /* ISO 8601 UTC */
} cks_store_ckpt;

/* All rows of /checkpoints, in row order (the order they were finished; sort by step to
 * plot). *out is an array of *n records; free with cks_store_ckpts_free. */
int cks_store_checkpoints(cks_store *s, cks_store_ckpt **out, size_t *n);
void cks_store_ckpts_free(cks_store_ckpt *c, size_t n);
/* Row of the checkpoint named name; CKS_ENOTFOUND (no message) when absent. */
int cks_store_find_checkpoint(cks_store *s, const char *name, size_t *row);
/* Number of rows N. */
int cks_store_nrows(cks_store *s, size_t *n);

/* Records a checkpoint (in a transaction) with analysed_at = now. A new name appends row
 * N; an existing name keeps its row, which is rewritten and whose values in every
 * row-indexed dataset are reset to NaN (a re-analysis starts clean). *row receives it. */
int cks_store_put_checkpoint(cks_store *s, const char *name, int64_t step, const char *commit,
                             const char *status, size_t *row);
/* The same with a given analysed_at (NULL: now): `merge` keeps when each row was
 * analysed. */
int cks_store_put_checkpoint_at(cks_store *s, const char *name, int64_t step, const char *commit,
                                const char *status, const char *analysed_at, size_t *row);

/* ---- tensors: the columns of [N, T] datasets ---- */

typedef struct {
    char *name;
    int32_t layer;
    char *kind;
    int64_t rows, cols;
} cks_store_tensor;

int cks_store_tensors(cks_store *s, cks_store_tensor **out, size_t *n);
/* Number of columns T. */
int cks_store_ntensors(cks_store *s, size_t *n);
void cks_store_tensors_free(cks_store_tensor *t, size_t n);
/* Adds the tensors whose names are not columns yet (in a transaction), in the order given,
 * and writes each one's column index into cols[i] (NULL: not wanted). Existing names keep
 * their column and record. */
int cks_store_add_tensors(cks_store *s, const cks_store_tensor *t, size_t n, size_t *cols);

/* ---- values (in a transaction for writes) ----
 * path is an absolute dataset path ("/norms/fro"); missing groups are created. The
 * description and unit (NULL: none) are written when the dataset is created. row < N. */

/* Row of an [N, T] float64 tensor matrix; n must be the current tensor count T. */
int cks_store_write_row(cks_store *s, const char *path, size_t row, const double *v, size_t n,
                        const char *description, const char *unit);
/* Row of an [N, K] float32 dataset whose second axis is named axis ("rank", "token"); a
 * longer row than before widens the dataset (earlier rows: NaN). */
int cks_store_write_row_f32(cks_store *s, const char *path, size_t row, const float *v, size_t n,
                            const char *axis, const char *description, const char *unit);
/* Row of an [N, K] uint8 dataset (flags: /memo/<set>/full) whose second axis is named
 * axis; cells never written (other rows, or past a shorter row) hold CKS_STORE_U8_NONE.
 * Read back as doubles by cks_store_read_matrix and its kin. */
#define CKS_STORE_U8_NONE 255
int cks_store_write_row_u8(cks_store *s, const char *path, size_t row, const uint8_t *v, size_t n,
                           const char *axis, const char *description, const char *unit);
/* 1 when path is a uint8 (integer) dataset, else 0. */
int cks_store_is_u8(cks_store *s, const char *path);
/* Element row of an [N] float64 series (/eval/<set>/ppl, /evals/<task>/acc): created on
 * first use with NaN in every other row. */
int cks_store_write_series(cks_store *s, const char *path, size_t row, double v,
                           const char *description, const char *unit);

/* 1 when a dataset or group exists at path, else 0. */
int cks_store_exists(cks_store *s, const char *path);
/* Shape of a float dataset; 1-D datasets report cols = 1. */
int cks_store_shape(cks_store *s, const char *path, size_t *rows, size_t *cols);
/* Whole float dataset as doubles, row-major, *rows x *cols (1-D: cols = 1). Free *out.
 * CKS_ELIMIT past CKS_STORE_MAX_CELLS, or past CKS_STORE_SPARSE_CELLS when the file does
 * not store the data (cks_store_check_read). */
int cks_store_read_matrix(cks_store *s, const char *path, double **out, size_t *rows, size_t *cols);
/* 0 when reading cells values of the float dataset at path may allocate that much: at most
 * CKS_STORE_MAX_CELLS, and past CKS_STORE_SPARSE_CELLS backed by at least 2 bytes per
 * value stored in the file; CKS_ELIMIT otherwise. Call it before sizing a buffer from a
 * dataset's shape. */
int cks_store_check_read(cks_store *s, const char *path, size_t cells);
/* One row into out[n]; n must equal the dataset's cols. */
int cks_store_read_row(cks_store *s, const char *path, size_t row, double *out, size_t n);
/* One column into out[n]; n must equal the dataset's rows. */
int cks_store_read_column(cks_store *s, const char *path, size_t col, double *out, size_t n);
/* Paths of every row-indexed dataset (those whose "axes" begin with "checkpoint"), in
 * name order, depth first ("/drift/prev/cos", ..., "/norms/fro", ...). Free with
 * cks_store_names_free. */
int cks_store_row_datasets(cks_store *s, char ***paths, size_t *n);
/* Names of the members of a group (datasets and groups), sorted. Free with
 * cks_store_names_free. */
int cks_store_list(cks_store *s, const char *group, char ***names, size_t *n);
void cks_store_names_free(char **names, size_t n);

/* Escapes a tensor name for use as one HDF5 path component ("/spectra/<name>"): '%' and
 * '/' become %25 and %2F, and "." / ".." become %2E / %2E%2E. Returns a new string or
 * NULL when out of memory. */
char *cks_store_escape_name(const char *name);

#endif
