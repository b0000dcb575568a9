/* Greedy generation with a key/value cache, layer-major (see generate.h): batches of
 * sequences sized by the cache bound, the prompts through every layer (keys and values
 * kept), then one token per sequence per step, and an argmax head over column blocks. */
#include "generate.h"
#include "checked.h"
#include "error.h"
#include "model.h"
#include "model_ops.h"

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
    cks_model_kv *kv;        /* [n_layers] views into cache */
    float *cache;            /* 2 · n_layers · batch · cap · kvd */
    float *x;                /* (batch · k, dim) prompt rows */
    float *xs;               /* (batch, dim) one row per sequence */
    int32_t *tok;            /* (batch) */
    cks_model_window *win;   /* (batch) */
    int64_t batch, cap, sub; /* sequences per batch, positions, sequences per prefill call */
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
    if (l < L)
        cks_model_load_layer(g->st, &g->w, l);
    else
        cks_model_load_head(g->st, &g->w);
    cks_model_layer_tensors(&g->w, l < L ? l + 1 : 0, readahead, (void *)g->cw);
}

/* The argmax of the logits of n rows of x (normalised in place by the final norm), ties
 * to the lowest id, head_rows rows and vblock columns at a time. */
static int head_argmax(gctx *g, float *x, int64_t n, int32_t *out)
{
    cks_model_state *s = g->st;
    const cks_model_config *c = &s->cfg;
    int err = 0;
    double t0 = omp_get_wtime();
    cks_model_norm(c->steps.final, x, c->dim, x, c->dim, s->final_norm, s->final_norm_b, n, c->dim,
                   c->eps, s->nthreads);
    for (int64_t r0 = 0; r0 < n && !err; r0 += s->head_rows) {
        int64_t m = n - r0 < s->head_rows ? n - r0 : s->head_rows;
        if ((err = cks_mm_input(&s->mm, x + r0 * c->dim, c->dim, m, c->dim, s->nthreads)) != 0)
            break;
        for (int64_t r = 0; r < m; r++) {
            s->lse_max[r] = -INFINITY;
            out[r0 + r] = 0;
        }
        for (int64_t v0 = 0; v0 < c->vocab && !err; v0 += s->vblock) {
            int64_t nb = c->vocab - v0 < s->vblock ? c->vocab - v0 : s->vblock;
            if ((err = cks_mm_product(&s->mm, &s->head, v0, nb, 0.0f, s->logits, nb,
                                      s->nthreads)) != 0)
                break;
#pragma omp parallel for num_threads(s->nthreads) schedule(static)
            for (int64_t r = 0; r < m; r++) {
                const float *row = s->logits + r * nb;
                float best = s->lse_max[r];
                int32_t arg = out[r0 + r];
                for (int64_t j = 0; j < nb; j++)
                    if (row[j] > best) { /* strictly: a tie keeps the lower id */
                        best = row[j];
                        arg = (int32_t)(v0 + j);
                    }
                s->lse_max[r] = best;
                out[r0 + r] = arg;
            }
        }
    }
    g->t_head += omp_get_wtime() - t0;
    return err;
}

/* The prompts of sequences [0, nb) of the batch (ids + i·width) through every layer and
 * the head: G_0 into gen[i·l]. */
static int prefill(gctx *g, const int32_t *ids, int64_t width, int64_t nb, int32_t *gen)
{
    const cks_model_config *c = &g->w.cfg;
    const int64_t k = g->o->k, D = c->dim;
    int err = 0;
    double t0 = omp_get_wtime();
    for (int64_t i = 0; i < nb; i++)
        cks_model_embed(&g->w, ids + i * width, k, g->x + i * k * D, g->st->nthreads);
    for (int64_t l = 0; l < c->n_layers && !err; l++) {
        load(g, l);
        for (int64_t s0 = 0; s0 < nb && !err; s0 += g->sub) {
            int64_t m = nb - s0 < g->sub ? nb - s0 : g->sub;
            for (int64_t i = 0; i < m; i++)
                g->win[i] = (cks_model_window){i * k, k};
            if ((err = cks_model_layer_forward(g->st, g->x + s0 * k * D, g->win, m)) == 0)
                cks_model_kv_store(g->st, g->win, m, s0, &g->kv[l]);
        }
    }
    g->t_prefill += omp_get_wtime() - t0;
    if (err)
        return err;
    for (int64_t i = 0; i < nb; i++) /* the last prompt row of each sequence */
        memcpy(g->xs + i * D, g->x + (i * k + k - 1) * D, (size_t)D * sizeof *g->xs);
    load(g, c->n_layers);
    if ((err = head_argmax(g, g->xs, nb, g->tok)) != 0)
        return err;
    for (int64_t i = 0; i < nb; i++)
        gen[i * g->o->l] = g->tok[i];
    return 0;
}

