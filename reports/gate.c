/* The gate's decision for one score (see gate.h): pick the first tolerance term that
 * applies, turn it into how far the score may move down and up, and classify the change.
 * References: Wilson (1927) for the score interval of a proportion, Newcombe (1998)
 * method 10 for the difference of two proportions. */
#include "gate.h"
#include "error.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const kind_names[] = {"abs", "rel", "se"};

int cks_tolerance_parse(const char *spec, cks_tolerance *out)
{
    cks_tolerance t = {.n = 0};
    const char *p = spec;
    if (!*spec)
        return cks_error_set(CKS_EINVAL, "empty tolerance: expected abs:X, rel:X or se:K");
    while (*p) {
        size_t len = strcspn(p, ","), k;
        char term[64], *end;
        if (len == 0 || len >= sizeof term || t.n == CKS_TOL_MAX_TERMS)
            goto bad;
        memcpy(term, p, len);
        term[len] = '\0';
        for (k = 0; k < 3; k++) {
            size_t kl = strlen(kind_names[k]);
            if (strncmp(term, kind_names[k], kl) == 0 && term[kl] == ':')
                break;
        }
        if (k == 3)
            goto bad;
        const char *num = term + strlen(kind_names[k]) + 1;
        double x = strtod(num, &end);
        if (!*num || *end || !isfinite(x) || x < 0 || (k == CKS_TOL_SE && x == 0))
            goto bad;
        t.t[t.n].kind = (cks_tol_kind)k;
        t.t[t.n].x = x;
        t.n++;
        p += len;
        if (*p == ',' && *++p == '\0')
            goto bad;
    }
    *out = t;
    return 0;
bad:
    return cks_error_set(CKS_EINVAL,
                         "bad tolerance '%.100s': expected up to %d comma-separated terms abs:X, "
                         "rel:X or se:K with X >= 0 and K > 0 (e.g. se:2,rel:0.01)",
                         spec, CKS_TOL_MAX_TERMS);
}

const char *cks_tolerance_format(const cks_tolerance *t, char *buf, size_t cap)
{
    size_t k = 0;
    buf[0] = '\0';
    for (int i = 0; i < t->n; i++)
        k += (size_t)snprintf(buf + k, k < cap ? cap - k : 0, "%s%s:%.10g", i ? "," : "",
                              kind_names[t->t[i].kind], t->t[i].x);
    return buf;
}

const char *cks_severity_name(cks_severity s)
{
    static const char *const names[] = {"unchanged", "improvement", "warning", "regression"};
    return (unsigned)s < 4 ? names[s] : "?";
}

void cks_wilson_interval(double p, double n, double z, double *lo, double *hi)
{
    double z2n = z * z / n, denom = 1 + z2n;
    double centre = (p + z2n / 2) / denom;
    double half = z / denom * sqrt(p * (1 - p) / n + z2n / (4 * n));
    *lo = fmax(0, centre - half);
    *hi = fmin(1, centre + half);
}

typedef enum { SE_NONE, SE_STORED, SE_BINOMIAL } se_source;

/* A side's standard error and where it came from. */
static se_source side_se(const cks_gate_point *p, int binomial, double *se)
{
    if (isfinite(p->stderr_) && p->stderr_ >= 0) {
        *se = p->stderr_;
        return SE_STORED;
    }
    if (binomial && isfinite(p->n) && p->n >= 1 && p->value >= 0 && p->value <= 1) {
        *se = sqrt(p->value * (1 - p->value) / p->n);
        return SE_BINOMIAL;
    }
    *se = NAN;
    return SE_NONE;
}

