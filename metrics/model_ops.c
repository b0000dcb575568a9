/* Row operations of the forward pass (see model_ops.h). References: transformers'
 * LlamaRMSNorm, torch.nn.LayerNorm, OlmoLayerNorm, GELUActivation, OlmoAttention's clamp,
 * LlamaRotaryEmbedding and apply_rotary_pos_emb (GPT-NeoX's partial form). */
#include "model_ops.h"
#include "gemm.h"
#include "vmath.h"

#include <math.h>
#include <string.h>

int cks_model_linear(cks_mm *mm, const cks_wmat *W, const float *x, int64_t ldx, int64_t m,
                     const float *b, float *y, int64_t ldy, int accumulate, int nthreads)
{
    const int64_t out = W->n;
    int err = cks_matmul(mm, W, 0, out, m, x, ldx, accumulate ? 1.0f : 0.0f, y, ldy, nthreads);
    if (err || !b)
        return err;
#pragma omp parallel for num_threads(nthreads) schedule(static)
    for (int64_t r = 0; r < m; r++) {
        float *yr = y + r * ldy;
        for (int64_t j = 0; j < out; j++)
            yr[j] += b[j];
    }
    return 0;
}

static void norm_row(cks_norm_type type, float *o, const float *x, const float *w, const float *b,
                     int64_t n, float eps)
{
    double s = 0, ss = 0;
    if (type == CKS_NORM_RMS) {
        for (int64_t i = 0; i < n; i++)
            ss += (double)x[i] * x[i];
        float inv = 1.0f / sqrtf((float)(ss / (double)n) + eps);
        for (int64_t i = 0; i < n; i++)
            o[i] = w[i] * (x[i] * inv);
        return;
    }
    for (int64_t i = 0; i < n; i++)
        s += x[i];
    const float mean = (float)(s / (double)n);
    for (int64_t i = 0; i < n; i++) {
        double d = (double)x[i] - (double)mean;
        ss += d * d;
    }
    const float inv = 1.0f / sqrtf((float)(ss / (double)n) + eps);
    if (type == CKS_NORM_LAYER_NP) {
        for (int64_t i = 0; i < n; i++)
            o[i] = (x[i] - mean) * inv;
        return;
    }
    for (int64_t i = 0; i < n; i++)
        o[i] = (x[i] - mean) * inv * w[i] + b[i];
}

void cks_model_norm(cks_norm_type type, float *out, int64_t ldo, const float *x, int64_t ldx,
                    const float *w, const float *b, int64_t rows, int64_t n, float eps,
                    int nthreads)
{
    if (type == CKS_NORM_LAYER_NP)
        eps = 1e-5f; /* OlmoLayerNorm: F.layer_norm(..., eps=1e-5) whatever the config says */
#pragma omp parallel for num_threads(nthreads) schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        if (type == CKS_NORM_NONE) {
            if (out + r * ldo != x + r * ldx)
                memcpy(out + r * ldo, x + r * ldx, (size_t)n * sizeof *out);
            continue;
        }
        norm_row(type, out + r * ldo, x + r * ldx, w, b, n, eps);
    }
}

/* erf(a) for a >= 0 by Abramowitz & Stegun 7.1.26: 1 - t(a1 + t(a2 + t(a3 + t(a4 + t a5))))
 * e^(-a²), t = 1 / (1 + p a), |error| <= 1.5e-7; e^(-a²) from cks_vexp. Blocks of GELU_BLOCK
 * elements in loops the compiler vectorises (libm's erff, one call per element, cost as
 * much as the MLP's matrix products save over SwiGLU). */
#define GELU_BLOCK 256

void cks_model_gelu(float *x, int64_t n)
{
    float e[GELU_BLOCK];
    for (int64_t i0 = 0; i0 < n; i0 += GELU_BLOCK) {
        const int64_t m = n - i0 < GELU_BLOCK ? n - i0 : GELU_BLOCK;
        float *v = x + i0;
        for (int64_t i = 0; i < m; i++) {
            float a = fabsf(v[i]) * (float)M_SQRT1_2;
            e[i] = -a * a;
        }
        cks_vexp(e, m);
        for (int64_t i = 0; i < m; i++) {
            float a = fabsf(v[i]) * (float)M_SQRT1_2, t = 1.0f / (1.0f + 0.3275911f * a);
            float poly =
                t *
                (0.254829592f +
                 t * (-0.284496736f + t * (1.421413741f + t * (-1.453152027f + t * 1.061405429f))));
            float erfa = 1.0f - poly * e[i];
            v[i] = 0.5f * v[i] * (1.0f + (v[i] < 0 ? -erfa : erfa));
        }
    }
}

void cks_model_clip(float *x, int64_t ldx, int64_t rows, int64_t n, float c, int nthreads)
{
#pragma omp parallel for num_threads(nthreads) schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        float *xr = x + r * ldx;
        for (int64_t i = 0; i < n; i++)
            xr[i] = xr[i] < -c ? -c : xr[i] > c ? c : xr[i];
    }
}

void cks_model_rope_tables(float *cosv, float *sinv, int64_t max_pos, int64_t nfreq, int64_t d,
                           double theta)
{
    const float fd = (float)d, base = (float)theta;
    for (int64_t i = 0; i < nfreq; i++) {
        float inv = 1.0f / powf(base, (float)(2 * i) / fd);
        for (int64_t p = 0; p < max_pos; p++) {
            float ang = (float)p * inv;
            cosv[p * nfreq + i] = (float)cos((double)ang);
            sinv[p * nfreq + i] = (float)sin((double)ang);
        }
    }
}

void cks_model_rope(float *qk, int64_t ld, int64_t rows, int64_t nheads, int64_t hd, int64_t nfreq,
                    const int32_t *pos, const float *cosv, const float *sinv, int nthreads)
{
    if (nfreq == 0)
        return;
#pragma omp parallel for num_threads(nthreads) schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        const float *cs = cosv + (int64_t)pos[r] * nfreq, *sn = sinv + (int64_t)pos[r] * nfreq;
        for (int64_t h = 0; h < nheads; h++) {
            float *v = qk + r * ld + h * hd;
            for (int64_t i = 0; i < nfreq; i++) {
                float a = v[i], b = v[i + nfreq];
                v[i] = a * cs[i] - b * sn[i];
                v[i + nfreq] = b * cs[i] + a * sn[i];
            }
        }
    }
}
