/* Overflow-checked size arithmetic. Every product of sizes read from disk goes through
 * these; they return 0 on success and -1 on overflow (the caller sets the message). */
#ifndef CKS_CHECKED_H
#define CKS_CHECKED_H

#include <stddef.h>
#include <stdint.h>

static inline int cks_mul_size(size_t a, size_t b, size_t *out)
{
    return __builtin_mul_overflow(a, b, out) ? -1 : 0;
}

static inline int cks_add_size(size_t a, size_t b, size_t *out)
{
    return __builtin_add_overflow(a, b, out) ? -1 : 0;
}

static inline int cks_mul_i64(int64_t a, int64_t b, int64_t *out)
{
    return __builtin_mul_overflow(a, b, out) ? -1 : 0;
}

#endif
