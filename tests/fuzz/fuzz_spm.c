/* Fuzz target: a SentencePiece tokenizer.model (ModelProto protobuf) through
 * cks_tokenizer_load_spm; a model that loads encodes fixed texts (tok_check.h). */
#include "fuzz.h"
#include "tok_check.h"

#define DISPLAY "fuzz/tokenizer.model"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cks_tokenizer *t;
    int err = cks_tokenizer_load_spm(&t, data, size, DISPLAY);
    if (err) {
        fuzz_check_refusal(err, DISPLAY);
        return 0;
    }
    FUZZ_REQUIRE(strcmp(cks_tokenizer_kind(t), "sentencepiece") == 0);
    fuzz_encode_all(t);
    cks_tokenizer_free(t);
    return 0;
}
