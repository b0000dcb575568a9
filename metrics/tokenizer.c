/* The tokenizer's common part: the BPE merge engine (a priority queue of candidate pairs,
 * O(n log n)), SentencePiece normalization and encoding (sentencepiece's normalizer.cc,
 * bpe_model.cc and SentencePieceProcessor::PopulateSentencePieceText), and the public
 * API: loading by file, bytes or checkpoint, getters, add_bos_token. */
#include "error.h"
#include "json.h"
#include "tok_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char kSpace[] = "\xe2\x96\x81"; /* U+2581, SentencePiece's whitespace */

cks_tokenizer *cks_tok_new(int kind, const char *display)
{
    cks_tokenizer *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->kind = kind;
    snprintf(t->display, sizeof t->display, "%s", display ? display : "tokenizer");
    t->unk_id = t->bos_id = t->eos_id = -1;
    for (int b = 0; b < 256; b++)
        t->byte_id[b] = -1;
    return t;
}

void cks_tokenizer_free(cks_tokenizer *t)
{
    if (!t)
        return;
    cks_tok_hf_release(t);
    cks_tok_strs_release(&t->pieces);
    cks_tok_strs_release(&t->text);
    cks_tok_strmap_release(&t->normal);
    cks_tok_strmap_release(&t->reserved);
    cks_tok_matcher_release(&t->prefix);
    cks_tok_matcher_release(&t->added_norm);
    cks_tok_mergemap_release(&t->merges);
    free(t->score);
    free(t->type);
    free(t);
}

/* A byte b can cut the text into segments that encode independently when no merge can
 * involve it: no piece longer than one byte contains it (every merge result is a piece),
 * and, for Hugging Face, the token its character becomes is in no merge (merge_part).
 * Cutting changes nothing in the result and bounds the engine's memory to a segment. */
void cks_tok_barriers(cks_tokenizer *t, const uint8_t *merge_part)
{
    uint8_t ok[128];
    memset(ok, 1, sizeof ok);
    if (t->has_unused) {
        /* UNUSED pieces are re-split with state of the whole text: no cutting. */
        memset(t->barrier, 0, sizeof t->barrier);
        t->cut_space = 0;
        return;
    }
    for (int32_t i = 0; i < t->pieces.n; i++) {
        if (t->pieces.len[i] <= 1)
            continue;
        const char *p = cks_tok_str(&t->pieces, i);
        if (cks_tok_strmap_get(&t->normal, &t->pieces, p, t->pieces.len[i]) != i)
            continue; /* not a mergeable piece */
        for (uint32_t k = 0; k < t->pieces.len[i]; k++)
            if ((uint8_t)p[k] < 128)
                ok[(uint8_t)p[k]] = 0;
    }
    /* Word starts: every U+2581 inside a mergeable piece follows another U+2581. */
    t->cut_space = t->kind == TOK_HF || t->escape_ws;
    if (t->kind == TOK_HF && cks_tok_strmap_get(&t->normal, &t->pieces, kSpace, 3) < 0)
        t->cut_space = 0; /* its unk / byte handling would differ at the cut */
    for (int32_t i = 0; i < t->pieces.n && t->cut_space; i++) {
        const char *p = cks_tok_str(&t->pieces, i);
        uint32_t len = t->pieces.len[i];
        if (len <= 3 || cks_tok_strmap_get(&t->normal, &t->pieces, p, len) != i)
            continue;
        for (uint32_t k = 3; k + 3 <= len; k++)
            if (memcmp(p + k, kSpace, 3) == 0 && memcmp(p + k - 3, kSpace, 3) != 0)
                t->cut_space = 0;
    }
    for (int b = 0; b < 128; b++) {
        if (ok[b] && merge_part) {
            char c = (char)b;
            int32_t id = cks_tok_strmap_get(&t->normal, &t->pieces, &c, 1);
            if (id < 0)
                id = t->byte_fallback ? t->byte_id[b] : -1;
            ok[b] = id >= 0 && !merge_part[id];
        }
        /* The user-defined / added-token matcher never starts at a barrier. */
        if (t->prefix.first[b] || t->added_norm.first[b])
            ok[b] = 0;
        t->barrier[b] = ok[b];
    }
}

