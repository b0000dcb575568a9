/* Held-out perplexity by layer-major evaluation (see ppl.h): the window plan of the
 * protocol, the residual stream of every window, layers run one after another over
 * batches of windows, and the lm_head + log-softmax for the scored positions only.
 * The protocol is Hugging Face's strided perplexity ("Perplexity of fixed-length models",
 * transformers docs), with the BOS rule of DESIGN §5. */
#include "ppl.h"
#include "error.h"
#include "model_family.h"
#include "model.h"
#include "model_score.h"
#include "rowstore.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* One window: rows s[b .. b+n-1] of document doc of set `set`; its last nscore rows are
 * scored (row i predicts s[b+i+1]). */
typedef struct {
    int64_t row; /* first row in the residual stream */
    int64_t b;
    int64_t doc;
    int32_t n;
    int32_t nscore;
    int32_t set;
} pwin;

typedef struct {
    int64_t first, count; /* windows [first, first+count) */
    int64_t row, rows;    /* their rows in the stream */
} pbatch;

typedef struct {
    pwin *win;
    int64_t nwin;
    pbatch *batch;
    int64_t nbatch;
    int64_t rows;    /* total rows */
    int64_t max_win; /* longest window (rows) */
} plan;

void cks_ppl_options_default(cks_ppl_options *o, const cks_config *cfg)
{
    memset(o, 0, sizeof *o);
    o->ctx = cfg->max_position_embeddings;
    o->stride = o->ctx / 2 > 0 ? o->ctx / 2 : 1;
    o->bos = cfg->family ? cfg->family->add_bos : 1;
    o->bos_id = (int32_t)cfg->bos_token_id;
}

void cks_ppl_result_release(cks_ppl_result *r)
{
    if (!r)
        return;
    free(r->token_nll);
    free(r->doc_tokens);
    r->token_nll = NULL;
    r->doc_tokens = NULL;
}

/* s[p] of a document t of n tokens, s = [BOS] + t or t. */
static inline int32_t s_at(const int32_t *t, int bos, int32_t bos_id, int64_t p)
{
    return bos ? (p == 0 ? bos_id : t[p - 1]) : t[p];
}

/* Walks the windows of one document of |s| = S tokens (the protocol of ppl.h); with
 * out != NULL writes them from out[0], with scored != NULL adds the scored positions to
 * it; returns the count. */
static int64_t doc_windows(int64_t S, int64_t ctx, int64_t stride, pwin *out, int32_t set,
                           int64_t doc, int64_t *scored)
{
    int64_t count = 0, done = 1;
    if (S <= 0)
        return 0;
    for (int64_t b = 0;; b += stride) {
        int64_t e = b + ctx < S ? b + ctx : S;
        int64_t lo = done > b + 1 ? done : b + 1;
        int64_t rows = e - 1 - b, nscore = e - lo;
        if (rows > 0 && nscore > 0) {
            if (scored)
                *scored += nscore;
            if (out)
                out[count] = (pwin){
                    .b = b, .doc = doc, .n = (int32_t)rows, .nscore = (int32_t)nscore, .set = set};
            count++;
        }
        done = e;
        if (e == S)
            break;
    }
    return count;
}

int64_t cks_ppl_positions(const cks_docset *sets, size_t nsets, const cks_ppl_options *o)
{
    int64_t total = 0;
    for (size_t s = 0; s < nsets; s++)
        for (int64_t d = 0; d < sets[s].ndocs; d++) {
            int64_t n;
            cks_docset_doc(&sets[s], d, &n);
            doc_windows(n + (o->bos ? 1 : 0), o->ctx, o->stride, NULL, 0, 0, &total);
        }
    return total;
}

static void plan_release(plan *p)
{
    free(p->batch);
    free(p->win);
    memset(p, 0, sizeof *p);
}

