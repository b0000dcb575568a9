/* The spectral family (DESIGN §3): the statistics of every 2-D weight matrix and its
 * largest eigenvalues (/spectra/<tensor>), from metrics/spectral.h. The values are the
 * ones cks_spectral_value decides, as `inspect --spectral` prints them: NaN where a
 * statistic is undefined (no power-law fit: tail NaN; no spectrum: num_spikes NaN). */
#include "family.h"
#include "spectral.h"

#include <math.h>

static int tensor(const cks_family_tensor *in, double *out)
{
    size_t count;
    cks_spectral_metrics(&count);
    for (size_t i = 0; i < count; i++)
        out[i] = NAN;
    if (!cks_tensor_is_matrix(in->t)) /* DESIGN §4: NaN for tensors that are not matrices */
        return 0;
    int64_t k = in->t->shape[0] < in->t->shape[1] ? in->t->shape[0] : in->t->shape[1];
    cks_spectral s;
    int err = cks_spectral_compute(in->t, in->threads, k < CKS_SPECTRA_K ? (int)k : CKS_SPECTRA_K,
                                   in->top, &s);
    if (err)
        return err;
    for (size_t i = 0; i < count; i++)
        out[i] = cks_spectral_value(&s, i);
    *in->has_top = 1;
    return 0;
}

const cks_family cks_family_spectral = {
    .option = "spectral", .path = "/spectral", .metrics = cks_spectral_metrics, .tensor = tensor};
