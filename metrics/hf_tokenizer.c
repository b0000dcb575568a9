/* Hugging Face tokenizer.json BPE models: loading (model.vocab, model.merges, added_tokens,
 * the normalizer and pre-tokenizer LLaMA conversions use) and the encoding pipeline of
 * the tokenizers library: added tokens split out (AddedVocabulary::extract_and_normalize),
 * normalizer, pre-tokenizer, then BPE::merge_word + Word::merge_all per word. */
#include "error.h"
#include "json.h"
#include "tok_impl.h"

#include <stdlib.h>
#include <string.h>

#define HF_MAX_NORM_STEPS 64
/* Normalized text may grow (LLaMA's: 3n + 3 bytes) but not past 8n + 4096 bytes, so a
 * chain of Replace steps cannot blow a text up exponentially. */
#define HF_NORM_GROWTH 8

void cks_tok_hf_release(cks_tokenizer *t)
{
    cks_tok_bl_release(t);
    for (int i = 0; i < t->nnorm; i++) {
        free(t->norm[i].a);
        free(t->norm[i].b);
    }
    free(t->norm);
    t->norm = NULL;
    t->nnorm = 0;
}

/* ---- normalizer: Prepend / Replace(String) / NFC / Sequence of those ---- */

static int hf_apply_norm(const cks_tokenizer *t, const char *s, size_t n, cks_tok_buf *out,
                         cks_tok_buf *tmp)
{
    out->n = 0;
    int rc = cks_tok_buf_put(out, s, n);
    size_t limit = HF_NORM_GROWTH * n + 4096;
    for (int k = 0; k < t->nnorm && !rc; k++) {
        const cks_tok_hf_norm *op = &t->norm[k];
        if (op->kind == HF_NFC) {
            /* NFC never lengthens a text by more than 3 times (UAX #15, Design Goals). */
            if ((rc = cks_tok_nfc(out->p, out->n, tmp)))
                return rc;
        } else if (op->kind == HF_PREPEND) {
            /* Prepend touches only non-empty strings (tokenizers' normalizers/prepend.rs). */
            if (out->n == 0)
                continue;
            if (out->n + op->alen > limit)
                return cks_error_set(CKS_ELIMIT,
                                     "%s: the normalizer makes a text of %zu bytes more than %d "
                                     "times longer",
                                     t->display, n, HF_NORM_GROWTH);
            tmp->n = 0;
            if (!(rc = cks_tok_buf_put(tmp, op->a, op->alen)))
                rc = cks_tok_buf_put(tmp, out->p, out->n);
        } else {
            tmp->n = 0;
            size_t i = 0;
            while (i < out->n && !rc) {
                if (tmp->n > limit)
                    return cks_error_set(CKS_ELIMIT,
                                         "%s: the normalizer makes a text of %zu bytes more "
                                         "than %d times longer",
                                         t->display, n, HF_NORM_GROWTH);
                if (out->n - i >= op->alen && memcmp(out->p + i, op->a, op->alen) == 0) {
                    rc = cks_tok_buf_put(tmp, op->b, op->blen);
                    i += op->alen;
                } else {
                    rc = cks_tok_buf_put(tmp, out->p + i, 1);
                    i++;
                }
            }
        }
        cks_tok_buf swap = *out;
        *out = *tmp;
        *tmp = swap;
    }
    return rc;
}

/* ---- encoding ---- */

static int hf_pair(const cks_tokenizer *t, cks_tok_work *w, const char *s, const cks_tok_sym *l,
                   const cks_tok_sym *r, float *prio, int32_t *id)
{
    const cks_tok_merge *m = cks_tok_mergemap_get(&t->merges, l->id, r->id);
    if (!m)
        return 0;
    *prio = -(float)m->rank; /* exact: ranks < CKS_TOK_MAX_MERGES <= 2^24 */
    *id = m->id;
    return 1;
}