/* ---- working memory ---- */

void cks_tok_work_release(cks_tok_work *w)
{
    cks_tok_bl_work_release(w);
    free(w->sym);
    free(w->heap);
    free(w->out);
    free(w->rev);
    free(w->stack);
    free(w->norm.p);
    free(w->tmp.p);
    memset(w, 0, sizeof *w);
}

int cks_tok_work_syms(cks_tok_work *w, size_t n)
{
    if (n > INT32_MAX / 4)
        return cks_error_set(CKS_ELIMIT, "a text segment of %zu characters (limit %d)", n,
                             INT32_MAX / 4);
    if (n > w->sym_cap) {
        size_t cap = n < 1024 ? 1024 : n + n / 2;
        cks_tok_sym *s = realloc(w->sym, cap * sizeof *s);
        if (!s)
            return cks_error_set(CKS_ENOMEM, "out of memory (%zu symbols)", cap);
        w->sym = s;
        w->sym_cap = cap;
    }
    /* Each merge pushes at most two candidates: n - 1 + 2 (n - 1) < 3n. */
    if (3 * n > w->heap_cap) {
        size_t cap = 3 * n < 3072 ? 3072 : 3 * n + 3 * n / 2;
        cks_tok_cand *h = realloc(w->heap, cap * sizeof *h);
        if (!h)
            return cks_error_set(CKS_ENOMEM, "out of memory (%zu merge candidates)", cap);
        w->heap = h;
        w->heap_cap = cap;
    }
    return 0;
}

int cks_tok_emit(cks_tok_work *w, int32_t id)
{
    if (w->out_n == w->out_cap) {
        size_t cap = w->out_cap ? w->out_cap * 2 : 1024;
        int32_t *o = realloc(w->out, cap * sizeof *o);
        if (!o)
            return cks_error_set(CKS_ENOMEM, "out of memory (%zu token ids)", cap);
        w->out = o;
        w->out_cap = cap;
    }
    w->out[w->out_n++] = id;
    return 0;
}

int cks_tok_emit_n(cks_tok_work *w, const int32_t *ids, size_t n)
{
    if (n == 0)
        return 0;
    if (w->out_cap - w->out_n < n) {
        size_t cap = w->out_cap ? w->out_cap : 1024;
        while (cap - w->out_n < n)
            cap *= 2;
        int32_t *o = realloc(w->out, cap * sizeof *o);
        if (!o)
            return cks_error_set(CKS_ENOMEM, "out of memory (%zu token ids)", cap);
        w->out = o;
        w->out_cap = cap;
    }
    for (size_t i = 0; i < n; i++) /* a few ids: cheaper than a call to memcpy */
        w->out[w->out_n + i] = ids[i];
    w->out_n += n;
    return 0;
}

/* ---- what each token stands for ---- */

/* One piece's text: byte-level tokens through GPT-2's byte map; byte pieces <0xXX> as
 * their byte; SentencePiece control pieces as nothing and its unknown piece as " U+2047 "
 * (SentencePiece's decoding); every U+2581 as a space otherwise. */
static int piece_text(const cks_tokenizer *t, int32_t i, cks_tok_buf *o)
{
    const char *p = cks_tok_str(&t->pieces, i);
    size_t len = t->pieces.len[i];
    o->n = 0;
    if (t->bl)
        return cks_tok_bl_token_bytes(p, len, o);
    if (len == 6 && memcmp(p, "<0x", 3) == 0 && p[5] == '>') {
        for (int b = 0; b < 256; b++)
            if (t->byte_id[b] == i) {
                char c = (char)b;
                return cks_tok_buf_put(o, &c, 1);
            }
    }
    if (t->kind == TOK_SPM && t->type[i] == SPM_CONTROL)
        return 0;
    if (t->kind == TOK_SPM && t->type[i] == SPM_UNKNOWN)
        return cks_tok_buf_put(o, " \xe2\x81\x87 ", 5);
    int rc = 0;
    for (size_t k = 0; k < len && !rc;) {
        if (len - k >= 3 && memcmp(p + k, kSpace, 3) == 0) {
            rc = cks_tok_buf_put(o, " ", 1);
            k += 3;
        } else {
            rc = cks_tok_buf_put(o, p + k, 1);
            k++;
        }
    }
    return rc;
}

