/* config.json parsing and the forward pass's checks (see config.h). The fields beyond the
 * sizes are one table; the family row (model_family.c) says which of them its HF code reads,
 * their defaults, and which ckptscope implements at the default value only. */
#include "config.h"
#include "checked.h"
#include "error.h"
#include "model_family.h"
#include "json.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

typedef enum { F_INT, F_REAL, F_BOOL, F_STR } ftype;

/* One field: read when the family reads `bit` (0: always), into cks_config at `off`.
 * nullable: JSON null stores `none` (HF's None); otherwise null counts as absent. */
typedef struct {
    const char *key;
    unsigned bit;
    ftype type;
    size_t off;
    double lo, hi;
    int nullable;
    double none;
    size_t cap; /* F_STR: the buffer's size */
} field;

#define OFF(f) offsetof(cks_config, f)
#define NUM(key, bit, t, f, lo, hi)          \
    {                                        \
        key, bit, t, OFF(f), lo, hi, 0, 0, 0 \
    }
#define NULLABLE(key, bit, t, f, lo, hi)     \
    {                                        \
        key, bit, t, OFF(f), lo, hi, 1, 0, 0 \
    }
#define BOOL(key, bit, f)                       \
    {                                           \
        key, bit, F_BOOL, OFF(f), 0, 0, 0, 0, 0 \
    }
#define STR(key, bit, f)                                                  \
    {                                                                     \
        key, bit, F_STR, OFF(f), 0, 0, 0, 0, sizeof(((cks_config *)0)->f) \
    }
static const field fields[] = {
    NUM("num_key_value_heads", CKS_CF_KV_HEADS, F_INT, num_key_value_heads, 1, CKS_MAX_HEADS),
    NUM("head_dim", CKS_CF_HEAD_DIM, F_INT, head_dim, 1, CKS_MAX_HIDDEN),
    NUM("rms_norm_eps", CKS_CF_RMS_EPS, F_REAL, norm_eps, 1e-30, 1),
    NUM("layer_norm_eps", CKS_CF_LN_EPS, F_REAL, norm_eps, 1e-30, 1),
    NUM("rope_theta", CKS_CF_ROPE_THETA, F_REAL, rope_theta, 1, 1e12),
    NUM("rotary_emb_base", CKS_CF_ROTARY_BASE, F_REAL, rope_theta, 1, 1e12),
    NUM("rotary_pct", CKS_CF_ROTARY_PCT, F_REAL, rotary_pct, 0, 1),
    NUM("partial_rotary_factor", CKS_CF_PARTIAL_ROTARY, F_REAL, rotary_pct, 0, 1),
    BOOL("use_parallel_residual", CKS_CF_PARALLEL, parallel_residual),
    BOOL("attention_bias", CKS_CF_ATTN_BIAS, attention_bias),
    BOOL("mlp_bias", CKS_CF_MLP_BIAS, mlp_bias),
    NUM("pretraining_tp", CKS_CF_PRETRAINING_TP, F_INT, pretraining_tp, 1, CKS_MAX_HEADS),
    NULLABLE("clip_qkv", CKS_CF_CLIP_QKV, F_REAL, clip_qkv, 1e-30, 1e30), /* 0: None */
    NULLABLE("sliding_window", CKS_CF_SLIDING_WINDOW, F_INT, sliding_window, 1, INT32_MAX),
    BOOL("use_sliding_window", CKS_CF_USE_SLIDING, use_sliding_window),
    NUM("max_window_layers", CKS_CF_USE_SLIDING, F_INT, max_window_layers, 0, INT32_MAX),
    STR("hidden_act", CKS_CF_HIDDEN_ACT, hidden_act),
    NUM("max_position_embeddings", 0, F_INT, max_position_embeddings, 1, CKS_MAX_POSITIONS),
    BOOL("tie_word_embeddings", 0, tie_word_embeddings),
    STR("torch_dtype", 0, torch_dtype),
};
#undef NUM
#undef NULLABLE
#undef BOOL
#undef STR
#undef OFF

