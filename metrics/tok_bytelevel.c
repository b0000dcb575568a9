/* Byte-level BPE (GPT-2, GPT-NeoX, OLMo 2, Qwen2, Llama 3): the pre-tokenizers ByteLevel
 * and Split, alone or in a Sequence, as tokenizers' pre_tokenizers/byte_level.rs and
 * split.rs apply them; their split patterns matched with PCRE2 (UTF, Unicode properties,
 * JIT); GPT-2's map of the 256 bytes to printable characters; and a cache of encoded
 * words in front of the merge engine (tokenizer.c), as tokenizers' BPE keeps one. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "error.h"
#include "json.h"
#include "tok_impl.h"

#include <pcre2.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define BL_MAX_STEPS      8           /* Split steps before the ByteLevel step */
#define BL_MAX_PATTERN    (64u << 10) /* bytes of one split pattern */
#define BL_CACHE_SLOTS    (1u << 15)  /* word cache: most slots, at most half used */
#define BL_CACHE_FIRST    (1u << 9)   /* slots at first (grown while the text goes on) */
#define BL_CACHE_WORD     64          /* words up to this many bytes are cached */
#define BL_JIT_STACK      (1u << 20)  /* PCRE2 JIT stack, bytes */
#define BL_POOL           4           /* per-call states kept for the next calls */
#define BL_HEAP_LIMIT_KIB (64u << 10)

/* pre_tokenizers/byte_level.rs: the pattern ByteLevel splits with when use_regex is on. */
static const char kGpt2Pattern[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

typedef struct {
    pcre2_code *re;
    int jit;
} bl_step;

struct cks_tok_bl {
    bl_step step[BL_MAX_STEPS + 1]; /* the Split patterns, then ByteLevel's when use_regex */
    int nsplit;                     /* steps before ByteLevel */
    int nstep;
    int prefix_space;     /* ByteLevel add_prefix_space */
    int32_t byte_id[256]; /* id of the character each byte maps to; -1 when not a token */
    char map[256][2];     /* bytes_to_unicode(): UTF-8 of each byte's character */
    uint8_t maplen[256];
    /* States of finished calls (match data, JIT stack, the word cache), taken by the next
     * calls: encode stays safe from several threads, each call owning the state it took,
     * and the cache lives on from one document to the next, as tokenizers' does. */
    _Atomic(struct cks_tok_blwork *) pool[BL_POOL];
};

typedef struct {
    uint32_t hash, koff, ioff;
    uint16_t klen, nids; /* klen 0: empty slot */
} bl_entry;

struct cks_tok_blwork {
    pcre2_match_data *md;
    pcre2_match_context *mc;
    pcre2_jit_stack *stack;
    bl_entry *slot;
    size_t used, nslot;
    cks_tok_buf keys;
    int32_t *ids;
    size_t nids, cap_ids;
    cks_tok_buf prefixed, mapped;
};

/* ---- bytes_to_unicode (GPT-2's encoder.py; tokenizers' byte_level.rs) ---- */

static void build_map(struct cks_tok_bl *bl)
{
    int extra = 0;
    for (int b = 0; b < 256; b++) {
        int keep = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        unsigned c = keep ? (unsigned)b : 256u + (unsigned)extra++;
        if (c < 0x80) {
            bl->map[b][0] = (char)c;
            bl->maplen[b] = 1;
        } else {
            bl->map[b][0] = (char)(0xC0 | c >> 6);
            bl->map[b][1] = (char)(0x80 | (c & 0x3F));
            bl->maplen[b] = 2;
        }
    }
}

/* The byte a mapped character stands for, or -1 (c: a code point). */
static int unmap(unsigned c)
{
    if ((c >= '!' && c <= '~') || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE && c <= 0xFF))
        return (int)c;
    if (c < 256 || c >= 256 + 68)
        return -1;
    int k = (int)c - 256; /* the k-th byte outside the kept ranges */
    for (int b = 0; b < 256; b++) {
        int keep = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        if (!keep && k-- == 0)
            return b;
    }
    return -1;
}

