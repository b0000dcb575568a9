/* bf16 rounding, vectorised, and the choice of the bf16 kernel (see bf16.h). */
#include "bf16.h"
#include "error.h"

#include <stdlib.h>
#include <string.h>

#define STAGE 1024 /* f32 elements widened at a time before rounding */

static const char *const precision_names[CKS_PRECISION_COUNT] = {"f32", "bf16"};
static const char *const kernel_names[CKS_BF16_KERNEL_COUNT] = {"auto", "avx512", "onednn",
                                                                "emulated"};

const char *cks_precision_name(cks_precision p)
{
    return (unsigned)p < CKS_PRECISION_COUNT ? precision_names[p] : "?";
}

int cks_precision_from_name(const char *name, cks_precision *out)
{
    for (int i = 0; i < CKS_PRECISION_COUNT; i++)
        if (name && strcmp(name, precision_names[i]) == 0) {
            *out = (cks_precision)i;
            return 0;
        }
    return cks_error_set(CKS_EINVAL, "precision must be f32 or bf16, not '%s'",
                         name ? name : "(none)");
}

const char *cks_bf16_kernel_name(cks_bf16_kernel k)
{
    return (unsigned)k < CKS_BF16_KERNEL_COUNT ? kernel_names[k] : "?";
}

int cks_cpu_has_avx512_bf16(void)
{
#if CKS_BF16_X86
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bf16");
#else
    return 0;
#endif
}

cks_bf16_kernel cks_bf16_kernel_resolve(cks_bf16_kernel want)
{
    if (want == CKS_BF16_AUTO) {
        const char *env = getenv("CKS_BF16_KERNEL");
        want = CKS_BF16_AVX512;
        for (int i = 1; env && i < CKS_BF16_KERNEL_COUNT; i++)
            if (strcmp(env, kernel_names[i]) == 0)
                want = (cks_bf16_kernel)i;
    }
    if ((want == CKS_BF16_AVX512 || want == CKS_BF16_ONEDNN) && !cks_cpu_has_avx512_bf16())
        want = CKS_BF16_EMULATED;
    return want;
}

#if CKS_BF16_X86
__attribute__((target("avx512f,avx512bw"))) static size_t round_avx512(uint16_t *d, const float *s,
                                                                       size_t n)
{
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256((__m256i *)(d + i), cks_bf16_round16(_mm512_loadu_ps(s + i)));
    return i;
}

__attribute__((target("avx512f,avx512bw"))) static size_t round_f32_avx512(float *d, const float *s,
                                                                           size_t n)
{
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512i w =
            _mm512_slli_epi32(_mm512_cvtepu16_epi32(cks_bf16_round16(_mm512_loadu_ps(s + i))), 16);
        _mm512_storeu_ps(d + i, _mm512_castsi512_ps(w));
    }
    return i;
}

static int have_avx512bw(void)
{
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
}
#endif

void cks_bf16_round_n(uint16_t *dst, const float *src, size_t n)
{
    size_t i = 0;
#if CKS_BF16_X86
    if (have_avx512bw())
        i = round_avx512(dst, src, n);
#endif
    for (; i < n; i++)
        dst[i] = cks_bf16_round(src[i]);
}

void cks_bf16_round_f32_n(float *dst, const float *src, size_t n)
{
    size_t i = 0;
#if CKS_BF16_X86
    if (have_avx512bw())
        i = round_f32_avx512(dst, src, n);
#endif
    for (; i < n; i++) {
        union {
            uint32_t u;
            float f;
        } v = {(uint32_t)cks_bf16_round(src[i]) << 16};
        dst[i] = v.f;
    }
}

void cks_bf16_from_stored(uint16_t *dst, cks_dtype dt, const void *src, size_t n)
{
    const unsigned char *s = src;
    const size_t es = cks_dtype_size(dt);
    float stage[STAGE];
    if (dt == CKS_DT_BF16) {
        memcpy(dst, src, n * sizeof *dst);
        return;
    }
#if CKS_BF16_X86
    if (dt == CKS_DT_F32 && have_avx512bw()) { /* straight from the (unaligned) source */
        size_t i = round_avx512(dst, src, n);
        for (; i < n; i++) {
            float f;
            memcpy(&f, s + 4 * i, 4);
            dst[i] = cks_bf16_round(f);
        }
        return;
    }
#endif
    for (size_t i = 0; i < n; i += STAGE) {
        size_t k = n - i < STAGE ? n - i : STAGE;
        cks_widen_f32(dt, s + i * es, stage, k);
        cks_bf16_round_n(dst + i, stage, k);
    }
}

void cks_bf16_from_stored_f32(float *dst, cks_dtype dt, const void *src, size_t n)
{
    cks_widen_f32(dt, src, dst, n);
    if (dt != CKS_DT_BF16)
        cks_bf16_round_f32_n(dst, dst, n);
}
