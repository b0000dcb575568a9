/* The comparing and keeping consumer of logits blocks (see klpass.h). */
#include "klpass.h"
#include "error.h"

#include <stdlib.h>
#include <string.h>

struct cks_klpass {
    int64_t positions, vocab;
    cks_klkeep *keep;
    cks_klkeep *bases[CKS_KLPASS_MAX_BASES];
    int nbases, nthreads;
    cks_klrow *rows; /* (nbases, cap) the states of the current group */
    int64_t cap;
    cks_klpos *pos[CKS_KLPASS_MAX_BASES]; /* (positions) */
};

static int fits(const cks_klkeep *k, int64_t positions, int64_t vocab)
{
    return !k || (cks_klkeep_positions(k) == positions && cks_klkeep_vocab(k) == vocab);
}

int cks_klpass_new(cks_klpass **out, int64_t positions, int64_t vocab, cks_klkeep *keep,
                   cks_klkeep *const *bases, int nbases, int nthreads)
{
    if (positions < 0 || vocab < 1 || nbases < 0 || nbases > CKS_KLPASS_MAX_BASES ||
        !fits(keep, positions, vocab))
        return cks_error_set(CKS_EINVAL, "KL pass: a store of another shape");
    for (int b = 0; b < nbases; b++)
        if (!fits(bases[b], positions, vocab))
            return cks_error_set(CKS_EINVAL, "KL pass: a base store of another shape");
    cks_klpass *p = calloc(1, sizeof *p);
    if (!p)
        return cks_error_set(CKS_ENOMEM, "out of memory");
    p->positions = positions;
    p->vocab = vocab;
    p->keep = keep;
    p->nbases = nbases;
    p->nthreads = nthreads;
    for (int b = 0; b < nbases; b++) {
        p->bases[b] = bases[b];
        if (!(p->pos[b] = malloc((size_t)(positions ? positions : 1) * sizeof *p->pos[b]))) {
            cks_klpass_free(p);
            return cks_error_set(CKS_ENOMEM, "out of memory for %lld KL positions",
                                 (long long)positions);
        }
    }
    *out = p;
    return 0;
}

void cks_klpass_free(cks_klpass *p)
{
    if (!p)
        return;
    for (int b = 0; b < p->nbases; b++)
        free(p->pos[b]);
    free(p->rows);
    free(p);
}

/* A new group of n positions: its row states, targets set. */
static int group_start(cks_klpass *p, int64_t n, const int32_t *targets)
{
    if (n > p->cap) {
        cks_klrow *r = realloc(p->rows, (size_t)(n * (p->nbases ? p->nbases : 1)) * sizeof *r);
        if (!r)
            return cks_error_set(CKS_ENOMEM, "out of memory");
        p->rows = r;
        p->cap = n;
    }
    for (int b = 0; b < p->nbases; b++)
        for (int64_t i = 0; i < n; i++)
            cks_klrow_init(&p->rows[b * p->cap + i], targets[i]);
    return 0;
}

static int block(void *arg, int64_t pos0, int64_t n, const int32_t *targets, int64_t col0,
                 int64_t nb, const float *logits, int64_t ld)
{
    cks_klpass *p = arg;
    int err;
    if (pos0 < 0 || pos0 + n > p->positions || col0 < 0 || col0 + nb > p->vocab)
        return cks_error_set(CKS_EINVAL, "KL pass: positions [%lld, %lld) past the %lld planned",
                             (long long)pos0, (long long)(pos0 + n), (long long)p->positions);
    if (col0 == 0 && (err = group_start(p, n, targets)) != 0)
        return err;
    for (int b = 0; b < p->nbases; b++) {
        cks_klrow *rows = p->rows + b * p->cap;
        if (p->bases[b])
            cks_klkeep_compare(p->bases[b], rows, pos0, n, col0, nb, logits, ld, p->nthreads);
        else
            cks_kl_block(rows, n, logits, ld, logits, ld, col0, nb, p->nthreads);
    }
    if (p->keep) /* after the comparisons: the kept store may be a base */
        cks_klkeep_put(p->keep, pos0, n, col0, nb, logits, ld);
    if (col0 + nb < p->vocab)
        return 0;
    for (int b = 0; b < p->nbases; b++) {
        for (int64_t i = 0; i < n; i++)
            cks_klrow_finish(&p->rows[b * p->cap + i], p->vocab, &p->pos[b][pos0 + i]);
        if (p->bases[b] && p->bases[b] != p->keep)
            cks_klkeep_release(p->bases[b], pos0, n);
    }
    if (p->keep)
        cks_klkeep_release(p->keep, pos0, n);
    return 0;
}

cks_ppl_sink cks_klpass_sink(cks_klpass *p)
{
    return (cks_ppl_sink){block, p};
}

const cks_klpos *cks_klpass_result(const cks_klpass *p, int b)
{
    return p->pos[b];
}

int cks_klpass_summary(const cks_klpass *p, int b, int64_t pos0, const cks_ppl_result *r,
                       cks_klsummary *out)
{
    if (pos0 < 0 || pos0 + r->tokens > p->positions)
        return cks_error_set(CKS_EINVAL, "KL summary: positions past the pass");
    return cks_klsummary_compute(out, p->pos[b] + pos0, r->tokens, r->doc_tokens, r->ndocs, NULL);
}
