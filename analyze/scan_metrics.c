/* The table of metric families written by `scan` (see scan_metrics.h): norms, spectral
 * statistics and drift against the previous checkpoint and the reference, each an adapter
 * from the metric library's result struct to the values of its metric table. */
#include "scan_metrics.h"
#include "drift.h"
#include "error.h"
#include "norms.h"
#include "spectral.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static int compute_norms(const scan_input *in, double *out)
{
    cks_norms n;
    size_t count;
    cks_norms_metrics(&count);
    if (!cks_dtype_is_float(in->t->dtype)) { /* not applicable: NaN, no warning */
        for (size_t i = 0; i < count; i++)
            out[i] = NAN;
        return 0;
    }
    int err = cks_norms_compute(in->t, in->threads, &n);
    if (err)
        return err;
    cks_norms_values(&n, out);
    return 0;
}

static int drift_against(const cks_tensor *t, int64_t step, const cks_tensor *r, int64_t rstep,
                         int threads, double *out)
{
    size_t count;
    cks_drift_metrics(&count);
    for (size_t i = 0; i < count; i++)
        out[i] = NAN;
    if (!r || !cks_dtype_is_float(t->dtype))
        return 0;
    cks_drift d;
    int err = cks_drift_compute(t, step, r, rstep, threads, &d);
    if (err)
        return err;
    cks_drift_values(&d, out);
    return 0;
}

static int compute_drift_prev(const scan_input *in, double *out)
{
    return drift_against(in->t, in->step, in->prev, in->prev_step, in->threads, out);
}

static int compute_drift_ref(const scan_input *in, double *out)
{
    return drift_against(in->t, in->step, in->ref, in->ref_step, in->threads, out);
}

/* The cks_spectral field a metric name stands for; NaN for names added to the spectral
 * table later and not mapped here yet. */
static double spectral_field(const cks_spectral *s, const char *name)
{
    static const struct {
        const char *name;
        size_t off;
    } doubles[] = {
        {"sigma_max", offsetof(cks_spectral, sigma_max)},
        {"log_spectral_norm", offsetof(cks_spectral, log_spectral_norm)},
        {"log_norm", offsetof(cks_spectral, log_norm)},
        {"stable_rank", offsetof(cks_spectral, stable_rank)},
        {"entropy", offsetof(cks_spectral, entropy)},
        {"effective_rank", offsetof(cks_spectral, effective_rank)},
        {"alpha", offsetof(cks_spectral, alpha)},
        {"xmin", offsetof(cks_spectral, xmin)},
        {"ks", offsetof(cks_spectral, ks)},
        {"alpha_weighted", offsetof(cks_spectral, alpha_weighted)},
        {"mp_softrank", offsetof(cks_spectral, mp_softrank)},
    };
    for (size_t i = 0; i < sizeof doubles / sizeof doubles[0]; i++)
        if (strcmp(name, doubles[i].name) == 0)
            return *(const double *)((const char *)s + doubles[i].off);
    if (strcmp(name, "tail") == 0)
        return (double)s->tail;
    if (strcmp(name, "num_spikes") == 0)
        return (double)s->num_spikes;
    return NAN;
}

static int compute_spectral(const scan_input *in, double *out)
{
    size_t count;
    const cks_metric_info *m = cks_spectral_metrics(&count);
    for (size_t i = 0; i < count; i++)
        out[i] = NAN;
    if (!cks_tensor_is_matrix(in->t)) /* DESIGN §4: NaN for tensors that are not matrices */
        return 0;
    int64_t k = in->t->shape[0] < in->t->shape[1] ? in->t->shape[0] : in->t->shape[1];
    cks_spectral s;
    int err = cks_spectral_compute(in->t, in->threads, k < SCAN_SPECTRA_K ? (int)k : SCAN_SPECTRA_K,
                                   in->top, &s);
    if (err)
        return err;
    for (size_t i = 0; i < count; i++)
        out[i] = spectral_field(&s, m[i].name);
    *in->has_top = 1;
    return 0;
}

static const scan_group groups[] = {
    {"norms", "/norms", cks_norms_metrics, compute_norms},
    {"spectral", "/spectral", cks_spectral_metrics, compute_spectral},
    {"drift", "/drift/prev", cks_drift_metrics, compute_drift_prev},
    {"drift", "/drift/ref", cks_drift_metrics, compute_drift_ref},
};
#define NGROUPS (sizeof groups / sizeof groups[0])

const scan_group *scan_groups(size_t *n)
{
    *n = NGROUPS;
    return groups;
}

/* Distinct option names in table order, available ones only unless all. */
static void option_names(char *buf, size_t cap, int all)
{
    size_t k = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < NGROUPS; i++) {
        if ((!all && !groups[i].metrics) ||
            (i > 0 && strcmp(groups[i].option, groups[i - 1].option) == 0))
            continue;
        k += (size_t)snprintf(buf + k, k < cap ? cap - k : 0, "%s%s", k ? "," : "",
                              groups[i].option);
    }
}

const char *scan_default_metrics(void)
{
    static char names[256]; /* constant after the first call; the table is static */
    if (!names[0])
        option_names(names, sizeof names, 0);
    return names;
}

int scan_groups_parse(const char *list, const scan_group **out, size_t *n, char *canon, size_t cap)
{
    int want[NGROUPS] = {0};
    char known[256];
    option_names(known, sizeof known, 0);
    const char *p = list;
    if (!*list)
        return cks_error_set(CKS_EINVAL, "--metrics is empty (known: %s)", known);
    while (*p) {
        size_t len = strcspn(p, ",");
        int found = 0, available = 0;
        for (size_t i = 0; i < NGROUPS; i++) {
            if (strlen(groups[i].option) == len && strncmp(groups[i].option, p, len) == 0) {
                found = 1;
                available = groups[i].metrics != NULL;
                want[i] = 1;
            }
        }
        if (!found)
            return cks_error_set(CKS_EINVAL,
                                 "unknown metric family '%.*s' in --metrics (known: %s)", (int)len,
                                 p, known);
        if (!available)
            return cks_error_set(CKS_EINVAL,
                                 "metric family '%.*s' is not built into this ckptscope "
                                 "(available: %s)",
                                 (int)len, p, known);
        p += len;
        if (*p == ',')
            p++;
    }
    size_t k = 0, c = 0;
    canon[0] = '\0';
    for (size_t i = 0; i < NGROUPS; i++) {
        if (!want[i])
            continue;
        out[k++] = &groups[i];
        if (k == 1 || strcmp(groups[i].option, out[k - 2]->option) != 0)
            c += (size_t)snprintf(canon + c, c < cap ? cap - c : 0, "%s%s", c ? "," : "",
                                  groups[i].option);
    }
    *n = k;
    return 0;
}
