/* The base checkpoint's next-token distributions, kept between checkpoints so that a
 * serial scan runs each checkpoint's forward pass once (DESIGN §3, §4: the `kl` family
 * compares checkpoint t with the previous one).
 *
 * What is kept: the base's float32 logits rows exactly as its forward pass produced them,
 * one row of vocab floats per scored position (in scoring order), 4·vocab bytes per
 * position: 3 KiB for the demo (vocab 768), 125 KiB for LLaMA-2/Amber (32000), 128 KiB
 * for K2 (32032), 197 KiB for Pythia (50304). Why not less:
 *   - KL needs P_c(v) for every v beside t's logits (klrow.h); top-k plus a remainder
 *     cannot give Σ_{v outside k} P_c(v) ln P_t(v) exactly.
 *   - bf16 or fp16 logits (or log-probabilities) round each value by up to 2^-9 or 2^-12
 *     of its size, 0.02 nats on a logit of 10, far above the KL of consecutive late
 *     checkpoints (1e-3 and below); llama.cpp's 16-bit quantised log-probabilities
 *     (--kl-divergence-base) err by about 5e-4 nats per value for the same reason.
 *   - float32 logits are what the forward pass computes: keeping them adds no rounding at
 *     all, so a comparison against the kept rows equals, bit for bit, one with both
 *     checkpoints' logits live (`ppl --vs`), and a shard that recomputes its base gets
 *     the same numbers as the serial scan.
 * A smaller exact alternative, for the forward pass's owner: keep the base's final
 * normed hidden states (hidden_size floats per position: 32 KiB for K2, 4x less) and the
 * base's lm_head, and recompute its logits blocks with the same GEMM; that costs one more
 * lm_head product per checkpoint and the lm_head's memory (0.5 GiB in fp16 for K2).
 *
 * The rows live in memory up to mem_max bytes, beyond in an unlinked scratch file under
 * tmpdir ($TMPDIR, else /tmp), reserved up front (metrics/rowstore.h), so a set of many
 * positions stays within the memory bound; a full disk is an error at creation.
 *
 * Use per checkpoint, for each lm_head column block [col0, col0 + n) of a batch of rows:
 * cks_klkeep_compare() (t's block against the kept base), then cks_klkeep_put() (t's block
 * replaces it: t is the next checkpoint's base). One store suffices. */
#ifndef CKS_KLKEEP_H
#define CKS_KLKEEP_H

#include "klrow.h"

#include <stddef.h>
#include <stdint.h>

typedef struct cks_klkeep cks_klkeep;

/* Bytes kept per position for a vocabulary of vocab. */
static inline size_t cks_klkeep_bytes_per_position(int64_t vocab)
{
    return (size_t)vocab * sizeof(float);
}

/* A store of positions rows of vocab floats (zero-filled). mem_max 0: CKS_ROWSTORE_MEM_MAX;
 * tmpdir NULL: $TMPDIR or /tmp. Errors: sizes that overflow (CKS_ELIMIT), no memory, no
 * room for the scratch file (CKS_EIO naming the folder). */
int cks_klkeep_new(cks_klkeep **out, int64_t positions, int64_t vocab, size_t mem_max,
                   const char *tmpdir);
void cks_klkeep_free(cks_klkeep *k);

int64_t cks_klkeep_positions(const cks_klkeep *k);
int64_t cks_klkeep_vocab(const cks_klkeep *k);
/* 1 when the rows live in a scratch file. */
int cks_klkeep_is_file(const cks_klkeep *k);

/* Row r (vocab floats), borrowed until cks_klkeep_free. */
float *cks_klkeep_row(const cks_klkeep *k, int64_t r);

/* Copies columns [col0, col0 + n) of rows [row0, row0 + nrows): row i from
 * src + i·ld. Ranges must lie inside the store (asserted). */
void cks_klkeep_put(cks_klkeep *k, int64_t row0, int64_t nrows, int64_t col0, int64_t n,
                    const float *src, int64_t ld);

/* Feeds columns [col0, col0 + n) of kept rows [row0, row0 + nrows) as the base (c) and
 * b (row i at b + i·ldb) as t into rows[0..nrows) (cks_kl_block). */
void cks_klkeep_compare(const cks_klkeep *k, cks_klrow *rows, int64_t row0, int64_t nrows,
                        int64_t col0, int64_t n, const float *b, int64_t ldb, int nthreads);

/* Rows [row0, row0 + nrows) will not be needed until the next checkpoint: dropped from the
 * resident set when file-backed (their contents are kept). */
void cks_klkeep_release(cks_klkeep *k, int64_t row0, int64_t nrows);

#endif
