/* Internals of the tokenizer, shared by tokenizer.c (the BPE engine, SentencePiece
 * normalization and the public API), tok_tables.c (string tables, hash maps, UTF-8),
 * spm_model.c (the tokenizer.model parser) and hf_tokenizer.c (tokenizer.json). */
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
} tok_strs;

int tok_strs_add(tok_strs *s, const char *p, size_t len); /* CKS_ENOMEM / CKS_ELIMIT */
/* Sets entry i (growing the list with empty entries up to i); used when ids come unordered. */
int tok_strs_set(tok_strs *s, int32_t i, const char *p, size_t len);
void tok_strs_release(tok_strs *s);
static inline const char *tok_str(const tok_strs *s, int32_t i)
{
    return s->blob + s->off[i];
}

/* Open-addressing map from the strings of a tok_strs (by index) to their index. Sized once
 * for a known number of entries; never rehashed. */
typedef struct {
    uint32_t h;
    int32_t i; /* -1: empty slot */
} tok_slot;
typedef struct {
    tok_slot *slot;
    size_t mask;
} tok_strmap;

int tok_strmap_init(tok_strmap *m, size_t entries);
/* Adds index i of s. Returns the index already holding the same string, or -1. */
int32_t tok_strmap_put(tok_strmap *m, const tok_strs *s, int32_t i);
int32_t tok_strmap_get(const tok_strmap *m, const tok_strs *s, const char *p, size_t len);
void tok_strmap_release(tok_strmap *m);
uint32_t tok_hash(const char *p, size_t len);

/* A set of patterns with values, for longest-prefix matching at a position (SentencePiece
 * user-defined pieces, Hugging Face added tokens). */
typedef struct {
    tok_strs pat;
    int32_t *val;
    tok_strmap map;
    uint8_t first[256]; /* bytes that start some pattern */
    uint32_t *lens;     /* distinct pattern lengths, longest first */
    int nlens;
} tok_matcher;

int tok_matcher_add(tok_matcher *m, const char *p, size_t len, int32_t val);
int tok_matcher_build(tok_matcher *m); /* after the last add */
/* Length of the longest pattern that p[0..avail) starts with (0: none), value in *val. */
size_t tok_matcher_match(const tok_matcher *m, const char *p, size_t avail, int32_t *val);
void tok_matcher_release(tok_matcher *m);

/* Hugging Face merges: (left id, right id) -> (rank, merged id). */
typedef struct {
    uint64_t key; /* UINT64_MAX: empty */
    int32_t rank, id;
} tok_merge;
typedef struct {
    tok_merge *slot;
    size_t mask;
} tok_mergemap;

int tok_mergemap_init(tok_mergemap *m, size_t entries);
void tok_mergemap_put(tok_mergemap *m, int32_t l, int32_t r, int32_t rank, int32_t id);
const tok_merge *tok_mergemap_get(const tok_mergemap *m, int32_t l, int32_t r);
void tok_mergemap_release(tok_mergemap *m);

/* Byte length of the UTF-8 character at s (valid input), at most avail. */
static inline size_t tok_utf8_len(const char *s, size_t avail)
{
    static const uint8_t tab[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    size_t n = tab[(uint8_t)s[0] >> 4];
    return n < avail ? n : avail;
}

/* A growable byte buffer. */
typedef struct {
    char *p;
    size_t n, cap;
} tok_buf;
int tok_buf_reserve(tok_buf *b, size_t extra);
int tok_buf_put(tok_buf *b, const char *p, size_t len);

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
    int kind; /* HF_PREPEND or HF_REPLACE */
    char *a;  /* prepend string / replace pattern */
    size_t alen;
    char *b; /* replace content */
    size_t blen;
} tok_hf_norm;
enum { HF_PREPEND = 1, HF_REPLACE = 2 };
enum { HF_PRE_NONE = 0, HF_PRE_METASPACE = 1 };
enum { HF_PREPEND_ALWAYS = 0, HF_PREPEND_FIRST = 1, HF_PREPEND_NEVER = 2 };