#define AT(c, f, T)  ((T *)((char *)(c) + (f)->off))
#define CAT(c, f, T) ((const T *)((const char *)(c) + (f)->off))

static int read_field(const json_t *j, const field *f, const char *display, cks_config *c)
{
    json_t *v = json_object_get(j, f->key);
    int err = 0;
    if (!v)
        return 0; /* the default stays */
    if (json_is_null(v) && f->nullable) {
        if (f->type == F_INT)
            *AT(c, f, int64_t) = (int64_t)f->none;
        else
            *AT(c, f, double) = f->none;
        return 0;
    }
    switch (f->type) {
    case F_INT:
        err = cks_json_get_int(j, f->key, (int64_t)f->lo, (int64_t)f->hi, 1, *AT(c, f, int64_t),
                               display, AT(c, f, int64_t));
        break;
    case F_REAL:
        err = cks_json_get_real(j, f->key, f->lo, f->hi, 1, *AT(c, f, double), display,
                                AT(c, f, double));
        break;
    case F_BOOL:
        err = cks_json_get_bool(j, f->key, 1, *AT(c, f, int), display, AT(c, f, int));
        break;
    case F_STR:
        if (json_is_string(v))
            snprintf(AT(c, f, char), f->cap, "%s", json_string_value(v));
        else if (!json_is_null(v))
            err = cks_error_set(CKS_EFORMAT, "%s: \"%s\" is not a string", display, f->key);
        break;
    }
    return err == CKS_ENOTFOUND ? 0 : err;
}

static int get_size(const json_t *j, const char *key, int64_t hi, const char *display, int64_t *out)
{
    int err = cks_json_get_int(j, key, 1, hi, 1, *out, display, out);
    return err == CKS_ENOTFOUND ? 0 : err;
}

/* rope_scaling (null, or an object with "type"/"rope_type") and transformers 5's
 * rope_parameters ({"rope_type", "rope_theta", "partial_rotary_factor"}). */
static int read_rope(const json_t *j, const char *display, cks_config *c)
{
    static const char *const keys[] = {"rope_scaling", "rope_parameters"};
    for (int k = 0; k < 2; k++) {
        json_t *v = json_object_get(j, keys[k]), *t;
        if (!v || json_is_null(v))
            continue;
        if (!json_is_object(v))
            return cks_error_set(CKS_EFORMAT, "%s: \"%s\" is neither null nor an object", display,
                                 keys[k]);
        c->present |= CKS_CF_ROPE_SCALING;
        t = json_object_get(v, "rope_type");
        if (!t)
            t = json_object_get(v, "type");
        const char *type = json_is_string(t) ? json_string_value(t) : "(no type)";
        if (strcmp(type, "default") != 0)
            snprintf(c->rope_type, sizeof c->rope_type, "%s", type);
        if (k == 1) { /* rope_parameters carries theta and the rotary share itself */
            int err = cks_json_get_real(v, "rope_theta", 1, 1e12, 1, c->rope_theta, display,
                                        &c->rope_theta);
            if ((err == 0 || err == CKS_ENOTFOUND) && json_object_get(v, "partial_rotary_factor")) {
                c->present |= CKS_CF_PARTIAL_ROTARY; /* LLaMA-like families: refused unless 1 */
                err = cks_json_get_real(v, "partial_rotary_factor", 0, 1, 1, c->rotary_pct, display,
                                        &c->rotary_pct);
            }
            if (err && err != CKS_ENOTFOUND)
                return err;
        }
    }
    return 0;
}

/* Qwen2's layer_types: ["full_attention" | "sliding_attention", ...]. */
static int read_layer_types(const json_t *j, const char *display, cks_config *c)
{
    json_t *v = json_object_get(j, "layer_types");
    size_t i;
    json_t *e;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_array(v))
        return cks_error_set(CKS_EFORMAT, "%s: \"layer_types\" is not a list", display);
    c->first_sliding_layer = -1;
    json_array_foreach(v, i, e)
    {
        if (!json_is_string(e))
            return cks_error_set(CKS_EFORMAT, "%s: layer_types[%zu] is not a string", display, i);
        if (strcmp(json_string_value(e), "sliding_attention") == 0 && c->first_sliding_layer < 0)
            c->first_sliding_layer = (int64_t)i;
    }
    return 0;
}