static void add_sym(cks_tok_work *w, size_t *n, int32_t id, size_t start, size_t len)
{
    cks_tok_sym *y = &w->sym[*n];
    y->id = id;
    y->start = (uint32_t)start;
    y->len = (uint32_t)len;
    y->freeze = 0;
    y->prev = (int32_t)*n - 1;
    y->next = (int32_t)*n + 1;
    (*n)++;
}

static int run_syms(const cks_tokenizer *t, cks_tok_work *w, const char *s, size_t n)
{
    if (n == 0)
        return 0;
    w->sym[n - 1].next = -1;
    int rc = cks_tok_bpe(t, w, s, n, hf_pair);
    for (int32_t i = 0; i >= 0 && !rc; i = w->sym[i].next)
        rc = cks_tok_emit(w, w->sym[i].id);
    return rc;
}

/* BPE::merge_word: characters to ids (byte fallback, fused unk), then the merges. */
static int hf_word(const cks_tokenizer *t, cks_tok_work *w, const char *s, size_t len)
{
    if (len == 0)
        return 0;
    if (t->ignore_merges) {
        int32_t id = cks_tok_strmap_get(&t->normal, &t->pieces, s, len);
        if (id >= 0)
            return cks_tok_emit(w, id);
    }
    int rc = cks_tok_work_syms(w, len);
    if (rc)
        return rc;
    size_t n = 0, unk_start = 0, unk_len = 0;
    int pending = 0;
    size_t seg = 0;
    for (size_t pos = 0; pos < len;) {
        if (cks_tok_word_start(t, s, pos, seg)) {
            /* No merge crosses a word start; "▁" is a known token, so a pending unk would
             * be flushed right here anyway. */
            if (pending)
                add_sym(w, &n, t->unk_id, unk_start, unk_len);
            pending = 0;
            if ((rc = run_syms(t, w, s, n)))
                return rc;
            n = 0;
            seg = pos;
        }
        size_t cl = cks_tok_utf8_len(s + pos, len - pos);
        int32_t id = cks_tok_strmap_get(&t->normal, &t->pieces, s + pos, cl);
        int bytes_ok = t->byte_fallback;
        for (size_t k = 0; k < cl && bytes_ok; k++)
            bytes_ok = t->byte_id[(uint8_t)s[pos + k]] >= 0;
        if (id >= 0) {
            if (pending)
                add_sym(w, &n, t->unk_id, unk_start, unk_len);
            pending = 0;
            add_sym(w, &n, id, pos, cl);
        } else if (bytes_ok) {
            /* Note: like tokenizers, a pending unk is not flushed before byte tokens. */
            for (size_t k = 0; k < cl; k++)
                add_sym(w, &n, t->byte_id[(uint8_t)s[pos + k]], pos + k, 1);
        } else if (t->unk_id >= 0) {
            if (pending && t->fuse_unk) {
                unk_len += cl;
            } else {
                if (pending)
                    add_sym(w, &n, t->unk_id, unk_start, unk_len);
                pending = 1;
                unk_start = pos;
                unk_len = cl;
            }
        } /* else: no unk token, the character is dropped, as tokenizers does */
        pos += cl;
        uint8_t c = (uint8_t)s[pos - 1];
        if (cl == 1 && c < 128 && t->barrier[c] && !pending) {
            /* No merge involves this character: what precedes it is final. */
            if ((rc = run_syms(t, w, s, n)))
                return rc;
            n = 0;
            seg = pos;
        }
    }
    if (pending)
        add_sym(w, &n, t->unk_id, unk_start, unk_len);
    return run_syms(t, w, s, n);
}

