/* Tokenizer tables: string lists, open-addressing string and merge maps, a
 * longest-prefix matcher and a byte buffer. All sizes are
 * bounded by the CKS_TOK_* limits before anything is allocated from them. */
#include "checked.h"
#include "error.h"
#include "tok_impl.h"

#include <stdlib.h>
#include <string.h>

/* ---- byte buffer ---- */

int cks_tok_buf_reserve(cks_tok_buf *b, size_t extra)
{
    size_t need;
    if (cks_add_size(b->n, extra, &need) || cks_add_size(need, 1, &need))
        return cks_error_set(CKS_ELIMIT, "tokenizer buffer size overflows");
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) {
        if (cks_mul_size(cap, 2, &cap))
            return cks_error_set(CKS_ELIMIT, "tokenizer buffer size overflows");
    }
    char *p = realloc(b->p, cap);
    if (!p)
        return cks_error_set(CKS_ENOMEM, "out of memory (%zu bytes for tokenizer text)", cap);
    b->p = p;
    b->cap = cap;
    return 0;
}

int cks_tok_buf_put(cks_tok_buf *b, const char *p, size_t len)
{
    int rc = cks_tok_buf_reserve(b, len);
    if (rc)
        return rc;
    if (len)
        memcpy(b->p + b->n, p, len);
    b->n += len;
    return 0;
}

/* ---- string lists ---- */

static int strs_grow(cks_tok_strs *s, int32_t want)
{
    if (want <= s->cap)
        return 0;
    if (want > CKS_TOK_MAX_PIECES)
        return cks_error_set(CKS_ELIMIT, "more than %d vocabulary entries", CKS_TOK_MAX_PIECES);
    int32_t cap = s->cap ? s->cap : 1024;
    while (cap < want)
        cap = cap > CKS_TOK_MAX_PIECES / 2 ? CKS_TOK_MAX_PIECES : cap * 2;
    uint32_t *off = realloc(s->off, (size_t)cap * sizeof *off);
    if (!off)
        return cks_error_set(CKS_ENOMEM, "out of memory (vocabulary of %d)", cap);
    s->off = off;
    uint32_t *len = realloc(s->len, (size_t)cap * sizeof *len);
    if (!len)
        return cks_error_set(CKS_ENOMEM, "out of memory (vocabulary of %d)", cap);
    s->len = len;
    s->cap = cap;
    return 0;
}

static int strs_blob(cks_tok_strs *s, const char *p, size_t len, uint32_t *off)
{
    /* Pieces are bounded by CKS_TOK_MAX_PIECE_BYTES and their count by CKS_TOK_MAX_PIECES,
     * so the blob stays far below 4 GiB and offsets fit in 32 bits. */
    if (len > CKS_TOK_MAX_PIECE_BYTES)
        return cks_error_set(CKS_ELIMIT, "a piece of %zu bytes (limit %d)", len,
                             CKS_TOK_MAX_PIECE_BYTES);
    size_t need = s->blob_len + len + 1;
    if (need > s->blob_cap) {
        size_t cap = s->blob_cap ? s->blob_cap : 16384;
        while (cap < need)
            cap *= 2;
        char *b = realloc(s->blob, cap);
        if (!b)
            return cks_error_set(CKS_ENOMEM, "out of memory (%zu bytes of pieces)", cap);
        s->blob = b;
        s->blob_cap = cap;
    }
    if (s->blob_len > UINT32_MAX - len - 1)
        return cks_error_set(CKS_ELIMIT, "pieces exceed 4 GiB");
    *off = (uint32_t)s->blob_len;
    if (len)
        memcpy(s->blob + s->blob_len, p, len);
    s->blob[s->blob_len + len] = '\0';
    s->blob_len = need;
    return 0;
}

int cks_tok_strs_add(cks_tok_strs *s, const char *p, size_t len)
{
    int rc = strs_grow(s, s->n + 1);
    uint32_t off = 0;
    if (rc || (rc = strs_blob(s, p, len, &off)))
        return rc;
    s->off[s->n] = off;
    s->len[s->n] = (uint32_t)len;
    s->n++;
    return 0;
}