static int plan_build(plan *p, const cks_docset *sets, size_t nsets, const cks_ppl_options *o,
                      int64_t batch_rows)
{
    int64_t nwin = 0, k = 0, nb = 0;
    memset(p, 0, sizeof *p);
    for (size_t s = 0; s < nsets; s++)
        for (int64_t d = 0; d < sets[s].ndocs; d++) {
            int64_t n;
            cks_docset_doc(&sets[s], d, &n);
            nwin += doc_windows(n + (o->bos ? 1 : 0), o->ctx, o->stride, NULL, 0, 0, NULL);
        }
    if (!(p->win = calloc((size_t)(nwin ? nwin : 1), sizeof *p->win)) ||
        !(p->batch = calloc((size_t)(nwin ? nwin : 1), sizeof *p->batch))) {
        plan_release(p);
        return cks_error_set(CKS_ENOMEM, "out of memory for %lld windows", (long long)nwin);
    }
    for (size_t s = 0; s < nsets; s++)
        for (int64_t d = 0; d < sets[s].ndocs; d++) {
            int64_t n;
            cks_docset_doc(&sets[s], d, &n);
            k += doc_windows(n + (o->bos ? 1 : 0), o->ctx, o->stride, p->win + k, (int32_t)s, d,
                             NULL);
        }
    p->nwin = nwin;
    for (int64_t i = 0; i < nwin; i++) {
        p->win[i].row = p->rows;
        p->rows += p->win[i].n;
        if (p->win[i].n > p->max_win)
            p->max_win = p->win[i].n;
    }
    if (batch_rows < p->max_win)
        batch_rows = p->max_win;
    /* greedy: consecutive windows while they fit in batch_rows */
    for (int64_t i = 0; i < nwin; i++) {
        pbatch *b = nb ? &p->batch[nb - 1] : NULL;
        if (!b || b->rows + p->win[i].n > batch_rows) {
            b = &p->batch[nb++];
            b->first = i;
            b->row = p->win[i].row;
        }
        b->count++;
        b->rows += p->win[i].n;
    }
    p->nbatch = nb;
    return 0;
}

static int check_options(const cks_ppl_options *o, const cks_config *cfg, const char *display)
{
    if (o->ctx < 2 || o->ctx > CKS_MAX_POSITIONS)
        return cks_error_set(CKS_EINVAL, "ctx must be in [2, %d], not %lld", CKS_MAX_POSITIONS,
                             (long long)o->ctx);
    if (o->stride < 1 || o->stride > o->ctx)
        return cks_error_set(CKS_EINVAL, "stride must be in [1, ctx = %lld], not %lld",
                             (long long)o->ctx, (long long)o->stride);
    if (o->ctx > cfg->max_position_embeddings && !o->force)
        return cks_error_set(CKS_EINVAL,
                             "ctx %lld is larger than max_position_embeddings = %lld of %s "
                             "(force it to evaluate anyway)",
                             (long long)o->ctx, (long long)cfg->max_position_embeddings, display);
    if (o->bos && o->bos_id < 0)
        return cks_error_set(CKS_EINVAL,
                             "%s: documents start with BOS but there is no BOS id (no "
                             "bos_token_id in config.json, no BOS piece in the tokenizer); "
                             "give --no-bos",
                             display);
    if (o->bos && o->bos_id >= cfg->vocab_size)
        return cks_error_set(CKS_EINVAL, "BOS id %d is not below the vocabulary size %lld of %s",
                             o->bos_id, (long long)cfg->vocab_size, display);
    return 0;
}

static int check_ids(const cks_docset *set, int64_t vocab, const char *display)
{
    for (int64_t d = 0; d < set->ndocs; d++) {
        int64_t n;
        const int32_t *t = cks_docset_doc(set, d, &n);
        for (int64_t i = 0; i < n; i++) {
            if (t[i] >= 0 && t[i] < vocab)
                continue;
            if (set->line[d] > 0)
                return cks_error_set(CKS_EFORMAT,
                                     "%s: line %lld, token_ids[%lld] = %d is not below the "
                                     "vocabulary size %lld of %s",
                                     set->display, (long long)set->line[d], (long long)i, t[i],
                                     (long long)vocab, display);
            return cks_error_set(CKS_EFORMAT,
                                 "%s: token %lld (document %lld) is %d, not below the vocabulary "
                                 "size %lld of %s",
                                 set->display, (long long)i, (long long)d, t[i], (long long)vocab,
                                 display);
        }
    }
    return 0;
}

/* Everything one evaluation owns, freed in reverse by ctx_release. */
typedef struct {
    const cks_weights *cw;
    const cks_docset *sets;
    size_t nsets;
    const cks_ppl_options *o;
    cks_model_weights w;
    plan p;
    cks_rowstore *rs;
    cks_model_state *st;
    int32_t *ids;         /* (max(max_win, head_rows)) token scratch */
    float *hx;            /* (head_rows, dim) gathered scored rows */
    float *hnll;          /* (head_rows) */
    float **hdst;         /* (head_rows) where each loss goes */
    int32_t *harg;        /* (head_rows) argmaxes */
    int32_t *hset;        /* (head_rows) the set of each row */
    int64_t npos;         /* scored positions done (the sink's numbering) */
    cks_model_window *lw; /* (windows of the largest batch) */
    int64_t dim;
    double t_widen;
} ctx;

