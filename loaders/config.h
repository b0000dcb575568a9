/* config.json of a LlamaForCausalLM checkpoint.
 *
 * Fields read (Hugging Face names): hidden_size, intermediate_size, num_hidden_layers,
 * num_attention_heads, num_key_value_heads (default: num_attention_heads), vocab_size,
 * rms_norm_eps (default 1e-6), rope_theta (default 10000), max_position_embeddings
 * (default 2048), tie_word_embeddings (default false), torch_dtype, bos_token_id,
 * eos_token_id, head_dim (default hidden/heads).
 * Checks, before anything is allocated from them: every size positive and within the
 * CKS_MAX_* limits below; heads divide hidden_size; kv heads divide heads; products that
 * size buffers (hidden*vocab, hidden*intermediate, layers*...) fit in int64. */
#ifndef CKS_CONFIG_H
#define CKS_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define CKS_MAX_CONFIG_BYTES (1u << 20) /* config.json larger than 1 MiB is refused */
#define CKS_MAX_HIDDEN       (1 << 17)  /* 131072; K2 uses 8192 */
#define CKS_MAX_INTERMEDIATE (1 << 20)
#define CKS_MAX_LAYERS       4096
#define CKS_MAX_HEADS        4096
#define CKS_MAX_VOCAB        (1 << 22) /* 4M pieces */
#define CKS_MAX_POSITIONS    (1 << 22)

typedef struct {
    int64_t hidden_size;
    int64_t intermediate_size;
    int64_t num_hidden_layers;
    int64_t num_attention_heads;
    int64_t num_key_value_heads;
    int64_t head_dim;
    int64_t vocab_size;
    int64_t max_position_embeddings;
    double rms_norm_eps;
    double rope_theta;
    int tie_word_embeddings;
    int64_t bos_token_id; /* -1 when absent */
    int64_t eos_token_id; /* -1 when absent */
    char torch_dtype[16]; /* "" when absent */
    char model_type[32];  /* "" when absent */
} cks_config;

/* Parses and validates config.json text; display names the file in messages. */
int cks_config_parse(const char *text, size_t len, const char *display, cks_config *out);

#endif
