/* Internals shared by merge.c (checks and plan) and merge_write.c (the new file). Not a
 * public header. */
#ifndef CKS_MERGE_IMPL_H
#define CKS_MERGE_IMPL_H

#include "merge.h"
#include "part.h"
#include "store.h"

#include <stdint.h>
#include <sys/types.h>

/* A name -> index map (merge.c). */
typedef struct {
    const char **keys; /* borrowed */
    size_t *vals, cap;
} cks_merge_map;

typedef struct {
    const char *path;
    cks_store *s;
    int is_part;
    cks_part_info part; /* parts only */
    cks_store_ckpt *rows;
    size_t nrows;
    cks_store_tensor *tensors;
    size_t ntensors;
    size_t *colmap; /* per column: the output's column */
    char *ref;      /* /drift/ref's attribute ref; NULL when absent */
    dev_t dev;
    ino_t ino;
} cks_merge_input;

typedef struct {
    const cks_merge_opts *o;
    cks_merge_input *in;
    size_t n, nparts;
    size_t base;               /* the whole run among the inputs; SIZE_MAX when none */
    size_t first;              /* the first part: its attributes and list are the reference */
    const cks_part_info *list; /* the first part's marks */
    cks_merge_map pos_of;      /* checkpoint name -> position in the list */
    size_t *src_in, *src_row;  /* per list position: input and row giving it (SIZE_MAX: gap) */
    unsigned char *flag;       /* per list position, scratch for messages */
    cks_merge_map col_of;      /* tensor name -> output column */
    cks_store_tensor *cols;    /* output columns (strings borrowed from the inputs) */
    size_t ncols;
    cks_merge_stats stats;
} cks_merge_plan;

/* Writes the planned output in one transaction (merge_write.c). */
int cks_merge_write(cks_merge_plan *m, const char *output);

#endif