int cks_tok_build_text(cks_tokenizer *t)
{
    cks_tok_buf o = {0};
    int rc = 0;
    for (int32_t i = 0; i < t->pieces.n && !rc; i++) {
        if (!(rc = piece_text(t, i, &o)))
            rc = cks_tok_strs_add(&t->text, o.p ? o.p : "", o.n);
    }
    free(o.p);
    return rc;
}

/* ---- the merge engine ---- */

/* a comes out of the queue before b: higher priority, then the leftmost pair
 * (sentencepiece's SymbolPairComparator; tokenizers' Merge ordering by rank, pos). */
static inline int cand_before(const cks_tok_cand *a, const cks_tok_cand *b)
{
    return a->prio > b->prio || (a->prio == b->prio && a->left < b->left);
}

static void heap_push(cks_tok_work *w, cks_tok_cand c)
{
    size_t i = w->heap_n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!cand_before(&c, &w->heap[p]))
            break;
        w->heap[i] = w->heap[p];
        i = p;
    }
    w->heap[i] = c;
}

static cks_tok_cand heap_pop(cks_tok_work *w)
{
    cks_tok_cand top = w->heap[0], last = w->heap[--w->heap_n];
    size_t i = 0, n = w->heap_n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && cand_before(&w->heap[c + 1], &w->heap[c]))
            c++;
        if (!cand_before(&w->heap[c], &last))
            break;
        w->heap[i] = w->heap[c];
        i = c;
    }
    if (n)
        w->heap[i] = last;
    return top;
}

static void maybe_push(const cks_tokenizer *t, cks_tok_work *w, const char *s, int32_t l,
                       cks_tok_pair_fn pair)
{
    if (l < 0 || w->sym[l].next < 0)
        return;
    const cks_tok_sym *a = &w->sym[l], *b = &w->sym[a->next];
    cks_tok_cand c;
    if (!pair(t, w, s, a, b, &c.prio, &c.id))
        return;
    c.left = l;
    c.size = a->len + b->len;
    heap_push(w, c);
}

int cks_tok_bpe(const cks_tokenizer *t, cks_tok_work *w, const char *s, size_t n,
                cks_tok_pair_fn pair)
{
    w->heap_n = 0;
    for (size_t i = 0; i + 1 < n; i++)
        maybe_push(t, w, s, (int32_t)i, pair);
    while (w->heap_n) {
        cks_tok_cand c = heap_pop(w);
        cks_tok_sym *a = &w->sym[c.left];
        /* Stale when either side has merged since: lengths only grow, so the sum differs. */
        if (a->len == 0 || a->next < 0 || a->len + w->sym[a->next].len != c.size)
            continue;
        cks_tok_sym *b = &w->sym[a->next];
        a->len += b->len;
        a->id = c.id;
        a->next = b->next;
        if (b->next >= 0)
            w->sym[b->next].prev = c.left;
        b->len = 0;
        maybe_push(t, w, s, a->prev, pair);
        maybe_push(t, w, s, c.left, pair);
    }
    return 0;
}

/* ---- SentencePiece ---- */

/* Length of the normalizer's next unit at p: a user-defined piece, else one character. */
static size_t spm_unit(const cks_tokenizer *t, const char *p, size_t avail, int *is_uds)
{
    int32_t v;
    size_t m = cks_tok_matcher_match(&t->prefix, p, avail, &v);
    *is_uds = m > 0;
    return m ? m : cks_tok_utf8_len(p, avail);
}

static int spm_put_space(const cks_tokenizer *t, cks_tok_buf *o)
{
    return t->escape_ws ? cks_tok_buf_put(o, kSpace, 3) : cks_tok_buf_put(o, " ", 1);
}