/* The pre-tokenizer: none, or Metaspace (replace ' ', prepend, split before each mark). */
static int hf_pretok(const cks_tokenizer *t, cks_tok_work *w, const char *s, size_t n, int first)
{
    if (n == 0)
        return 0;
    if (t->pre == HF_PRE_NONE)
        return hf_word(t, w, s, n);
    if (t->pre == HF_PRE_BYTELEVEL)
        return cks_tok_bl_encode(t, w, s, n);
    cks_tok_buf *o = &w->tmp;
    const char *m = t->meta;
    size_t ml = t->metalen;
    int rc = 0;
    o->n = 0;
    for (size_t i = 0; i < n && !rc; i++)
        rc = s[i] == ' ' ? cks_tok_buf_put(o, m, ml) : cks_tok_buf_put(o, s + i, 1);
    if (rc)
        return rc;
    /* Metaspace prepends the mark unless the (replaced) text already starts with it;
     * "first" only for the split that starts the original text. */
    int starts = o->n >= ml && memcmp(o->p, m, ml) == 0;
    if (!starts && (t->prepend_scheme == HF_PREPEND_ALWAYS ||
                    (t->prepend_scheme == HF_PREPEND_FIRST && first))) {
        if ((rc = cks_tok_buf_reserve(o, ml)))
            return rc;
        memmove(o->p + ml, o->p, o->n);
        memcpy(o->p, m, ml);
        o->n += ml;
    }
    if (!t->pre_split)
        return hf_word(t, w, o->p, o->n);
    /* SplitDelimiterBehavior::MergedWithNext: every mark starts a new word. */
    size_t b = 0;
    for (size_t i = 1; i + ml <= o->n; i++) {
        if (memcmp(o->p + i, m, ml) == 0) {
            if ((rc = hf_word(t, w, o->p + b, i - b)))
                return rc;
            b = i;
            i += ml - 1;
        }
    }
    return hf_word(t, w, o->p + b, o->n - b);
}

/* Splits normalized text on the normalized added tokens (leftmost-longest); the text
 * between them goes to the pre-tokenizer, matches emit their id. */
static int split_normalized(const cks_tokenizer *t, cks_tok_work *w, const char *s, size_t n,
                            int first)
{
    size_t b = 0;
    int rc = 0;
    for (size_t i = 0; i < n && !rc;) {
        int32_t id;
        if ((i = cks_tok_matcher_skip(&t->added_norm, s, i, n)) == n)
            break;
        size_t m = cks_tok_matcher_match(&t->added_norm, s + i, n - i, &id);
        if (!m) {
            i++;
            continue;
        }
        rc = hf_pretok(t, w, s + b, i - b, first && b == 0);
        if (!rc)
            rc = cks_tok_emit(w, id);
        i += m;
        b = i;
    }
    if (!rc)
        rc = hf_pretok(t, w, s + b, n - b, first && b == 0);
    return rc;
}

/* One piece of raw text between non-normalized added tokens: normalize, split out the
 * normalized added tokens, pre-tokenize. Empty pieces produce nothing. */
static int hf_raw_segment(const cks_tokenizer *t, cks_tok_work *w, const char *s, size_t n,
                          int first)
{
    if (n == 0)
        return 0;
    int rc = hf_apply_norm(t, s, n, &w->norm, &w->tmp);
    if (rc)
        return rc;
    /* The normalized text stays in w->norm; w->tmp is the pre-tokenizer's. */
    return split_normalized(t, w, w->norm.p, w->norm.n, first);
}

int cks_tok_hf_encode(const cks_tokenizer *t, cks_tok_work *w, const char *text, size_t len)
{
    size_t b = 0;
    int rc = 0;
    for (size_t i = 0; i < len && !rc;) {
        int32_t id;
        if ((i = cks_tok_matcher_skip(&t->prefix, text, i, len)) == len)
            break;
        size_t m = cks_tok_matcher_match(&t->prefix, text + i, len - i, &id);
        if (!m) {
            i++;
            continue;
        }
        rc = hf_raw_segment(t, w, text + b, i - b, b == 0);
        if (!rc)
            rc = cks_tok_emit(w, id);
        i += m;
        b = i;
    }
    if (!rc)
        rc = hf_raw_segment(t, w, text + b, len - b, b == 0);
    return rc;
}

/* ---- loading ---- */

static int unsupported(const cks_tokenizer *t, const char *what, const char *name)
{
    return cks_error_set(CKS_EUNSUPPORTED, "%s: %s '%s' is not supported", t->display, what,
                         name ? name : "?");
}

