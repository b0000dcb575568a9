/* Evaluation sets: files (plain or compressed text, JSONL text or token ids, raw token
 * files) to token documents, the BOS rule and the vocabulary check (see evalset.h). */
#include "evalset.h"
#include "docfile.h"
#include "error.h"
#include "model_family.h"
#include "tokfile.h"
#include "utf8.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const comp_suffix[] = {".gz", ".zst", ".zstd"};

void cks_evalset_name(const char *path, char *buf, size_t cap)
{
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    snprintf(buf, cap, "%s", b);
    size_t n = strlen(buf);
    for (size_t i = 0; i < sizeof comp_suffix / sizeof comp_suffix[0]; i++) {
        size_t k = strlen(comp_suffix[i]);
        if (n > k && strcmp(buf + n - k, comp_suffix[i]) == 0) {
            buf[n - k] = '\0';
            break;
        }
    }
    char *dot = strrchr(buf, '.');
    if (dot && dot != buf)
        *dot = '\0';
}

int cks_evalset_is_tokens(const char *path)
{
    cks_doc_kind k;
    if (cks_tokfile_format_of_name(path) != CKS_TOKFILE_AUTO)
        return 1;
    if (cks_docfile_sniff(path, &k) != 0) {
        cks_error_clear();
        return 0;
    }
    return k == CKS_DOC_TOKENS;
}

/* A tokenizer error on a whole plain-text file: invalid UTF-8 is told by its line (and
 * the byte offset in the file), which the tokenizer, given one document, cannot know. */
static int text_error(int err, const cks_doc *doc, const char *path)
{
    size_t bad = err == CKS_EFORMAT ? cks_utf8_check(doc->text, doc->len) : doc->len;
    if (bad >= doc->len)
        return cks_error_prefix(err, "%s", path);
    long long line = 1;
    for (const char *q = doc->text, *e = doc->text + bad; (q = memchr(q, '\n', (size_t)(e - q)));
         q++)
        line++;
    return cks_error_set(CKS_EFORMAT,
                         "%s: line %lld: not valid UTF-8 at byte offset %zu (byte 0x%02X)", path,
                         line, bad, (unsigned)(unsigned char)doc->text[bad]);
}

/* One text document: tokenised, its bytes counted. */
static int add_text(cks_docset *d, const cks_doc *doc, const cks_tokenizer *tok, const char *path)
{
    int32_t *ids = NULL;
    size_t n = 0;
    int err;
    if (doc->len > CKS_TOK_MAX_TEXT_BYTES)
        return cks_error_set(CKS_ELIMIT,
                             "%s: line %lld: %zu bytes of text, more than the %zu one "
                             "document may hold",
                             path, (long long)doc->line, doc->len, CKS_TOK_MAX_TEXT_BYTES);
    if ((err = cks_tokenizer_encode(tok, doc->text, doc->len, &ids, &n)) != 0) {
        if (doc->line)
            return cks_error_prefix(err, "%s: line %lld", path, (long long)doc->line);
        return text_error(err, doc, path);
    }
    if (d->bytes < 0)
        d->bytes = 0;
    d->bytes += (int64_t)doc->len;
    /* a whole-file text of no tokens is an empty set, as before JSONL existed */
    if (n > 0 || doc->line)
        err = cks_docset_add(d, ids, (int64_t)n, doc->line);
    free(ids);
    return err;
}

/* Every document of one text-or-tokens file into its set(s). */
static int load_docfile(cks_docsets *l, const char *path, const char *stem,
                        const cks_evalset_options *o, const cks_tokenizer *tok)
{
    cks_docfile_options fo = {.want = o->kind == CKS_EVAL_TEXT ? CKS_DOC_TEXT : CKS_DOC_AUTO,
                              .split_by_meta = o->split_by_meta,
                              .max_text = CKS_TOK_MAX_TEXT_BYTES};
    cks_docfile *f = NULL;
    cks_docset *d = NULL;
    cks_doc doc;
    char name[CKS_MAX_SUBSET_NAME + 300];
    int err = cks_docfile_open(&f, path, &fo);
    if (err)
        return err;
    int text = cks_docfile_kind(f) == CKS_DOC_TEXT;
    if (text && !tok)
        err = cks_error_set(CKS_EINVAL, "%s: a text file needs a tokenizer", path);
    else if (!o->split_by_meta)
        err = cks_docsets_get(l, stem, path, CKS_MAX_EVAL_SETS, &d);
    while (!err && (err = cks_docfile_next(f, &doc)) == 0) {
        if (o->split_by_meta) {
            snprintf(name, sizeof name, "%s:%s", stem, doc.subset);
            if ((err = cks_docsets_get(l, name, path, CKS_MAX_EVAL_SETS, &d)) != 0)
                break;
        }
        err = text ? add_text(d, &doc, tok, path) : cks_docset_add(d, doc.ids, doc.n, doc.line);
    }
    cks_docfile_free(f);
    return err == CKS_ITEROVER ? 0 : err;
}

