/* The built-in tokenizer: SentencePiece BPE models (tokenizer.model) and Hugging Face
 * tokenizer.json BPE models, giving the ids SentencePiece / HF tokenizers give.
 *
 * SentencePiece (spm_model.c parses the ModelProto protobuf; the layout and the checks are
 * documented there). Encoding reproduces sentencepiece's Normalizer + bpe::Model +
 * SentencePieceProcessor::Encode: the identity normalizer (add_dummy_prefix,
 * remove_extra_whitespaces, escape_whitespaces honoured; rules with a precompiled
 * charsmap such as nmt_nfkc are refused), user-defined pieces matched first and never
 * merged, merges of the adjacent pair whose concatenation is the highest-scoring piece
 * (ties: leftmost), UNUSED pieces re-split, unknown pieces spelled as <0xXX> byte pieces
 * with byte_fallback, else one <unk> per run of unknown pieces. Only model_type BPE.
 *
 * Hugging Face (hf_tokenizer.c): model.type "BPE" with vocab, merges ("a b" strings or
 * ["a", "b"] pairs; rank = position), byte_fallback, fuse_unk, unk_token, ignore_merges;
 * normalizer null / Prepend / Replace (literal pattern) / NFC / Sequence of those;
 * pre_tokenizer null, Metaspace (prepend_scheme always/first/never, split), or byte-level
 * (tok_bytelevel.c): ByteLevel (add_prefix_space, use_regex: GPT-2's pattern), Split
 * (Regex or String pattern, behavior Isolated) and a Sequence of Splits ending in
 * ByteLevel, as GPT-2, GPT-NeoX, OLMo 2, Qwen2 and Llama 3 files have. Split patterns are
 * matched with PCRE2 (UTF, Unicode properties, JIT), \s and \S read as Unicode's
 * White_Space as tokenizers' Oniguruma does; NFC uses Unicode 9.0 data, as tokenizers'
 * unicode-normalization-alignments crate (tables in tok_nfc_*.c). added_tokens are split out
 * of the text first (normalized=false ones on the raw text, normalized=true ones on the
 * normalized text, leftmost-longest), as tokenizers' AddedVocabulary does. Added tokens
 * with lstrip/rstrip/single_word, dropout, continuing_subword_prefix, end_of_word_suffix,
 * other pre-tokenizers and normalizers, and Split patterns using \w \h \b (whose meaning
 * differs between the two regex engines) are refused by name.
 *
 * Text: UTF-8. Invalid UTF-8 (overlong forms, surrogates, > U+10FFFF, truncated) is an
 * error naming the byte offset: no byte-fallback guessing.
 *
 * A tokenizer is immutable after loading; encode may be called from several threads (a
 * byte-level tokenizer keeps a few per-call states with its word cache for the next calls,
 * each taken by one call at a time). */
#ifndef CKS_TOKENIZER_H
#define CKS_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "source.h"

/* Resource limits: inputs past these are refused with CKS_ELIMIT. */
#define CKS_TOK_MAX_FILE_BYTES   (256u << 20) /* tokenizer.model / tokenizer.json */
#define CKS_TOK_MAX_PIECES       (1 << 22)    /* vocabulary entries (LLaMA: 32000) */
#define CKS_TOK_MAX_PIECE_BYTES  4096         /* bytes of one piece (sentencepiece: 8000) */
#define CKS_TOK_MAX_MERGES       (1 << 23)    /* HF merges; ranks stay exact as floats */
#define CKS_TOK_MAX_ADDED        65536        /* HF added_tokens */
#define CKS_TOK_MAX_ADDED_BYTES  (1u << 20)   /* added tokens / user-defined pieces, in all */
#define CKS_TOK_MAX_TEXT_BYTES   ((size_t)256 << 20) /* one text passed to encode */
#define CKS_TOK_MAX_CONFIG_BYTES (4u << 20)          /* tokenizer_config.json */

typedef struct cks_tokenizer cks_tokenizer;

