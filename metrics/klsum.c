/* Per-set aggregation of the per-position comparisons (see klsum.h). */
#include "klsum.h"
#include "error.h"

#include <gsl/gsl_sort.h>
#include <math.h>
#include <stdlib.h>

/* kl, its percentiles and maximum (sorted copy). */
static int kl_stats(cks_klsummary *o, const cks_klpos *pos, int64_t n)
{
    double *kl = malloc((size_t)n * sizeof *kl), sum = 0;
    if (!kl)
        return cks_error_set(CKS_ENOMEM, "out of memory for %lld KL values", (long long)n);
    int nan = 0;
    for (int64_t i = 0; i < n; i++) {
        kl[i] = pos[i].kl;
        sum += kl[i];
        nan |= isnan(kl[i]);
    }
    o->kl = sum / (double)n;
    if (!nan) { /* sorting NaN is undefined: no percentiles then */
        gsl_sort(kl, 1, (size_t)n);
        o->kl_p50 = cks_quantile_sorted(kl, n, 0.50);
        o->kl_p90 = cks_quantile_sorted(kl, n, 0.90);
        o->kl_p99 = cks_quantile_sorted(kl, n, 0.99);
        o->kl_max = kl[n - 1];
    }
    free(kl);
    return 0;
}

int cks_klsummary_compute(cks_klsummary *out, const cks_klpos *pos, int64_t n,
                          const int64_t *doc_npos, int64_t ndocs, const cks_boot_options *boot)
{
    cks_klsummary o;
    double *delta = NULL, dsum = 0;
    int64_t agree = 0, forgot = 0, learned = 0, hit_t = 0, hit_c = 0, total = 0;
    int err = 0;
    for (int64_t d = 0; d < ndocs; d++)
        total += doc_npos[d] >= 0 ? doc_npos[d] : n + 1;
    if (n < 0 || total != n)
        return cks_error_set(CKS_EINVAL, "KL summary: documents hold %lld of the %lld positions",
                             (long long)total, (long long)n);
    o.positions = n;
    o.kl = o.kl_p50 = o.kl_p90 = o.kl_p99 = o.kl_max = NAN;
    o.top1_agree = o.forgot = o.learned = o.dnll = o.dnll_lo = o.dnll_hi = NAN;
    o.top1_acc = o.top1_acc_base = NAN;
    if (n == 0)
        goto done;
    if (!(delta = malloc((size_t)n * sizeof *delta)))
        return cks_error_set(CKS_ENOMEM, "out of memory for %lld positions", (long long)n);
    for (int64_t i = 0; i < n; i++) {
        const cks_klpos *p = &pos[i];
        int ct = p->arg_c == p->y, tt = p->arg_t == p->y;
        agree += p->arg_c == p->arg_t;
        forgot += ct && !tt;
        learned += tt && !ct;
        hit_t += tt;
        hit_c += ct;
        delta[i] = p->nll_t - p->nll_c;
        dsum += delta[i];
    }
    o.top1_agree = (double)agree / (double)n;
    o.forgot = (double)forgot / (double)n;
    o.learned = (double)learned / (double)n;
    o.top1_acc = (double)hit_t / (double)n;
    o.top1_acc_base = (double)hit_c / (double)n;
    o.dnll = dsum / (double)n;
    if ((err = kl_stats(&o, pos, n)) == 0)
        err = cks_bootstrap_mean(&o.dnll_lo, &o.dnll_hi, delta, n, doc_npos, ndocs, boot);
    free(delta);
done:
    if (!err)
        *out = o;
    return err;
}
