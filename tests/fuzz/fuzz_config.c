/* Fuzz target: config.json through cks_config_parse. An accepted config must satisfy the
 * checks config.h promises before anything is allocated from it. */
#include "check.h"
#include "config.h"
#include "fuzz.h"

#define DISPLAY "fuzz/config.json"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cks_config c;
    int err = cks_config_parse((const char *)data, size, DISPLAY, &c);
    if (err) {
        fuzz_check_refusal(err, DISPLAY);
        return 0;
    }
    FUZZ_REQUIRE(c.hidden_size > 0 && c.hidden_size <= CKS_MAX_HIDDEN);
    FUZZ_REQUIRE(c.intermediate_size > 0 && c.intermediate_size <= CKS_MAX_INTERMEDIATE);
    FUZZ_REQUIRE(c.num_hidden_layers > 0 && c.num_hidden_layers <= CKS_MAX_LAYERS);
    FUZZ_REQUIRE(c.num_attention_heads > 0 && c.num_attention_heads <= CKS_MAX_HEADS);
    FUZZ_REQUIRE(c.num_key_value_heads > 0 && c.num_attention_heads % c.num_key_value_heads == 0);
    FUZZ_REQUIRE(c.hidden_size % c.num_attention_heads == 0);
    FUZZ_REQUIRE(c.head_dim > 0 && c.head_dim % 2 == 0 &&
                 c.head_dim * c.num_attention_heads == c.hidden_size);
    FUZZ_REQUIRE(c.vocab_size > 0 && c.vocab_size <= CKS_MAX_VOCAB);
    FUZZ_REQUIRE(c.max_position_embeddings > 0 && c.max_position_embeddings <= CKS_MAX_POSITIONS);
    FUZZ_REQUIRE(c.rms_norm_eps > 0 && c.rope_theta == c.rope_theta);
    FUZZ_REQUIRE(c.bos_token_id >= -1 && c.bos_token_id < c.vocab_size);
    FUZZ_REQUIRE(c.eos_token_id >= -1 && c.eos_token_id < c.vocab_size);
    FUZZ_REQUIRE(memchr(c.torch_dtype, 0, sizeof c.torch_dtype) &&
                 memchr(c.model_type, 0, sizeof c.model_type));
    return 0;
}
