/* The one dtype table: names as safetensors spells them, element sizes, and widening of
 * stored elements to f32/f64 (blockwise; callers convert as they stream). */
#ifndef CKS_DTYPE_H
#define CKS_DTYPE_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    CKS_DT_F32 = 0,
    CKS_DT_F16,
    CKS_DT_BF16,
    CKS_DT_F64,
    CKS_DT_I8,
    CKS_DT_U8,
    CKS_DT_I16,
    CKS_DT_U16,
    CKS_DT_I32,
    CKS_DT_U32,
    CKS_DT_I64,
    CKS_DT_U64,
    CKS_DT_BOOL,
    CKS_DT_F8_E4M3,
    CKS_DT_F8_E5M2,
    CKS_DT_COUNT
} cks_dtype;

/* Name as in safetensors headers ("F32", "BF16", ...). */
const char *cks_dtype_name(cks_dtype dt);
/* Bytes per element. */
size_t cks_dtype_size(cks_dtype dt);
/* 1 when metrics can widen this dtype (F32, F16, BF16, F64); others are listed but
 * skipped by metric code. */
int cks_dtype_is_float(cks_dtype dt);
/* Looks up a safetensors dtype name; CKS_ENOTFOUND (no message set) when unknown. */
int cks_dtype_from_name(const char *name, cks_dtype *out);

/* Widen n elements of a float dtype to f32 / f64. src need not be aligned. Only valid for
 * dtypes where cks_dtype_is_float() is 1. */
void cks_widen_f32(cks_dtype dt, const void *src, float *dst, size_t n);
void cks_widen_f64(cks_dtype dt, const void *src, double *dst, size_t n);

/* Scalar conversions (exact; f16 subnormals, inf and NaN handled). */
float cks_f16_to_f32(uint16_t h);
float cks_bf16_to_f32(uint16_t b);
uint16_t cks_f32_to_bf16(float f); /* round to nearest even; NaN stays NaN */
uint16_t cks_f32_to_f16(float f);  /* round to nearest even */

#endif