/* normalizer.cc Normalizer::Normalize with an empty charsmap (the identity rule). */
static int spm_normalize(const cks_tokenizer *t, const char *in, size_t len, cks_tok_buf *o)
{
    size_t pos = 0;
    int uds, rc;
    o->n = 0;
    if (t->remove_extra_ws) {
        while (pos < len && in[pos] == ' ' && spm_unit(t, in + pos, len - pos, &uds) == 1)
            pos++;
    }
    if (pos == len)
        return 0;
    if ((rc = cks_tok_buf_reserve(o, 3 * (len - pos) + 3)))
        return rc;
    if (t->add_dummy_prefix && (rc = spm_put_space(t, o)))
        return rc;
    int prev_space = t->remove_extra_ws;
    while (pos < len) {
        size_t u = spm_unit(t, in + pos, len - pos, &uds), k = 0;
        while (prev_space && k < u && in[pos + k] == ' ')
            k++;
        if (k < u) {
            for (size_t j = k; j < u; j++) {
                if (in[pos + j] == ' ')
                    rc = spm_put_space(t, o);
                else
                    rc = cks_tok_buf_put(o, in + pos + j, 1);
                if (rc)
                    return rc;
            }
            prev_space = in[pos + u - 1] == ' ';
        }
        pos += u;
        if (!t->remove_extra_ws)
            prev_space = 0;
    }
    if (t->remove_extra_ws) {
        const char *sp = t->escape_ws ? kSpace : " ";
        size_t sl = t->escape_ws ? 3 : 1;
        while (o->n >= sl && memcmp(o->p + o->n - sl, sp, sl) == 0)
            o->n -= sl;
    }
    return 0;
}

/* ModelInterface::PieceToId: reserved pieces first, then normal ones, else unk. */
static int32_t spm_piece_id(const cks_tokenizer *t, const char *p, size_t len)
{
    int32_t id = cks_tok_strmap_get(&t->reserved, &t->pieces, p, len);
    if (id < 0)
        id = cks_tok_strmap_get(&t->normal, &t->pieces, p, len);
    return id < 0 ? t->unk_id : id;
}

static int spm_pair(const cks_tokenizer *t, cks_tok_work *w, const char *s, const cks_tok_sym *l,
                    const cks_tok_sym *r, float *prio, int32_t *id)
{
    if (l->freeze || r->freeze)
        return 0;
    int32_t i = cks_tok_strmap_get(&t->normal, &t->pieces, s + l->start, l->len + r->len);
    if (i < 0)
        return 0;
    *prio = t->score[i];
    *id = i;
    if (w->rev && t->type[i] == SPM_UNUSED)
        w->rev[i] = (int32_t)l->len; /* bpe_model.cc's rev_merge: the last pushed split */
    return 1;
}

/* PopulateSentencePieceText: byte pieces for unknown pieces with byte_fallback, else
 * one unk per run of unknown pieces. */
static int spm_emit_piece(const cks_tokenizer *t, cks_tok_work *w, const char *p, size_t len,
                          int32_t id)
{
    int rc = 0;
    int unk = id == t->unk_id;
    if (unk && t->byte_fallback) {
        for (size_t k = 0; k < len && !rc; k++)
            rc = cks_tok_emit(w, t->byte_id[(uint8_t)p[k]]);
    } else if (!(unk && w->prev_unk)) {
        rc = cks_tok_emit(w, id);
    }
    w->prev_unk = unk;
    return rc;
}

/* bpe_model.cc's resegment, with an explicit stack: an UNUSED piece is replaced by the
 * two pieces it was last formed from, recursively. */
static int spm_resegment(const cks_tokenizer *t, cks_tok_work *w, const char *s, uint32_t start,
                         uint32_t len)
{
    size_t need = 2 * (size_t)len + 2, sp = 0;
    if (need > w->stack_cap) {
        uint32_t *st = realloc(w->stack, need * sizeof *st);
        if (!st)
            return cks_error_set(CKS_ENOMEM, "out of memory");
        w->stack = st;
        w->stack_cap = need;
    }
    w->stack[sp++] = start;
    w->stack[sp++] = len;
    while (sp) {
        uint32_t l = w->stack[--sp], b = w->stack[--sp];
        int32_t id = spm_piece_id(t, s + b, l);
        int32_t cut = id >= 0 && t->type[id] == SPM_UNUSED ? w->rev[id] : -1;
        if (cut > 0 && (uint32_t)cut < l) {
            w->stack[sp++] = b + (uint32_t)cut; /* right half, popped second */
            w->stack[sp++] = l - (uint32_t)cut;
            w->stack[sp++] = b;
            w->stack[sp++] = (uint32_t)cut;
            continue;
        }
        int rc = spm_emit_piece(t, w, s + b, l, id);
        if (rc)
            return rc;
    }
    return 0;
}

