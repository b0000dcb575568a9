/* The dtype table and widening to f32/f64 (vectorised for the half types). */
#include "dtype.h"
#include "error.h"
#include "simd.h"

#include <math.h>
#include <string.h>

static const struct {
    const char *name;
    size_t size;
    int is_float;
} table[CKS_DT_COUNT] = {
    [CKS_DT_F32] = {"F32", 4, 1},         [CKS_DT_F16] = {"F16", 2, 1},
    [CKS_DT_BF16] = {"BF16", 2, 1},       [CKS_DT_F64] = {"F64", 8, 1},
    [CKS_DT_I8] = {"I8", 1, 0},           [CKS_DT_U8] = {"U8", 1, 0},
    [CKS_DT_I16] = {"I16", 2, 0},         [CKS_DT_U16] = {"U16", 2, 0},
    [CKS_DT_I32] = {"I32", 4, 0},         [CKS_DT_U32] = {"U32", 4, 0},
    [CKS_DT_I64] = {"I64", 8, 0},         [CKS_DT_U64] = {"U64", 8, 0},
    [CKS_DT_BOOL] = {"BOOL", 1, 0},       [CKS_DT_F8_E4M3] = {"F8_E4M3", 1, 0},
    [CKS_DT_F8_E5M2] = {"F8_E5M2", 1, 0},
};

const char *cks_dtype_name(cks_dtype dt)
{
    return (unsigned)dt < CKS_DT_COUNT ? table[dt].name : "?";
}

size_t cks_dtype_size(cks_dtype dt)
{
    return (unsigned)dt < CKS_DT_COUNT ? table[dt].size : 0;
}

int cks_dtype_is_float(cks_dtype dt)
{
    return (unsigned)dt < CKS_DT_COUNT && table[dt].is_float;
}

int cks_dtype_from_name(const char *name, cks_dtype *out)
{
    for (int i = 0; i < CKS_DT_COUNT; i++) {
        if (strcmp(table[i].name, name) == 0) {
            *out = (cks_dtype)i;
            return 0;
        }
    }
    return CKS_ENOTFOUND;
}

float cks_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: normalise */
            int e = -1;
            do {
                e++;
                man <<= 1;
            } while (!(man & 0x400));
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ff) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp + 112) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

float cks_bf16_to_f32(uint16_t b)
{
    uint32_t bits = (uint32_t)b << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t cks_f32_to_bf16(float f)
{
    uint32_t bits;
    memcpy(&bits, &f, 4);
    if ((bits & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((bits >> 16) | 0x40); /* quiet NaN */
    bits += 0x7fffu + ((bits >> 16) & 1);
    return (uint16_t)(bits >> 16);
}

uint16_t cks_f32_to_f16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000;
    uint32_t ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u)
        return (uint16_t)(sign | 0x7e00);
    if (ax >= 0x477ff000u) /* rounds to >= 65520: overflow to inf */
        return (uint16_t)(sign | 0x7c00);
    if (ax < 0x38800000u) { /* subnormal or zero in f16 */
        float a;
        memcpy(&a, &ax, 4);
        /* a * 2^24 rounded to nearest even gives the subnormal mantissa */
        return (uint16_t)(sign | (uint16_t)lrintf(a * 16777216.0f));
    }
    uint32_t r = ax + 0xfffu + ((ax >> 13) & 1);
    return (uint16_t)(sign | ((r - 0x38000000u) >> 13));
}

/* Widening is the hot path of every metric (K2 ships fp16, the demo bf16): the half
 * types go 16 at a time through simd.h's exact vector conversions, cloned for AVX-512 and
 * AVX2; the scalar conversions above take the rest. Sources may be unaligned. */
CKS_CLONES static size_t widen_bf16(const unsigned char *s, float *d, size_t n)
{
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        cks_v16f v;
        cks_v_widen_bf16x16(s + 2 * i, &v);
        memcpy(d + i, &v, sizeof v);
    }
    return i;
}

CKS_CLONES static size_t widen_f16(const unsigned char *s, float *d, size_t n)
{
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        cks_v16f v;
        cks_v_widen_f16x16(s + 2 * i, &v);
        memcpy(d + i, &v, sizeof v);
    }
    return i;
}

void cks_widen_f32(cks_dtype dt, const void *src, float *dst, size_t n)
{
    const unsigned char *s = src;
    size_t i = 0;
    switch (dt) {
    case CKS_DT_F32:
        memcpy(dst, s, n * 4);
        break;
    case CKS_DT_F64:
        for (; i < n; i++) {
            double d;
            memcpy(&d, s + 8 * i, 8);
            dst[i] = (float)d;
        }
        break;
    case CKS_DT_BF16:
        for (i = widen_bf16(s, dst, n); i < n; i++) {
            uint16_t b;
            memcpy(&b, s + 2 * i, 2);
            dst[i] = cks_bf16_to_f32(b);
        }
        break;
    case CKS_DT_F16:
        for (i = widen_f16(s, dst, n); i < n; i++) {
            uint16_t h;
            memcpy(&h, s + 2 * i, 2);
            dst[i] = cks_f16_to_f32(h);
        }
        break;
    default:
        for (; i < n; i++)
            dst[i] = NAN;
        break;
    }
}

void cks_widen_f64(cks_dtype dt, const void *src, double *dst, size_t n)
{
    const unsigned char *s = src;
    switch (dt) {
    case CKS_DT_F64:
        memcpy(dst, s, n * 8);
        break;
    case CKS_DT_F32:
        for (size_t i = 0; i < n; i++) {
            float f;
            memcpy(&f, s + 4 * i, 4);
            dst[i] = f;
        }
        break;
    default: {
        float buf[256];
        size_t es = cks_dtype_size(dt);
        for (size_t i = 0; i < n; i += 256) {
            size_t k = n - i < 256 ? n - i : 256;
            cks_widen_f32(dt, s + es * i, buf, k);
            for (size_t j = 0; j < k; j++)
                dst[i + j] = buf[j];
        }
        break;
    }
    }
}