/* A JSON string into a fresh heap copy; CKS_EFORMAT naming key when not a string. */
static int dup_string(const cks_tokenizer *t, const json_t *v, const char *key, char **out,
                      size_t *len)
{
    if (!json_is_string(v))
        return cks_error_set(CKS_EFORMAT, "%s: \"%s\" is not a string", t->display, key);
    *len = json_string_length(v);
    *out = malloc(*len + 1);
    if (!*out)
        return cks_error_set(CKS_ENOMEM, "out of memory");
    memcpy(*out, json_string_value(v), *len + 1);
    return 0;
}

static int add_norm_step(cks_tokenizer *t, const json_t *j)
{
    const char *type = json_string_value(json_object_get(j, "type"));
    if (!json_is_object(j) || !type)
        return cks_error_set(CKS_EFORMAT, "%s: a normalizer without a \"type\"", t->display);
    if (strcmp(type, "Sequence") == 0)
        return unsupported(t, "nested normalizer", type);
    if (strcmp(type, "Prepend") != 0 && strcmp(type, "Replace") != 0 && strcmp(type, "NFC") != 0)
        return unsupported(t, "normalizer", type);
    if (t->nnorm == HF_MAX_NORM_STEPS)
        return cks_error_set(CKS_ELIMIT, "%s: more than %d normalizer steps", t->display,
                             HF_MAX_NORM_STEPS);
    cks_tok_hf_norm *op = &t->norm[t->nnorm++];
    memset(op, 0, sizeof *op);
    if (strcmp(type, "NFC") == 0) {
        op->kind = HF_NFC;
        return 0;
    }
    if (strcmp(type, "Prepend") == 0) {
        op->kind = HF_PREPEND;
        return dup_string(t, json_object_get(j, "prepend"), "prepend", &op->a, &op->alen);
    }
    op->kind = HF_REPLACE;
    const json_t *pat = json_object_get(j, "pattern");
    const json_t *lit = json_object_get(pat, "String");
    if (!lit)
        return unsupported(t, "Replace normalizer pattern (only literal strings)",
                           json_object_get(pat, "Regex") ? "Regex" : "?");
    int rc = dup_string(t, lit, "pattern", &op->a, &op->alen);
    if (!rc && op->alen == 0)
        rc = cks_error_set(CKS_EFORMAT, "%s: Replace normalizer with an empty pattern", t->display);
    if (!rc)
        rc = dup_string(t, json_object_get(j, "content"), "content", &op->b, &op->blen);
    return rc;
}

static int load_normalizer(cks_tokenizer *t, const json_t *j)
{
    if (!j || json_is_null(j))
        return 0;
    t->norm = calloc(HF_MAX_NORM_STEPS, sizeof *t->norm);
    if (!t->norm)
        return cks_error_set(CKS_ENOMEM, "out of memory");
    const char *type = json_string_value(json_object_get(j, "type"));
    if (type && strcmp(type, "Sequence") == 0) {
        const json_t *list = json_object_get(j, "normalizers");
        if (!json_is_array(list))
            return cks_error_set(CKS_EFORMAT, "%s: Sequence normalizer without a list", t->display);
        for (size_t i = 0; i < json_array_size(list); i++) {
            int rc = add_norm_step(t, json_array_get(list, i));
            if (rc)
                return rc;
        }
        return 0;
    }
    return add_norm_step(t, j);
}

