/* The kept base logits (see klkeep.h): a row store of positions × vocab floats, written
 * and compared a column block at a time. */
#include "klkeep.h"
#include "rowstore.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

struct cks_klkeep {
    cks_rowstore *rows;
    int64_t positions, vocab;
};

int cks_klkeep_new(cks_klkeep **out, int64_t positions, int64_t vocab, size_t mem_max,
                   const char *tmpdir)
{
    cks_klkeep *k = calloc(1, sizeof *k);
    if (!k)
        return cks_error_set(CKS_ENOMEM, "out of memory");
    int err = cks_rowstore_new(&k->rows, positions, vocab, mem_max, tmpdir);
    if (err) {
        free(k);
        return err;
    }
    k->positions = positions;
    k->vocab = vocab;
    *out = k;
    return 0;
}

void cks_klkeep_free(cks_klkeep *k)
{
    if (!k)
        return;
    cks_rowstore_free(k->rows);
    free(k);
}

int64_t cks_klkeep_positions(const cks_klkeep *k)
{
    return k->positions;
}

int64_t cks_klkeep_vocab(const cks_klkeep *k)
{
    return k->vocab;
}

int cks_klkeep_is_file(const cks_klkeep *k)
{
    return cks_rowstore_is_file(k->rows);
}

float *cks_klkeep_row(const cks_klkeep *k, int64_t r)
{
    return cks_rowstore_row(k->rows, r);
}

void cks_klkeep_put(cks_klkeep *k, int64_t row0, int64_t nrows, int64_t col0, int64_t n,
                    const float *src, int64_t ld)
{
    assert(row0 >= 0 && nrows >= 0 && row0 + nrows <= k->positions);
    assert(col0 >= 0 && n >= 0 && col0 + n <= k->vocab);
    for (int64_t i = 0; i < nrows; i++)
        memcpy(cks_rowstore_row(k->rows, row0 + i) + col0, src + i * ld, (size_t)n * sizeof *src);
}

void cks_klkeep_compare(const cks_klkeep *k, cks_klrow *rows, int64_t row0, int64_t nrows,
                        int64_t col0, int64_t n, const float *b, int64_t ldb, int nthreads)
{
    assert(row0 >= 0 && nrows >= 0 && row0 + nrows <= k->positions);
    assert(col0 >= 0 && n >= 1 && col0 + n <= k->vocab);
    if (nrows == 0)
        return;
    cks_kl_block(rows, nrows, cks_rowstore_row(k->rows, row0) + col0, k->vocab, b, ldb, col0, n,
                 nthreads);
}

void cks_klkeep_release(cks_klkeep *k, int64_t row0, int64_t nrows)
{
    cks_rowstore_release(k->rows, row0, nrows);
}