static int spm_segment(const cks_tokenizer *t, cks_tok_work *w, const char *s, size_t len)
{
    size_t n = 0;
    int rc = cks_tok_work_syms(w, len);
    if (rc)
        return rc;
    for (size_t pos = 0; pos < len;) {
        int32_t v;
        size_t m = cks_tok_matcher_match(&t->prefix, s + pos, len - pos, &v);
        cks_tok_sym *y = &w->sym[n];
        y->freeze = m > 0;
        if (!m)
            m = cks_tok_utf8_len(s + pos, len - pos);
        y->start = (uint32_t)pos;
        y->len = (uint32_t)m;
        y->id = -1; /* looked up when emitted */
        y->prev = (int32_t)n - 1;
        pos += m;
        y->next = pos < len ? (int32_t)n + 1 : -1;
        n++;
    }
    if ((rc = cks_tok_bpe(t, w, s, n, spm_pair)))
        return rc;
    for (int32_t i = n ? 0 : -1; i >= 0; i = w->sym[i].next) {
        /* Looked up by string, reserved pieces first, as the final PieceToId does. */
        const cks_tok_sym *y = &w->sym[i];
        int32_t id = spm_piece_id(t, s + y->start, y->len);
        if (w->rev && t->type[id] == SPM_UNUSED)
            rc = spm_resegment(t, w, s, y->start, y->len);
        else
            rc = spm_emit_piece(t, w, s + y->start, y->len, id);
        if (rc)
            return rc;
    }
    return 0;
}

static int spm_encode(const cks_tokenizer *t, cks_tok_work *w, const char *text, size_t len)
{
    int rc = spm_normalize(t, text, len, &w->norm);
    if (rc)
        return rc;
    if (t->has_unused) {
        w->rev = malloc((size_t)t->pieces.n * sizeof *w->rev);
        if (!w->rev)
            return cks_error_set(CKS_ENOMEM, "out of memory");
        memset(w->rev, 0xff, (size_t)t->pieces.n * sizeof *w->rev);
    }
    const char *s = w->norm.p;
    size_t n = w->norm.n, b = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        uint8_t c = (uint8_t)s[i];
        if (c < 128 && t->barrier[c]) {
            rc = spm_segment(t, w, s + b, i + 1 - b);
            b = i + 1;
        } else if (cks_tok_word_start(t, s, i, b)) {
            rc = spm_segment(t, w, s + b, i - b);
            b = i;
        }
    }
    if (!rc && b < n)
        rc = spm_segment(t, w, s + b, n - b);
    return rc;
}

/* ---- public API ---- */

int cks_tokenizer_encode(const cks_tokenizer *t, const char *text, size_t len, int32_t **ids,
                         size_t *n)
{
    if (len > CKS_TOK_MAX_TEXT_BYTES)
        return cks_error_set(CKS_ELIMIT, "text of %zu bytes is over the tokenizer's limit (%zu)",
                             len, (size_t)CKS_TOK_MAX_TEXT_BYTES);
    size_t bad = cks_utf8_check(text, len);
    if (bad < len)
        return cks_error_set(CKS_EFORMAT,
                             "text is not valid UTF-8 at byte offset %zu (byte 0x%02X)", bad,
                             (unsigned)(uint8_t)text[bad]);
    cks_tok_work w;
    memset(&w, 0, sizeof w);
    /* Room for the ids up front (natural text gives about one per 3-4 bytes): the output
     * then rarely moves while it grows. */
    if (len / 3 + 16 <= (size_t)1 << 26 && (w.out = malloc((len / 3 + 16) * sizeof *w.out)))
        w.out_cap = len / 3 + 16;
    int rc =
        t->kind == TOK_SPM ? spm_encode(t, &w, text, len) : cks_tok_hf_encode(t, &w, text, len);
    cks_tok_bl_work_give(t, &w);
    if (rc) {
        cks_tok_work_release(&w);
        return rc;
    }
    *n = w.out_n;
    *ids = w.out_n ? w.out : NULL;
    if (!w.out_n)
        free(w.out);
    w.out = NULL;
    cks_tok_work_release(&w);
    return 0;
}

