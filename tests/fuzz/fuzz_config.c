/* Fuzz target: config.json through cks_config_parse, then the forward pass's checks
 * (cks_config_check_forward). An accepted config must satisfy what config.h promises at
 * each level before anything is allocated from it. */
#include "check.h"
#include "config.h"
#include "model_family.h"
#include "fuzz.h"

#define DISPLAY "fuzz/config.json"

static int in(int64_t v, int64_t hi)
{
    return v >= 0 && v <= hi; /* 0: absent */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cks_config c;
    int err = cks_config_parse((const char *)data, size, DISPLAY, &c);
    if (err) {
        fuzz_check_refusal(err, DISPLAY);
        return 0;
    }
    FUZZ_REQUIRE(in(c.hidden_size, CKS_MAX_HIDDEN) &&
                 in(c.intermediate_size, CKS_MAX_INTERMEDIATE));
    FUZZ_REQUIRE(in(c.num_hidden_layers, CKS_MAX_LAYERS) &&
                 in(c.num_attention_heads, CKS_MAX_HEADS));
    FUZZ_REQUIRE(in(c.num_key_value_heads, CKS_MAX_HEADS) && in(c.vocab_size, CKS_MAX_VOCAB));
    FUZZ_REQUIRE(in(c.head_dim, CKS_MAX_HIDDEN));
    FUZZ_REQUIRE(c.max_position_embeddings > 0 && c.max_position_embeddings <= CKS_MAX_POSITIONS);
    FUZZ_REQUIRE(c.norm_eps > 0 && c.rope_theta == c.rope_theta && c.rotary_pct >= 0 &&
                 c.rotary_pct <= 1 && c.clip_qkv >= 0 && c.sliding_window >= 0);
    FUZZ_REQUIRE(c.bos_token_id >= -1 && c.eos_token_id >= -1);
    FUZZ_REQUIRE(c.vocab_size == 0 ||
                 (c.bos_token_id < c.vocab_size && c.eos_token_id < c.vocab_size));
    FUZZ_REQUIRE(memchr(c.torch_dtype, 0, sizeof c.torch_dtype) &&
                 memchr(c.model_type, 0, sizeof c.model_type) &&
                 memchr(c.hidden_act, 0, sizeof c.hidden_act) &&
                 memchr(c.rope_type, 0, sizeof c.rope_type));
    FUZZ_REQUIRE(!c.family || cks_model_family_find(c.model_type) == c.family);
    err = cks_config_check_forward(&c, DISPLAY);
    if (err) {
        fuzz_check_refusal(err, DISPLAY);
        return 0;
    }
    /* what the forward pass sizes its buffers from */
    FUZZ_REQUIRE(c.family && c.hidden_size > 0 && c.intermediate_size > 0 &&
                 c.num_hidden_layers > 0 && c.num_attention_heads > 0 && c.vocab_size > 0);
    FUZZ_REQUIRE(c.num_key_value_heads > 0 && c.num_attention_heads % c.num_key_value_heads == 0);
    FUZZ_REQUIRE(c.head_dim > 0 && c.head_dim % 2 == 0 && !c.rope_type[0]);
    int64_t nfreq, d;
    cks_config_rotary(&c, &nfreq, &d);
    FUZZ_REQUIRE(nfreq >= 0 && 2 * nfreq <= c.head_dim);
    FUZZ_REQUIRE(cks_config_window(&c) >= 0);
    return 0;
}
