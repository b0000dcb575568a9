/* Growable sets of token-id documents (see docset.h). */
#include "docset.h"
#include "error.h"
#include "grow.h"

#include <stdlib.h>
#include <string.h>

int cks_docset_init(cks_docset *d, const char *name, const char *display)
{
    memset(d, 0, sizeof *d);
    d->bytes = -1;
    d->name = strdup(name);
    d->display = strdup(display);
    d->start = calloc(1, sizeof *d->start);
    d->startcap = 1;
    if (!d->name || !d->display || !d->start) {
        cks_docset_release(d);
        return cks_error_set(CKS_ENOMEM, "out of memory");
    }
    return 0;
}

void cks_docset_release(cks_docset *d)
{
    if (!d)
        return;
    free(d->name);
    free(d->display);
    free(d->ids);
    free(d->start);
    free(d->line);
    memset(d, 0, sizeof *d);
}

static int grow(void **p, int64_t *cap, int64_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    int64_t c = *cap ? *cap : 256;
    while (c < need)
        c *= 2;
    void *q = realloc(*p, (size_t)c * elem);
    if (!q)
        return -1;
    *p = q;
    *cap = c;
    return 0;
}

int cks_docset_add(cks_docset *d, const int32_t *ids, int64_t n, int64_t line)
{
    if (n < 0 || d->nids + n > CKS_MAX_SET_TOKENS)
        return cks_error_set(CKS_ELIMIT, "%s: more than %lld tokens in one set", d->display,
                             (long long)CKS_MAX_SET_TOKENS);
    if (d->ndocs + 1 > CKS_MAX_SET_DOCS)
        return cks_error_set(CKS_ELIMIT, "%s: more than %lld documents in one set", d->display,
                             (long long)CKS_MAX_SET_DOCS);
    if (grow((void **)&d->ids, &d->idcap, d->nids + n, sizeof *d->ids) ||
        grow((void **)&d->line, &d->linecap, d->ndocs + 1, sizeof *d->line) ||
        grow((void **)&d->start, &d->startcap, d->ndocs + 2, sizeof *d->start))
        return cks_error_set(CKS_ENOMEM, "%s: out of memory", d->display);
    if (n)
        memcpy(d->ids + d->nids, ids, (size_t)n * sizeof *ids);
    d->nids += n;
    d->line[d->ndocs] = line;
    d->ndocs++;
    d->start[d->ndocs] = d->nids;
    return 0;
}

void cks_docsets_release(cks_docsets *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++)
        cks_docset_release(&l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

int cks_docsets_get(cks_docsets *l, const char *name, const char *display, size_t max,
                    cks_docset **out)
{
    for (size_t i = l->n; i-- > 0;) /* the newest first: lines of one subset come in runs */
        if (strcmp(l->v[i].name, name) == 0) {
            if (strcmp(l->v[i].display, display) != 0)
                return cks_error_set(CKS_EINVAL,
                                     "%s and %s would both be reported as set '%s'; rename one",
                                     l->v[i].display, display, name);
            *out = &l->v[i];
            return 0;
        }
    if (l->n >= max)
        return cks_error_set(CKS_ELIMIT, "%s: more than %zu evaluation sets", display, max);
    int err = cks_grow(&l->v, &l->cap, l->n, sizeof *l->v, 8);
    if (err || (err = cks_docset_init(&l->v[l->n], name, display)) != 0)
        return err;
    *out = &l->v[l->n++];
    return 0;
}