static int load_pretok(cks_tokenizer *t, const json_t *j)
{
    if (!j || json_is_null(j))
        return 0;
    const char *type = json_string_value(json_object_get(j, "type"));
    if (cks_tok_bl_is_pretok(type))
        return cks_tok_bl_load(t, j);
    if (!type || strcmp(type, "Metaspace") != 0)
        return unsupported(t, "pre_tokenizer", type);
    t->pre = HF_PRE_METASPACE;
    const json_t *rep = json_object_get(j, "replacement");
    const char *r = json_string_value(rep);
    size_t rl = json_string_length(rep);
    if (!r || rl == 0 || rl >= sizeof t->meta || cks_tok_utf8_len(r, rl) != rl)
        return cks_error_set(CKS_EFORMAT, "%s: Metaspace replacement is not one character",
                             t->display);
    memcpy(t->meta, r, rl);
    t->metalen = rl;
    /* Older files: add_prefix_space (true = always); newer: prepend_scheme. */
    const json_t *aps = json_object_get(j, "add_prefix_space");
    t->prepend_scheme = aps && json_is_false(aps) ? HF_PREPEND_NEVER : HF_PREPEND_ALWAYS;
    const char *ps = json_string_value(json_object_get(j, "prepend_scheme"));
    if (ps) {
        if (strcmp(ps, "always") == 0)
            t->prepend_scheme = HF_PREPEND_ALWAYS;
        else if (strcmp(ps, "first") == 0)
            t->prepend_scheme = HF_PREPEND_FIRST;
        else if (strcmp(ps, "never") == 0)
            t->prepend_scheme = HF_PREPEND_NEVER;
        else
            return unsupported(t, "Metaspace prepend_scheme", ps);
    }
    const json_t *sp = json_object_get(j, "split");
    t->pre_split = !(sp && json_is_false(sp));
    return 0;
}

static int check_token(const cks_tokenizer *t, const char *what, const char *p, size_t len)
{
    if (len == 0)
        return cks_error_set(CKS_EFORMAT, "%s: an empty %s", t->display, what);
    if (len > CKS_TOK_MAX_PIECE_BYTES)
        return cks_error_set(CKS_ELIMIT, "%s: %s of %zu bytes (limit %d)", t->display, what, len,
                             CKS_TOK_MAX_PIECE_BYTES);
    if (memchr(p, 0, len))
        return cks_error_set(CKS_EFORMAT, "%s: %s with a NUL byte", t->display, what);
    return 0;
}

/* model.vocab: token -> id; ids unique. assigned[id] is set for every id given. */
static int load_vocab(cks_tokenizer *t, const json_t *vocab, uint8_t *assigned)
{
    const char *key;
    size_t klen;
    json_t *v;
    json_object_keylen_foreach((json_t *)vocab, key, klen, v)
    {
        int64_t id;
        int rc = check_token(t, "vocabulary token", key, klen);
        if (rc)
            return rc;
        if (!json_is_integer(v) || (id = json_integer_value(v)) < 0 || id >= CKS_TOK_MAX_PIECES)
            return cks_error_set(CKS_EFORMAT, "%s: vocabulary token '%s' has id outside [0, %d)",
                                 t->display, key, CKS_TOK_MAX_PIECES);
        if (assigned[id])
            return cks_error_set(CKS_EFORMAT, "%s: id %lld is given to '%s' and to '%s'",
                                 t->display, (long long)id, cks_tok_str(&t->pieces, (int32_t)id),
                                 key);
        assigned[id] = 1;
        if ((rc = cks_tok_strs_set(&t->pieces, (int32_t)id, key, klen)))
            return rc;
    }
    return 0;
}

static int get_flag(const cks_tokenizer *t, const json_t *o, const char *key, int dflt, int *out)
{
    const json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) {
        *out = dflt;
        return 0;
    }
    if (!json_is_boolean(v))
        return cks_error_set(CKS_EFORMAT, "%s: \"%s\" is not a boolean", t->display, key);
    *out = json_is_true(v);
    return 0;
}