int cks_tok_bl_token_bytes(const char *p, size_t len, cks_tok_buf *o)
{
    /* decoders/byte_level.rs: every character mapped back to its byte; a token with any
     * other character stays as it is. */
    size_t start = o->n;
    for (size_t i = 0; i < len;) {
        size_t l = cks_tok_utf8_len(p + i, len - i);
        unsigned c = (uint8_t)p[i];
        if (l == 2)
            c = (c & 0x1Fu) << 6 | ((uint8_t)p[i + 1] & 0x3Fu);
        int b = l <= 2 ? unmap(c) : -1;
        if (b < 0) {
            o->n = start;
            return cks_tok_buf_put(o, p, len);
        }
        char ch = (char)b;
        int rc = cks_tok_buf_put(o, &ch, 1);
        if (rc)
            return rc;
        i += l;
    }
    return 0;
}

/* ---- loading ---- */

int cks_tok_bl_is_pretok(const char *type)
{
    return type && (strcmp(type, "ByteLevel") == 0 || strcmp(type, "Split") == 0 ||
                    strcmp(type, "Sequence") == 0);
}

/* tokenizers matches split patterns with Oniguruma, where \s is Unicode's White_Space;
 * PCRE2's \s also takes U+180E (its fixed list of horizontal spaces). So \s and \S become
 * White_Space properties, which mean the same inside and outside a class. \w, \h and \b
 * mean different things in the two engines (Oniguruma's \h is a hex digit): refused.
 * Text in \Q...\E is copied as it is. */
static int translate(const cks_tokenizer *t, const char *pat, size_t len, cks_tok_buf *o)
{
    int rc = 0, quoted = 0;
    for (size_t i = 0; i < len && !rc; i++) {
        if (pat[i] != '\\' || i + 1 == len) {
            rc = cks_tok_buf_put(o, pat + i, 1);
            continue;
        }
        char c = pat[++i];
        if (quoted || !strchr("sSwWhHbB", c)) {
            if (c == 'Q' || c == 'E')
                quoted = c == 'Q';
            char two[2] = {'\\', c};
            rc = cks_tok_buf_put(o, two, 2);
        } else if (c == 's' || c == 'S') {
            rc = cks_tok_buf_put(o, c == 's' ? "\\p{White_Space}" : "\\P{White_Space}", 15);
        } else {
            return cks_error_set(CKS_EUNSUPPORTED,
                                 "%s: split pattern uses \\%c, which Oniguruma (tokenizers' "
                                 "regex engine) and PCRE2 read differently",
                                 t->display, c);
        }
    }
    return rc;
}

static int compile(cks_tokenizer *t, bl_step *st, const char *pat, size_t len, int literal)
{
    if (len > BL_MAX_PATTERN)
        return cks_error_set(CKS_ELIMIT, "%s: a split pattern of %zu bytes (limit %u)", t->display,
                             len, BL_MAX_PATTERN);
    int err = 0;
    PCRE2_SIZE off = 0;
    uint32_t opts = PCRE2_UTF | PCRE2_UCP | PCRE2_NEVER_BACKSLASH_C | (literal ? PCRE2_LITERAL : 0);
    /* The pattern as written first, so that an error's offset is in the file's pattern. */
    st->re = pcre2_compile((PCRE2_SPTR)pat, len, opts, &err, &off, NULL);
    if (st->re && !literal) {
        cks_tok_buf tr = {0};
        pcre2_code_free(st->re);
        st->re = NULL;
        if ((err = translate(t, pat, len, &tr)) != 0) {
            free(tr.p);
            return err;
        }
        st->re = pcre2_compile((PCRE2_SPTR)tr.p, tr.n, opts, &err, &off, NULL);
        free(tr.p);
    }
    if (!st->re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        return cks_error_set(
            CKS_EFORMAT, "%s: split pattern '%.*s' is refused by PCRE2 at offset %zu: %s",
            t->display, len > 200 ? 200 : (int)len, pat, (size_t)off, (const char *)msg);
    }
    uint32_t jit = 0;
    pcre2_config(PCRE2_CONFIG_JIT, &jit);
    st->jit = jit && pcre2_jit_compile(st->re, PCRE2_JIT_COMPLETE) == 0;
    return 0;
}