static void ctx_release(ctx *c)
{
    free(c->lw);
    free(c->hset);
    free(c->harg);
    free(c->hdst);
    free(c->hnll);
    free(c->hx);
    free(c->ids);
    cks_model_state_free(c->st);
    cks_rowstore_free(c->rs);
    plan_release(&c->p);
    cks_model_weights_release(&c->w);
}

static void dontneed(const ctx *c, const cks_tensor *t)
{
    const void *p;
    size_t len;
    cks_tensor_span(t, &p, &len);
    cks_map_dontneed(cks_weights_file(c->cw, t->file), p, len);
}

static void pager_prepare(void *arg, const cks_tensor *t, const void *p, size_t len)
{
    const cks_weights *cw = arg;
    cks_map_willneed(cks_weights_file(cw, t->file), p, len, 1);
}

static void pager_release(void *arg, const cks_tensor *t, const void *p, size_t len)
{
    const cks_weights *cw = arg;
    cks_map_dontneed(cks_weights_file(cw, t->file), p, len);
}

/* Starts reading a tensor's pages in the background (cks_model_layer_tensors callback). */
static void readahead(void *arg, const cks_tensor *t)
{
    const ctx *c = arg;
    const void *p;
    size_t len;
    cks_tensor_span(t, &p, &len);
    cks_map_willneed(cks_weights_file(c->cw, t->file), p, len, 0);
}

static void embed_all(ctx *c)
{
    const int nt = c->st->nthreads;
    const void *p;
    size_t len;
    /* layer 0 comes from disk while the rows are embedded */
    cks_model_layer_tensors(&c->w, 0, readahead, c);
    cks_tensor_span(c->w.embed, &p, &len);
    cks_map_willneed(cks_weights_file(c->cw, c->w.embed->file), p, len, 1);
    for (int64_t i = 0; i < c->p.nwin; i++) {
        const pwin *w = &c->p.win[i];
        int64_t n;
        const int32_t *t = cks_docset_doc(&c->sets[w->set], w->doc, &n);
        for (int64_t r = 0; r < w->n; r++)
            c->ids[r] = s_at(t, c->o->bos, c->o->bos_id, w->b + r);
        cks_model_embed(&c->w, c->ids, w->n, cks_rowstore_row(c->rs, w->row), nt);
        cks_rowstore_release(c->rs, w->row, w->n);
    }
    dontneed(c, c->w.embed);
}

/* Every batch through layer 0, then layer 1, ...: each layer's weights are mapped in,
 * widened once and released; the next layer's are read from disk in the background
 * meanwhile. */
static int run_layers(ctx *c)
{
    int err;
    for (int64_t l = 0; l < c->w.cfg.n_layers; l++) {
        if (c->o->progress)
            c->o->progress(c->o->progress_ctx, l, c->w.cfg.n_layers);
        double t0 = omp_get_wtime();
        cks_model_load_layer(c->st, &c->w, l); /* the pager maps and drops its pages */
        cks_model_layer_tensors(&c->w, l + 1, readahead, c); /* the next layer, or the head */
        c->t_widen += omp_get_wtime() - t0;
        for (int64_t b = 0; b < c->p.nbatch; b++) {
            const pbatch *pb = &c->p.batch[b];
            for (int64_t i = 0; i < pb->count; i++) {
                c->lw[i].row = c->p.win[pb->first + i].row - pb->row;
                c->lw[i].n = c->p.win[pb->first + i].n;
            }
            if ((err = cks_model_layer_forward(c->st, cks_rowstore_row(c->rs, pb->row), c->lw,
                                               pb->count)) != 0)
                return err;
            cks_rowstore_release(c->rs, pb->row, pb->rows);
        }
    }
    return 0;
}

/* Hands a logits block of the gathered rows to the options' sink, numbered. */
static int head_block(void *arg, int64_t n, int64_t col0, int64_t nb, const float *logits,
                      int64_t ld)
{
    ctx *c = arg;
    const cks_ppl_sink *sk = c->o->sink;
    return sk->block(sk->ctx, c->npos, n, c->ids, col0, nb, logits, ld);
}

static int flush_head(ctx *c, int64_t k, cks_ppl_result *out)
{
    cks_head_sink hs = {head_block, c};
    int err =
        cks_model_head_score(c->st, c->hx, c->ids, k, c->hnll, c->harg, c->o->sink ? &hs : NULL);
    if (err)
        return err;
    for (int64_t j = 0; j < k; j++) {
        *c->hdst[j] = c->hnll[j];
        out[c->hset[j]].top1 += c->harg[j] == c->ids[j];
    }
    c->npos += k;
    return 0;
}

