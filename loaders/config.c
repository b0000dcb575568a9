/* config.json parsing and validation (see config.h for the fields and checks). */
#include "config.h"
#include "checked.h"
#include "error.h"
#include "json.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static int get_size(const json_t *j, const char *key, int64_t hi, int optional, int64_t dflt,
                    const char *display, int64_t *out)
{
    int err = cks_json_get_int(j, key, 1, hi, optional, dflt, display, out);
    return err == CKS_ENOTFOUND && optional ? 0 : err;
}

static void copy_str(const json_t *j, const char *key, char *dst, size_t cap)
{
    json_t *v = json_object_get(j, key);
    dst[0] = '\0';
    if (json_is_string(v))
        snprintf(dst, cap, "%s", json_string_value(v));
}

int cks_config_parse(const char *text, size_t len, const char *display, cks_config *out)
{
    json_t *j = NULL;
    cks_config c;
    int err;
    int64_t x;

    memset(&c, 0, sizeof c);
    if (len > CKS_MAX_CONFIG_BYTES)
        return cks_error_set(CKS_ELIMIT, "%s: %zu bytes, more than the %u allowed", display, len,
                             CKS_MAX_CONFIG_BYTES);
    if ((err = cks_json_parse(text, len, display, 1, &j)) != 0)
        return err;
    if ((err = get_size(j, "hidden_size", CKS_MAX_HIDDEN, 0, 0, display, &c.hidden_size)) ||
        (err = get_size(j, "intermediate_size", CKS_MAX_INTERMEDIATE, 0, 0, display,
                        &c.intermediate_size)) ||
        (err = get_size(j, "num_hidden_layers", CKS_MAX_LAYERS, 0, 0, display,
                        &c.num_hidden_layers)) ||
        (err = get_size(j, "num_attention_heads", CKS_MAX_HEADS, 0, 0, display,
                        &c.num_attention_heads)) ||
        (err = get_size(j, "num_key_value_heads", CKS_MAX_HEADS, 1, c.num_attention_heads, display,
                        &c.num_key_value_heads)) ||
        (err = get_size(j, "vocab_size", CKS_MAX_VOCAB, 0, 0, display, &c.vocab_size)) ||
        (err = get_size(j, "max_position_embeddings", CKS_MAX_POSITIONS, 1, 2048, display,
                        &c.max_position_embeddings)))
        goto done;
    if (c.hidden_size % c.num_attention_heads != 0) {
        err = cks_error_set(CKS_EFORMAT,
                            "%s: num_attention_heads = %lld does not divide hidden_size = %lld",
                            display, (long long)c.num_attention_heads, (long long)c.hidden_size);
        goto done;
    }
    if (c.num_attention_heads % c.num_key_value_heads != 0) {
        err = cks_error_set(CKS_EFORMAT,
                            "%s: num_key_value_heads = %lld does not divide "
                            "num_attention_heads = %lld",
                            display, (long long)c.num_key_value_heads,
                            (long long)c.num_attention_heads);
        goto done;
    }
    if ((err = get_size(j, "head_dim", CKS_MAX_HIDDEN, 1, c.hidden_size / c.num_attention_heads,
                        display, &c.head_dim)))
        goto done;
    if (c.head_dim * c.num_attention_heads != c.hidden_size || c.head_dim % 2 != 0) {
        err = cks_error_set(CKS_EUNSUPPORTED,
                            "%s: head_dim = %lld must be even and equal hidden_size / heads",
                            display, (long long)c.head_dim);
        goto done;
    }
    err = cks_json_get_real(j, "rms_norm_eps", 0.0, 1.0, 1, 1e-6, display, &c.rms_norm_eps);
    if (err && err != CKS_ENOTFOUND)
        goto done;
    if (!(c.rms_norm_eps > 0)) {
        err = cks_error_set(CKS_EFORMAT, "%s: rms_norm_eps must be positive", display);
        goto done;
    }
    err = cks_json_get_real(j, "rope_theta", 1.0, 1e12, 1, 10000.0, display, &c.rope_theta);
    if (err && err != CKS_ENOTFOUND)
        goto done;
    err = cks_json_get_bool(j, "tie_word_embeddings", 1, 0, display, &c.tie_word_embeddings);
    if (err && err != CKS_ENOTFOUND)
        goto done;
    err = cks_json_get_int(j, "bos_token_id", 0, c.vocab_size - 1, 1, -1, display, &c.bos_token_id);
    if (err && err != CKS_ENOTFOUND)
        goto done;
    err = cks_json_get_int(j, "eos_token_id", 0, c.vocab_size - 1, 1, -1, display, &c.eos_token_id);
    if (err && err != CKS_ENOTFOUND && err != CKS_EFORMAT)
        goto done;
    if (err == CKS_EFORMAT) /* some configs hold a list of eos ids; we only need one */
        c.eos_token_id = -1;
    copy_str(j, "torch_dtype", c.torch_dtype, sizeof c.torch_dtype);
    copy_str(j, "model_type", c.model_type, sizeof c.model_type);

    /* the largest buffers sized from these: vocab*hidden, hidden*intermediate*3*layers */
    if (cks_mul_i64(c.vocab_size, c.hidden_size, &x) ||
        cks_mul_i64(c.hidden_size, c.intermediate_size, &x) || cks_mul_i64(x, 3, &x) ||
        cks_mul_i64(x, c.num_hidden_layers, &x) || x > ((int64_t)1 << 50)) {
        err =
            cks_error_set(CKS_ELIMIT, "%s: sizes are too large (their products overflow)", display);
        goto done;
    }
    err = 0;
    *out = c;
done:
    json_decref(j);
    return err;
}