static int flag(const cks_tokenizer *t, const json_t *o, const char *key, int dflt, int *out)
{
    const json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) {
        *out = dflt;
        return 0;
    }
    if (!json_is_boolean(v))
        return cks_error_set(CKS_EFORMAT, "%s: pre_tokenizer \"%s\" is not a boolean", t->display,
                             key);
    *out = json_is_true(v);
    return 0;
}

static int load_split(cks_tokenizer *t, struct cks_tok_bl *bl, const json_t *j)
{
    const char *beh = json_string_value(json_object_get(j, "behavior"));
    int invert;
    int rc = flag(t, j, "invert", 0, &invert);
    if (rc)
        return rc;
    /* Isolated keeps matches and the text between them as separate words, so invert
     * changes nothing; the other behaviours join or drop pieces. */
    if (!beh || strcmp(beh, "Isolated") != 0)
        return cks_error_set(CKS_EUNSUPPORTED, "%s: Split behavior '%s' is not supported",
                             t->display, beh ? beh : "?");
    if (bl->nsplit == BL_MAX_STEPS)
        return cks_error_set(CKS_ELIMIT, "%s: more than %d Split pre-tokenizers", t->display,
                             BL_MAX_STEPS);
    const json_t *pat = json_object_get(j, "pattern");
    const json_t *re = json_object_get(pat, "Regex"), *lit = json_object_get(pat, "String");
    const json_t *p = re ? re : lit;
    if (!json_is_string(p) || json_string_length(p) == 0)
        return cks_error_set(CKS_EFORMAT, "%s: Split pattern is not a Regex or String", t->display);
    rc = compile(t, &bl->step[bl->nsplit], json_string_value(p), json_string_length(p), !re);
    if (!rc)
        bl->nsplit++;
    return rc;
}

/* One step of the pre_tokenizer; *bytelevel set once the ByteLevel step is read. */
static int load_step(cks_tokenizer *t, struct cks_tok_bl *bl, const json_t *j, int *bytelevel)
{
    const char *type = json_string_value(json_object_get(j, "type"));
    if (!type)
        return cks_error_set(CKS_EFORMAT, "%s: a pre_tokenizer without a \"type\"", t->display);
    if (*bytelevel)
        return cks_error_set(CKS_EUNSUPPORTED,
                             "%s: pre_tokenizer '%s' after ByteLevel is not supported "
                             "(ByteLevel must be the last step)",
                             t->display, type);
    if (strcmp(type, "Split") == 0)
        return load_split(t, bl, j);
    if (strcmp(type, "ByteLevel") != 0)
        return cks_error_set(CKS_EUNSUPPORTED, "%s: pre_tokenizer '%s' is not supported",
                             t->display, type);
    int regex = 1;
    int rc = flag(t, j, "add_prefix_space", 1, &bl->prefix_space);
    if (!rc)
        rc = flag(t, j, "use_regex", 1, &regex);
    bl->nstep = bl->nsplit;
    if (!rc && regex &&
        !(rc = compile(t, &bl->step[bl->nsplit], kGpt2Pattern, sizeof kGpt2Pattern - 1, 0)))
        bl->nstep++;
    *bytelevel = 1;
    return rc;
}