int cks_evalset_load_sets(cks_docsets *out, const char *const *files, size_t n,
                          const cks_evalset_options *o, const cks_tokenizer *tok)
{
    char name[256], other[256];
    if (n > CKS_MAX_EVAL_SETS)
        return cks_error_set(CKS_ELIMIT, "%zu evaluation files, more than %d", n,
                             CKS_MAX_EVAL_SETS);
    for (size_t i = 0; i < n; i++) {
        int err;
        cks_evalset_name(files[i], name, sizeof name);
        for (size_t j = 0; j < i; j++) {
            cks_evalset_name(files[j], other, sizeof other);
            if (strcmp(other, name) == 0)
                return cks_error_set(CKS_EINVAL,
                                     "%s and %s would both be reported as set '%s'; rename one",
                                     files[j], files[i], name);
        }
        int raw = cks_tokfile_format_of_name(files[i]) != CKS_TOKFILE_AUTO ||
                  (o->token_format != CKS_TOKFILE_AUTO && o->token_format != CKS_TOKFILE_JSONL);
        if (o->kind == CKS_EVAL_TOKENS || (o->kind == CKS_EVAL_AUTO && raw))
            err = cks_tokfile_read_sets(out, files[i], name, (cks_tokfile_format)o->token_format,
                                        o->split_by_meta, CKS_MAX_EVAL_SETS);
        else
            err = load_docfile(out, files[i], name, o, tok);
        if (err)
            return err;
    }
    return 0;
}

int cks_evalset_load(cks_docset *sets, const char *const *files, size_t n, int tokens_given,
                     int fmt, const cks_tokenizer *tok)
{
    cks_evalset_options o = {.kind = tokens_given ? CKS_EVAL_TOKENS : CKS_EVAL_AUTO,
                             .token_format = fmt};
    cks_docsets l = {0};
    int err = cks_evalset_load_sets(&l, files, n, &o, tok);
    if (!err && l.n != n)
        err = cks_error_set(CKS_ERROR, "%zu evaluation files gave %zu sets", n, l.n);
    if (err) {
        cks_docsets_release(&l);
        return err;
    }
    memcpy(sets, l.v, n * sizeof *sets);
    free(l.v);
    return 0;
}

int cks_evalset_bos(const cks_ckpt *c, const cks_config *cfg, const cks_tokenizer *tok, int forced,
                    int *bos, int32_t *bos_id)
{
    int add = forced;
    if (add < 0) {
        int err = cks_tokenizer_ckpt_add_bos(c, &add);
        if (err)
            return err;
        if (add < 0) /* HF's tokenizer default for the family (LlamaTokenizer: on) */
            add = cfg->family ? cfg->family->add_bos : 1;
    }
    int32_t id = cfg->bos_token_id >= 0 ? (int32_t)cfg->bos_token_id : -1;
    if (id < 0 && tok)
        id = cks_tokenizer_bos_id(tok);
    if (add && id < 0)
        return cks_error_set(CKS_EINVAL,
                             "%s@%s: documents start with BOS%s, but config.json has no "
                             "bos_token_id and the tokenizer no BOS piece: give --no-bos",
                             cks_source_path(cks_ckpt_source(c)), cks_ckpt_info_of(c)->name,
                             forced > 0 ? " (--bos)" : " (add_bos_token or the family's default)");
    *bos = add;
    *bos_id = id;
    return 0;
}

int cks_evalset_check_vocab(const cks_tokenizer *tok, const cks_config *cfg, const char *display)
{
    int64_t v = cks_tokenizer_vocab_size(tok);
    if (v > cfg->vocab_size)
        return cks_error_set(CKS_EFORMAT,
                             "%s: the tokenizer has %lld pieces but the model's vocab_size is "
                             "%lld: they do not belong together",
                             display, (long long)v, (long long)cfg->vocab_size);
    return 0;
}