/* SentencePiece model protobuf (tokenizer.model). display names the file in messages. */
int cks_tokenizer_load_spm(cks_tokenizer **out, const void *data, size_t len, const char *display);
/* Hugging Face tokenizer.json (BPE with byte fallback, LLaMA normalizer/pre-tokenizer). */
int cks_tokenizer_load_hf(cks_tokenizer **out, const char *json, size_t len, const char *display);
/* Either format, told apart by content (a JSON object starts with '{'). */
int cks_tokenizer_load_bytes(cks_tokenizer **out, const void *data, size_t len,
                             const char *display);
/* Reads and loads a file (at most CKS_TOK_MAX_FILE_BYTES). */
int cks_tokenizer_load_file(cks_tokenizer **out, const char *path);
/* The tokenizer of a checkpoint: tokenizer.model when present, else tokenizer.json;
 * CKS_ENOTFOUND (message naming the checkpoint) when it has neither. */
int cks_tokenizer_load_ckpt(cks_tokenizer **out, const cks_ckpt *c);

/* Encodes UTF-8 text (no BOS added). *ids is malloc'ed (free it). Invalid UTF-8 is an
   error (CKS_EFORMAT naming the byte offset). An empty text gives n = 0 and ids = NULL. */
int cks_tokenizer_encode(const cks_tokenizer *t, const char *text, size_t len, int32_t **ids,
                         size_t *n);
int64_t cks_tokenizer_vocab_size(const cks_tokenizer *t);
/* SentencePiece: the id of trainer_spec.bos_piece/eos_piece ("<s>", "</s>") when that
 * piece is a CONTROL piece. Hugging Face: the id of "<s>" / "</s>". -1 when none. */
int32_t cks_tokenizer_bos_id(const cks_tokenizer *t); /* -1 when none */
int32_t cks_tokenizer_eos_id(const cks_tokenizer *t);
/* The piece (token string) of an id; borrowed, lives as long as t. NULL if out of range. */
const char *cks_tokenizer_piece(const cks_tokenizer *t, int32_t id);
/* The bytes token id stands for (its piece decoded): byte-level tokens through GPT-2's byte
 * map (as tokenizers' ByteLevel decoder), byte pieces <0xXX> as their byte, U+2581 as a
 * space, SentencePiece control pieces as nothing. Borrowed, lives as long as t; not
 * NUL-terminated in general (use *len). NULL when id is out of range. */
const char *cks_tokenizer_token_bytes(const cks_tokenizer *t, int32_t id, size_t *len);
/* The concatenated bytes of ids (malloc'ed, NUL-terminated; *len excludes the NUL). It may
 * not be valid UTF-8 (a token can hold part of a character). For byte-level tokenizers it
 * is the normalized text that was encoded; SentencePiece's leading space is kept.
 * CKS_EINVAL naming the id when one is outside the vocabulary. */
int cks_tokenizer_decode(const cks_tokenizer *t, const int32_t *ids, size_t n, char **out,
                         size_t *len);
/* The same made valid UTF-8: each maximal ill-formed subsequence becomes U+FFFD, as
 * tokenizers' decode (String::from_utf8_lossy) and SentencePiece do. */
int cks_tokenizer_decode_utf8(const cks_tokenizer *t, const int32_t *ids, size_t n, char **out,
                              size_t *len);
/* The id of a piece (vocabulary or added token), e.g. tokenizer_config.json's bos_token;
 * -1 when none. */
int32_t cks_tokenizer_piece_id(const cks_tokenizer *t, const char *piece, size_t len);
/* 1 for byte-level BPE (GPT-2 / GPT-NeoX / OLMo 2 / Qwen2 tokenizer.json), else 0. */
int cks_tokenizer_byte_level(const cks_tokenizer *t);
/* "sentencepiece" or "hf" (byte-level or not). */
const char *cks_tokenizer_kind(const cks_tokenizer *t);
void cks_tokenizer_free(cks_tokenizer *t);

/* add_bos_token from tokenizer_config.json text: *out = 1 or 0 when the key is a boolean,
 * -1 when it is absent or null (the caller applies its default: LlamaTokenizer adds BOS).
 * Not JSON, not an object, or a non-boolean value: CKS_EFORMAT naming display. */
int cks_tokenizer_config_add_bos(const char *json, size_t len, const char *display, int *out);
/* The same for a checkpoint's tokenizer_config.json; *out = -1 when the file is absent. */
int cks_tokenizer_ckpt_add_bos(const cks_ckpt *c, int *out);

#endif
