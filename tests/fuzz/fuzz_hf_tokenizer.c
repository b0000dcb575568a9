/* Fuzz target: a Hugging Face tokenizer.json through cks_tokenizer_load_hf; a tokenizer
 * that loads encodes fixed texts (tok_check.h). */
#include "fuzz.h"
#include "tok_check.h"

#define DISPLAY "fuzz/tokenizer.json"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cks_tokenizer *t;
    int err = cks_tokenizer_load_hf(&t, (const char *)data, size, DISPLAY);
    if (err) {
        fuzz_check_refusal(err, DISPLAY);
        return 0;
    }
    FUZZ_REQUIRE(strcmp(cks_tokenizer_kind(t), "hf") == 0);
    fuzz_encode_all(t);
    cks_tokenizer_free(t);
    return 0;
}
