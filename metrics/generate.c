/* Greedy generation with a key/value cache, layer-major (see generate.h): every prompt
 * through every layer (keys and values kept, in batches of sequences sized by the cache
 * bound), then one token per sequence per step through every layer, and an argmax head
 * over column blocks. */
#include "generate.h"
#include "checked.h"
#include "error.h"
#include "model.h"
#include "model_ops.h"
#include "model_score.h"
#include "rowstore.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#define PREFILL_ROWS 4096 /* prompt rows per layer call (raised to one prompt) */

typedef struct {
    const cks_weights *cw;
    const cks_generate_options *o;
    cks_model_weights w;
    cks_model_state *st;
    cks_rowstore *kv;      /* per layer and batch: its keys, then its values (kv_view) */
    cks_rowstore *x;       /* (n · k, dim) the prompts' residual stream */
    cks_rowstore *xs;      /* (n, dim) each sequence's current row */
    int32_t *tok;          /* (n) each sequence's last generated token */
    cks_model_window *win; /* (sub) */
    int64_t n, batch, nbat, cap, sub, kvd; /* sequences, per batch, batches, positions,
                                              sequences per prefill call, kv width */
    int64_t loads;                         /* passes over the layers */
    double t_prefill, t_decode, t_head;
} gctx;

static void pager_prepare(void *arg, const cks_tensor *t, const void *p, size_t len)
{
    cks_map_willneed(cks_weights_file(arg, t->file), p, len, 1);
}

static void pager_release(void *arg, const cks_tensor *t, const void *p, size_t len)
{
    cks_map_dontneed(cks_weights_file(arg, t->file), p, len);
}

static void readahead(void *arg, const cks_tensor *t)
{
    const cks_weights *cw = arg;
    const void *p;
    size_t len;
    cks_tensor_span(t, &p, &len);
    cks_map_willneed(cks_weights_file(cw, t->file), p, len, 0);
}

/* Loads layer l (l == n_layers: the head) and starts reading the next one. */
static void load(gctx *g, int64_t l)
{
    const int64_t L = g->w.cfg.n_layers;
    if (l == 0)
        g->loads++;
    if (l < L)
        cks_model_load_layer(g->st, &g->w, l);
    else
        cks_model_load_head(g->st, &g->w);
    cks_model_layer_tensors(&g->w, l < L ? l + 1 : 0, readahead, (void *)g->cw);
}

/* The argmax of the logits of n rows of x (normalised in place by the final norm), ties
 * to the lowest id, head_rows rows at a time by the lm_head's scorer (argmax only). A row
 * without a number (a broken model) generates id 0. */
static int head_argmax(gctx *g, float *x, int64_t n, int32_t *out)
{
    cks_model_state *s = g->st;
    int err = 0;
    double t0 = omp_get_wtime();
    for (int64_t r0 = 0; r0 < n && !err; r0 += s->head_rows) {
        int64_t m = n - r0 < s->head_rows ? n - r0 : s->head_rows;
        err = cks_model_head_score(s, x + r0 * s->cfg.dim, NULL, m, NULL, out + r0, NULL);
    }
    for (int64_t r = 0; r < n; r++)
        if (out[r] < 0)
            out[r] = 0;
    g->t_head += omp_get_wtime() - t0;
    return err;
}

/* Keys and values of batch b at layer l: the store holds, for each layer and batch, the
 * batch's keys (batch · cap rows of kvd) then its values. */
static cks_model_kv kv_view(const gctx *g, int64_t l, int64_t b)
{
    const int64_t rows = g->batch * g->cap;
    float *k = cks_rowstore_row(g->kv, (l * g->nbat + b) * 2 * rows);
    return (cks_model_kv){k, k + rows * g->kvd, g->cap};
}

static void kv_release(gctx *g, int64_t l, int64_t b)
{
    cks_rowstore_release(g->kv, (l * g->nbat + b) * 2 * g->batch * g->cap, 2 * g->batch * g->cap);
}

/* Sequences of batch b: [b0, b0 + nb). */
static int64_t batch_span(const gctx *g, int64_t b, int64_t *b0)
{
    *b0 = b * g->batch;
    return g->n - *b0 < g->batch ? g->n - *b0 : g->batch;
}

/* The argmax after the current row of every sequence (xs) into tok, and G_j into gen. */
static int head_all(gctx *g, int64_t j, int32_t *gen)
{
    int err = 0;
    load(g, g->w.cfg.n_layers);
    for (int64_t b = 0; b < g->nbat && !err; b++) {
        int64_t b0, nb = batch_span(g, b, &b0);
        float *xs = cks_rowstore_row(g->xs, b0);
        if ((err = head_argmax(g, xs, nb, g->tok + b0)) == 0)
            for (int64_t i = 0; i < nb; i++)
                gen[(b0 + i) * g->o->l + j] = g->tok[b0 + i];
        cks_rowstore_release(g->xs, b0, nb);
    }
    return err;
}

