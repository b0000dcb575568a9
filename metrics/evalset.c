/* Evaluation sets: files to token documents, the BOS rule and the vocabulary check (see
 * evalset.h). */
#include "evalset.h"
#include "error.h"
#include "model_family.h"
#include "map.h"
#include "tokfile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cks_evalset_name(const char *path, char *buf, size_t cap)
{
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    snprintf(buf, cap, "%s", b);
    char *dot = strrchr(buf, '.');
    if (dot && dot != buf)
        *dot = '\0';
}

int cks_evalset_is_tokens(const char *path)
{
    static const char *const ext[] = {".jsonl", ".json", ".u16", ".uint16", ".u32", ".uint32"};
    const char *dot = strrchr(path, '.');
    for (size_t i = 0; dot && i < sizeof ext / sizeof ext[0]; i++)
        if (strcmp(dot, ext[i]) == 0)
            return 1;
    return 0;
}

/* One text file as one document. The file is mapped; the tokenizer checks the UTF-8. */
static int load_text(cks_docset *d, const char *path, const char *name, const cks_tokenizer *tok)
{
    cks_map *m = NULL;
    int32_t *ids = NULL;
    size_t n = 0;
    int err = cks_map_file(&m, path, NULL);
    if (err)
        return err;
    if (m->size > CKS_TOK_MAX_TEXT_BYTES) {
        err = cks_error_set(CKS_ELIMIT, "%s: %zu bytes of text, more than the %zu one set may hold",
                            path, m->size, CKS_TOK_MAX_TEXT_BYTES);
        goto done;
    }
    if ((err = cks_tokenizer_encode(tok, (const char *)m->data, m->size, &ids, &n)) != 0) {
        cks_error_prefix(err, "%s", path);
        goto done;
    }
    if ((err = cks_docset_init(d, name, path)) != 0)
        goto done;
    d->bytes = (int64_t)m->size;
    if (n > 0)
        err = cks_docset_add(d, ids, (int64_t)n, 0);
done:
    free(ids);
    cks_map_free(m);
    return err;
}

int cks_evalset_load(cks_docset *sets, const char *const *files, size_t n, int tokens_given,
                     int fmt, const cks_tokenizer *tok)
{
    char name[256];
    if (n > CKS_MAX_EVAL_SETS)
        return cks_error_set(CKS_ELIMIT, "%zu evaluation files, more than %d", n,
                             CKS_MAX_EVAL_SETS);
    for (size_t i = 0; i < n; i++) {
        int err;
        cks_evalset_name(files[i], name, sizeof name);
        for (size_t j = 0; j < i; j++)
            if (strcmp(sets[j].name, name) == 0)
                return cks_error_set(CKS_EINVAL,
                                     "%s and %s would both be reported as set '%s'; rename one",
                                     sets[j].display, files[i], name);
        if (tokens_given || cks_evalset_is_tokens(files[i]))
            err = cks_tokfile_read(&sets[i], files[i], name, (cks_tokfile_format)fmt);
        else if (!tok)
            err = cks_error_set(CKS_EINVAL, "%s: a text file needs a tokenizer", files[i]);
        else
            err = load_text(&sets[i], files[i], name, tok);
        if (err)
            return err;
    }
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