static int read_ids(const json_t *j, const char *display, cks_config *c)
{
    int64_t hi = (c->vocab_size > 0 ? c->vocab_size : CKS_MAX_VOCAB) - 1;
    json_t *v = json_object_get(j, "bos_token_id");
    int err = 0;
    if (v && json_is_null(v))
        c->bos_token_id = -1; /* HF's None, whatever the family's default */
    else
        err = cks_json_get_int(j, "bos_token_id", 0, hi, 1, c->bos_token_id, display,
                               &c->bos_token_id);
    if (err && err != CKS_ENOTFOUND)
        return err;
    if (c->bos_token_id > hi)
        c->bos_token_id = -1; /* only the family's default can be past a small vocabulary */
    err = cks_json_get_int(j, "eos_token_id", 0, hi, 1, -1, display, &c->eos_token_id);
    if (err == CKS_EFORMAT && json_is_array(json_object_get(j, "eos_token_id"))) {
        c->eos_token_id = -1; /* a list of eos ids; we need none of them */
        cks_error_clear();
        err = 0;
    }
    return err == CKS_ENOTFOUND ? 0 : err;
}

static int read_sizes(const json_t *j, const char *display, cks_config *c)
{
    int err;
    if ((err = get_size(j, "hidden_size", CKS_MAX_HIDDEN, display, &c->hidden_size)) ||
        (err = get_size(j, "intermediate_size", CKS_MAX_INTERMEDIATE, display,
                        &c->intermediate_size)) ||
        (err = get_size(j, "num_hidden_layers", CKS_MAX_LAYERS, display, &c->num_hidden_layers)) ||
        (err =
             get_size(j, "num_attention_heads", CKS_MAX_HEADS, display, &c->num_attention_heads)) ||
        (err = get_size(j, "vocab_size", CKS_MAX_VOCAB, display, &c->vocab_size)))
        return err;
    return 0;
}

/* The defaults of a family, or the generic ones (LLaMA's behaviour fields, no sizes). */
static void defaults(cks_config *c, const cks_model_family *fam)
{
    *c = fam ? fam->dflt : cks_model_family_default()->dflt;
    c->family = fam;
    c->bos_token_id = fam ? fam->dflt.bos_token_id : -1;
    c->num_key_value_heads = 0;
    c->head_dim = 0;
    c->first_sliding_layer = -2;
    c->present = 0;
}

/* Read whatever the family: what inspect shows of a model_type ckptscope does not run. */
#define GENERIC (CKS_CF_KV_HEADS | CKS_CF_HEAD_DIM | CKS_CF_RMS_EPS | CKS_CF_ROPE_THETA)

static int parse_fields(const json_t *j, const char *display, cks_config *c)
{
    unsigned reads = c->family ? c->family->reads : GENERIC;
    int err;
    if ((err = read_sizes(j, display, c)) != 0)
        return err;
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        const field *f = &fields[i];
        if (f->bit && !(reads & f->bit))
            continue; /* the family's code does not read it: neither do we */
        if (json_object_get(j, f->key))
            c->present |= f->bit;
        if ((err = read_field(j, f, display, c)) != 0)
            return err;
    }
    if (reads & CKS_CF_ROPE_SCALING && (err = read_rope(j, display, c)) != 0)
        return err;
    if (reads & CKS_CF_USE_SLIDING && (err = read_layer_types(j, display, c)) != 0)
        return err;
    if (c->num_key_value_heads == 0)
        c->num_key_value_heads = c->family && c->family->dflt.num_key_value_heads > 0
                                     ? c->family->dflt.num_key_value_heads
                                     : c->num_attention_heads;
    if (c->head_dim == 0 && c->num_attention_heads > 0)
        c->head_dim = c->hidden_size / c->num_attention_heads;
    return read_ids(j, display, c);
}