int64_t cks_tokenizer_vocab_size(const cks_tokenizer *t)
{
    return t->pieces.n;
}

int32_t cks_tokenizer_bos_id(const cks_tokenizer *t)
{
    return t->bos_id;
}

int32_t cks_tokenizer_eos_id(const cks_tokenizer *t)
{
    return t->eos_id;
}

const char *cks_tokenizer_piece(const cks_tokenizer *t, int32_t id)
{
    if (id < 0 || id >= t->pieces.n)
        return NULL;
    return cks_tok_str(&t->pieces, id);
}

const char *cks_tokenizer_token_bytes(const cks_tokenizer *t, int32_t id, size_t *len)
{
    if (id < 0 || id >= t->text.n)
        return NULL;
    *len = t->text.len[id];
    return cks_tok_str(&t->text, id);
}

int cks_tokenizer_decode(const cks_tokenizer *t, const int32_t *ids, size_t n, char **out,
                         size_t *len)
{
    cks_tok_buf o = {0};
    int rc = cks_tok_buf_reserve(&o, 0);
    for (size_t i = 0; i < n && !rc; i++) {
        size_t l = 0;
        const char *p = cks_tokenizer_token_bytes(t, ids[i], &l);
        if (!p)
            rc = cks_error_set(CKS_EINVAL, "token id %d is outside the vocabulary (%d)", ids[i],
                               t->pieces.n);
        else
            rc = cks_tok_buf_put(&o, p, l);
    }
    if (rc) {
        free(o.p);
        return rc;
    }
    o.p[o.n] = '\0';
    *out = o.p;
    *len = o.n;
    return 0;
}

/* Length of the maximal subpart of an ill-formed sequence at s (Unicode §3.9, U+FFFD
 * substitution; Rust's String::from_utf8_lossy follows it). */
static size_t bad_run(const uint8_t *s, size_t n)
{
    uint8_t b = s[0], lo = 0x80, hi = 0xBF;
    size_t need;
    if (b >= 0xC2 && b <= 0xDF) {
        need = 1;
    } else if (b >= 0xE0 && b <= 0xEF) {
        need = 2;
        lo = b == 0xE0 ? 0xA0 : 0x80;
        hi = b == 0xED ? 0x9F : 0xBF;
    } else if (b >= 0xF0 && b <= 0xF4) {
        need = 3;
        lo = b == 0xF0 ? 0x90 : 0x80;
        hi = b == 0xF4 ? 0x8F : 0xBF;
    } else {
        return 1;
    }
    size_t k = 1;
    while (k <= need && k < n && s[k] >= lo && s[k] <= hi) {
        k++;
        lo = 0x80;
        hi = 0xBF;
    }
    return k;
}

int cks_tokenizer_decode_utf8(const cks_tokenizer *t, const int32_t *ids, size_t n, char **out,
                              size_t *len)
{
    char *raw = NULL;
    size_t rlen = 0;
    int rc = cks_tokenizer_decode(t, ids, n, &raw, &rlen);
    if (rc)
        return rc;
    cks_tok_buf o = {0};
    for (size_t i = 0; i < rlen && !rc;) {
        size_t ok = cks_utf8_check(raw + i, rlen - i);
        if ((rc = cks_tok_buf_put(&o, raw + i, ok)) != 0 || i + ok == rlen)
            break;
        i += ok;
        rc = cks_tok_buf_put(&o, "\xef\xbf\xbd", 3); /* U+FFFD */
        i += bad_run((const uint8_t *)raw + i, rlen - i);
    }
    if (!rc)
        rc = cks_tok_buf_reserve(&o, 0);
    free(raw);
    if (rc) {
        free(o.p);
        return rc;
    }
    o.p[o.n] = '\0';
    *out = o.p;
    *len = o.n;
    return 0;
}

