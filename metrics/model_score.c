/* The lm_head as a scorer (see model_score.h): logits in column blocks that stay in
 * cache, each folded into an online logsumexp and a running argmax, and handed on. */
#include "model_score.h"
#include "model_ops.h"
#include "vmath.h"

#include <math.h>

/* The first index of the value m in x, or n when it is not there (m NaN). */
static int64_t first_of(const float *x, int64_t n, float m)
{
    int64_t i = 0;
    while (i < n && x[i] != m)
        i++;
    return i;
}

/* Folds one block of logits columns [v0, v0+nb) into each row's running logsumexp
 * (online: m' = max(m, block max), sum' = sum·exp(m - m') + Σ exp(l - m')), moves the
 * argmax when the block holds a strictly larger logit, and picks the target's logit when
 * it lies in the block. */
static void lse_fold(cks_model_state *s, const int32_t *targets, int64_t n, int64_t v0, int64_t nb,
                     int32_t *arg)
{
#pragma omp parallel for num_threads(s->nthreads) schedule(static)
    for (int64_t r = 0; r < n; r++) {
        const float *row = s->logits + r * nb;
        float bm = cks_vmax(row, nb), m = s->lse_max[r] > bm ? s->lse_max[r] : bm;
        if (arg && bm > s->lse_max[r]) {
            int64_t i = first_of(row, nb, bm);
            if (i < nb)
                arg[r] = (int32_t)(v0 + i);
        }
        if (targets) {                                             /* argmax alone needs no sum */
            double scale = exp((double)s->lse_max[r] - (double)m); /* 0 for the first block */
            s->lse_sum[r] = s->lse_sum[r] * scale + cks_vsumexp(row, nb, m);
        }
        s->lse_max[r] = m;
        if (targets && targets[r] >= v0 && targets[r] < v0 + nb)
            s->lse_target[r] = row[targets[r] - v0];
    }
}

int cks_model_head_score(cks_model_state *s, float *x, const int32_t *targets, int64_t n,
                         float *nll, int32_t *arg, const cks_head_sink *sink)
{
    const cks_model_config *c = &s->cfg;
    int err;
    cks_model_norm(c->steps.final, x, c->dim, x, c->dim, s->final_norm, s->final_norm_b, n, c->dim,
                   c->eps, s->nthreads);
    for (int64_t r = 0; r < n; r++) {
        s->lse_max[r] = -INFINITY;
        s->lse_sum[r] = 0;
        s->lse_target[r] = NAN;
        if (arg)
            arg[r] = -1;
    }
    /* the rows enter the products once (bf16: rounded once) */
    if ((err = cks_mm_input(&s->mm, x, c->dim, n, c->dim, s->nthreads)) != 0)
        return err;
    for (int64_t v0 = 0; v0 < c->vocab; v0 += s->vblock) {
        int64_t nb = c->vocab - v0 < s->vblock ? c->vocab - v0 : s->vblock;
        if ((err = cks_mm_product(&s->mm, &s->head, v0, nb, 0.0f, s->logits, nb, s->nthreads)) != 0)
            return err;
        lse_fold(s, targets, n, v0, nb, arg);
        if (sink && (err = sink->block(sink->ctx, n, v0, nb, s->logits, nb)) != 0)
            return err;
    }
    /* -log_softmax(logits)[t] = logsumexp(logits) - logits[t] */
    for (int64_t r = 0; nll && r < n; r++)
        nll[r] = (float)((double)s->lse_max[r] + log(s->lse_sum[r]) - (double)s->lse_target[r]);
    return 0;
}
