/* Growing arrays: the one place that doubles a realloc'd array's capacity. */
#ifndef CKS_GROW_H
#define CKS_GROW_H

#include <stddef.h>

/* Makes room for element n of the array *items (itemsp is the address of the array's
 * pointer, of any element type) of capacity *cap elements of elem bytes: when n reaches
 * *cap the array is reallocated to twice the capacity, or to first elements when empty.
 * Returns 0, or CKS_ENOMEM (message set) with the array and *cap unchanged. */
int cks_grow(void *itemsp, size_t *cap, size_t n, size_t elem, size_t first);

#endif
