/* A state dict as torch.save writes it (protocol 2 pickle of an OrderedDict of
 * _rebuild_tensor_v2 calls, one storage per tensor, in a zip archive laid out as torch's
 * miniz writer does: <archive>/data.pkl, <archive>/data/<key>, <archive>/version), for
 * the fixture generator's pytorch_model*.bin files. torch.load reads them (the family
 * reference tools/family_ref.py does). */
#include "fixture.h"
#include "torchfx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *storage_class(cks_dtype dt)
{
    switch (dt) {
    case CKS_DT_F16:
        return "HalfStorage";
    case CKS_DT_BF16:
        return "BFloat16Storage";
    case CKS_DT_F64:
        return "DoubleStorage";
    case CKS_DT_BOOL:
        return "BoolStorage";
    default:
        return "FloatStorage";
    }
}

unsigned char *cks_fx_torch_bin(const cks_fx_st_tensor *t, int n, const char *archive, size_t *size)
{
    cks_fx_buf pk = {0};
    cks_fx_zip_entry *e = calloc((size_t)n + 2, sizeof *e);
    char(*names)[128] = calloc((size_t)n + 2, sizeof *names);
    char key[32];
    if (!e || !names) {
        free(e);
        free(names);
        return NULL;
    }
    cks_fx_put(&pk, "\x80\x02", 2);
    cks_fx_pk_odict(&pk);
    cks_fx_putc(&pk, '(');
    for (int i = 0; i < n; i++) {
        int64_t stride[8], numel = 1;
        for (int d = t[i].ndim - 1; d >= 0; d--) {
            stride[d] = numel;
            numel *= t[i].shape[d];
        }
        snprintf(key, sizeof key, "%d", i);
        cks_fx_pk_str(&pk, t[i].name);
        cks_fx_pk_tensor(&pk, key, storage_class(t[i].dtype), numel, 0, t[i].ndim, t[i].shape,
                         stride);
        snprintf(names[i + 1], sizeof names[i + 1], "%s/data/%d", archive, i);
        e[i + 1] = (cks_fx_zip_entry){names[i + 1], t[i].data, t[i].nbytes};
    }
    cks_fx_put(&pk, "u.", 2);
    snprintf(names[0], sizeof names[0], "%s/data.pkl", archive);
    e[0] = (cks_fx_zip_entry){names[0], pk.p, pk.n};
    snprintf(names[n + 1], sizeof names[n + 1], "%s/version", archive);
    e[n + 1] = (cks_fx_zip_entry){names[n + 1], "3\n", 2};
    unsigned char *z = cks_fx_torchzip_mem(e, n + 2, size);
    cks_fx_buf_free(&pk);
    free(names);
    free(e);
    return z;
}
