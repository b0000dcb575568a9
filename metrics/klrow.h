/* How one position's next-token distribution moved between two checkpoints (DESIGN §3):
 * checkpoint c (the base) and t, each given as a row of float32 logits over the whole
 * vocabulary, P_x = softmax(logits_x), y the true next token.
 *
 *   kl     = KL(P_c || P_t) = Σ_v P_c(v) (ln P_c(v) − ln P_t(v))   (nats; c is the base)
 *   nll_x  = −ln P_x(y)
 *   arg_x  = argmax_v logits_x(v), ties to the lowest id
 *   from which agree = (arg_c == arg_t), forgot = (arg_c == y && arg_t != y), learned the
 *   reverse, and the top-1 hits (klsum.h aggregates them per set).
 *
 * Streaming by column blocks. The forward pass computes the lm_head logits a block of
 * vocabulary columns at a time and never holds a (rows, vocab) matrix, so a row is fed as
 * consecutive blocks [col0, col0 + ncols), in increasing order, covering [0, vocab)
 * exactly once; blocks may have any width (1 to vocab) and the result does not depend on
 * it beyond the last bits of the sums. With a = logits_c, b = logits_t:
 *
 *   ln P_c(v) = a_v − A,  A = logsumexp(a);  ln P_t(v) = b_v − B,  B = logsumexp(b)
 *   KL = Σ_v P_c(v) (a_v − b_v) − A + B                          (Σ_v P_c(v) = 1)
 *
 * and per row the state keeps, in float64, running maxima m_a, m_b (of the blocks seen),
 *   s_a = Σ exp(a_v − m_a),  s_b = Σ exp(b_v − m_b),  w = Σ exp(a_v − m_a) (a_v − b_v).
 * When a block raises m_a to m'_a, s_a and w are multiplied by exp(m_a − m'_a) (both are
 * sums of terms carrying the factor exp(−m_a)); s_b likewise. At the end
 *   A = m_a + ln s_a,  B = m_b + ln s_b,  KL = w / s_a − A + B.
 * Dividing w by s_a rather than using P_c's exact normalisation keeps the two consistent:
 * when b = a + const, w / s_a = −const = A − B exactly up to rounding, so KL = 0 to about
 * 1e-16 of |A|. Each exp is a float64 evaluation (klrow.c: Cody-Waite reduction and a
 * degree-13 Taylor polynomial, relative error below 3e-16; terms below e^−708 relative to
 * the row's maximum count as 0) and every difference a_v − b_v is formed in float64 from
 * the float32 logits, so no float32 rounding enters beyond the logits themselves. A term
 * whose P_c is 0 adds nothing, even when its a_v − b_v is infinite (0·log 0 = 0). Rounding
 * can make a KL of two (nearly) equal rows come out a few 1e-16 below zero: it is reported
 * as 0. A NaN logit in a row makes its kl and nll NaN (a broken model reports no number);
 * the argmaxes skip NaN.
 *
 * The base need not be computed at the same time as t: keep c's logits rows (keep.h) and
 * feed them block by block beside t's; the results are bit for bit those of feeding both
 * live, since the same floats go through the same arithmetic. */
#ifndef CKS_KLROW_H
#define CKS_KLROW_H

#include <stdint.h>

/* The running state of one row (initialise with cks_klrow_init). */
typedef struct {
    double ma, sa, mb, sb, w; /* maxima, sums of exps, the cross sum (above) */
    float maxa, maxb;         /* largest logits so far */
    int32_t arga, argb;       /* their ids (-1 before the first non-NaN logit) */
    int32_t y;                /* the target id */
    float ya, yb;             /* the target's logits, once its column has been fed */
    int64_t next;             /* the next column expected */
} cks_klrow;

/* One position's comparison (cks_klrow_finish). */
typedef struct {
    double kl;            /* KL(P_c || P_t), nats, >= 0; NaN with a NaN logit */
    double nll_c, nll_t;  /* −ln P(y) */
    int32_t arg_c, arg_t; /* argmaxes, ties to the lowest id */
    int32_t y;            /* the target */
} cks_klpos;

/* Starts a row whose target is y (0 <= y < vocab). */
void cks_klrow_init(cks_klrow *r, int32_t y);

/* Feeds columns [col0, col0 + n) of one row: a[i] and b[i] are the logits of column
 * col0 + i under c and t. col0 must be the row's next column (asserted). n >= 1. */
void cks_klrow_update(cks_klrow *r, const float *a, const float *b, int64_t col0, int64_t n);

/* The row's results once all vocab columns have been fed (asserted). */
void cks_klrow_finish(const cks_klrow *r, int64_t vocab, cks_klpos *out);

/* A block for many rows at once, rows spread over nthreads OpenMP threads (<= 0: one);
 * row i's columns are a[i*lda .. i*lda + n) and b[i*ldb .. i*ldb + n). Each row's
 * arithmetic is the same whatever the thread count, so the results are too. */
void cks_kl_block(cks_klrow *rows, int64_t nrows, const float *a, int64_t lda, const float *b,
                  int64_t ldb, int64_t col0, int64_t n, int nthreads);

/* exp(x) in float64 as the rows compute it (for tests): relative error below 3e-16 for
 * -708 <= x <= 709; 0 below -708; NaN stays NaN. */
double cks_kl_exp(double x);

#endif