int cks_tok_bl_load(cks_tokenizer *t, const json_t *j)
{
    struct cks_tok_bl *bl = calloc(1, sizeof *bl);
    if (!bl)
        return cks_error_set(CKS_ENOMEM, "out of memory");
    t->bl = bl;
    t->pre = HF_PRE_BYTELEVEL;
    build_map(bl);
    int bytelevel = 0, rc = 0;
    const char *type = json_string_value(json_object_get(j, "type"));
    if (type && strcmp(type, "Sequence") == 0) {
        const json_t *list = json_object_get(j, "pretokenizers");
        if (!json_is_array(list))
            return cks_error_set(CKS_EFORMAT, "%s: Sequence pre_tokenizer without a list",
                                 t->display);
        for (size_t i = 0; i < json_array_size(list) && !rc; i++) {
            const json_t *s = json_array_get(list, i);
            const char *st = json_string_value(json_object_get(s, "type"));
            if (st && strcmp(st, "Sequence") == 0)
                return cks_error_set(CKS_EUNSUPPORTED,
                                     "%s: nested pre_tokenizer 'Sequence' is not supported",
                                     t->display);
            rc = load_step(t, bl, s, &bytelevel);
        }
    } else {
        rc = load_step(t, bl, j, &bytelevel);
    }
    if (!rc && !bytelevel)
        rc = cks_error_set(CKS_EUNSUPPORTED,
                           "%s: a Split pre_tokenizer without ByteLevel is not supported",
                           t->display);
    return rc;
}

int cks_tok_bl_finish(cks_tokenizer *t)
{
    struct cks_tok_bl *bl = t->bl;
    for (int b = 0; b < 256; b++)
        bl->byte_id[b] = cks_tok_strmap_get(&t->normal, &t->pieces, bl->map[b], bl->maplen[b]);
    return 0;
}

static void blwork_free(struct cks_tok_blwork *b);

void cks_tok_bl_release(cks_tokenizer *t)
{
    if (!t->bl)
        return;
    for (int k = 0; k < BL_POOL; k++)
        blwork_free(atomic_exchange(&t->bl->pool[k], NULL));
    for (int k = 0; k < BL_MAX_STEPS + 1; k++)
        pcre2_code_free(t->bl->step[k].re);
    free(t->bl);
    t->bl = NULL;
}

/* ---- per-call state ---- */

static void blwork_free(struct cks_tok_blwork *b)
{
    if (!b)
        return;
    pcre2_match_data_free(b->md);
    pcre2_match_context_free(b->mc);
    pcre2_jit_stack_free(b->stack);
    free(b->slot);
    free(b->keys.p);
    free(b->ids);
    free(b->prefixed.p);
    free(b->mapped.p);
    free(b);
}

void cks_tok_bl_work_release(cks_tok_work *w)
{
    blwork_free(w->bl);
    w->bl = NULL;
}

void cks_tok_bl_work_give(const cks_tokenizer *t, cks_tok_work *w)
{
    for (int k = 0; k < BL_POOL && t->bl && w->bl; k++) {
        struct cks_tok_blwork *empty = NULL;
        if (atomic_compare_exchange_strong(&t->bl->pool[k], &empty, w->bl))
            w->bl = NULL;
    }
}

static int work_init(cks_tok_work *w)
{
    struct cks_tok_blwork *b = calloc(1, sizeof *b);
    if (!b)
        return cks_error_set(CKS_ENOMEM, "out of memory");
    w->bl = b;
    b->md = pcre2_match_data_create(1, NULL);
    b->mc = pcre2_match_context_create(NULL);
    b->stack = pcre2_jit_stack_create(32u << 10, BL_JIT_STACK, NULL);
    b->slot = calloc(BL_CACHE_FIRST, sizeof *b->slot);
    b->nslot = BL_CACHE_FIRST;
    if (!b->md || !b->mc || !b->slot)
        return cks_error_set(CKS_ENOMEM, "out of memory");
    if (b->stack)
        pcre2_jit_stack_assign(b->mc, NULL, b->stack);
    pcre2_set_heap_limit(b->mc, BL_HEAP_LIMIT_KIB);
    return 0;
}

