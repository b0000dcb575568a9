/* Invariants the fuzz targets assert beyond "no crash": a broken promise of a parser is a
 * bug even when nothing crashes, so it stops the fuzzer like a crash does (abort). */
#ifndef CKS_FUZZ_CHECK_H
#define CKS_FUZZ_CHECK_H

#include "error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_REQUIRE(cond)                                                                    \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            fprintf(stderr, "%s:%d: fuzz invariant failed: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                          \
        }                                                                                     \
    } while (0)

/* A refusal carries a negative CKS_E* code and one printable line naming the input. */
static inline void fuzz_check_refusal(int err, const char *display)
{
    const char *msg = cks_error_last();
    int controls = 0;
    for (const char *c = msg; *c; c++)
        controls |= (unsigned char)*c < 0x20 || *c == 0x7f;
    if (err >= 0 || err < CKS_EFAILCHECK || !*msg || controls ||
        (display && !strstr(msg, display))) {
        fprintf(stderr,
                "fuzz: a refusal must be a CKS_E* code with one line naming '%s'; got %d: "
                "\"%s\"\n",
                display ? display : "", err, msg);
        abort();
    }
    if (getenv("CKS_FUZZ_VERBOSE")) /* why inputs are refused, when growing a corpus */
        fprintf(stderr, "refused: %s\n", msg);
    cks_error_clear();
}

/* The view [p, p + n) lies inside [base, base + size). */
static inline int fuzz_inside(const void *p, size_t n, const void *base, size_t size)
{
    const unsigned char *a = p, *b = base;
    return a >= b && (size_t)(a - b) <= size && n <= size - (size_t)(a - b);
}

#endif