/* Steps 1..l-1: each the previous tokens through every layer at position k + j - 1. */
static int decode(gctx *g, int64_t nb, int32_t *gen)
{
    const cks_model_config *c = &g->w.cfg;
    const int64_t k = g->o->k, l = g->o->l;
    int err = 0;
    for (int64_t j = 1; j < l && !err; j++) {
        double t0 = omp_get_wtime();
        cks_model_embed(&g->w, g->tok, nb, g->xs, g->st->nthreads);
        for (int64_t L = 0; L < c->n_layers && !err; L++) {
            load(g, L);
            err = cks_model_layer_decode(g->st, g->xs, nb, k + j - 1, &g->kv[L]);
        }
        g->t_decode += omp_get_wtime() - t0;
        if (err)
            break;
        load(g, c->n_layers);
        if ((err = head_argmax(g, g->xs, nb, g->tok)) != 0)
            break;
        for (int64_t i = 0; i < nb; i++)
            gen[i * l + j] = g->tok[i];
    }
    return err;
}

static void gctx_release(gctx *g)
{
    free(g->win);
    free(g->tok);
    free(g->xs);
    free(g->x);
    free(g->kv);
    free(g->cache);
    cks_model_state_free(g->st);
    cks_model_weights_release(&g->w);
}

/* Sequences per batch from the cache bound, and the buffers. */
static int gctx_alloc(gctx *g, int64_t n)
{
    const cks_model_config *c = &g->w.cfg;
    const int64_t k = g->o->k, kvd = c->n_kv_heads * c->head_dim, L = c->n_layers;
    const size_t max = g->o->cache_max ? g->o->cache_max : CKS_GENERATE_CACHE_MAX;
    size_t per, cells, xcells;
    g->cap = k + g->o->l;
    if (cks_mul_size((size_t)(2 * L * kvd), (size_t)g->cap * sizeof(float), &per))
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
    g->sub = PREFILL_ROWS / k > 0 ? PREFILL_ROWS / k : 1;
    if (g->sub > g->batch)
        g->sub = g->batch;
    int64_t rows = g->sub * k > g->batch ? g->sub * k : g->batch;
    int err = cks_model_state_new(&g->st, c, rows, g->cap, g->o->nthreads);
    if (err)
        return err;
    g->st->pager = (cks_model_pager){pager_prepare, pager_release, (void *)g->cw};
    if (cks_mul_size(per / sizeof(float), (size_t)g->batch, &cells) ||
        cks_mul_size((size_t)(g->batch * k), (size_t)c->dim, &xcells) ||
        !(g->cache = malloc(cells * sizeof *g->cache)) ||
        !(g->kv = calloc((size_t)L, sizeof *g->kv)) || !(g->x = malloc(xcells * sizeof *g->x)) ||
        !(g->xs = malloc((size_t)(g->batch * c->dim) * sizeof *g->xs)) ||
        !(g->tok = malloc((size_t)g->batch * sizeof *g->tok)) ||
        !(g->win = malloc((size_t)g->sub * sizeof *g->win)))
        return cks_error_set(CKS_ENOMEM,
                             "out of memory for generation in batches of %lld "
                             "sequences",
                             (long long)g->batch);
    const size_t half = (size_t)(g->batch * g->cap * kvd);
    for (int64_t l = 0; l < L; l++)
        g->kv[l] = (cks_model_kv){g->cache + 2 * (size_t)l * half,
                                  g->cache + (2 * (size_t)l + 1) * half, g->cap};
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
    int64_t batches = 0;
    if ((err = cks_model_weights_bind(&g.w, &mc, cks_weights_tensors(cw), display)) != 0 ||
        (err = gctx_alloc(&g, n)) != 0)
        goto done;
    for (int64_t b0 = 0; b0 < n && !err; b0 += g.batch, batches++) {
        int64_t nb = n - b0 < g.batch ? n - b0 : g.batch;
        if (o->progress)
            o->progress(o->progress_ctx, b0, n);
        if ((err = prefill(&g, ids + b0 * width, width, nb, gen + b0 * o->l)) == 0)
            err = decode(&g, nb, gen + b0 * o->l);
    }
    if (!err && stats) {
        const int64_t kvd = mc.n_kv_heads * mc.head_dim;
        *stats = (cks_generate_stats){
            .batch = g.batch,
            .batches = batches,
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
