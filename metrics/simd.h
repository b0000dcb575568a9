/* Small AVX-512 helpers shared by the streaming metric kernels (norms, drift). Each is
 * compiled for its target only; callers dispatch with __builtin_cpu_supports. */
#ifndef CKS_SIMD_H
#define CKS_SIMD_H

#include <immintrin.h>

/* s + the 16 f32 lanes of p widened to f64 (two 8-lane halves added). */
__attribute__((target("avx512f,avx512dq"))) static inline __m512d cks_simd_wsum(__m512d s, __m512 p)
{
    s = _mm512_add_pd(s, _mm512_cvtps_pd(_mm512_castps512_ps256(p)));
    return _mm512_add_pd(
        s, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(p), 1))));
}

#endif