/* ---- the word cache ---- */

static uint32_t word_hash(const char *p, size_t n)
{
    uint64_t h = 0x9E3779B97F4A7C15ull ^ n;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, p + i, 8);
        h = (h ^ v) * 0xff51afd7ed558ccdull;
        h ^= h >> 32;
    }
    uint64_t v = 0; /* the tail, byte by byte: a call to memcpy costs more than the word */
    for (size_t k = 0; i + k < n; k++)
        v |= (uint64_t)(uint8_t)p[i + k] << (8 * k);
    h = (h ^ v) * 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 29;
    return (uint32_t)h;
}

static int same_bytes(const char *a, const char *b, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t x, y;
        memcpy(&x, a + i, 8);
        memcpy(&y, b + i, 8);
        if (x != y)
            return 0;
    }
    for (; i < n; i++)
        if (a[i] != b[i])
            return 0;
    return 1;
}

static bl_entry *cache_find(struct cks_tok_blwork *b, const char *p, size_t n, uint32_t h)
{
    size_t mask = b->nslot - 1, k = h & mask;
    for (;;) {
        bl_entry *e = &b->slot[k];
        if (e->klen == 0 || (e->hash == h && e->klen == n && same_bytes(b->keys.p + e->koff, p, n)))
            return e;
        k = (k + 1) & mask;
    }
}

/* Twice the slots, the entries moved (their hashes are kept); 0 or CKS_ENOMEM. */
static int cache_grow(struct cks_tok_blwork *b)
{
    size_t n = 2 * b->nslot;
    bl_entry *old = b->slot, *s = calloc(n, sizeof *s);
    if (!s)
        return cks_error_set(CKS_ENOMEM, "out of memory (word cache)");
    for (size_t i = 0; i < b->nslot; i++) {
        if (!old[i].klen)
            continue;
        size_t k = old[i].hash & (n - 1);
        while (s[k].klen)
            k = (k + 1) & (n - 1);
        s[k] = old[i];
    }
    free(old);
    b->slot = s;
    b->nslot = n;
    return 0;
}

/* Remembers ids[0..k) for the word. The table grows to BL_CACHE_SLOTS, then forgets
 * everything whenever it is half full. */
static int cache_put(struct cks_tok_blwork *b, bl_entry *e, const char *p, size_t n, uint32_t h,
                     const int32_t *ids, size_t k)
{
    if (b->used >= b->nslot / 2) {
        if (b->nslot < BL_CACHE_SLOTS) {
            int rc = cache_grow(b);
            if (rc)
                return rc;
        } else {
            memset(b->slot, 0, b->nslot * sizeof *b->slot);
            b->used = b->keys.n = b->nids = 0;
        }
        e = cache_find(b, p, n, h);
    }
    if (b->nids + k > b->cap_ids) {
        size_t cap = b->cap_ids ? 2 * b->cap_ids : 4096;
        while (cap < b->nids + k)
            cap *= 2;
        int32_t *ids2 = realloc(b->ids, cap * sizeof *ids2);
        if (!ids2)
            return cks_error_set(CKS_ENOMEM, "out of memory (word cache)");
        b->ids = ids2;
        b->cap_ids = cap;
    }
    int rc = cks_tok_buf_put(&b->keys, p, n);
    if (rc)
        return rc;
    e->hash = h;
    e->koff = (uint32_t)(b->keys.n - n);
    e->klen = (uint16_t)n;
    e->ioff = (uint32_t)b->nids;
    e->nids = (uint16_t)k;
    if (k)
        memcpy(b->ids + b->nids, ids, k * sizeof *ids);
    b->nids += k;
    b->used++;
    return 0;
}

/* ---- words ---- */