/* lm_head and log-softmax of every scored row, gathered head_rows at a time. */
static int run_head(ctx *c, cks_ppl_result *out)
{
    int64_t k = 0, *next = calloc(c->nsets, sizeof *next); /* next loss slot per set */
    int err = 0;
    if (!next)
        return cks_error_set(CKS_ENOMEM, "out of memory");
    if (c->o->progress)
        c->o->progress(c->o->progress_ctx, c->w.cfg.n_layers, c->w.cfg.n_layers);
    cks_model_load_head(c->st, &c->w);
    for (int64_t i = 0; i < c->p.nwin && !err; i++) {
        const pwin *w = &c->p.win[i];
        int64_t n;
        const int32_t *t = cks_docset_doc(&c->sets[w->set], w->doc, &n);
        for (int64_t r = w->n - w->nscore; r < w->n && !err; r++) {
            memcpy(c->hx + k * c->dim, cks_rowstore_row(c->rs, w->row + r),
                   (size_t)c->dim * sizeof *c->hx);
            c->ids[k] = s_at(t, c->o->bos, c->o->bos_id, w->b + r + 1);
            c->hdst[k] = out[w->set].token_nll + next[w->set]++;
            c->hset[k] = w->set;
            if (++k == c->st->head_rows) {
                err = flush_head(c, k, out);
                k = 0;
            }
        }
        cks_rowstore_release(c->rs, w->row, w->n);
    }
    if (!err && k)
        err = flush_head(c, k, out);
    free(next);
    return err;
}

/* A sliding window that would apply is refused (DESIGN §5): the ctx that fits is named. */
static int check_window(const cks_ppl_options *o, const cks_model_config *mc, const char *display)
{
    if (mc->window > 0 && o->ctx > mc->window)
        return cks_error_set(CKS_EUNSUPPORTED,
                             "%s: ctx %lld is longer than the model's sliding window "
                             "(sliding_window = %lld in config.json), which ckptscope's %s "
                             "forward pass does not implement; use a ctx of %lld or less",
                             display, (long long)o->ctx, (long long)mc->window,
                             mc->family->model_type, (long long)mc->window);
    return 0;
}

/* Binds the weights and builds the window plan (cheap; nothing large allocated yet). */
static int ctx_plan(ctx *c, const cks_model_config *mc, const char *display, size_t nsets)
{
    int err;
    if ((err = cks_model_weights_bind(&c->w, mc, cks_weights_tensors(c->cw), display)) != 0)
        return err;
    return plan_build(&c->p, c->sets, nsets, c->o,
                      c->o->batch_rows > 0 ? c->o->batch_rows : CKS_PPL_BATCH_ROWS);
}

/* The forward-pass state, the residual stream and the head's gather buffers. */
static int ctx_alloc(ctx *c)
{
    const cks_ppl_options *o = c->o;
    int64_t brows = 0, maxcount = 0;
    int err;
    for (int64_t b = 0; b < c->p.nbatch; b++) {
        if (c->p.batch[b].rows > brows)
            brows = c->p.batch[b].rows;
        if (c->p.batch[b].count > maxcount)
            maxcount = c->p.batch[b].count;
    }
    if ((err = cks_model_state_new(&c->st, &c->w.cfg, brows, c->p.max_win, o->nthreads)) != 0)
        return err;
    c->st->pager = (cks_model_pager){pager_prepare, pager_release, (void *)c->cw};
    c->dim = c->w.cfg.dim;
    if ((err = cks_rowstore_new(&c->rs, c->p.rows, c->dim, o->resid_mem_max, o->tmpdir)) != 0)
        return err;
    int64_t hr = c->st->head_rows, nids = hr > c->p.max_win ? hr : c->p.max_win;
    c->ids = malloc((size_t)nids * sizeof *c->ids);
    c->hx = malloc((size_t)hr * (size_t)c->dim * sizeof *c->hx);
    c->hnll = malloc((size_t)hr * sizeof *c->hnll);
    c->hdst = malloc((size_t)hr * sizeof *c->hdst);
    c->harg = malloc((size_t)hr * sizeof *c->harg);
    c->hset = malloc((size_t)hr * sizeof *c->hset);
    c->lw = malloc((size_t)(maxcount ? maxcount : 1) * sizeof *c->lw);
    if (!c->ids || !c->hx || !c->hnll || !c->hdst || !c->harg || !c->hset || !c->lw)
        return cks_error_set(CKS_ENOMEM, "out of memory");
    return 0;
}