struct cks_tokenizer {
    int kind;
    char display[512];
    tok_strs pieces; /* id -> piece string; pieces.n is the vocabulary size */
    int32_t unk_id;  /* -1 when none */
    int32_t bos_id, eos_id;
    int byte_fallback;
    int32_t byte_id[256]; /* id of <0xXX>, -1 when absent */
    tok_strmap normal;    /* SPM: NORMAL, USER_DEFINED, UNUSED pieces; HF: model.vocab */
    tok_matcher prefix;   /* SPM: user-defined pieces; HF: added tokens, normalized=false */
    /* Bytes (< 0x80) that no merge can cross, where the text is cut into independent
     * segments to bound working memory (see tok_barriers). */
    uint8_t barrier[128];
    /* No piece has U+2581 after another character: the text can also be cut before every
     * U+2581 that follows a different character (at word starts). */
    int cut_space;

    /* SentencePiece */
    float *score;
    uint8_t *type;
    tok_strmap reserved; /* CONTROL, UNKNOWN, BYTE pieces */
    int has_unused;
    int add_dummy_prefix, remove_extra_ws, escape_ws;

    /* Hugging Face */
    tok_mergemap merges;
    int fuse_unk, ignore_merges;
    tok_matcher added_norm; /* added tokens with normalized=true, patterns normalized */
    tok_hf_norm *norm;
    int nnorm;
    int pre, prepend_scheme, pre_split;
    char meta[8]; /* Metaspace replacement (UTF-8) */
    size_t metalen;
};

/* ---- the BPE engine (tokenizer.c) ---- */

typedef struct {
    int32_t prev, next;  /* neighbours in the live list, -1 at the ends */
    uint32_t start, len; /* bytes of the segment text; len 0 once merged away */
    int32_t id;
    uint8_t freeze; /* never merged (SentencePiece user-defined pieces) */
} tok_sym;

typedef struct {
    float prio; /* larger merges first: SentencePiece score, or -rank */
    int32_t left;
    uint32_t size; /* bytes of the merged pair, to detect stale candidates */
    int32_t id;
} tok_cand;

/* Per-call working memory, grown as needed and reused across segments. */
typedef struct {
    tok_sym *sym;
    size_t sym_cap;
    tok_cand *heap;
    size_t heap_n, heap_cap;
    int32_t *out;
    size_t out_n, out_cap;
    int32_t *rev; /* SentencePiece UNUSED pieces: left length of their last pushed split */
    uint32_t *stack;
    size_t stack_cap;
    tok_buf norm, tmp;
    int prev_unk;
} tok_work;

void tok_work_release(tok_work *w);
int tok_work_syms(tok_work *w, size_t n); /* room for n symbols */
int tok_emit(tok_work *w, int32_t id);

/* Finds the merge of adjacent symbols l, r over segment text s: 1 with priority and id,
 * or 0 when they do not merge. */
typedef int (*tok_pair_fn)(const cks_tokenizer *t, tok_work *w, const char *s, const tok_sym *l,
                           const tok_sym *r, float *prio, int32_t *id);

/* Runs BPE over w->sym[0..n) (linked in order): repeatedly merges the candidate with the
 * highest priority, ties to the leftmost, as sentencepiece's bpe_model.cc and tokenizers'
 * Word::merge_all do. Afterwards the live symbols are linked from index 0. */
int tok_bpe(const cks_tokenizer *t, tok_work *w, const char *s, size_t n, tok_pair_fn pair);

/* 1 when s[i] starts a U+2581 that follows a different character after segment start b. */
static inline int tok_word_start(const cks_tokenizer *t, const char *s, size_t i, size_t b)
{
    return t->cut_space && i >= b + 3 && (uint8_t)s[i] == 0xE2 && (uint8_t)s[i + 1] == 0x96 &&
           (uint8_t)s[i + 2] == 0x81 &&
           !((uint8_t)s[i - 3] == 0xE2 && (uint8_t)s[i - 2] == 0x96 && (uint8_t)s[i - 1] == 0x81);
}

/* ---- format-specific parts ---- */

int tok_hf_encode(const cks_tokenizer *t, tok_work *w, const char *text, size_t len);
void tok_hf_release(cks_tokenizer *t);
/* Marks the barrier bytes given which pieces may take part in merges. */
void tok_barriers(cks_tokenizer *t, const uint8_t *merge_part);
cks_tokenizer *tok_new(int kind, const char *display);

#endif