static int bl_pair(const cks_tokenizer *t, cks_tok_work *w, const char *s, const cks_tok_sym *l,
                   const cks_tok_sym *r, float *prio, int32_t *id)
{
    (void)w;
    (void)s;
    const cks_tok_merge *m = cks_tok_mergemap_get(&t->merges, l->id, r->id);
    if (!m)
        return 0;
    *prio = -(float)m->rank; /* exact: ranks < CKS_TOK_MAX_MERGES <= 2^24 */
    *id = m->id;
    return 1;
}

/* BPE::merge_word over the byte characters of one word, then Word::merge_all. */
static int bpe_word(const cks_tokenizer *t, cks_tok_work *w, const char *s, size_t n)
{
    const struct cks_tok_bl *bl = t->bl;
    int rc = cks_tok_work_syms(w, n);
    if (rc)
        return rc;
    size_t k = 0;
    int prev_unk = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t id = bl->byte_id[(uint8_t)s[i]];
        if (id < 0) {
            /* A byte whose character is not a token: unk (fused when fuse_unk), or dropped
             * when the model has none, as tokenizers does. */
            if (t->unk_id < 0 || (prev_unk && t->fuse_unk)) {
                if (prev_unk && t->fuse_unk)
                    w->sym[k - 1].len++;
                continue;
            }
            id = t->unk_id;
        }
        prev_unk = id == t->unk_id && bl->byte_id[(uint8_t)s[i]] < 0;
        cks_tok_sym *y = &w->sym[k];
        y->id = id;
        y->start = (uint32_t)i;
        y->len = 1;
        y->freeze = 0;
        y->prev = (int32_t)k - 1;
        y->next = (int32_t)k + 1;
        k++;
    }
    if (k == 0)
        return 0;
    w->sym[k - 1].next = -1;
    if ((rc = cks_tok_bpe(t, w, s, k, bl_pair)))
        return rc;
    for (int32_t i = 0; i >= 0 && !rc; i = w->sym[i].next)
        rc = cks_tok_emit(w, w->sym[i].id);
    return rc;
}

/* ignore_merges: the word as one vocabulary token when it is one. */
static int32_t whole_word(const cks_tokenizer *t, cks_tok_work *w, const char *s, size_t n)
{
    const struct cks_tok_bl *bl = t->bl;
    cks_tok_buf *m = &w->bl->mapped;
    m->n = 0;
    if (n > CKS_TOK_MAX_PIECE_BYTES || cks_tok_buf_reserve(m, 2 * n))
        return -1; /* longer than any token */
    for (size_t i = 0; i < n; i++) {
        uint8_t b = (uint8_t)s[i];
        memcpy(m->p + m->n, bl->map[b], bl->maplen[b]);
        m->n += bl->maplen[b];
    }
    return cks_tok_strmap_get(&t->normal, &t->pieces, m->p, m->n);
}

static int bl_word(const cks_tokenizer *t, cks_tok_work *w, const char *s, size_t n)
{
    struct cks_tok_blwork *b = w->bl;
    if (n > BL_CACHE_WORD) {
        int32_t id = t->ignore_merges ? whole_word(t, w, s, n) : -1;
        return id >= 0 ? cks_tok_emit(w, id) : bpe_word(t, w, s, n);
    }
    uint32_t h = word_hash(s, n);
    bl_entry *e = cache_find(b, s, n, h);
    if (e->klen)
        return cks_tok_emit_n(w, b->ids + e->ioff, e->nids);
    size_t before = w->out_n;
    int32_t id = t->ignore_merges ? whole_word(t, w, s, n) : -1;
    int rc = id >= 0 ? cks_tok_emit(w, id) : bpe_word(t, w, s, n);
    if (!rc)
        rc = cache_put(b, e, s, n, h, w->out_n > before ? w->out + before : NULL,
                       w->out_n - before); /* (a word may give no id: bytes not in vocab) */
    return rc;
}

/* ---- splitting ---- */

static int split(const cks_tokenizer *t, cks_tok_work *w, const char *s, size_t n, int k);

