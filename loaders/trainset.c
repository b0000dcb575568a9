/* Training sequences for memorisation: the first k + l ids of chosen JSONL lines (see
 * trainset.h). */
#include "trainset.h"
#include "docfile.h"
#include "error.h"

#include <stdlib.h>
#include <string.h>

static int open_tokens(cks_docfile **f, const char *path, int64_t width)
{
    cks_docfile_options o = {.want = CKS_DOC_TOKENS};
    if (width < 1 || width > CKS_MAX_TRAIN_WIDTH)
        return cks_error_set(CKS_EINVAL, "%s: %lld tokens per sequence is outside [1, %lld]", path,
                             (long long)width, (long long)CKS_MAX_TRAIN_WIDTH);
    return cks_docfile_open(f, path, &o);
}

int cks_trainset_count(const char *path, int64_t width, int64_t *eligible, int64_t *skipped)
{
    cks_docfile *f = NULL;
    cks_doc doc;
    int64_t e = 0, s = 0;
    int err = open_tokens(&f, path, width);
    while (!err && (err = cks_docfile_next(f, &doc)) == 0) {
        if (doc.n >= width)
            e++;
        else
            s++;
    }
    cks_docfile_free(f);
    if (err != CKS_ITEROVER)
        return err;
    *eligible = e;
    *skipped = s;
    return 0;
}

/* Appends doc's first width ids to t. */
static int keep(cks_trainset *t, const cks_doc *doc, size_t *cap)
{
    if ((t->n + 1) * t->width > CKS_MAX_TRAIN_IDS)
        return cks_error_set(CKS_ELIMIT, "%s: more than %lld token ids kept", t->display,
                             (long long)CKS_MAX_TRAIN_IDS);
    if ((size_t)t->n >= *cap) { /* the three arrays grow together */
        size_t c = *cap ? 2 * *cap : 64;
        int64_t *line = realloc(t->line, c * sizeof *line);
        if (line)
            t->line = line;
        int32_t *maxid = line ? realloc(t->maxid, c * sizeof *maxid) : NULL;
        if (maxid)
            t->maxid = maxid;
        int32_t *ids = maxid ? realloc(t->ids, c * (size_t)t->width * sizeof *ids) : NULL;
        if (!ids)
            return cks_error_set(CKS_ENOMEM, "%s: out of memory for %lld sequences", t->display,
                                 (long long)c);
        t->ids = ids;
        *cap = c;
    }
    int32_t m = 0;
    for (int64_t i = 0; i < doc->n; i++)
        m = doc->ids[i] > m ? doc->ids[i] : m;
    memcpy(t->ids + t->n * t->width, doc->ids, (size_t)t->width * sizeof *t->ids);
    t->line[t->n] = doc->line;
    t->maxid[t->n] = m;
    t->n++;
    return 0;
}

/* The file's largest id and the first line holding it. */
static void note_max(cks_trainset *t, const cks_doc *doc)
{
    for (int64_t i = 0; i < doc->n; i++)
        if (doc->ids[i] > t->file_maxid) {
            t->file_maxid = doc->ids[i];
            t->file_maxid_line = doc->line;
        }
}

static int bad_pick(const cks_trainset *t, int64_t at)
{
    return cks_error_set(CKS_EINVAL,
                         "%s: sequence index %lld asked for is not increasing or not below the "
                         "%lld sequences of at least %lld tokens",
                         t->display, (long long)at, (long long)t->eligible, (long long)t->width);
}

int cks_trainset_read(cks_trainset *out, const char *path, int64_t width, const int64_t *pick,
                      int64_t npick)
{
    cks_trainset t;
    cks_docfile *f = NULL;
    cks_doc doc;
    size_t cap = 0;
    int64_t pi = 0;
    memset(&t, 0, sizeof t);
    t.width = width;
    t.file_maxid = -1;
    int err = open_tokens(&f, path, width);
    if (!err && !(t.display = strdup(path)))
        err = cks_error_set(CKS_ENOMEM, "%s: out of memory", path);
    while (!err && (err = cks_docfile_next(f, &doc)) == 0) {
        note_max(&t, &doc);
        if (doc.n < width) {
            t.skipped++;
            continue;
        }
        int64_t e = t.eligible++;
        if (pick) {
            if (pi < npick && pi > 0 && pick[pi] <= pick[pi - 1])
                err = bad_pick(&t, pick[pi]);
            if (err || pi >= npick || pick[pi] != e)
                continue;
            pi++;
        }
        err = keep(&t, &doc, &cap);
    }
    cks_docfile_free(f);
    if (err == CKS_ITEROVER)
        err = pick && pi < npick ? bad_pick(&t, pick[pi]) : 0;
    if (err) {
        cks_trainset_release(&t);
        return err;
    }
    *out = t;
    return 0;
}

static int out_of_vocab(const cks_trainset *t, int64_t line, int32_t id, int64_t vocab,
                        const char *what)
{
    return cks_error_set(CKS_EFORMAT,
                         "%s: line %lld: token id %d is not below the vocabulary size %lld of %s",
                         t->display, (long long)line, id, (long long)vocab, what);
}

int cks_trainset_check_vocab(const cks_trainset *t, int64_t vocab, const char *what)
{
    for (int64_t i = 0; i < t->n; i++)
        if (t->maxid[i] >= vocab)
            return out_of_vocab(t, t->line[i], t->maxid[i], vocab, what);
    if (t->file_maxid >= vocab)
        return out_of_vocab(t, t->file_maxid_line, t->file_maxid, vocab, what);
    return 0;
}

void cks_trainset_release(cks_trainset *t)
{
    if (!t)
        return;
    free(t->display);
    free(t->ids);
    free(t->line);
    free(t->maxid);
    memset(t, 0, sizeof *t);
}
