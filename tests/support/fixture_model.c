/* The fixture model of each family: its tensor names and shapes, and its config.json, as
 * Hugging Face's checkpoints of that family have them (modeling_<family>.py's module
 * names, configuration_<family>.py's fields). Written out here rather than taken from
 * ckptscope's family table, so a wrong name on either side shows. */
#include "fixture.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    cks_fx_tensor *out;
    int n, cap;
    char prefix[64];
} tlist;

static void add(tlist *t, const char *name, int ndim, int64_t a, int64_t b)
{
    if (t->n < t->cap) {
        cks_fx_tensor *x = &t->out[t->n];
        memset(x, 0, sizeof *x);
        snprintf(x->name, sizeof x->name, "%s%s", t->prefix, name);
        x->ndim = ndim;
        x->shape[0] = a;
        x->shape[1] = b;
    }
    t->n++;
}

/* A buffer of an older Pythia file: its own dtype and contents. */
static void add_buffer(tlist *t, const char *name, cks_dtype dt, cks_fx_fill fill, int ndim,
                       const int64_t *shape, double value)
{
    add(t, name, ndim, ndim ? shape[0] : 0, ndim > 1 ? shape[1] : 0);
    if (t->n <= t->cap) {
        cks_fx_tensor *x = &t->out[t->n - 1];
        for (int d = 0; d < ndim; d++)
            x->shape[d] = shape[d];
        x->fill = fill;
        x->dtype = dt;
        x->value = value;
    }
}

static const char *family_of(const cks_fx_model *m)
{
    return m->family && m->family[0] ? m->family : "llama";
}

static void neox_layer(tlist *t, const cks_fx_model *m)
{
    const int64_t H = m->hidden, I = m->intermediate;
    add(t, "input_layernorm.weight", 1, H, 0);
    add(t, "input_layernorm.bias", 1, H, 0);
    add(t, "post_attention_layernorm.weight", 1, H, 0);
    add(t, "post_attention_layernorm.bias", 1, H, 0);
    add(t, "attention.query_key_value.weight", 2, 3 * H, H);
    if (!m->no_attention_bias)
        add(t, "attention.query_key_value.bias", 1, 3 * H, 0);
    add(t, "attention.dense.weight", 2, H, H);
    if (!m->no_attention_bias)
        add(t, "attention.dense.bias", 1, H, 0);
    add(t, "mlp.dense_h_to_4h.weight", 2, I, H);
    add(t, "mlp.dense_h_to_4h.bias", 1, I, 0);
    add(t, "mlp.dense_4h_to_h.weight", 2, H, I);
    add(t, "mlp.dense_4h_to_h.bias", 1, H, 0);
    if (m->buffers) {
        const int64_t mask[4] = {1, 1, m->max_pos, m->max_pos}, none[1] = {0};
        const int64_t hd = H / m->heads, rot = (int64_t)((double)hd * m->rotary_pct);
        const int64_t nf[1] = {(rot + 1) / 2};
        add_buffer(t, "attention.bias", CKS_DT_BOOL, CKS_FX_TRIL, 4, mask, 0);
        add_buffer(t, "attention.masked_bias", CKS_DT_F32, CKS_FX_CONST, 0, none, -1e9);
        add_buffer(t, "attention.rotary_emb.inv_freq", CKS_DT_F32, CKS_FX_INV_FREQ, 1, nf, 0);
    }
}

/* LLaMA, Mistral, Qwen2, OLMo, OLMo 2: LlamaDecoderLayer's names and their variants. */
static void llama_layer(tlist *t, const cks_fx_model *m, const char *fam)
{
    const int64_t H = m->hidden, I = m->intermediate, hd = m->head_dim ? m->head_dim : H / m->heads;
    const int64_t qd = m->heads * hd, kvd = m->kv_heads * hd;
    int olmo = strcmp(fam, "olmo") == 0, olmo2 = strcmp(fam, "olmo2") == 0;
    int qwen2 = strcmp(fam, "qwen2") == 0;
    if (!olmo && !olmo2)
        add(t, "input_layernorm.weight", 1, H, 0);
    add(t, "self_attn.q_proj.weight", 2, qd, H);
    if (qwen2)
        add(t, "self_attn.q_proj.bias", 1, qd, 0);
    add(t, "self_attn.k_proj.weight", 2, kvd, H);
    if (qwen2)
        add(t, "self_attn.k_proj.bias", 1, kvd, 0);
    add(t, "self_attn.v_proj.weight", 2, kvd, H);
    if (qwen2)
        add(t, "self_attn.v_proj.bias", 1, kvd, 0);
    if (olmo2) {
        add(t, "self_attn.q_norm.weight", 1, qd, 0);
        add(t, "self_attn.k_norm.weight", 1, kvd, 0);
    }
    add(t, "self_attn.o_proj.weight", 2, H, qd);
    if (!olmo)
        add(t, "post_attention_layernorm.weight", 1, H, 0);
    add(t, "mlp.gate_proj.weight", 2, I, H);
    add(t, "mlp.up_proj.weight", 2, I, H);
    add(t, "mlp.down_proj.weight", 2, H, I);
    if (olmo2)
        add(t, "post_feedforward_layernorm.weight", 1, H, 0);
}