int cks_config_parse(const char *text, size_t len, const char *display, cks_config *out)
{
    json_t *j = NULL;
    cks_config c;
    int err;
    int64_t x;
    if (len > CKS_MAX_CONFIG_BYTES)
        return cks_error_set(CKS_ELIMIT, "%s: %zu bytes, more than the %u allowed", display, len,
                             CKS_MAX_CONFIG_BYTES);
    if ((err = cks_json_parse(text, len, display, 1, &j)) != 0)
        return err;
    json_t *mt = json_object_get(j, "model_type");
    const char *type = json_is_string(mt) ? json_string_value(mt) : "";
    defaults(&c, cks_model_family_find(type));
    snprintf(c.model_type, sizeof c.model_type, "%s", type);
    if ((err = parse_fields(j, display, &c)) != 0)
        goto done;
    /* the largest buffers sized from these: vocab*hidden, hidden*intermediate*3*layers */
    if (cks_mul_i64(c.vocab_size, c.hidden_size, &x) ||
        cks_mul_i64(c.hidden_size, c.intermediate_size, &x) || cks_mul_i64(x, 3, &x) ||
        cks_mul_i64(x, c.num_hidden_layers, &x) || x > ((int64_t)1 << 50)) {
        err =
            cks_error_set(CKS_ELIMIT, "%s: sizes are too large (their products overflow)", display);
        goto done;
    }
    *out = c;
done:
    json_decref(j);
    return err;
}

/* ---- the forward pass's checks ---- */

static int same_act(const char *a, const char *b)
{
    /* ACT2FN maps "swish" to the same SiLU as "silu" */
    if (strcmp(a, "swish") == 0)
        a = "silu";
    if (strcmp(b, "swish") == 0)
        b = "silu";
    return strcmp(a, b) == 0;
}

static void value_str(const cks_config *c, const field *f, char *buf, size_t cap)
{
    switch (f->type) {
    case F_INT:
        snprintf(buf, cap, "%lld", (long long)*CAT(c, f, int64_t));
        break;
    case F_REAL:
        snprintf(buf, cap, "%g", *CAT(c, f, double));
        break;
    case F_BOOL:
        snprintf(buf, cap, "%s", *CAT(c, f, int) ? "true" : "false");
        break;
    case F_STR:
        snprintf(buf, cap, "\"%s\"", CAT(c, f, char));
        break;
    }
}

static int differs(const cks_config *c, const cks_config *d, const field *f)
{
    switch (f->type) {
    case F_INT:
        return *CAT(c, f, int64_t) != *CAT(d, f, int64_t);
    case F_REAL:
        return *CAT(c, f, double) != *CAT(d, f, double);
    case F_BOOL:
        return !*CAT(c, f, int) != !*CAT(d, f, int);
    case F_STR:
        return !same_act(CAT(c, f, char), CAT(d, f, char));
    }
    return 0;
}

/* Fields the family's code honours that ckptscope implements at the default only. */
static int check_fixed(const cks_config *c, const char *display)
{
    const cks_model_family *fam = c->family;
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        const field *f = &fields[i];
        if (!f->bit || !(fam->fixed & f->bit) || !(c->present & f->bit) ||
            !differs(c, &fam->dflt, f))
            continue;
        char got[64], want[64];
        value_str(c, f, got, sizeof got);
        value_str(&fam->dflt, f, want, sizeof want);
        return cks_error_set(CKS_EUNSUPPORTED,
                             "%s: %s = %s is not implemented: ckptscope's %s forward pass "
                             "implements %s = %s only",
                             display, f->key, got, fam->model_type, f->key, want);
    }
    if (c->rope_type[0])
        return cks_error_set(CKS_EUNSUPPORTED,
                             "%s: rope_scaling of type \"%s\" is not implemented: ckptscope's "
                             "forward pass implements plain RoPE (rope_scaling null or "
                             "\"default\") only",
                             display, c->rope_type);
    return 0;
}