/* Every prompt through layer 0, then layer 1, ... (keys and values into the store), then
 * the head: G_0 into gen[i·l]. */
static int prefill(gctx *g, const int32_t *ids, int64_t width, int32_t *gen)
{
    const cks_model_config *c = &g->w.cfg;
    const int64_t k = g->o->k, D = c->dim;
    int err = 0;
    double t0 = omp_get_wtime();
    for (int64_t i = 0; i < g->n; i++) {
        cks_model_embed(&g->w, ids + i * width, k, cks_rowstore_row(g->x, i * k), g->st->nthreads);
        cks_rowstore_release(g->x, i * k, k);
    }
    for (int64_t l = 0; l < c->n_layers && !err; l++) {
        load(g, l);
        for (int64_t b = 0; b < g->nbat && !err; b++) {
            int64_t b0, nb = batch_span(g, b, &b0);
            cks_model_kv kv = kv_view(g, l, b);
            for (int64_t s0 = 0; s0 < nb && !err; s0 += g->sub) {
                int64_t m = nb - s0 < g->sub ? nb - s0 : g->sub;
                float *x = cks_rowstore_row(g->x, (b0 + s0) * k);
                for (int64_t i = 0; i < m; i++)
                    g->win[i] = (cks_model_window){i * k, k};
                if ((err = cks_model_layer_forward(g->st, x, g->win, m)) == 0)
                    cks_model_kv_store(g->st, g->win, m, s0, &kv);
                cks_rowstore_release(g->x, (b0 + s0) * k, m * k);
            }
            kv_release(g, l, b);
        }
    }
    g->t_prefill += omp_get_wtime() - t0;
    if (err)
        return err;
    for (int64_t i = 0; i < g->n; i++) { /* the last prompt row of each sequence */
        memcpy(cks_rowstore_row(g->xs, i), cks_rowstore_row(g->x, i * k + k - 1),
               (size_t)D * sizeof(float));
        cks_rowstore_release(g->x, i * k, k);
    }
    return head_all(g, 0, gen);
}

/* Steps 1..l-1: each the previous tokens of every sequence through layer 0, then layer 1,
 * ..., at position k + j - 1, then the head. */
static int decode(gctx *g, int32_t *gen)
{
    const cks_model_config *c = &g->w.cfg;
    const int64_t k = g->o->k, l = g->o->l;
    int err = 0;
    for (int64_t j = 1; j < l && !err; j++) {
        if (g->o->progress)
            g->o->progress(g->o->progress_ctx, j, l);
        double t0 = omp_get_wtime();
        for (int64_t b = 0; b < g->nbat; b++) {
            int64_t b0, nb = batch_span(g, b, &b0);
            cks_model_embed(&g->w, g->tok + b0, nb, cks_rowstore_row(g->xs, b0), g->st->nthreads);
        }
        for (int64_t L = 0; L < c->n_layers && !err; L++) {
            load(g, L);
            for (int64_t b = 0; b < g->nbat && !err; b++) {
                int64_t b0, nb = batch_span(g, b, &b0);
                cks_model_kv kv = kv_view(g, L, b);
                err =
                    cks_model_layer_decode(g->st, cks_rowstore_row(g->xs, b0), nb, k + j - 1, &kv);
                kv_release(g, L, b);
            }
        }
        g->t_decode += omp_get_wtime() - t0;
        if (!err)
            err = head_all(g, j, gen);
    }
    return err;
}

static void gctx_release(gctx *g)
{
    free(g->win);
    free(g->tok);
    cks_rowstore_free(g->xs);
    cks_rowstore_free(g->x);
    cks_rowstore_free(g->kv);
    cks_model_state_free(g->st);
    cks_model_weights_release(&g->w);
}

/* Sequences per batch from the cache bound, and the stores: the keys and values of every
 * sequence, the prompts' residual stream and each sequence's current row, each in memory
 * up to the bound and in a scratch file beyond it. */
