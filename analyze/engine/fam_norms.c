/* The norms family (DESIGN §3): fro, rms, mean, std, absmax, nan, inf of every float
 * tensor, from metrics/norms.h; NaN for tensors of other dtypes. */
#include "family.h"
#include "norms.h"

#include <math.h>

static int tensor(const cks_family_tensor *in, double *out)
{
    size_t count;
    cks_norms n;
    cks_norms_metrics(&count);
    if (!cks_dtype_is_float(in->t->dtype)) { /* not applicable: NaN, no warning */
        for (size_t i = 0; i < count; i++)
            out[i] = NAN;
        return 0;
    }
    int err = cks_norms_compute(in->t, in->threads, &n);
    if (err == 0)
        cks_norms_values(&n, out);
    return err;
}

const cks_family cks_family_norms = {
    .option = "norms", .path = "/norms", .metrics = cks_norms_metrics, .tensor = tensor};