static int results_new(cks_ppl_result *out, const plan *p, const cks_docset *sets, size_t nsets)
{
    for (size_t s = 0; s < nsets; s++) {
        memset(&out[s], 0, sizeof out[s]);
        out[s].bytes = sets[s].bytes;
        out[s].ndocs = sets[s].ndocs;
        if (!(out[s].doc_tokens =
                  calloc((size_t)(sets[s].ndocs ? sets[s].ndocs : 1), sizeof *out[s].doc_tokens)))
            return cks_error_set(CKS_ENOMEM, "out of memory for %lld documents",
                                 (long long)sets[s].ndocs);
    }
    for (int64_t i = 0; i < p->nwin; i++) {
        out[p->win[i].set].tokens += p->win[i].nscore;
        out[p->win[i].set].rows += p->win[i].n;
        out[p->win[i].set].doc_tokens[p->win[i].doc] += p->win[i].nscore;
    }
    for (size_t s = 0; s < nsets; s++) {
        if (out[s].tokens == 0)
            return cks_error_set(CKS_EINVAL,
                                 "%s: nothing to score (%lld documents; one needs at least two "
                                 "tokens, counting BOS)",
                                 sets[s].display, (long long)sets[s].ndocs);
        if (!(out[s].token_nll = malloc((size_t)out[s].tokens * sizeof(float))))
            return cks_error_set(CKS_ENOMEM, "out of memory for %lld losses",
                                 (long long)out[s].tokens);
    }
    return 0;
}

static void results_finish(cks_ppl_result *out, size_t nsets)
{
    for (size_t s = 0; s < nsets; s++) {
        cks_ppl_result *r = &out[s];
        double sum = 0;
        for (int64_t i = 0; i < r->tokens; i++)
            sum += r->token_nll[i];
        r->nll_sum = sum;
        r->nll = sum / (double)r->tokens;
        r->ppl = exp(r->nll);
        r->bpb = r->bytes > 0 ? sum / (M_LN2 * (double)r->bytes) : NAN;
        r->top1_acc = (double)r->top1 / (double)r->tokens;
    }
}

int cks_ppl_evaluate(cks_ppl_result *out, const cks_weights *cw, const cks_config *cfg,
                     const char *display, const cks_docset *sets, size_t nsets,
                     const cks_ppl_options *o, cks_ppl_stats *stats)
{
    ctx c;
    int err;
    memset(&c, 0, sizeof c);
    c.cw = cw;
    c.sets = sets;
    c.nsets = nsets;
    c.o = o;
    memset(out, 0, nsets * sizeof *out);
    if (nsets == 0)
        return cks_error_set(CKS_EINVAL, "no evaluation set given");
    cks_model_config mc;
    if ((err = cks_model_config_from(&mc, cfg, display)) == 0)
        mc.precision = o->precision;
    if (err != 0 || (err = check_options(o, cfg, display)) != 0 ||
        (err = check_window(o, &mc, display)) != 0)
        return err;
    for (size_t s = 0; s < nsets; s++)
        if ((err = check_ids(&sets[s], cfg->vocab_size, display)) != 0)
            return err;
    if ((err = ctx_plan(&c, &mc, display, nsets)) != 0 ||
        (err = results_new(out, &c.p, sets, nsets)) != 0 || (err = ctx_alloc(&c)) != 0)
        goto done;
    double t0 = omp_get_wtime(), t1, t2, t3;
    embed_all(&c);
    t1 = omp_get_wtime();
    if ((err = run_layers(&c)) != 0)
        goto done;
    t2 = omp_get_wtime();
    if ((err = run_head(&c, out)) != 0)
        goto done;
    t3 = omp_get_wtime();
    results_finish(out, nsets);
    if (stats)
        *stats = (cks_ppl_stats){.rows = c.p.rows,
                                 .windows = c.p.nwin,
                                 .batches = c.p.nbatch,
                                 .resid_file = cks_rowstore_is_file(c.rs),
                                 .t_embed = t1 - t0,
                                 .t_widen = c.t_widen,
                                 .t_layers = t2 - t1,
                                 .t_attention = c.st->t_attention,
                                 .t_head = t3 - t2,
                                 .t_total = t3 - t0};
done:
    if (err)
        for (size_t s = 0; s < nsets; s++)
            cks_ppl_result_release(&out[s]);
    ctx_release(&c);
    return err;
}
