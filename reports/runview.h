/* A run file opened for reading by plots and reports: the checkpoints in step order (rows
 * are stored in the order they were finished), the tensor columns, and datasets read
 * back in step order with their shapes checked against /checkpoints and /tensors.
 * Everything goes through the store API (store.h); nothing here parses HDF5. */
#ifndef CKS_RUNVIEW_H
#define CKS_RUNVIEW_H

#include "store.h"

#include <stddef.h>
#include <stdint.h>

typedef struct {
    cks_store *store;
    char *path;
    cks_store_ckpt *ckpt; /* rows of /checkpoints in row order */
    size_t n;             /* checkpoints */
    size_t *order;        /* order[i]: row of the i-th checkpoint by step (ties: row order) */
    int64_t *step;        /* step[i] of the i-th checkpoint by step */
    cks_store_tensor *tensor;
    size_t nt;   /* tensors (columns of [N, T] datasets) */
    int nlayers; /* 1 + the largest layer; 0 when no tensor has one */
} cks_runview;

/* Opens the run file at path read-only. A file that is not a run file is CKS_EFORMAT (from
 * the store); a run without checkpoints is CKS_EFORMAT too ("holds no checkpoints"), since
 * there is nothing to plot or report. */
int cks_runview_open(cks_runview **out, const char *path);
void cks_runview_free(cks_runview *v);

/* Checkpoint at step position i (0 <= i < n). */
const cks_store_ckpt *cks_runview_ckpt(const cks_runview *v, size_t i);

/* 1 when a dataset holding at least one finite value exists at path (absent, unreadable or
 * all-NaN datasets are 0). */
int cks_runview_has_values(cks_runview *v, const char *path);

/* Reads the float dataset at path in step order: out[i * cols + j] belongs to the i-th
 * checkpoint by step. The dataset must have one row per checkpoint (CKS_EFORMAT naming the
 * dataset otherwise); want_cols > 0 also requires that many columns (the tensor count for
 * [N, T] matrices, 1 for series). Free *out. */
int cks_runview_read(cks_runview *v, const char *path, size_t want_cols, double **out,
                     size_t *cols);

/* One checkpoint's row of an [N, T] or [N, K] dataset into a new array of *cols values. */
int cks_runview_read_at(cks_runview *v, const char *path, size_t i, double **out, size_t *cols);

/* String attribute name of the object at path; "" when absent. *out is a new string. */
int cks_runview_attr(cks_runview *v, const char *path, const char *name, char **out);

/* Step position of the checkpoint named name. CKS_ENOTFOUND with a message naming the run
 * file and the first and last checkpoints when there is none. */
int cks_runview_find(cks_runview *v, const char *name, size_t *pos);

/* Step position of the newest checkpoint whose status is "complete"; the newest checkpoint
 * when none is. */
size_t cks_runview_latest(const cks_runview *v);

/* Median of the finite values v[k] over the k in idx[0..n) (NaN when none is finite).
 * scratch holds n doubles. */
double cks_runview_median(const double *v, const size_t *idx, size_t n, double *scratch);

#endif