/* added_tokens: ids may extend the vocabulary; a token also in model.vocab must keep its id. */
static int load_added(cks_tokenizer *t, const json_t *list, uint8_t *assigned,
                      const uint8_t *in_vocab, cks_tok_matcher *norm_pending)
{
    if (!list || json_is_null(list))
        return 0;
    if (!json_is_array(list))
        return cks_error_set(CKS_EFORMAT, "%s: \"added_tokens\" is not a list", t->display);
    if (json_array_size(list) > CKS_TOK_MAX_ADDED)
        return cks_error_set(CKS_ELIMIT, "%s: more than %d added tokens", t->display,
                             CKS_TOK_MAX_ADDED);
    for (size_t i = 0; i < json_array_size(list); i++) {
        const json_t *a = json_array_get(list, i);
        const json_t *c = json_object_get(a, "content");
        int64_t id;
        int special = 0, normalized = 0, lstrip = 0, rstrip = 0, single = 0, rc;
        if (!json_is_object(a) || !json_is_string(c))
            return cks_error_set(CKS_EFORMAT, "%s: added token %zu has no \"content\"", t->display,
                                 i);
        const char *s = json_string_value(c);
        size_t len = json_string_length(c);
        if ((rc = check_token(t, "added token", s, len)) ||
            (rc = cks_json_get_int(a, "id", 0, CKS_TOK_MAX_PIECES - 1, 0, 0, t->display, &id)) ||
            (rc = get_flag(t, a, "special", 0, &special)) ||
            (rc = get_flag(t, a, "normalized", !special, &normalized)) ||
            (rc = get_flag(t, a, "lstrip", 0, &lstrip)) ||
            (rc = get_flag(t, a, "rstrip", 0, &rstrip)) ||
            (rc = get_flag(t, a, "single_word", 0, &single)))
            return rc;
        if (lstrip || rstrip || single)
            return unsupported(t, "added token with lstrip/rstrip/single_word", s);
        if (assigned[id] &&
            (t->pieces.len[id] != len || memcmp(cks_tok_str(&t->pieces, (int32_t)id), s, len) != 0))
            return cks_error_set(CKS_EFORMAT, "%s: added token '%s' has id %lld, which is '%s'",
                                 t->display, s, (long long)id,
                                 cks_tok_str(&t->pieces, (int32_t)id));
        if (!in_vocab[id] && (rc = cks_tok_strs_set(&t->pieces, (int32_t)id, s, len)))
            return rc;
        assigned[id] = 1;
        rc = cks_tok_matcher_add(normalized ? norm_pending : &t->prefix, s, len, (int32_t)id);
        if (rc)
            return cks_error_prefix(rc, "%s", t->display);
    }
    return 0;
}

/* One merge: "a b" (exactly one space) or ["a", "b"]. */
static int merge_parts(const cks_tokenizer *t, const json_t *m, size_t i, const char **a,
                       size_t *al, const char **b, size_t *bl)
{
    if (json_is_string(m)) {
        const char *s = json_string_value(m), *sp = strchr(s, ' ');
        size_t len = json_string_length(m);
        if (!sp || strchr(sp + 1, ' ') || memchr(s, 0, len))
            return cks_error_set(CKS_EFORMAT, "%s: merge %zu ('%s') is not two tokens \"a b\"",
                                 t->display, i, s);
        *a = s, *al = (size_t)(sp - s), *b = sp + 1, *bl = len - *al - 1;
        return 0;
    }
    const json_t *x = json_array_get(m, 0), *y = json_array_get(m, 1);
    if (!json_is_array(m) || json_array_size(m) != 2 || !json_is_string(x) || !json_is_string(y))
        return cks_error_set(CKS_EFORMAT, "%s: merge %zu is neither \"a b\" nor [\"a\", \"b\"]",
                             t->display, i);
    *a = json_string_value(x), *al = json_string_length(x);
    *b = json_string_value(y), *bl = json_string_length(y);
    return 0;
}