static int check_sizes(const cks_config *c, const char *display)
{
    static const struct {
        const char *key;
        size_t off;
    } need[] = {
        {"hidden_size", offsetof(cks_config, hidden_size)},
        {"intermediate_size", offsetof(cks_config, intermediate_size)},
        {"num_hidden_layers", offsetof(cks_config, num_hidden_layers)},
        {"num_attention_heads", offsetof(cks_config, num_attention_heads)},
        {"vocab_size", offsetof(cks_config, vocab_size)},
    };
    for (size_t i = 0; i < sizeof need / sizeof need[0]; i++)
        if (*(const int64_t *)((const char *)c + need[i].off) <= 0)
            return cks_error_set(CKS_ENOTFOUND,
                                 "%s: \"%s\" is missing; the %s forward pass needs it", display,
                                 need[i].key, c->family->model_type);
    int derived = !(c->family->reads & CKS_CF_HEAD_DIM) || !(c->present & CKS_CF_HEAD_DIM);
    if (derived && c->hidden_size % c->num_attention_heads != 0)
        return cks_error_set(CKS_EFORMAT,
                             "%s: num_attention_heads = %lld does not divide hidden_size = %lld",
                             display, (long long)c->num_attention_heads, (long long)c->hidden_size);
    if ((c->family->reads & CKS_CF_KV_HEADS) &&
        c->num_attention_heads % c->num_key_value_heads != 0)
        return cks_error_set(CKS_EFORMAT,
                             "%s: num_key_value_heads = %lld does not divide "
                             "num_attention_heads = %lld",
                             display, (long long)c->num_key_value_heads,
                             (long long)c->num_attention_heads);
    if (c->head_dim % 2 != 0)
        return cks_error_set(CKS_EUNSUPPORTED,
                             "%s: head_dim = %lld is odd: rotary embeddings rotate half a head",
                             display, (long long)c->head_dim);
    return 0;
}

int cks_config_check_forward(const cks_config *c, const char *display)
{
    int err;
    if (!c->family) {
        if (!c->model_type[0])
            return cks_error_set(CKS_EUNSUPPORTED,
                                 "%s: no model_type; ckptscope's forward pass implements %s",
                                 display, cks_model_family_list());
        return cks_error_set(CKS_EUNSUPPORTED,
                             "%s: model_type \"%s\" is not implemented; ckptscope's forward "
                             "pass implements %s",
                             display, c->model_type, cks_model_family_list());
    }
    if ((err = check_sizes(c, display)) != 0 || (err = check_fixed(c, display)) != 0)
        return err;
    int64_t nfreq, d;
    cks_config_rotary(c, &nfreq, &d);
    if (2 * nfreq > c->head_dim)
        return cks_error_set(CKS_EUNSUPPORTED,
                             "%s: a rotary share of %g of head_dim %lld rotates %lld dims, more "
                             "than a head has",
                             display, c->rotary_pct, (long long)c->head_dim,
                             (long long)(2 * nfreq));
    return 0;
}

int64_t cks_config_window(const cks_config *c)
{
    const cks_model_family *fam = c->family;
    if (!fam || !(fam->reads & CKS_CF_SLIDING_WINDOW) || c->sliding_window <= 0)
        return 0;
    if (!(fam->reads & CKS_CF_USE_SLIDING))
        return c->sliding_window; /* Mistral: every layer */
    if (!c->use_sliding_window)
        return 0;
    int64_t first = c->first_sliding_layer == -2 ? c->max_window_layers : c->first_sliding_layer;
    return first >= 0 && first < c->num_hidden_layers ? c->sliding_window : 0;
}

void cks_config_rotary(const cks_config *c, int64_t *nfreq, int64_t *d_out)
{
    /* int(head_dim * partial_rotary_factor), as _compute_default_rope_parameters does */
    int64_t d = (int64_t)((double)c->head_dim * c->rotary_pct);
    *d_out = d;
    *nfreq = (d + 1) / 2;
}
