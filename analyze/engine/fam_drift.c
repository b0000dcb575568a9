/* The drift family (DESIGN §3), two groups under one --metrics name: each float tensor
 * against the same tensor of the previous complete checkpoint (/drift/prev) and of the
 * reference (/drift/ref), from metrics/drift.h. NaN where there is nothing to compare
 * with. */
#include "drift.h"
#include "family.h"

#include <math.h>

static int against(const cks_tensor *t, int64_t step, const cks_tensor *r, int64_t rstep,
                   int threads, double *out)
{
    size_t count;
    cks_drift d;
    cks_drift_metrics(&count);
    for (size_t i = 0; i < count; i++)
        out[i] = NAN;
    if (!r || !cks_dtype_is_float(t->dtype))
        return 0;
    int err = cks_drift_compute(t, step, r, rstep, threads, &d);
    if (err == 0)
        cks_drift_values(&d, out);
    return err;
}

static int prev(const cks_family_tensor *in, double *out)
{
    return against(in->t, in->step, in->prev, in->prev_step, in->threads, out);
}

static int ref(const cks_family_tensor *in, double *out)
{
    return against(in->t, in->step, in->ref, in->ref_step, in->threads, out);
}

const cks_family cks_family_drift_prev = {.option = "drift",
                                          .path = "/drift/prev",
                                          .needs = CKS_FAMILY_PREV,
                                          .metrics = cks_drift_metrics,
                                          .tensor = prev};

const cks_family cks_family_drift_ref = {.option = "drift",
                                         .path = "/drift/ref",
                                         .needs = CKS_FAMILY_REF,
                                         .metrics = cks_drift_metrics,
                                         .tensor = ref};