static void note(cks_gate_result *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void note(cks_gate_result *o, const char *fmt, ...)
{
    size_t k = strlen(o->note);
    va_list ap;
    if (k && k + 2 < sizeof o->note) {
        memcpy(o->note + k, "; ", 3);
        k += 2;
    }
    va_start(ap, fmt);
    vsnprintf(o->note + k, sizeof o->note - k, fmt, ap);
    va_end(ap);
}

/* How far the value may move down and up, from the first applicable term; 0 when none
 * applies (*rule stays ""). */
static int tolerance_band(const cks_gate_point *a, const cks_gate_point *r, int binomial,
                          const cks_tolerance *tol, double *down, double *up, char *rule,
                          size_t cap, double *sigma)
{
    double sa, sr;
    se_source ka = side_se(a, binomial, &sa), kr = side_se(r, binomial, &sr);
    *sigma = ka != SE_NONE && kr != SE_NONE ? hypot(sa, sr) : NAN;
    for (int i = 0; i < tol->n; i++) {
        double x = tol->t[i].x;
        switch (tol->t[i].kind) {
        case CKS_TOL_ABS:
            *down = *up = x;
            break;
        case CKS_TOL_REL:
            if (r->value == 0 || !isfinite(r->value))
                continue;
            *down = *up = x * fabs(r->value);
            break;
        case CKS_TOL_SE:
            if (ka == SE_NONE || kr == SE_NONE)
                continue;
            if (ka == SE_BINOMIAL && kr == SE_BINOMIAL) {
                /* Newcombe's hybrid score interval for a - r: [d - sqrt((a-la)^2 +
                 * (ur-r)^2), d + sqrt((ua-a)^2 + (r-lr)^2)] */
                double la, ua, lr, ur;
                cks_wilson_interval(a->value, a->n, x, &la, &ua);
                cks_wilson_interval(r->value, r->n, x, &lr, &ur);
                *down = hypot(ua - a->value, r->value - lr);
                *up = hypot(a->value - la, ur - r->value);
                snprintf(rule, cap, "wilson:%.10g", x);
                return 1;
            }
            *down = *up = x * *sigma;
            break;
        }
        snprintf(rule, cap, "%s:%.10g", kind_names[tol->t[i].kind], x);
        return 1;
    }
    return 0;
}

static void sample_counts(const cks_gate_point *a, const cks_gate_point *r, const char *a_name,
                          const char *r_name, cks_gate_result *out)
{
    if (isfinite(a->n) && isfinite(r->n) && a->n != r->n) {
        if (out->severity < CKS_SEV_WARNING)
            out->severity = CKS_SEV_WARNING;
        note(out, "sample counts differ (%.0f at %s, %.0f at %s): not the same evaluation", a->n,
             a_name, r->n, r_name);
    }
}

void cks_gate_compare(const cks_gate_point *a, const cks_gate_point *r, cks_direction dir,
                      int binomial, const cks_tolerance *tol, const char *a_name,
                      const char *r_name, cks_gate_result *out)
{
    double down = NAN, up = NAN;
    memset(out, 0, sizeof *out);
    out->delta = a->value - r->value;
    out->sigma = out->z = out->worse_tol = out->better_tol = NAN;
    out->lo = out->hi = NAN;
    if (isnan(a->value) || isnan(r->value)) {
        out->severity = CKS_SEV_WARNING;
        note(out, "no value at %s%s%s (NaN): cannot compare", isnan(a->value) ? a_name : r_name,
             isnan(a->value) && isnan(r->value) ? " nor at " : "",
             isnan(a->value) && isnan(r->value) ? r_name : "");
        return;
    }
    int banded =
        tolerance_band(a, r, binomial, tol, &down, &up, out->rule, sizeof out->rule, &out->sigma);
    if (out->sigma > 0 && isfinite(out->delta))
        out->z = out->delta / out->sigma;
    if (isnan(out->delta)) { /* inf - inf */
        out->severity = CKS_SEV_WARNING;
        note(out, "%s and %s are both infinite: cannot compare", a_name, r_name);
        return;
    }
    /* g: the change in the better direction; worse/better: the bands on each side */
    double g = dir == CKS_DIR_LOWER ? -out->delta : out->delta;
    double worse = dir == CKS_DIR_LOWER ? up : down, better = dir == CKS_DIR_LOWER ? down : up;
    if (dir == CKS_DIR_EQUAL) {
        worse = out->delta > 0 ? up : down;
        better = worse;
        g = -fabs(out->delta);
    }
    out->worse_tol = banded ? worse : NAN;
    out->better_tol = banded ? better : NAN;
    if (dir == CKS_DIR_UNKNOWN) {
        out->severity = CKS_SEV_WARNING;
        note(out, "direction unknown: say whether higher or lower is better with --direction");
    } else if (!banded && g < 0) {
        out->severity = CKS_SEV_WARNING;
        note(out, "%s by %.6g and no tolerance term applies (%s)",
             dir == CKS_DIR_EQUAL ? "changed" : "worse", fabs(out->delta),
             isnan(out->sigma) ? "no standard error" : "reference is 0");
    } else if (!banded) {
        out->severity = g > 0 ? CKS_SEV_IMPROVEMENT : CKS_SEV_UNCHANGED;
    } else if (-g > worse) {
        out->severity = CKS_SEV_REGRESSION;
        note(out, "%s by %.6g, beyond the tolerance %.6g (%s)",
             dir == CKS_DIR_EQUAL ? "changed" : "worse", -g, worse, out->rule);
    } else if (g < 0 && dir != CKS_DIR_EQUAL) {
        out->severity = CKS_SEV_WARNING;
        note(out, "worse by %.6g, within the tolerance %.6g (%s): a drop within noise", -g, worse,
             out->rule);
    } else {
        out->severity =
            g > better && dir != CKS_DIR_EQUAL ? CKS_SEV_IMPROVEMENT : CKS_SEV_UNCHANGED;
    }
    sample_counts(a, r, a_name, r_name, out);
}

#define Z95 1.959963984540054 /* the 0.975 quantile of the standard normal */

/* The margin t of the first term that applies, and the interval as that term reads it;
 * 0 when none applies. */
static int interval_margin(const cks_gate_point *r, const cks_tolerance *tol, double d, double *lo,
                           double *hi, double *t, char *rule, size_t cap)
{
    for (int i = 0; i < tol->n; i++) {
        double x = tol->t[i].x;
        switch (tol->t[i].kind) {
        case CKS_TOL_ABS:
            *t = x;
            break;
        case CKS_TOL_REL:
            if (r->value == 0 || !isfinite(r->value))
                continue;
            *t = x * fabs(r->value);
            break;
        case CKS_TOL_SE: /* K standard errors: the 95 % interval's halves times K / z */
            *lo = d - (d - *lo) * x / Z95;
            *hi = d + (*hi - d) * x / Z95;
            *t = 0;
            break;
        }
        snprintf(rule, cap, "bootstrap+%s:%.10g", kind_names[tol->t[i].kind], x);
        return 1;
    }
    return 0;
}

void cks_gate_compare_interval(const cks_gate_point *a, const cks_gate_point *r, double lo,
                               double hi, cks_direction dir, const cks_tolerance *tol,
                               const char *a_name, const char *r_name, cks_gate_result *out)
{
    double d = a->value - r->value, t = NAN;
    if (isnan(lo) || isnan(hi) || !isfinite(d) || dir == CKS_DIR_UNKNOWN ||
        !interval_margin(r, tol, d, &lo, &hi, &t, out->rule, sizeof out->rule)) {
        cks_gate_compare(a, r, dir, 0, tol, a_name, r_name, out);
        return;
    }
    char rule[48];
    memcpy(rule, out->rule, sizeof rule);
    memset(out, 0, sizeof *out);
    memcpy(out->rule, rule, sizeof rule);
    out->delta = d;
    out->sigma = out->z = NAN;
    out->worse_tol = out->better_tol = t;
    out->interval = 1;
    out->lo = lo;
    out->hi = hi;
    /* the interval in the worse direction: [wlo, whi], worse > 0 */
    double wlo = dir == CKS_DIR_HIGHER ? -hi : lo, whi = dir == CKS_DIR_HIGHER ? -lo : hi;
    double g = dir == CKS_DIR_HIGHER ? -d : d;
    if (dir == CKS_DIR_EQUAL) {
        if (lo > t || hi < -t) {
            out->severity = CKS_SEV_REGRESSION;
            note(out,
                 "changed by %.6g; its 95%% interval [%.6g, %.6g] lies beyond the tolerance "
                 "%.6g (%s)",
                 d, lo, hi, t, out->rule);
        }
    } else if (wlo > t) {
        out->severity = CKS_SEV_REGRESSION;
        note(out,
             "worse by %.6g; its 95%% interval [%.6g, %.6g] lies wholly beyond the tolerance "
             "%.6g (%s)",
             g, lo, hi, t, out->rule);
    } else if (whi < -t) {
        out->severity = CKS_SEV_IMPROVEMENT;
    } else if (g > 0) {
        out->severity = CKS_SEV_WARNING;
        note(out,
             "worse by %.6g, but its 95%% interval [%.6g, %.6g] reaches within the tolerance "
             "%.6g (%s): a drop within noise",
             g, lo, hi, t, out->rule);
    }
    sample_counts(a, r, a_name, r_name, out);
}