static int load_merges(cks_tokenizer *t, const json_t *list, uint8_t *merge_part)
{
    if (!json_is_array(list))
        return cks_error_set(CKS_EFORMAT, "%s: model.merges is missing or not a list", t->display);
    size_t n = json_array_size(list);
    if (n > CKS_TOK_MAX_MERGES)
        return cks_error_set(CKS_ELIMIT, "%s: %zu merges (limit %d)", t->display, n,
                             CKS_TOK_MAX_MERGES);
    int rc = cks_tok_mergemap_init(&t->merges, n);
    cks_tok_buf cat = {0};
    for (size_t i = 0; i < n && !rc; i++) {
        const char *a = "", *b = "";
        size_t al = 0, bl = 0;
        if ((rc = merge_parts(t, json_array_get(list, i), i, &a, &al, &b, &bl)))
            break;
        int32_t l = cks_tok_strmap_get(&t->normal, &t->pieces, a, al);
        int32_t r = cks_tok_strmap_get(&t->normal, &t->pieces, b, bl);
        if (l < 0 || r < 0) {
            rc = cks_error_set(
                CKS_EFORMAT, "%s: merge %zu ('%.*s' '%.*s') names unknown token '%.*s'", t->display,
                i, (int)al, a, (int)bl, b, (int)(l < 0 ? al : bl), l < 0 ? a : b);
            break;
        }
        cat.n = 0;
        if ((rc = cks_tok_buf_put(&cat, a, al)) || (rc = cks_tok_buf_put(&cat, b, bl)))
            break;
        int32_t id = cks_tok_strmap_get(&t->normal, &t->pieces, cat.p, cat.n);
        if (id < 0) {
            rc = cks_error_set(CKS_EFORMAT, "%s: merge %zu: '%.*s' is not in the vocabulary",
                               t->display, i, (int)cat.n, cat.p);
            break;
        }
        cks_tok_mergemap_put(&t->merges, l, r, (int32_t)i, id);
        merge_part[l] = merge_part[r] = 1;
    }
    free(cat.p);
    return rc;
}

static int load_model(cks_tokenizer *t, const json_t *model, const json_t *root, uint8_t *assigned,
                      uint8_t *in_vocab, uint8_t **merge_part, cks_tok_matcher *pending)
{
    const char *type = json_string_value(json_object_get(model, "type"));
    if (type && strcmp(type, "BPE") != 0)
        return unsupported(t, "model type", type);
    const json_t *drop = json_object_get(model, "dropout");
    if (drop && !json_is_null(drop) && !(json_is_number(drop) && json_number_value(drop) == 0))
        return unsupported(t, "BPE option", "dropout (random merges)");
    static const char *affixes[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (int k = 0; k < 2; k++) {
        const char *v = json_string_value(json_object_get(model, affixes[k]));
        if (v && *v)
            return unsupported(t, "BPE option", affixes[k]);
    }
    const json_t *vocab = json_object_get(model, "vocab");
    if (!json_is_object(vocab))
        return cks_error_set(CKS_EFORMAT, "%s: model.vocab is missing or not an object",
                             t->display);
    if (json_object_size(vocab) > CKS_TOK_MAX_PIECES)
        return cks_error_set(CKS_ELIMIT, "%s: more than %d vocabulary entries", t->display,
                             CKS_TOK_MAX_PIECES);
    int rc = load_vocab(t, vocab, assigned);
    if (rc)
        return rc;
    memcpy(in_vocab, assigned, CKS_TOK_MAX_PIECES);
    if ((rc = load_added(t, json_object_get(root, "added_tokens"), assigned, in_vocab, pending)))
        return rc;
    for (int32_t i = 0; i < t->pieces.n; i++)
        if (!assigned[i])
            return cks_error_set(CKS_EFORMAT, "%s: no token has id %d (ids must be 0..%d)",
                                 t->display, i, t->pieces.n - 1);
    if ((rc = cks_tok_strmap_init(&t->normal, (size_t)t->pieces.n)))
        return rc;
    for (int32_t i = 0; i < t->pieces.n; i++)
        if (in_vocab[i])
            cks_tok_strmap_put(&t->normal, &t->pieces, i);
    if ((rc = get_flag(t, model, "byte_fallback", 0, &t->byte_fallback)) ||
        (rc = get_flag(t, model, "fuse_unk", 0, &t->fuse_unk)) ||
        (rc = get_flag(t, model, "ignore_merges", 0, &t->ignore_merges)))
        return rc;
    const json_t *unk = json_object_get(model, "unk_token");
    if (unk && !json_is_null(unk)) {
        const char *u = json_string_value(unk);
        if (!u || (t->unk_id =
                       cks_tok_strmap_get(&t->normal, &t->pieces, u, json_string_length(unk))) < 0)
            return cks_error_set(CKS_EFORMAT, "%s: unk_token is not a vocabulary token",
                                 t->display);
    }
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        t->byte_id[b] = cks_tok_strmap_get(&t->normal, &t->pieces, name, 6);
    }
    *merge_part = calloc((size_t)t->pieces.n, 1);
    if (!*merge_part)
        return cks_error_set(CKS_ENOMEM, "out of memory");
    return load_merges(t, json_object_get(model, "merges"), *merge_part);
}

