/* Internals of the tokenizer, shared by tokenizer.c (the BPE engine, SentencePiece
 * normalization and the public API), tok_tables.c (string tables, hash maps, UTF-8),
 * spm_model.c (the tokenizer.model parser), hf_tokenizer.c (tokenizer.json),
 * tok_bytelevel.c (byte-level pre-tokenizers and their BPE) and tok_nfc.c (NFC). */
#ifndef CKS_TOK_IMPL_H
#define CKS_TOK_IMPL_H

#include "tokenizer.h"
#include "utf8.h"

#include <stddef.h>
#include <stdint.h>

/* ---- strings, maps, UTF-8 (tok_tables.c) ---- */

/* A growable list of byte strings, each NUL-terminated in one blob. */
typedef struct {
    char *blob;
    size_t blob_len, blob_cap;
    uint32_t *off, *len;
    int32_t n, cap;
} cks_tok_strs;

int cks_tok_strs_add(cks_tok_strs *s, const char *p, size_t len); /* CKS_ENOMEM / CKS_ELIMIT */
/* Sets entry i (growing the list with empty entries up to i); used when ids come unordered. */
int cks_tok_strs_set(cks_tok_strs *s, int32_t i, const char *p, size_t len);
void cks_tok_strs_release(cks_tok_strs *s);
static inline const char *cks_tok_str(const cks_tok_strs *s, int32_t i)
{
    return s->blob + s->off[i];
}

/* Open-addressing map from the strings of a cks_tok_strs (by index) to their index. Sized once
 * for a known number of entries; never rehashed. */
typedef struct {
    uint32_t h;
    int32_t i; /* -1: empty slot */
} cks_tok_slot;
typedef struct {
    cks_tok_slot *slot;
    size_t mask;
} cks_tok_strmap;

int cks_tok_strmap_init(cks_tok_strmap *m, size_t entries);
/* Adds index i of s. Returns the index already holding the same string, or -1. */
int32_t cks_tok_strmap_put(cks_tok_strmap *m, const cks_tok_strs *s, int32_t i);
int32_t cks_tok_strmap_get(const cks_tok_strmap *m, const cks_tok_strs *s, const char *p,
                           size_t len);
void cks_tok_strmap_release(cks_tok_strmap *m);
uint32_t cks_tok_hash(const char *p, size_t len);

/* A set of patterns with values, for longest-prefix matching at a position (SentencePiece
 * user-defined pieces, Hugging Face added tokens): a trie whose edges (node, byte) -> child
 * live in one open-addressing table. */
typedef struct {
    uint64_t key; /* node << 8 | byte; UINT64_MAX: empty */
    uint32_t child;
} cks_tok_edge;
typedef struct {
    cks_tok_strs pat;
    int32_t *val;
    uint8_t first[256]; /* bytes that start some pattern */
    cks_tok_edge *edge;
    size_t edge_mask;
    int32_t *term; /* node -> index of the pattern ending there, -1 when none */
} cks_tok_matcher;

int cks_tok_matcher_add(cks_tok_matcher *m, const char *p, size_t len, int32_t val);
int cks_tok_matcher_build(cks_tok_matcher *m); /* after the last add */
/* Length of the longest pattern that p[0..avail) starts with (0: none), value in *val. */
size_t cks_tok_matcher_match(const cks_tok_matcher *m, const char *p, size_t avail, int32_t *val);
void cks_tok_matcher_release(cks_tok_matcher *m);
/* The first position >= i in p[0..n) where some pattern could start (n when none). */
static inline size_t cks_tok_matcher_skip(const cks_tok_matcher *m, const char *p, size_t i,
                                          size_t n)
{
    if (!m->edge)
        return n;
    while (i < n && !m->first[(uint8_t)p[i]])
        i++;
    return i;
}

/* Hugging Face merges: (left id, right id) -> (rank, merged id). */
typedef struct {
    uint64_t key; /* UINT64_MAX: empty */
    int32_t rank, id;
} cks_tok_merge;
typedef struct {
    cks_tok_merge *slot;
    size_t mask;
} cks_tok_mergemap;

