/* Held-out evaluation sets for perplexity (DESIGN §5), as `ppl` and `scan --metrics ppl`
 * take them: each FILE is one set named after the file's stem (or, with --split-by-meta,
 * one set per subset of its JSONL lines, "<stem>:<subset>"). Files may be plain, gzip or
 * zstd (loaders/lines.h, by their first bytes). Text: a UTF-8 file is one document, a
 * JSONL file with a "text" string per line one document per line (loaders/docfile.h),
 * tokenised by the checkpoint's own tokenizer (the text's bytes count for bits per byte).
 * Token ids: JSONL with "token_ids" per line, or raw .u16/.u32 files (loaders/tokfile.h).
 * Also the two per-checkpoint decisions every evaluation makes: whether documents start
 * with BOS, and whether the tokenizer fits the model's vocabulary. */
#ifndef CKS_EVALSET_H
#define CKS_EVALSET_H

#include "config.h"
#include "docset.h"
#include "source.h"
#include "tokenizer.h"

#include <stddef.h>

#define CKS_MAX_EVAL_SETS 256

/* The set name of a file: its name without folders, without a compression suffix (.gz,
 * .zst, .zstd) and without its last extension. */
void cks_evalset_name(const char *path, char *buf, size_t cap);

/* 1 when a file holds token ids: named .u16/.u32 (loaders/tokfile.h), or JSONL whose first
 * line has "token_ids" (it reads that line); 0 otherwise, also when the file cannot be
 * read (loading it reports why). */
int cks_evalset_is_tokens(const char *path);

typedef enum {
    CKS_EVAL_AUTO = 0, /* by the file: raw by name, JSONL by its first line, else text */
    CKS_EVAL_TEXT,     /* --text: plain text or JSONL "text" */
    CKS_EVAL_TOKENS    /* --tokens: JSONL "token_ids" or raw (token_format) */
} cks_eval_kind;

typedef struct {
    cks_eval_kind kind;
    int token_format;  /* a cks_tokfile_format for token files; 0: by name and content */
    int split_by_meta; /* JSONL only: one set per meta subset */
} cks_evalset_options;

/* Appends the sets of files[0..n) to *out (at most CKS_MAX_EVAL_SETS in all; release it
 * with cks_docsets_release, also after a failure): text tokenised with tok (which may be
 * NULL only when no file is text). Two files with the same set name are refused
 * (CKS_EINVAL naming both). An empty text file is an empty set (the evaluation refuses
 * sets with nothing to score). Errors name the file and, in JSONL, the line. */
int cks_evalset_load_sets(cks_docsets *out, const char *const *files, size_t n,
                          const cks_evalset_options *o, const cks_tokenizer *tok);

/* The same into sets[0..n), one set per file, without splitting: kind CKS_EVAL_TOKENS when
 * tokens_given, else CKS_EVAL_AUTO; fmt a cks_tokfile_format. Release each set. */
int cks_evalset_load(cks_docset *sets, const char *const *files, size_t n, int tokens_given,
                     int fmt, const cks_tokenizer *tok);

/* The BOS rule of DESIGN §5. Whether documents start with BOS: forced (1/0) by the
 * caller (--bos/--no-bos), else add_bos_token of the checkpoint's tokenizer_config.json,
 * else the family's HF default (LLaMA, Mistral: on; GPT-NeoX, Qwen2, OLMo, OLMo 2: off;
 * on for an unknown family). The BOS id is config.json's bos_token_id (or the family's
 * default for it), else the tokenizer's BOS piece. BOS on without an id is CKS_EINVAL
 * naming --no-bos. */
int cks_evalset_bos(const cks_ckpt *c, const cks_config *cfg, const cks_tokenizer *tok, int forced,
                    int *bos, int32_t *bos_id);

/* CKS_EFORMAT naming the checkpoint when the tokenizer has more pieces than the model's
 * vocab_size (its ids would index past the embedding; a model may pad its vocabulary, so
 * fewer is fine). */
int cks_evalset_check_vocab(const cks_tokenizer *tok, const cks_config *cfg, const char *display);

#endif