/* Normalized added tokens are matched in normalized text, as their normalized content. */
static int build_added(cks_tokenizer *t, cks_tok_matcher *pending)
{
    cks_tok_buf o = {0}, tmp = {0};
    int rc = cks_tok_matcher_build(&t->prefix);
    for (int32_t i = 0; i < pending->pat.n && !rc; i++) {
        rc = hf_apply_norm(t, cks_tok_str(&pending->pat, i), pending->pat.len[i], &o, &tmp);
        if (!rc)
            if ((rc = cks_tok_matcher_add(&t->added_norm, o.p, o.n, pending->val[i])) != 0)
                rc = cks_error_prefix(rc, "%s: normalized", t->display);
    }
    if (!rc)
        rc = cks_tok_matcher_build(&t->added_norm);
    free(o.p);
    free(tmp.p);
    return rc;
}

static int32_t find_piece(const cks_tokenizer *t, const char *s)
{
    size_t len = strlen(s);
    for (int32_t i = 0; i < t->pieces.n; i++)
        if (t->pieces.len[i] == len && memcmp(cks_tok_str(&t->pieces, i), s, len) == 0)
            return i;
    return -1;
}

int cks_tokenizer_load_hf(cks_tokenizer **out, const char *json, size_t len, const char *display)
{
    cks_tokenizer *t = cks_tok_new(TOK_HF, display);
    if (!t)
        return cks_error_set(CKS_ENOMEM, "out of memory");
    json_t *root = NULL;
    uint8_t *assigned = NULL, *in_vocab = NULL, *merge_part = NULL;
    cks_tok_matcher pending;
    memset(&pending, 0, sizeof pending);
    int rc = 0;
    if (len > CKS_TOK_MAX_FILE_BYTES)
        rc = cks_error_set(CKS_ELIMIT, "%s: %zu bytes, over the limit of %u", t->display, len,
                           CKS_TOK_MAX_FILE_BYTES);
    if (!rc)
        rc = cks_json_parse(json, len, t->display, 1, &root);
    const json_t *model = root ? json_object_get(root, "model") : NULL;
    if (!rc && !json_is_object(model))
        rc = cks_error_set(CKS_EFORMAT, "%s: no \"model\" object", t->display);
    if (!rc) {
        assigned = calloc(CKS_TOK_MAX_PIECES, 1);
        in_vocab = calloc(CKS_TOK_MAX_PIECES, 1);
        if (!assigned || !in_vocab)
            rc = cks_error_set(CKS_ENOMEM, "out of memory");
    }
    if (!rc)
        rc = load_model(t, model, root, assigned, in_vocab, &merge_part, &pending);
    if (!rc)
        rc = load_normalizer(t, json_object_get(root, "normalizer"));
    if (!rc)
        rc = load_pretok(t, json_object_get(root, "pre_tokenizer"));
    if (!rc)
        rc = build_added(t, &pending);
    if (!rc && t->bl)
        rc = cks_tok_bl_finish(t);
    if (!rc)
        rc = cks_tok_build_text(t);
    if (!rc) {
        /* LLaMA's <s> and </s>; GPT-2, GPT-NeoX and OLMo use <|endoftext|> for both. */
        t->bos_id = find_piece(t, "<s>");
        t->eos_id = find_piece(t, "</s>");
        if (t->bl && t->bos_id < 0 && t->eos_id < 0)
            t->bos_id = t->eos_id = find_piece(t, "<|endoftext|>");
        if (!t->bl)
            cks_tok_barriers(t, merge_part);
        *out = t;
        t = NULL;
    }
    cks_tokenizer_free(t);
    cks_tok_matcher_release(&pending);
    free(assigned);
    free(in_vocab);
    free(merge_part);
    json_decref(root);
    return rc;
}