int cks_tok_mergemap_init(cks_tok_mergemap *m, size_t entries);
void cks_tok_mergemap_put(cks_tok_mergemap *m, int32_t l, int32_t r, int32_t rank, int32_t id);
const cks_tok_merge *cks_tok_mergemap_get(const cks_tok_mergemap *m, int32_t l, int32_t r);
void cks_tok_mergemap_release(cks_tok_mergemap *m);

/* Byte length of the UTF-8 character at s (valid input), at most avail. */
static inline size_t cks_tok_utf8_len(const char *s, size_t avail)
{
    static const uint8_t tab[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    size_t n = tab[(uint8_t)s[0] >> 4];
    return n < avail ? n : avail;
}

/* A growable byte buffer. */
typedef struct {
    char *p;
    size_t n, cap;
} cks_tok_buf;
int cks_tok_buf_reserve(cks_tok_buf *b, size_t extra);
int cks_tok_buf_put(cks_tok_buf *b, const char *p, size_t len);

/* ---- the tokenizer ---- */

enum { TOK_SPM = 1, TOK_HF = 2 };

/* SentencePiece piece types (sentencepiece_model.proto). */
enum {
    SPM_NORMAL = 1,
    SPM_UNKNOWN = 2,
    SPM_CONTROL = 3,
    SPM_USER_DEFINED = 4,
    SPM_UNUSED = 5,
    SPM_BYTE = 6
};

/* Hugging Face normalizer steps (a flattened Sequence). */
typedef struct {
    int kind; /* HF_PREPEND, HF_REPLACE or HF_NFC */
    char *a;  /* prepend string / replace pattern */
    size_t alen;
    char *b; /* replace content */
    size_t blen;
} cks_tok_hf_norm;
enum { HF_PREPEND = 1, HF_REPLACE = 2, HF_NFC = 3 };
enum { HF_PRE_NONE = 0, HF_PRE_METASPACE = 1, HF_PRE_BYTELEVEL = 2 };

struct cks_tok_bl;     /* byte-level pre-tokenizer (tok_bytelevel.c) */
struct cks_tok_blwork; /* its per-call state */
struct json_t;
enum { HF_PREPEND_ALWAYS = 0, HF_PREPEND_FIRST = 1, HF_PREPEND_NEVER = 2 };

struct cks_tokenizer {
    int kind;
    char display[512];
    cks_tok_strs pieces; /* id -> piece string; pieces.n is the vocabulary size */
    int32_t unk_id;      /* -1 when none */
    int32_t bos_id, eos_id;
    int byte_fallback;
    int32_t byte_id[256];   /* id of <0xXX>, -1 when absent */
    cks_tok_strmap normal;  /* SPM: NORMAL, USER_DEFINED, UNUSED pieces; HF: model.vocab */
    cks_tok_matcher prefix; /* SPM: user-defined pieces; HF: added tokens, normalized=false */
    /* Bytes (< 0x80) that no merge can cross, where the text is cut into independent
     * segments to bound working memory (see cks_tok_barriers). */
    uint8_t barrier[128];
    /* No piece has U+2581 after another character: the text can also be cut before every
     * U+2581 that follows a different character (at word starts). */
    int cut_space;

    /* SentencePiece */
    float *score;
    uint8_t *type;
    cks_tok_strmap reserved; /* CONTROL, UNKNOWN, BYTE pieces */
    int has_unused;
    int add_dummy_prefix, remove_extra_ws, escape_ws;

    /* Hugging Face */
    cks_tok_mergemap merges;
    int fuse_unk, ignore_merges;
    cks_tok_matcher added_norm; /* added tokens with normalized=true, patterns normalized */
    cks_tok_hf_norm *norm;
    int nnorm;
    int pre, prepend_scheme, pre_split;
    char meta[8]; /* Metaspace replacement (UTF-8) */
    size_t metalen;
    struct cks_tok_bl *bl; /* pre == HF_PRE_BYTELEVEL */

    /* id -> the bytes the token stands for (decoding; cks_tok_build_text) */
    cks_tok_strs text;
};

/* ---- the BPE engine (tokenizer.c) ---- */

typedef struct {
    int32_t prev, next;  /* neighbours in the live list, -1 at the ends */
    uint32_t start, len; /* bytes of the segment text; len 0 once merged away */
    int32_t id;
    uint8_t freeze; /* never merged (SentencePiece user-defined pieces) */
} cks_tok_sym;

typedef struct {
    float prio; /* larger merges first: SentencePiece score, or -rank */
    int32_t left;
    uint32_t size; /* bytes of the merged pair, to detect stale candidates */
    int32_t id;
} cks_tok_cand;

/* Per-call working memory, grown as needed and reused across segments. */
typedef struct {
    cks_tok_sym *sym;
    size_t sym_cap;
    cks_tok_cand *heap;
    size_t heap_n, heap_cap;
    int32_t *out;
    size_t out_n, out_cap;
    int32_t *rev; /* SentencePiece UNUSED pieces: left length of their last pushed split */
    uint32_t *stack;
    size_t stack_cap;
    cks_tok_buf norm, tmp;
    int prev_unk;
    struct cks_tok_blwork *bl; /* byte-level: match data, word cache */
} cks_tok_work;

void cks_tok_work_release(cks_tok_work *w);
int cks_tok_work_syms(cks_tok_work *w, size_t n); /* room for n symbols */
int cks_tok_emit(cks_tok_work *w, int32_t id);
int cks_tok_emit_n(cks_tok_work *w, const int32_t *ids, size_t n);

/* Finds the merge of adjacent symbols l, r over segment text s: 1 with priority and id,
 * or 0 when they do not merge. */
typedef int (*cks_tok_pair_fn)(const cks_tokenizer *t, cks_tok_work *w, const char *s,
                               const cks_tok_sym *l, const cks_tok_sym *r, float *prio,
                               int32_t *id);

/* Runs BPE over w->sym[0..n) (linked in order): repeatedly merges the candidate with the
 * highest priority, ties to the leftmost, as sentencepiece's bpe_model.cc and tokenizers'
 * Word::merge_all do. Afterwards the live symbols are linked from index 0. */
int cks_tok_bpe(const cks_tokenizer *t, cks_tok_work *w, const char *s, size_t n,
                cks_tok_pair_fn pair);

/* 1 when s[i] starts a U+2581 that follows a different character after segment start b. */
static inline int cks_tok_word_start(const cks_tokenizer *t, const char *s, size_t i, size_t b)
{
    return t->cut_space && i >= b + 3 && (uint8_t)s[i] == 0xE2 && (uint8_t)s[i + 1] == 0x96 &&
           (uint8_t)s[i + 2] == 0x81 &&
           !((uint8_t)s[i - 3] == 0xE2 && (uint8_t)s[i - 2] == 0x96 && (uint8_t)s[i - 1] == 0x81);
}

/* ---- format-specific parts ---- */

int cks_tok_hf_encode(const cks_tokenizer *t, cks_tok_work *w, const char *text, size_t len);
void cks_tok_hf_release(cks_tokenizer *t);
/* Builds t->text for every id (after loading). */
int cks_tok_build_text(cks_tokenizer *t);

/* NFC of s[0..n) (valid UTF-8) into o (o->n reset). */
int cks_tok_nfc(const char *s, size_t n, cks_tok_buf *o);

/* Byte-level (tok_bytelevel.c). cks_tok_bl_is_pretok tells the pre_tokenizer types handled
 * there; cks_tok_bl_load reads one into t->bl, cks_tok_bl_finish maps bytes to vocabulary
 * ids once the vocabulary is known, cks_tok_bl_encode pre-tokenizes a normalized piece and
 * encodes its words. */
int cks_tok_bl_is_pretok(const char *type);
int cks_tok_bl_load(cks_tokenizer *t, const struct json_t *pretok);
int cks_tok_bl_finish(cks_tokenizer *t);
int cks_tok_bl_encode(const cks_tokenizer *t, cks_tok_work *w, const char *s, size_t n);
/* The bytes of a byte-level token (HF's ByteLevel decoder), into o. */
int cks_tok_bl_token_bytes(const char *p, size_t len, cks_tok_buf *o);
void cks_tok_bl_release(cks_tokenizer *t);
void cks_tok_bl_work_release(cks_tok_work *w);
/* Hands w's byte-level state back to t for the next call (when there is room). */
void cks_tok_bl_work_give(const cks_tokenizer *t, cks_tok_work *w);
/* Marks the barrier bytes given which pieces may take part in merges. */
void cks_tok_barriers(cks_tokenizer *t, const uint8_t *merge_part);
cks_tokenizer *cks_tok_new(int kind, const char *display);

#endif