int32_t cks_tokenizer_piece_id(const cks_tokenizer *t, const char *piece, size_t len)
{
    int32_t id = cks_tok_strmap_get(&t->normal, &t->pieces, piece, len);
    for (int32_t i = 0; i < t->pieces.n && id < 0; i++)
        if (t->pieces.len[i] == len && memcmp(cks_tok_str(&t->pieces, i), piece, len) == 0)
            id = i;
    return id;
}

int cks_tokenizer_byte_level(const cks_tokenizer *t)
{
    return t->bl != NULL;
}

const char *cks_tokenizer_kind(const cks_tokenizer *t)
{
    return t->kind == TOK_SPM ? "sentencepiece" : "hf";
}

int cks_tokenizer_load_bytes(cks_tokenizer **out, const void *data, size_t len, const char *display)
{
    const unsigned char *p = data;
    size_t i = 0;
    while (i < len && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r'))
        i++;
    /* A ModelProto starts with field 1 (0x0A); JSON with '{'. */
    if (i < len && p[i] == '{')
        return cks_tokenizer_load_hf(out, data, len, display);
    return cks_tokenizer_load_spm(out, data, len, display);
}

int cks_tokenizer_load_file(cks_tokenizer **out, const char *path)
{
    char *buf = NULL;
    size_t len = 0;
    int rc = cks_read_file(path, CKS_TOK_MAX_FILE_BYTES, &buf, &len);
    if (rc)
        return rc;
    rc = cks_tokenizer_load_bytes(out, buf, len, path);
    free(buf);
    return rc;
}

int cks_tokenizer_load_ckpt(cks_tokenizer **out, const cks_ckpt *c)
{
    static const char *names[] = {"tokenizer.model", "tokenizer.json"};
    for (size_t k = 0; k < 2; k++) {
        if (cks_ckpt_find_file(c, names[k]) < 0)
            continue;
        char disp[1024];
        cks_ckpt_display(c, names[k], disp, sizeof disp);
        cks_map *m = NULL;
        int rc = cks_ckpt_map(c, names[k], &m);
        if (rc)
            return rc;
        if (m->size > CKS_TOK_MAX_FILE_BYTES)
            rc = cks_error_set(CKS_ELIMIT, "%s: %zu bytes, over the limit of %u", disp, m->size,
                               CKS_TOK_MAX_FILE_BYTES);
        else if (k == 0)
            rc = cks_tokenizer_load_spm(out, m->data, m->size, disp);
        else
            rc = cks_tokenizer_load_hf(out, (const char *)m->data, m->size, disp);
        if (rc == 0 && (rc = cks_map_check(m)) != 0) { /* it shrank while read: zeros */
            cks_tokenizer_free(*out);
            *out = NULL;
        }
        cks_map_free(m);
        return rc;
    }
    const cks_ckpt_info *ci = cks_ckpt_info_of(c);
    return cks_error_set(CKS_ENOTFOUND,
                         "%s@%s: the checkpoint has no tokenizer.model or tokenizer.json",
                         cks_source_path(cks_ckpt_source(c)), ci->name);
}

int cks_tokenizer_config_add_bos(const char *json, size_t len, const char *display, int *out)
{
    json_t *j = NULL;
    int rc = cks_json_parse(json, len, display, 1, &j);
    if (rc)
        return rc;
    json_t *v = json_object_get(j, "add_bos_token");
    if (!v || json_is_null(v)) {
        *out = -1;
    } else if (json_is_boolean(v)) {
        *out = json_is_true(v);
    } else {
        rc = cks_error_set(CKS_EFORMAT, "%s: \"add_bos_token\" is not a boolean", display);
    }
    json_decref(j);
    return rc;
}

int cks_tokenizer_ckpt_add_bos(const cks_ckpt *c, int *out)
{
    const char *name = "tokenizer_config.json";
    if (cks_ckpt_find_file(c, name) < 0) {
        *out = -1;
        return 0;
    }
    char *text = NULL, disp[1024];
    size_t len = 0;
    cks_ckpt_display(c, name, disp, sizeof disp);
    int rc = cks_ckpt_read(c, name, CKS_TOK_MAX_CONFIG_BYTES, &text, &len);
    if (!rc)
        rc = cks_tokenizer_config_add_bos(text, len, disp, out);
    free(text);
    return rc;
}
