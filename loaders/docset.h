/* Held-out documents as token ids, grouped into named sets: what the perplexity code
 * (metrics/ppl.h) consumes, whatever they were read from (a tokenised text file, a JSONL
 * line, a raw token file). A document never shares a window with another (DESIGN §5). */
#ifndef CKS_DOCSET_H
#define CKS_DOCSET_H

#include <stddef.h>
#include <stdint.h>

#define CKS_MAX_SET_TOKENS ((int64_t)1 << 32) /* tokens of one set */
#define CKS_MAX_SET_DOCS   ((int64_t)1 << 28) /* documents of one set */

typedef struct {
    char *name;    /* set name: results are reported under it */
    char *display; /* the file it came from, for messages */
    int32_t *ids;  /* every document's tokens, concatenated */
    int64_t nids;
    int64_t *start; /* [ndocs + 1]: document d is ids[start[d] .. start[d+1]) */
    int64_t *line;  /* [ndocs]: 1-based line of the document in its file; 0 when the file
                       is a single document */
    int64_t ndocs;
    int64_t bytes; /* UTF-8 bytes of the set's text; -1 when given as tokens */
    /* private */
    int64_t idcap, linecap, startcap;
} cks_docset;

/* Empty set named name, read from display (both copied). bytes starts at -1. */
int cks_docset_init(cks_docset *d, const char *name, const char *display);
void cks_docset_release(cks_docset *d);

/* Appends a document of n ids (copied). CKS_ELIMIT past the CKS_MAX_SET_* limits. */
int cks_docset_add(cks_docset *d, const int32_t *ids, int64_t n, int64_t line);

/* A list of sets, as files are split into them (one set per file, or per subset with
 * --split-by-meta). */
typedef struct {
    cks_docset *v;
    size_t n, cap;
} cks_docsets;

void cks_docsets_release(cks_docsets *l);

/* The set named name, appended empty (read from display) when the list has none; at most
 * max sets (CKS_ELIMIT beyond). A set of that name read from another file is CKS_EINVAL
 * naming both files. The pointer is valid until the next call. */
int cks_docsets_get(cks_docsets *l, const char *name, const char *display, size_t max,
                    cks_docset **out);

/* Document d as a pointer and a length. */
static inline const int32_t *cks_docset_doc(const cks_docset *d, int64_t i, int64_t *n)
{
    *n = d->start[i + 1] - d->start[i];
    return d->ids + d->start[i];
}

#endif