int cks_tok_strs_set(cks_tok_strs *s, int32_t i, const char *p, size_t len)
{
    if (i < 0 || i >= CKS_TOK_MAX_PIECES)
        return cks_error_set(CKS_ELIMIT, "id %d outside [0, %d)", i, CKS_TOK_MAX_PIECES);
    while (s->n <= i) {
        int rc = cks_tok_strs_add(s, "", 0);
        if (rc)
            return rc;
    }
    uint32_t off = 0;
    int rc = strs_blob(s, p, len, &off);
    if (rc)
        return rc;
    s->off[i] = off;
    s->len[i] = (uint32_t)len;
    return 0;
}

void cks_tok_strs_release(cks_tok_strs *s)
{
    free(s->blob);
    free(s->off);
    free(s->len);
    memset(s, 0, sizeof *s);
}

/* ---- string map ---- */

/* FNV-1a, 32 bits: pieces are short, and the map compares whole strings anyway. */
uint32_t cks_tok_hash(const char *p, size_t len)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++) {
        h ^= (uint8_t)p[i];
        h *= 16777619u;
    }
    return h;
}

int cks_tok_strmap_init(cks_tok_strmap *m, size_t entries)
{
    size_t cap = 16;
    while (cap < entries * 2 + 2)
        cap *= 2;
    m->slot = malloc(cap * sizeof *m->slot);
    if (!m->slot)
        return cks_error_set(CKS_ENOMEM, "out of memory (map of %zu entries)", entries);
    for (size_t i = 0; i < cap; i++)
        m->slot[i].i = -1;
    m->mask = cap - 1;
    return 0;
}

static size_t strmap_find(const cks_tok_strmap *m, const cks_tok_strs *s, const char *p, size_t len,
                          uint32_t h)
{
    size_t k = h & m->mask;
    for (;;) {
        const cks_tok_slot *e = &m->slot[k];
        if (e->i < 0)
            return k;
        if (e->h == h && s->len[e->i] == len && memcmp(cks_tok_str(s, e->i), p, len) == 0)
            return k;
        k = (k + 1) & m->mask;
    }
}

int32_t cks_tok_strmap_put(cks_tok_strmap *m, const cks_tok_strs *s, int32_t i)
{
    const char *p = cks_tok_str(s, i);
    uint32_t h = cks_tok_hash(p, s->len[i]);
    size_t k = strmap_find(m, s, p, s->len[i], h);
    if (m->slot[k].i >= 0)
        return m->slot[k].i;
    m->slot[k].h = h;
    m->slot[k].i = i;
    return -1;
}

int32_t cks_tok_strmap_get(const cks_tok_strmap *m, const cks_tok_strs *s, const char *p,
                           size_t len)
{
    if (!m->slot)
        return -1;
    return m->slot[strmap_find(m, s, p, len, cks_tok_hash(p, len))].i;
}

void cks_tok_strmap_release(cks_tok_strmap *m)
{
    free(m->slot);
    m->slot = NULL;
}

/* ---- prefix matcher ---- */

int cks_tok_matcher_add(cks_tok_matcher *m, const char *p, size_t len, int32_t val)
{
    /* The trie takes about 40 bytes per pattern byte: bounded before anything grows. */
    if (len > CKS_TOK_MAX_ADDED_BYTES || m->pat.blob_len + len + 1 > CKS_TOK_MAX_ADDED_BYTES)
        return cks_error_set(CKS_ELIMIT,
                             "added tokens (or user-defined pieces) of more than %u bytes in all",
                             CKS_TOK_MAX_ADDED_BYTES);
    int rc = cks_tok_strs_add(&m->pat, p, len);
    if (rc)
        return rc;
    int32_t *v = realloc(m->val, (size_t)m->pat.n * sizeof *v);
    if (!v)
        return cks_error_set(CKS_ENOMEM, "out of memory (patterns)");
    m->val = v;
    v[m->pat.n - 1] = val;
    return 0;
}

static uint64_t mix64(uint64_t x);

static size_t edge_find(const cks_tok_matcher *m, uint64_t key)
{
    size_t k = (size_t)mix64(key) & m->edge_mask;
    while (m->edge[k].key != UINT64_MAX && m->edge[k].key != key)
        k = (k + 1) & m->edge_mask;
    return k;
}