/* The next match of step k in s[0..n) at or after from: 1 with [*ms, *me), 0 when none. */
static int next_match(const cks_tokenizer *t, cks_tok_work *w, int k, const char *s, size_t n,
                      size_t from, size_t *ms, size_t *me)
{
    const bl_step *st = &t->bl->step[k];
    struct cks_tok_blwork *b = w->bl;
    /* A bound on backtracking that a sane pattern never meets: hostile patterns fail fast. */
    pcre2_set_match_limit(b->mc,
                          (uint32_t)(100000 + 100 * (n - from > 40000000 ? 40000000 : n - from)));
    int rc = st->jit
                 ? pcre2_jit_match(st->re, (PCRE2_SPTR)s, n, from, 0, b->md, b->mc)
                 : pcre2_match(st->re, (PCRE2_SPTR)s, n, from, PCRE2_NO_UTF_CHECK, b->md, b->mc);
    if (rc == PCRE2_ERROR_NOMATCH)
        return 0;
    if (rc < 0) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(rc, msg, sizeof msg);
        return cks_error_set(rc == PCRE2_ERROR_NOMEMORY ? CKS_ENOMEM : CKS_ELIMIT,
                             "%s: the split pattern failed on a piece of %zu bytes: %s", t->display,
                             n, (const char *)msg);
    }
    const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(b->md);
    *ms = ov[0];
    *me = ov[1];
    return 1;
}

/* SplitDelimiterBehavior::Isolated with onig's find_iter: the matches and the text between
 * them, empty pieces dropped; an empty match right after the previous match is skipped by
 * advancing one character. */
static int split_regex(const cks_tokenizer *t, cks_tok_work *w, const char *s, size_t n, int k)
{
    size_t prev = 0, from = 0, last_end = 0;
    int have_last = 0, rc = 0;
    while (from <= n && !rc) {
        size_t ms, me;
        int m = next_match(t, w, k, s, n, from, &ms, &me);
        if (m <= 0) {
            rc = m;
            break;
        }
        if (ms == me && have_last && last_end == me) {
            from += from < n ? cks_tok_utf8_len(s + from, n - from) : 1;
            continue;
        }
        from = last_end = me;
        have_last = 1;
        if (ms > prev)
            rc = split(t, w, s + prev, ms - prev, k + 1);
        if (!rc && me > ms)
            rc = split(t, w, s + ms, me - ms, k + 1);
        prev = me;
    }
    if (!rc && prev < n)
        rc = split(t, w, s + prev, n - prev, k + 1);
    return rc;
}

static int split(const cks_tokenizer *t, cks_tok_work *w, const char *s, size_t n, int k)
{
    const struct cks_tok_bl *bl = t->bl;
    if (k == bl->nsplit && bl->prefix_space && (n == 0 || s[0] != ' ')) {
        /* ByteLevel's add_prefix_space, on every piece that reaches it. */
        cks_tok_buf *p = &w->bl->prefixed;
        p->n = 0;
        int rc = cks_tok_buf_put(p, " ", 1);
        if (!rc)
            rc = cks_tok_buf_put(p, s, n);
        if (rc)
            return rc;
        s = p->p;
        n = p->n;
        if (k == bl->nstep)
            return bl_word(t, w, s, n);
        return split_regex(t, w, s, n, k);
    }
    if (k == bl->nstep)
        return bl_word(t, w, s, n);
    return split_regex(t, w, s, n, k);
}

int cks_tok_bl_encode(const cks_tokenizer *t, cks_tok_work *w, const char *s, size_t n)
{
    if (n == 0)
        return 0;
    for (int k = 0; k < BL_POOL && !w->bl; k++)
        w->bl = atomic_exchange(&t->bl->pool[k], NULL);
    if (!w->bl) {
        int rc = work_init(w);
        if (rc)
            return rc;
    }
    return split(t, w, s, n, 0);
}
