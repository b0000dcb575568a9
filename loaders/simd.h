/* The one SIMD style of the streaming kernels (dtype widening, norms, drift, the forward
 * pass's row kernels): loops written with GCC vector extensions, which every target
 * compiles (SSE2 on baseline x86-64, NEON on aarch64), and on x86-64 built three times by
 * CKS_CLONES (x86-64-v4: AVX-512; x86-64-v3: AVX2, FMA, F16C; the baseline), the best
 * clone picked when the program loads. No intrinsics here (drift.c's F16 conversion is the
 * one measured exception, x86-64 only). CMake's -DCKS_SIMD=OFF defines
 * CKS_SIMD=0: no clones and no CPU tests, the same loops for the baseline only.
 *
 * Functions that take or return vectors are always inlined and pass them by pointer: a
 * vector argument by value would depend on the clone's ABI. */
#ifndef CKS_SIMD_H
#define CKS_SIMD_H

#include <stdint.h>
#include <string.h>

/* Clang (the fuzz build) builds the portable loops: speed does not matter there. */
/* CKS_X86_CLONES is 1 where the kernels are cloned (and where metrics/drift.c may use its
 * one measured block of intrinsics). */
#if defined(CKS_SIMD) && CKS_SIMD && defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define CKS_X86_CLONES 1
#define CKS_CLONES     __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define CKS_X86_CLONES 0
#define CKS_CLONES
#endif

#define CKS_VINLINE static inline __attribute__((always_inline))

typedef float cks_v16f __attribute__((vector_size(64)));
typedef double cks_v8d __attribute__((vector_size(64)));
typedef double cks_v16d __attribute__((vector_size(128)));
typedef int32_t cks_v16i __attribute__((vector_size(64)));
typedef uint32_t cks_v16u __attribute__((vector_size(64)));
typedef uint16_t cks_v16h __attribute__((vector_size(32)));
typedef uint16_t cks_v32h __attribute__((vector_size(64)));
typedef uint32_t cks_v16u_unaligned __attribute__((vector_size(64), aligned(1), may_alias));

/* 64 bytes at p (unaligned) in one load. The access is volatile so that GCC keeps it one
 * load into a register: otherwise it folds the load into each instruction that uses the
 * value, loading every cache line two or three times, which on one thread streaming from
 * memory held the 16-bit norms at 70% of a plain read instead of 100% (bench_norms). */
CKS_VINLINE void cks_v_load(cks_v16u *out, const void *p)
{
    *out = *(const volatile cks_v16u_unaligned *)p;
}

/* The 16 lanes of p widened to f64, low eight and high eight (converted as one 16-lane
 * vector: GCC 12 makes two vcvtps2pd of it, but four of an 8-lane conversion). */
CKS_VINLINE void cks_v_widen2(const cks_v16f *p, cks_v8d *lo, cks_v8d *hi)
{
    cks_v16d w = __builtin_convertvector(*p, cks_v16d);
    *lo = __builtin_shufflevector(w, w, 0, 1, 2, 3, 4, 5, 6, 7);
    *hi = __builtin_shufflevector(w, w, 8, 9, 10, 11, 12, 13, 14, 15);
}

/* *s += the 16 lanes of p widened to f64 (the low eight, then the high eight). */
CKS_VINLINE void cks_v_wsum(cks_v8d *s, const cks_v16f *p)
{
    cks_v8d lo, hi;
    cks_v_widen2(p, &lo, &hi);
    *s += lo;
    *s += hi;
}

/* The lanes of s added in lane order. */
CKS_VINLINE double cks_v_hsum(const cks_v8d *s)
{
    double t = 0;
    for (int l = 0; l < 8; l++)
        t += (*s)[l];
    return t;
}

