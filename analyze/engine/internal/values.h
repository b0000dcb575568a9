/* The values of one analysed checkpoint before they are written: a table of per-tensor
 * values (one column per tensor, in its checkpoint's order; one row per metric of every
 * per-tensor family), the largest eigenvalues of each matrix, and the items that
 * per-checkpoint families emit (a value of a series, a float32 row or a uint8 row, each
 * with its dataset path, description and unit). Private to the engine. */
#ifndef CKS_ENGINE_VALUES_H
#define CKS_ENGINE_VALUES_H

#include "store.h"
#include "tensor.h"

#include <stddef.h>
#include <stdint.h>

#define CKS_SPECTRA_K 256 /* largest eigenvalues kept per matrix in /spectra/<tensor> */

typedef struct {
    char *path;                      /* "/eval/<set>/nll" */
    char *description, *unit, *axis; /* unit, axis NULL when none; axis only for rows */
    double value;                    /* a series value (row and flags NULL) */
    float *row;                      /* or a row of n floats */
    uint8_t *flags;                  /* or a row of n uint8 flags (row NULL) */
    size_t n;
} cks_item;

typedef struct {
    cks_item *v;
    size_t n, cap;
} cks_items;

/* Appends a series value / a row (adopted: freed with the items, also on failure). */
int cks_items_series(cks_items *it, const char *path, double v, const char *description,
                     const char *unit);
int cks_items_row(cks_items *it, const char *path, float *row, size_t n, const char *axis,
                  const char *description, const char *unit);
/* Appends a row of n uint8 flags (adopted as rows are), written as a uint8 dataset. */
int cks_items_row_u8(cks_items *it, const char *path, uint8_t *flags, size_t n, const char *axis,
                     const char *description, const char *unit);
void cks_items_release(cks_items *it);
/* Writes every item at row of s (a transaction is open). */
int cks_items_write(const cks_items *it, cks_store *s, size_t row);

typedef struct {
    cks_store_tensor *cols; /* name and kind borrowed from the weights, or from strings */
    size_t n;
    const cks_tensor **cur; /* per column; NULL when unpacked from a message */
    size_t nvals;           /* rows of vals: the per-tensor metrics of every family */
    double *vals;           /* nvals x n, NaN-filled */
    float *top;             /* n x CKS_SPECTRA_K, NaN-filled */
    int *has_top;           /* per column */
    char *strings;          /* owned storage of names and kinds (MPI messages) */
    cks_items items;
} cks_values;

/* Buffers for n columns and nvals metrics (cols and cur filled by the caller). */
int cks_values_alloc(cks_values *v, size_t n, size_t nvals);
void cks_values_release(cks_values *v);

#endif