int cks_fx_tensors(const cks_fx_model *m, cks_fx_tensor *out, int cap)
{
    tlist t = {out, 0, cap, ""};
    const char *fam = family_of(m);
    int neox = strcmp(fam, "gpt_neox") == 0;
    add(&t, neox ? "gpt_neox.embed_in.weight" : "model.embed_tokens.weight", 2, m->vocab,
        m->hidden);
    for (int l = 0; l < m->layers; l++) {
        snprintf(t.prefix, sizeof t.prefix, "%s.layers.%d.", neox ? "gpt_neox" : "model", l);
        if (neox)
            neox_layer(&t, m);
        else
            llama_layer(&t, m, fam);
    }
    t.prefix[0] = '\0';
    if (neox) {
        add(&t, "gpt_neox.final_layer_norm.weight", 1, m->hidden, 0);
        add(&t, "gpt_neox.final_layer_norm.bias", 1, m->hidden, 0);
    } else if (strcmp(fam, "olmo") != 0) {
        add(&t, "model.norm.weight", 1, m->hidden, 0);
    }
    if (!m->tied)
        add(&t, neox ? "embed_out.weight" : "lm_head.weight", 2, m->vocab, m->hidden);
    return t.n;
}

static const char *dtype_name(cks_dtype dt)
{
    return dt == CKS_DT_BF16  ? "bfloat16"
           : dt == CKS_DT_F16 ? "float16"
           : dt == CKS_DT_F64 ? "float64"
                              : "float32";
}

/* The fields each family's real configs carry beyond the sizes. */
static void family_fields(json_t *j, const cks_fx_model *m, const char *fam)
{
    int neox = strcmp(fam, "gpt_neox") == 0;
    if (neox) {
        json_object_set_new(j, "layer_norm_eps", json_real(m->eps));
        json_object_set_new(j, "rotary_pct", json_real(m->rotary_pct));
        json_object_set_new(j, "rotary_emb_base", json_real(m->rope_theta));
        json_object_set_new(j, "use_parallel_residual", json_boolean(!m->sequential));
        json_object_set_new(j, "attention_bias", json_boolean(!m->no_attention_bias));
        json_object_set_new(j, "hidden_act", json_string("gelu"));
        json_object_set_new(j, "bos_token_id", json_integer(0));
        json_object_set_new(j, "eos_token_id", json_integer(0));
        return;
    }
    json_object_set_new(j, "num_key_value_heads", json_integer(m->kv_heads));
    json_object_set_new(j, "rope_theta", json_real(m->rope_theta));
    json_object_set_new(j, "hidden_act", json_string("silu"));
    if (m->head_dim)
        json_object_set_new(j, "head_dim", json_integer(m->head_dim));
    if (strcmp(fam, "olmo") != 0)
        json_object_set_new(j, "rms_norm_eps", json_real(m->eps));
    if (strcmp(fam, "llama") == 0) {
        json_object_set_new(j, "attention_bias", json_false());
        json_object_set_new(j, "mlp_bias", json_false());
        json_object_set_new(j, "pretraining_tp", json_integer(1));
        json_object_set_new(j, "rope_scaling", json_null());
    }
    if (strcmp(fam, "llama") == 0 || strcmp(fam, "mistral") == 0) {
        json_object_set_new(j, "bos_token_id", json_integer(1));
        json_object_set_new(j, "eos_token_id", json_integer(2));
    }
    if (strcmp(fam, "mistral") == 0)
        json_object_set_new(j, "sliding_window",
                            m->sliding_window ? json_integer(m->sliding_window) : json_null());
    if (strcmp(fam, "qwen2") == 0) {
        json_object_set_new(j, "use_sliding_window", json_boolean(m->use_sliding_window));
        json_object_set_new(j, "sliding_window",
                            json_integer(m->sliding_window ? m->sliding_window : 4096));
        json_object_set_new(j, "max_window_layers",
                            json_integer(m->max_window_layers ? m->max_window_layers : 28));
        json_object_set_new(j, "bos_token_id", json_integer(m->vocab - 1));
        json_object_set_new(j, "eos_token_id", json_integer(m->vocab - 1));
    }
    if (strcmp(fam, "olmo") == 0) {
        json_object_set_new(j, "clip_qkv", m->clip_qkv > 0 ? json_real(m->clip_qkv) : json_null());
        json_object_set_new(j, "attention_bias", json_false());
        json_object_set_new(j, "bos_token_id", json_null());
        json_object_set_new(j, "eos_token_id", json_integer(m->vocab - 1));
        json_object_set_new(j, "pad_token_id", json_integer(1));
    }
    if (strcmp(fam, "olmo2") == 0) {
        json_object_set_new(j, "attention_bias", json_false());
        json_object_set_new(j, "bos_token_id", json_integer(m->vocab - 2));
        json_object_set_new(j, "eos_token_id", json_integer(m->vocab - 2));
    }
}

char *cks_fx_config_json(const cks_fx_model *m)
{
    static const struct {
        const char *family, *cls;
    } classes[] = {{"llama", "LlamaForCausalLM"}, {"mistral", "MistralForCausalLM"},
                   {"qwen2", "Qwen2ForCausalLM"}, {"gpt_neox", "GPTNeoXForCausalLM"},
                   {"olmo", "OlmoForCausalLM"},   {"olmo2", "Olmo2ForCausalLM"}};
    const char *fam = family_of(m), *cls = "LlamaForCausalLM";
    for (size_t i = 0; i < sizeof classes / sizeof classes[0]; i++)
        if (strcmp(classes[i].family, fam) == 0)
            cls = classes[i].cls;
    json_t *j = json_pack("{s:[s], s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:b, s:s}", "architectures",
                          cls, "model_type", fam, "hidden_size", m->hidden, "intermediate_size",
                          m->intermediate, "num_hidden_layers", m->layers, "num_attention_heads",
                          m->heads, "vocab_size", m->vocab, "max_position_embeddings", m->max_pos,
                          "tie_word_embeddings", m->tied, "torch_dtype", dtype_name(m->dtype));
    family_fields(j, m, fam);
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(j);
    return s;
}
