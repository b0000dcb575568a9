/* Fuzz target: arbitrary text through the encoders of fixed, valid tokenizers (the
 * committed test models tests/data/tok/small.model and small.tokenizer.json, which have
 * byte fallback, uds.model with user-defined pieces, and the byte-level files of
 * tests/data/bpe: Qwen2-style Split + NFC, Llama-3-style ignore_merges, ByteLevel's own
 * pattern with add_prefix_space): UTF-8 validation, normalisation (NFC too), added-token
 * splitting, PCRE2 pre-tokenizing, the word cache and BPE merges on hostile text. */
#include "fuzz.h"
#include "tok_check.h"

#include <stdio.h>

static cks_tokenizer *toks[8];
static size_t ntoks;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    static const char *const files[] = {"tok/small.model",
                                        "tok/small.tokenizer.json",
                                        "tok/uds.model",
                                        "tok/small.metaspace.tokenizer.json",
                                        "bpe/qwen2_style.tokenizer.json",
                                        "bpe/llama3_style.tokenizer.json",
                                        "bpe/bytes_nfc.tokenizer.json"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", CKS_FUZZ_DATA_DIR, files[i]);
        if (cks_tokenizer_load_file(&toks[ntoks], path) != 0) {
            fprintf(stderr, "fuzz_tokenize: %s\n", cks_error_last());
            abort();
        }
        ntoks++;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (size_t i = 0; i < ntoks; i++)
        fuzz_encode(toks[i], (const char *)data, size);
    return 0;
}
