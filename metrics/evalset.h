/* Held-out evaluation sets for perplexity (DESIGN §5), as `ppl` and `scan --metrics ppl`
 * take them: each FILE is one set named after the file's stem. A UTF-8 text file is one
 * document tokenised by the checkpoint's own tokenizer (its bytes count for bits per
 * byte); a .jsonl/.u16/.u32 file holds token ids (loaders/tokfile.h). Also the two
 * per-checkpoint decisions every evaluation makes: whether documents start with BOS, and
 * whether the tokenizer fits the model's vocabulary. */
#ifndef CKS_EVALSET_H
#define CKS_EVALSET_H

#include "config.h"
#include "docset.h"
#include "source.h"
#include "tokenizer.h"

#include <stddef.h>

#define CKS_MAX_EVAL_SETS 256

/* The set name of a file: its name without folders and without its last extension. */
void cks_evalset_name(const char *path, char *buf, size_t cap);

/* 1 when a file is given as token ids (by its extension, or always when the caller asked
 * for token files), 0 for text. */
int cks_evalset_is_tokens(const char *path);

/* Fills sets[0..n) (release each with cks_docset_release) from files[0..n): text files
 * tokenised with tok (which may be NULL only when every file is a token file), token
 * files in format fmt (CKS_TOKFILE_AUTO: by extension). Two files with the same set name
 * are refused (CKS_EINVAL naming both). An empty text file is an empty set (the
 * evaluation refuses sets with nothing to score). */
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
