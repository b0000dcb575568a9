/* bfloat16 arithmetic for `--precision bf16` (DESIGN §5): rounding float32 to bf16 (round
 * to nearest even, the rule of torch's .to(torch.bfloat16) and of a GPU's bf16 matmul
 * operands), the stored-dtype -> bf16 path of the weights, and the run-time choice of the
 * bf16 matrix kernel.
 *
 * Rounding rule, exactly (loaders/dtype.c cks_f32_to_bf16): the f32 bit pattern u becomes
 * (u + 0x7fff + ((u >> 16) & 1)) >> 16; NaN stays NaN (made quiet); subnormals are kept
 * (not flushed: the rounding is integer arithmetic, not VCVTNEPS2BF16); magnitudes that
 * round past the largest bf16 become ±inf. A stored F16 or F64 weight is first taken as
 * the f32 value the f32 path uses (exact for F16, rounded for F64), then rounded.
 *
 * The x86 kernels are compiled only where CKS_BF16_X86 is 1 (x86-64, SIMD not switched
 * off with CKS_NO_SIMD); elsewhere every bf16 product runs the emulated kernel. */
#ifndef CKS_BF16_H
#define CKS_BF16_H

#include "dtype.h"

#include <stddef.h>
#include <stdint.h>

#if defined(__x86_64__) && !defined(CKS_NO_SIMD)
#define CKS_BF16_X86 1
#else
#define CKS_BF16_X86 0
#endif

/* The evaluation arithmetic of DESIGN §5 (`--precision`). */
typedef enum { CKS_PRECISION_F32 = 0, CKS_PRECISION_BF16, CKS_PRECISION_COUNT } cks_precision;

/* "f32" / "bf16". */
const char *cks_precision_name(cks_precision p);
/* Looks a name up; CKS_EINVAL (message set, listing the names) when unknown. */
int cks_precision_from_name(const char *name, cks_precision *out);

/* How a bf16 matrix product is computed; every kernel rounds the same operands the same
 * way, so they differ only in the order of the f32 additions.
 *   AVX512:   our own AVX512_BF16 kernel (vdpbf16ps), packed operands (gemm_bf16.c)
 *   ONEDNN:   oneDNN's matmul primitive, bf16 source and weights, f32 destination
 *   EMULATED: the bf16-rounded operands held as f32 and multiplied by the f32 sgemm (a
 *             product of two bf16 values is exact in f32, so each step is the same
 *             rounded f32 addition) — any CPU
 * AUTO resolves to the fastest the CPU supports (measured: bench/bench_bf16.c). */
typedef enum {
    CKS_BF16_AUTO = 0,
    CKS_BF16_AVX512,
    CKS_BF16_ONEDNN,
    CKS_BF16_EMULATED,
    CKS_BF16_KERNEL_COUNT
} cks_bf16_kernel;

/* "auto", "avx512", "onednn", "emulated". */
const char *cks_bf16_kernel_name(cks_bf16_kernel k);

/* 1 when this CPU and OS run AVX512F/BW/VL + AVX512_BF16 code (always 0 without
 * CKS_BF16_X86). */
int cks_cpu_has_avx512_bf16(void);

/* The kernel to run for a request: AUTO becomes the environment's CKS_BF16_KERNEL when set
 * to one of the names above (tests and benchmarks force a path with it), else AVX512 where
 * the CPU has it, else EMULATED; a kernel the CPU cannot run (AVX512 or ONEDNN without
 * AVX512_BF16) becomes EMULATED. Never returns AUTO. */
cks_bf16_kernel cks_bf16_kernel_resolve(cks_bf16_kernel want);

/* The scalar rule (the same as cks_f32_to_bf16). */
static inline uint16_t cks_bf16_round(float f)
{
    union {
        float f;
        uint32_t u;
    } v = {f};
    if ((v.u & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((v.u >> 16) | 0x40);
    return (uint16_t)((v.u + 0x7fffu + ((v.u >> 16) & 1)) >> 16);
}

#if CKS_BF16_X86
#include <immintrin.h>

/* 16 lanes of the rule (AVX512F/BW): integer add of 0x7fff + lsb, NaN lanes made quiet. */
__attribute__((target("avx512f,avx512bw"))) static inline __m256i cks_bf16_round16(__m512 x)
{
    const __m512i u = _mm512_castps_si512(x);
    const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    __m512i r = _mm512_srli_epi32(
        _mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7fff)), lsb), 16);
    const __mmask16 nan = _mm512_cmpgt_epu32_mask(
        _mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)), _mm512_set1_epi32(0x7f800000));
    r = _mm512_mask_or_epi32(r, nan, _mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40));
    return _mm512_cvtepi32_epi16(r);
}
#endif

/* dst[i] = bf16(src[i]) for i < n. */
void cks_bf16_round_n(uint16_t *dst, const float *src, size_t n);

/* dst[i] = float(bf16(src[i])): the rounded value kept as f32 (the emulated kernel's
 * operands). dst may equal src. */
void cks_bf16_round_f32_n(float *dst, const float *src, size_t n);

/* n stored elements of a float dtype (F32, F16, BF16, F64) to bf16: BF16 copied as stored,
 * the others taken as f32 (cks_widen_f32) and rounded. src need not be aligned. */
void cks_bf16_from_stored(uint16_t *dst, cks_dtype dt, const void *src, size_t n);

/* The same values as f32 (float(bf16(widen(src)))), for the emulated kernel. */
void cks_bf16_from_stored_f32(float *dst, cks_dtype dt, const void *src, size_t n);

#endif
