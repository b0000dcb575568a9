/* The checkpoints a scan selects: the source, and the source indices of every K-th of
 * its checkpoints in step order (--every), addressed by their position. A reference
 * outside the selection is position n. Private to the engine. */
#ifndef CKS_ENGINE_SELECTION_H
#define CKS_ENGINE_SELECTION_H

#include "scan.h"
#include "source.h"

#include <stddef.h>

typedef struct {
    cks_source *src;
    size_t *idx; /* n + 1 source indices; idx[n] the reference outside (SIZE_MAX: none) */
    size_t n;
} cks_selection;

/* Opens o->source with o->branches and selects every o->every-th checkpoint. */
int cks_selection_open(cks_selection *s, const cks_scan_options *o);
void cks_selection_release(cks_selection *s);

/* Checkpoint at position pos <= n (n only when a reference outside was found). */
const cks_ckpt_info *cks_selection_info(const cks_selection *s, size_t pos);

/* Position of the checkpoint named name: its position in the selection, else n (it is
 * then recorded as the reference outside). CKS_ENOTFOUND naming the source. */
int cks_selection_find(cks_selection *s, const char *name, size_t *pos);

#endif
