/* The selected checkpoints of a scan (see selection.h). */
#include "selection.h"
#include "error.h"

#include <stdint.h>
#include <stdlib.h>

int cks_selection_open(cks_selection *s, const cks_scan_options *o)
{
    int err = cks_source_open(&s->src, o->source, o->branches);
    if (err)
        return err;
    size_t n = cks_source_count(s->src), k = 0, every = o->every > 0 ? (size_t)o->every : 1;
    if (!(s->idx = calloc(n + 1, sizeof *s->idx)))
        return cks_error_set(CKS_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i += every)
        s->idx[k++] = i;
    s->n = k;
    s->idx[k] = SIZE_MAX;
    return 0;
}

void cks_selection_release(cks_selection *s)
{
    free(s->idx);
    cks_source_free(s->src);
    s->idx = NULL;
    s->src = NULL;
}

const cks_ckpt_info *cks_selection_info(const cks_selection *s, size_t pos)
{
    return cks_source_ckpt(s->src, s->idx[pos]);
}

int cks_selection_find(cks_selection *s, const char *name, size_t *pos)
{
    size_t idx;
    int err = cks_source_find(s->src, name, &idx);
    if (err)
        return err;
    for (size_t p = 0; p < s->n; p++)
        if (s->idx[p] == idx) {
            *pos = p;
            return 0;
        }
    s->idx[s->n] = idx;
    *pos = s->n;
    return 0;
}