int cks_tok_matcher_build(cks_tok_matcher *m)
{
    int32_t n = m->pat.n;
    if (n == 0)
        return 0;
    /* At most one node per pattern byte, and the root; pattern bytes are bounded by the
     * string table (CKS_TOK_MAX_PIECES pieces of CKS_TOK_MAX_PIECE_BYTES). */
    size_t bytes = 0, cap = 16;
    for (int32_t i = 0; i < n; i++)
        bytes += m->pat.len[i];
    while (cap < 2 * bytes + 2)
        cap *= 2;
    m->term = malloc((bytes + 1) * sizeof *m->term);
    m->edge = malloc(cap * sizeof *m->edge);
    if (!m->term || !m->edge)
        return cks_error_set(CKS_ENOMEM, "out of memory (%zu bytes of patterns)", bytes);
    for (size_t i = 0; i < cap; i++)
        m->edge[i].key = UINT64_MAX;
    m->edge_mask = cap - 1;
    m->term[0] = -1;
    uint32_t nodes = 1;
    for (int32_t i = 0; i < n; i++) {
        const uint8_t *p = (const uint8_t *)cks_tok_str(&m->pat, i);
        uint32_t node = 0;
        for (uint32_t k = 0; k < m->pat.len[i]; k++) {
            uint64_t key = (uint64_t)node << 8 | p[k];
            size_t e = edge_find(m, key);
            if (m->edge[e].key == UINT64_MAX) {
                m->edge[e].key = key;
                m->edge[e].child = nodes;
                m->term[nodes++] = -1;
            }
            node = m->edge[e].child;
        }
        /* A pattern given twice keeps its first value (the caller refuses duplicates
         * where they matter). */
        if (m->term[node] < 0)
            m->term[node] = i;
        m->first[p[0]] = 1;
    }
    return 0;
}

size_t cks_tok_matcher_match(const cks_tok_matcher *m, const char *p, size_t avail, int32_t *val)
{
    if (!m->edge || avail == 0 || !m->first[(uint8_t)p[0]])
        return 0;
    uint32_t node = 0;
    size_t best = 0;
    for (size_t k = 0; k < avail; k++) {
        const cks_tok_edge *e = &m->edge[edge_find(m, (uint64_t)node << 8 | (uint8_t)p[k])];
        if (e->key == UINT64_MAX)
            break;
        node = e->child;
        if (m->term[node] >= 0) {
            best = k + 1;
            *val = m->val[m->term[node]];
        }
    }
    return best;
}

void cks_tok_matcher_release(cks_tok_matcher *m)
{
    cks_tok_strs_release(&m->pat);
    free(m->val);
    free(m->edge);
    free(m->term);
    memset(m, 0, sizeof *m);
}

/* ---- merge map ---- */

static uint64_t mix64(uint64_t x)
{
    /* splitmix64 finaliser */
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

int cks_tok_mergemap_init(cks_tok_mergemap *m, size_t entries)
{
    size_t cap = 16;
    while (cap < entries * 2 + 2)
        cap *= 2;
    m->slot = malloc(cap * sizeof *m->slot);
    if (!m->slot)
        return cks_error_set(CKS_ENOMEM, "out of memory (%zu merges)", entries);
    for (size_t i = 0; i < cap; i++)
        m->slot[i].key = UINT64_MAX;
    m->mask = cap - 1;
    return 0;
}

static size_t merge_find(const cks_tok_mergemap *m, uint64_t key)
{
    size_t k = (size_t)mix64(key) & m->mask;
    while (m->slot[k].key != UINT64_MAX && m->slot[k].key != key)
        k = (k + 1) & m->mask;
    return k;
}

void cks_tok_mergemap_put(cks_tok_mergemap *m, int32_t l, int32_t r, int32_t rank, int32_t id)
{
    /* A pair listed twice takes its later rank, as tokenizers' HashMap collect does. */
    uint64_t key = (uint64_t)(uint32_t)l << 32 | (uint32_t)r;
    size_t k = merge_find(m, key);
    m->slot[k].key = key;
    m->slot[k].rank = rank;
    m->slot[k].id = id;
}

const cks_tok_merge *cks_tok_mergemap_get(const cks_tok_mergemap *m, int32_t l, int32_t r)
{
    uint64_t key = (uint64_t)(uint32_t)l << 32 | (uint32_t)r;
    const cks_tok_merge *e = &m->slot[merge_find(m, key)];
    return e->key == key ? e : NULL;
}

void cks_tok_mergemap_release(cks_tok_mergemap *m)
{
    free(m->slot);
    m->slot = NULL;
}
