/* Fuzz target: arbitrary text through the encoders of fixed, valid tokenizers (the
 * committed test models tests/data/tok/small.model and small.tokenizer.json, which have
 * byte fallback, and uds.model with user-defined pieces): UTF-8 validation, normalisation,
 * added-token splitting and BPE merges on hostile text. */
#include "fuzz.h"
#include "tok_check.h"

#include <stdio.h>

static cks_tokenizer *toks[4];
static size_t ntoks;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    static const char *const files[] = {"small.model", "small.tokenizer.json", "uds.model",
                                        "small.metaspace.tokenizer.json"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", CKS_FUZZ_TOK_DIR, files[i]);
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