static int gctx_alloc(gctx *g, int64_t n)
{
    const cks_model_config *c = &g->w.cfg;
    const int64_t k = g->o->k, L = c->n_layers;
    const size_t max = g->o->cache_max ? g->o->cache_max : CKS_GENERATE_CACHE_MAX;
    size_t per;
    g->n = n;
    g->kvd = c->n_kv_heads * c->head_dim;
    g->cap = k + g->o->l;
    if (cks_mul_size((size_t)(2 * L * g->kvd), (size_t)g->cap * sizeof(float), &per))
        return cks_error_set(CKS_ENOMEM, "a key/value cache of %lld positions is too large",
                             (long long)g->cap);
    g->batch = (int64_t)(max / (per ? per : 1));
    /* the prompts' residual stream (k · dim floats a sequence) within the same bound */
    int64_t by_x = (int64_t)(max / ((size_t)(k * c->dim) * sizeof(float)));
    if (by_x < g->batch)
        g->batch = by_x;
    if (g->batch < 1)
        g->batch = 1;
    if (g->batch > n)
        g->batch = n;
    g->nbat = (n + g->batch - 1) / g->batch;
    g->sub = PREFILL_ROWS / k > 0 ? PREFILL_ROWS / k : 1;
    if (g->sub > g->batch)
        g->sub = g->batch;
    int64_t rows = g->sub * k > g->batch ? g->sub * k : g->batch, kvrows;
    if (cks_mul_i64(L * 2 * g->cap, g->nbat * g->batch, &kvrows))
        return cks_error_set(CKS_ELIMIT, "a key/value cache of %lld sequences is too large",
                             (long long)n);
    int err = cks_model_state_new(&g->st, c, rows, g->cap, g->o->nthreads);
    if (err)
        return err;
    g->st->pager = (cks_model_pager){pager_prepare, pager_release, (void *)g->cw};
    /* one batch: everything in memory (within the bound); more: scratch files, so that
       resident memory is about one batch's whatever n is */
    const size_t mem = g->nbat == 1 ? CKS_ROWSTORE_MEM_MAX : 1;
    if ((err = cks_rowstore_new(&g->kv, kvrows, g->kvd, mem, g->o->tmpdir)) != 0 ||
        (err = cks_rowstore_new(&g->x, n * k, c->dim, mem, g->o->tmpdir)) != 0 ||
        (err = cks_rowstore_new(&g->xs, n, c->dim, mem, g->o->tmpdir)) != 0)
        return err;
    if (!(g->tok = malloc((size_t)n * sizeof *g->tok)) ||
        !(g->win = malloc((size_t)g->sub * sizeof *g->win)))
        return cks_error_set(CKS_ENOMEM, "out of memory for generation of %lld sequences",
                             (long long)n);
    return 0;
}

static int check(const cks_model_config *mc, const cks_config *cfg, const char *display,
                 const int32_t *ids, int64_t width, int64_t n, const cks_generate_options *o)
{
    if (o->k < 1 || o->l < 1 || o->k > width)
        return cks_error_set(CKS_EINVAL,
                             "prompt %lld and continuation %lld must be at least 1 "
                             "(and the prompt at most the %lld ids given per sequence)",
                             (long long)o->k, (long long)o->l, (long long)width);
    if (o->k + o->l > cfg->max_position_embeddings)
        return cks_error_set(CKS_EINVAL,
                             "%s: prompt %lld + continuation %lld is longer than "
                             "max_position_embeddings = %lld",
                             display, (long long)o->k, (long long)o->l,
                             (long long)cfg->max_position_embeddings);
    if (mc->window > 0 && o->k + o->l > mc->window)
        return cks_error_set(CKS_EUNSUPPORTED,
                             "%s: prompt + continuation (%lld) is longer than the model's "
                             "sliding window (%lld), which ckptscope does not implement",
                             display, (long long)(o->k + o->l), (long long)mc->window);
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < o->k; j++)
            if (ids[i * width + j] < 0 || ids[i * width + j] >= mc->vocab)
                return cks_error_set(CKS_EINVAL,
                                     "sequence %lld: prompt id %d is not below the vocabulary "
                                     "size %lld of %s",
                                     (long long)i, ids[i * width + j], (long long)mc->vocab,
                                     display);
    return 0;
}

int cks_generate(int32_t *gen, const cks_weights *cw, const cks_config *cfg, const char *display,
                 const int32_t *ids, int64_t width, int64_t n, const cks_generate_options *o,
                 cks_generate_stats *stats)
{
    gctx g;
    cks_model_config mc;
    int err;
    memset(&g, 0, sizeof g);
    g.cw = cw;
    g.o = o;
    if ((err = cks_model_config_from(&mc, cfg, display)) != 0)
        return err;
    mc.precision = o->precision;
    if ((err = check(&mc, cfg, display, ids, width, n, o)) != 0)
        return err;
    if (n == 0)
        return 0;
    double t0 = omp_get_wtime();
    if ((err = cks_model_weights_bind(&g.w, &mc, cks_weights_tensors(cw), display)) != 0 ||
        (err = gctx_alloc(&g, n)) != 0)
        goto done;
    if (o->progress)
        o->progress(o->progress_ctx, 0, o->l);
    if ((err = prefill(&g, ids, width, gen)) == 0)
        err = decode(&g, gen);
    if (!err && stats) {
        const int64_t kvd = mc.n_kv_heads * mc.head_dim;
        *stats = (cks_generate_stats){
            .batch = g.batch,
            .batches = g.nbat,
            .loads = g.loads,
            .cache_file = cks_rowstore_is_file(g.kv),
            .cache_bytes = (size_t)(2 * mc.n_layers * kvd * g.cap * g.batch) * sizeof(float),
            .t_prefill = g.t_prefill,
            .t_decode = g.t_decode,
            .t_head = g.t_head,
            .t_total = omp_get_wtime() - t0};
    }
done:
    gctx_release(&g);
    return err;
}