/* Lane-wise unsigned maxima (the compiler makes one vpmaxuw / vpmaxud / umax of each). */
CKS_VINLINE void cks_v_max16(cks_v32h *m, const cks_v32h *x)
{
    cks_v32h y = *m;
    for (int l = 0; l < 32; l++)
        y[l] = (*x)[l] > y[l] ? (*x)[l] : y[l];
    *m = y;
}
CKS_VINLINE void cks_v_max32(cks_v16u *m, const cks_v16u *x)
{
    cks_v16u y = *m;
    for (int l = 0; l < 16; l++)
        y[l] = (*x)[l] > y[l] ? (*x)[l] : y[l];
    *m = y;
}
CKS_VINLINE uint32_t cks_v_hmax16(const cks_v32h *m)
{
    uint32_t r = 0;
    for (int l = 0; l < 32; l++)
        r = (*m)[l] > r ? (*m)[l] : r;
    return r;
}
CKS_VINLINE uint32_t cks_v_hmax32(const cks_v16u *m)
{
    uint32_t r = 0;
    for (int l = 0; l < 16; l++)
        r = (*m)[l] > r ? (*m)[l] : r;
    return r;
}

/* 32 values of a 16-bit float dtype, loaded as raw (64 bytes), widened to f32: *odd gets
 * elements 1, 3, ..., 31 and *even elements 0, 2, ..., 30 (a 32-bit lane holds an even element in
 * its low half, the odd one above it). Two views split the same way stay paired.
 *
 * BF16 is the high half of an f32: exact, NaN and Inf included. F16 shifts its exponent
 * and mantissa into place and scales by 2^112 (exact for normal and subnormal values:
 * F16's exponent bias is 15, f32's 127), three or four integer operations and a multiply
 * per 16 values, since GCC 12 converts _Float16 vectors one element at a time. F16 Inf and
 * NaN (exponent field 31) come out finite (65536 and above), so a caller of the F16 form
 * finds them from the raw halves: (h & 0x7fff) >= 0x7c00. */
CKS_VINLINE void cks_v_bf16x32(const cks_v16u *raw, cks_v16f *odd, cks_v16f *even)
{
    cks_v16u w = *raw;
    *odd = (cks_v16f)(w & 0xffff0000u);
    *even = (cks_v16f)(w << 16);
}
CKS_VINLINE void cks_v_f16x32(const cks_v16u *raw, cks_v16f *odd, cks_v16f *even)
{
    cks_v16u w = *raw;
    /* an arithmetic shift by 3 moves sign, exponent and mantissa of the high half to bits
     * 31, 27-23 and 22-13; the mask clears the copies of the sign and the low half */
    const int32_t keep = (int32_t)0x8fffe000u;
    *odd = (cks_v16f)(((cks_v16i)w >> 3) & keep) * 0x1p112f;
    *even = (cks_v16f)(((cks_v16i)(w << 16) >> 3) & keep) * 0x1p112f;
}

/* 16 values at s widened in order, exactly (F16 Inf and NaN included): for buffers. */
CKS_VINLINE void cks_v_widen_bf16x16(const unsigned char *s, cks_v16f *out)
{
    cks_v16h h;
    memcpy(&h, s, 32);
    *out = (cks_v16f)(__builtin_convertvector(h, cks_v16u) << 16);
}
CKS_VINLINE void cks_v_widen_f16x16(const unsigned char *s, cks_v16f *out)
{
    cks_v16h h;
    memcpy(&h, s, 32);
    cks_v16u w = __builtin_convertvector(h, cks_v16u) << 16;
    const int32_t keep = (int32_t)0x8fffe000u;
    cks_v16f v = (cks_v16f)(((cks_v16i)w >> 3) & keep) * 0x1p112f;
    /* exponent field 31: Inf or NaN, the mantissa kept (NaN stays NaN) */
    cks_v16i special = (cks_v16i)((w & 0x7c000000u) == 0x7c000000u);
    cks_v16i inf_nan = (cks_v16i)((w & 0x80000000u) | 0x7f800000u | ((w & 0x03ff0000u) >> 3));
    *out = (cks_v16f)(((cks_v16i)v & ~special) | (inf_nan & special));
}

#endif
