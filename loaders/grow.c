/* Growing arrays (see grow.h). */
#include "grow.h"

#include "error.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int cks_grow(void *itemsp, size_t *cap, size_t n, size_t elem, size_t first)
{
    if (n < *cap)
        return 0;
    size_t want = *cap ? *cap : first;
    if (want == 0 || elem == 0 || want > SIZE_MAX / 2 / elem)
        return cks_error_set(CKS_ENOMEM, "out of memory");
    if (*cap)
        want *= 2;
    void *old, *p;
    /* the array's pointer is read and written through memcpy: T** does not convert to void** */
    memcpy(&old, itemsp, sizeof old);
    if (!(p = realloc(old, want * elem)))
        return cks_error_set(CKS_ENOMEM, "out of memory");
    memcpy(itemsp, &p, sizeof p);
    *cap = want;
    return 0;
}
