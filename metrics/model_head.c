/* The head of the forward pass (see model.h): the final norm, the lm_head, logits or the
 * negative log-likelihood of targets by an online logsumexp over column blocks, and the
 * token-major one-sequence convenience. */
#include "checked.h"
#include "error.h"
#include "model.h"
#include "model_score.h"
#include "model_ops.h"

#include <math.h>
#include <stdlib.h>

static void final_norm(cks_model_state *s, float *x, int64_t n)
{
    const cks_model_config *c = &s->cfg;
    cks_model_norm(c->steps.final, x, c->dim, x, c->dim, s->final_norm, s->final_norm_b, n, c->dim,
                   c->eps, s->nthreads);
}

int cks_model_head_logits(cks_model_state *s, float *x, int64_t n, float *out)
{
    const cks_model_config *c = &s->cfg;
    final_norm(s, x, n);
    return cks_model_linear(&s->mm, &s->head, x, c->dim, n, NULL, out, c->vocab, 0, s->nthreads);
}

int cks_model_head_nll(cks_model_state *s, float *x, const int32_t *targets, int64_t n, float *nll)
{
    return cks_model_head_score(s, x, targets, n, nll, NULL, NULL);
}

int cks_model_logits(const cks_model_weights *w, const int32_t *ids, int64_t n, int nthreads,
                     float **out)
{
    const cks_model_config *c = &w->cfg;
    cks_model_state *s = NULL;
    float *x = NULL, *lg = NULL;
    size_t nl;
    int err;
    if (n < 1 || cks_mul_size((size_t)n, (size_t)c->vocab, &nl))
        return cks_error_set(CKS_EINVAL, "cannot compute logits of %lld tokens", (long long)n);
    for (int64_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= c->vocab)
            return cks_error_set(CKS_EINVAL, "token %lld is %d, not below the vocabulary size %lld",
                                 (long long)i, ids[i], (long long)c->vocab);
    if ((err = cks_model_state_new(&s, c, n, n, nthreads)) != 0)
        return err;
    x = malloc((size_t)n * (size_t)c->dim * sizeof *x);
    lg = malloc(nl * sizeof *lg);
    if (!x || !lg) {
        err = cks_error_set(CKS_ENOMEM, "out of memory");
        goto done;
    }
    cks_model_embed(w, ids, n, x, s->nthreads);
    cks_model_window win = {0, n};
    for (int64_t l = 0; l < c->n_layers; l++) {
        cks_model_load_layer(s, w, l);
        if ((err = cks_model_layer_forward(s, x, &win, 1)) != 0)
            goto done;
    }
    cks_model_load_head(s, w);
    if ((err = cks_model_head_logits(s, x, n, lg)) != 0)
        goto done;
    *out = lg;
    lg = NULL;
done:
    free(lg);
    free(x);
    cks_model_state_free(s);
    return err;
}
