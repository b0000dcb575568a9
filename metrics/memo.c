/* Memorisation: the sample of training sequences (gsl_ran_choose) and the scores of
 * generated continuations (see memo.h). */
#include "memo.h"
#include "error.h"

#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CHOOSE ((int64_t)1 << 40)

int cks_memo_choose(int64_t *pick, int64_t *npick, int64_t n, int64_t samples, unsigned long seed)
{
    if (n < 0 || n > MAX_CHOOSE)
        return cks_error_set(CKS_ELIMIT, "%lld sequences to sample from", (long long)n);
    if (samples <= 0 || samples >= n) {
        for (int64_t i = 0; i < n; i++)
            pick[i] = i;
        *npick = n;
        return 0;
    }
    int64_t *all = malloc((size_t)n * sizeof *all);
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    if (!all || !r) {
        free(all);
        gsl_rng_free(r);
        return cks_error_set(CKS_ENOMEM, "out of memory to sample %lld of %lld sequences",
                             (long long)samples, (long long)n);
    }
    for (int64_t i = 0; i < n; i++)
        all[i] = i;
    gsl_rng_set(r, seed);
    /* samples < n: gsl_ran_choose cannot fail (its error handler would abort) */
    gsl_ran_choose(r, pick, (size_t)samples, all, (size_t)n, sizeof *all);
    gsl_rng_free(r);
    free(all);
    *npick = samples;
    return 0;
}

int cks_memo_load(cks_trainset *out, const char *path, int64_t k, int64_t l, int64_t samples,
                  unsigned long seed)
{
    int64_t eligible, skipped, *pick = NULL, npick;
    int err;
    if (k < 1 || l < 1 || k > CKS_MAX_TRAIN_WIDTH - l)
        return cks_error_set(CKS_EINVAL,
                             "prompt %lld and continuation %lld must be at least 1 "
                             "and together at most %lld tokens",
                             (long long)k, (long long)l, (long long)CKS_MAX_TRAIN_WIDTH);
    if (samples <= 0)
        return cks_trainset_read(out, path, k + l, NULL, 0);
    if ((err = cks_trainset_count(path, k + l, &eligible, &skipped)) != 0)
        return err;
    if (!(pick = malloc((size_t)(eligible ? eligible : 1) * sizeof *pick)))
        return cks_error_set(CKS_ENOMEM, "%s: out of memory for %lld sequences", path,
                             (long long)eligible);
    if ((err = cks_memo_choose(pick, &npick, eligible, samples, seed)) == 0)
        err = cks_trainset_read(out, path, k + l, pick, npick);
    free(pick);
    return err;
}

void cks_memo_score(cks_memo_summary *out, const cks_trainset *t, int64_t k, const int32_t *gen,
                    uint8_t *match, uint8_t *full)
{
    int64_t l = t->width - k, tok = 0, whole = 0, prefix = 0;
    for (int64_t i = 0; i < t->n; i++) {
        const int32_t *g = gen + i * l, *s = t->ids + i * t->width + k;
        int64_t hits = 0, lcp = 0;
        while (lcp < l && g[lcp] == s[lcp])
            lcp++;
        for (int64_t j = 0; j < l; j++) {
            int m = g[j] == s[j];
            hits += m;
            if (match)
                match[i * l + j] = (uint8_t)m;
        }
        if (full)
            full[i] = lcp == l;
        tok += hits;
        whole += lcp == l;
        prefix += lcp;
    }
    memset(out, 0, sizeof *out);
    out->k = k;
    out->l = l;
    out->sequences = t->n;
    out->skipped = t->skipped;
    double n = (double)t->n;
    /* Σ over sequences of hits / l, as one sum of integers: exact */
    out->token_match = t->n ? (double)tok / ((double)l * n) : NAN;
    out->full_match = t->n ? (double)whole / n : NAN;
    out->prefix_match = t->n ? (double)prefix / ((double)l * n) : NAN;
}
