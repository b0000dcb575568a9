/* Family table tests: the tensor-name mapper of every family (against names written out
 * here from Hugging Face's modeling files), names and kinds round-tripping through the
 * table, GPT-NeoX's fused query_key_value as row-block views (their values against the
 * fixture generator's, their norms, drift and spectra against the same statistics of a
 * plain contiguous copy and against sums in double), the buffers of older Pythia files set
 * apart, and the rejections of a fused tensor that does not split. */
#include "drift.h"
#include "error.h"
#include "model_family.h"
#include "fixture.h"
#include "norms.h"
#include "spectral.h"
#include "testutil.h"
#include "weights.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *family, *name;
    int layer;
    cks_kind kind;
    int buffer;
} name_case;

static void test_families__names_to_layer_and_kind(void **state)
{
    static const name_case c[] = {
        {"llama", "model.embed_tokens.weight", -1, CKS_KIND_EMBED, 0},
        {"llama", "model.layers.3.self_attn.q_proj.weight", 3, CKS_KIND_Q, 0},
        {"llama", "model.layers.3.input_layernorm.weight", 3, CKS_KIND_ATTN_NORM, 0},
        {"llama", "model.layers.3.post_attention_layernorm.weight", 3, CKS_KIND_MLP_NORM, 0},
        {"llama", "model.layers.0.self_attn.rotary_emb.inv_freq", 0, CKS_KIND_OTHER, 1},
        {"llama", "lm_head.weight", -1, CKS_KIND_LM_HEAD, 0},
        {"qwen2", "model.layers.1.self_attn.k_proj.bias", 1, CKS_KIND_K_BIAS, 0},
        {"mistral", "model.norm.weight", -1, CKS_KIND_FINAL_NORM, 0},
        {"olmo", "model.layers.2.mlp.gate_proj.weight", 2, CKS_KIND_GATE, 0},
        /* OLMo 2: the post-sublayer norms take the kinds of the norms they replace */
        {"olmo2", "model.layers.4.post_attention_layernorm.weight", 4, CKS_KIND_ATTN_NORM, 0},
        {"olmo2", "model.layers.4.post_feedforward_layernorm.weight", 4, CKS_KIND_MLP_NORM, 0},
        {"olmo2", "model.layers.4.self_attn.q_norm.weight", 4, CKS_KIND_Q_NORM, 0},
        {"olmo2", "model.layers.4.self_attn.k_norm.weight", 4, CKS_KIND_K_NORM, 0},
        {"gpt_neox", "gpt_neox.embed_in.weight", -1, CKS_KIND_EMBED, 0},
        {"gpt_neox", "gpt_neox.layers.5.attention.query_key_value.weight:q", 5, CKS_KIND_Q, 0},
        {"gpt_neox", "gpt_neox.layers.5.attention.query_key_value.weight:v", 5, CKS_KIND_V, 0},
        {"gpt_neox", "gpt_neox.layers.5.attention.query_key_value.bias:k", 5, CKS_KIND_K_BIAS, 0},
        {"gpt_neox", "gpt_neox.layers.5.attention.query_key_value.weight", 5, CKS_KIND_OTHER, 0},
        {"gpt_neox", "gpt_neox.layers.5.attention.query_key_value.weight:x", 5, CKS_KIND_OTHER, 0},
        {"gpt_neox", "gpt_neox.layers.5.attention.dense.bias", 5, CKS_KIND_O_BIAS, 0},
        {"gpt_neox", "gpt_neox.layers.5.mlp.dense_h_to_4h.weight", 5, CKS_KIND_UP, 0},
        {"gpt_neox", "gpt_neox.layers.5.mlp.dense_4h_to_h.bias", 5, CKS_KIND_DOWN_BIAS, 0},
        {"gpt_neox", "gpt_neox.layers.5.input_layernorm.bias", 5, CKS_KIND_ATTN_NORM_BIAS, 0},
        {"gpt_neox", "gpt_neox.layers.5.attention.bias", 5, CKS_KIND_OTHER, 1},
        {"gpt_neox", "gpt_neox.layers.5.attention.masked_bias", 5, CKS_KIND_OTHER, 1},
        {"gpt_neox", "gpt_neox.layers.5.attention.rotary_emb.inv_freq", 5, CKS_KIND_OTHER, 1},
        {"gpt_neox", "gpt_neox.final_layer_norm.bias", -1, CKS_KIND_FINAL_NORM_BIAS, 0},
        {"gpt_neox", "embed_out.weight", -1, CKS_KIND_LM_HEAD, 0},
        {"gpt_neox", "model.layers.0.self_attn.q_proj.weight", -1, CKS_KIND_OTHER, 0},
        /* an unknown family is named as LLaMA */
        {NULL, "model.layers.7.mlp.down_proj.weight", 7, CKS_KIND_DOWN, 0},
        {NULL, "gpt_neox.layers.0.attention.dense.weight", -1, CKS_KIND_OTHER, 0},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        const cks_model_family *f = c[i].family ? cks_model_family_find(c[i].family) : NULL;
        int layer;
        cks_kind kind;
        int buffer = cks_model_family_classify(f, c[i].name, &layer, &kind);
        if (layer != c[i].layer || kind != c[i].kind || buffer != c[i].buffer)
            fail_msg("%s %s -> layer %d kind %s buffer %d", c[i].family ? c[i].family : "-",
                     c[i].name, layer, cks_kind_name(kind), buffer);
    }
    assert_null(cks_model_family_find("bert"));
    assert_int_equal(cks_model_family_count(), 6);
}

/* Every name the table gives maps back to its layer and kind, in every family. */
static void test_families__tensor_names_round_trip(void **state)
{
    for (size_t f = 0; f < cks_model_family_count(); f++) {
        const cks_model_family *fam = cks_model_family_at(f);
        int named = 0;
        for (int l = -1; l < 3; l++)
            for (int k = 0; k < CKS_KIND_COUNT; k++) {
                char name[256];
                int layer;
                cks_kind kind;
                if (k == CKS_KIND_OTHER ||
                    cks_model_family_tensor_name(fam, l, (cks_kind)k, name, sizeof name) != 0)
                    continue;
                assert_int_equal(cks_model_family_classify(fam, name, &layer, &kind), 0);
                if (layer != l || kind != (cks_kind)k)
                    fail_msg("%s: %s -> %d %s, not %d %s", fam->model_type, name, layer,
                             cks_kind_name(kind), l, cks_kind_name((cks_kind)k));
                named++;
            }
        assert_true(named >= 3 + 3 * 9); /* embed, final norm, lm_head; a layer's weights */
    }
    /* bias kinds and their weights */
    for (int k = 0; k < CKS_KIND_OTHER; k++) {
        cks_kind b = cks_kind_bias((cks_kind)k), back;
        char want[64];
        assert_true(cks_kind_is_bias(b) && cks_kind_weight(b) == (cks_kind)k);
        snprintf(want, sizeof want, "%s_bias", cks_kind_name((cks_kind)k));
        assert_string_equal(cks_kind_name(b), want);
        assert_int_equal(cks_kind_from_name(want, &back), 0);
        assert_int_equal(back, b);
    }
}

/* ---- GPT-NeoX's fused query_key_value ---- */

typedef struct {
    char *tmp, dir[4096];
    cks_fx_spec spec;
    cks_source *src;
    cks_ckpt *ck[2];
    cks_weights *w[2];
} neox;

static void neox_open(neox *n, int bin)
{
    memset(n, 0, sizeof *n);
    n->tmp = cks_tmpdir_new("neox");
    snprintf(n->dir, sizeof n->dir, "%s/src", n->tmp);
    cks_fx_spec_default(&n->spec, n->dir);
    n->spec.layout = CKS_FX_FOLDER;
    n->spec.nckpt = 2;
    n->spec.bin = bin;
    n->spec.shards = bin ? 2 : 1;
    n->spec.model.family = "gpt_neox";
    n->spec.model.buffers = bin;
    n->spec.model.dtype = bin ? CKS_DT_BF16 : CKS_DT_F32;
    assert_int_equal(cks_fx_write(&n->spec), 0);
    assert_int_equal(cks_source_open(&n->src, n->dir, NULL), 0);
    for (int k = 0; k < 2; k++) {
        assert_int_equal(cks_ckpt_open(&n->ck[k], n->src, (size_t)k), 0);
        assert_int_equal(cks_weights_open(&n->w[k], n->ck[k]), 0);
    }
}

static void neox_close(neox *n)
{
    for (int k = 0; k < 2; k++) {
        cks_weights_free(n->w[k]);
        cks_ckpt_free(n->ck[k]);
    }
    cks_source_free(n->src);
    cks_tmpdir_remove(n->tmp);
}

static const cks_tensor *find(const cks_weights *w, const char *name)
{
    long i = cks_tensor_list_find(cks_weights_tensors(w), name);
    if (i < 0)
        fail_msg("no tensor %s", name);
    return &cks_weights_tensors(w)->items[i];
}

/* The q, k or v rows (part 0, 1, 2) of the fused values: per head h rows
 * [3hd + part·d, 3hd + part·d + d). */
static double *part_rows(const double *fused, int64_t heads, int64_t d, int64_t cols, int part)
{
    double *out = malloc((size_t)(heads * d * cols) * sizeof *out);
    for (int64_t h = 0; h < heads; h++)
        memcpy(out + h * d * cols, fused + (3 * h * d + part * d) * cols,
               (size_t)(d * cols) * sizeof *out);
    return out;
}

static void check_views(neox *n)
{
    const cks_fx_model *m = &n->spec.model;
    const int64_t H = m->hidden, d = H / m->heads;
    const char *base = "gpt_neox.layers.1.attention.query_key_value";
    double *fused[2], *bias = malloc((size_t)(3 * H) * sizeof *bias);
    char name[256];
    for (int k = 0; k < 2; k++) {
        snprintf(name, sizeof name, "%s.weight", base);
        fused[k] = malloc((size_t)(3 * H * H) * sizeof *fused[k]);
        cks_fx_tensor_values(&n->spec, name, 3 * H * H, k, fused[k]);
    }
    snprintf(name, sizeof name, "%s.bias", base);
    cks_fx_tensor_values(&n->spec, name, 3 * H, 0, bias);
    /* the fused tensor is gone; its views are there with their kinds and shapes */
    snprintf(name, sizeof name, "%s.weight", base);
    assert_true(cks_tensor_list_find(cks_weights_tensors(n->w[0]), name) < 0);
    for (int part = 0; part < 3; part++) {
        snprintf(name, sizeof name, "%s.weight:%c", base, "qkv"[part]);
        const cks_tensor *t = find(n->w[0], name), *t1 = find(n->w[1], name);
        assert_int_equal(t->kind, CKS_KIND_Q + part);
        assert_int_equal(t->layer, 1);
        assert_true(t->ndim == 2 && t->shape[0] == H && t->shape[1] == H);
        assert_false(cks_tensor_is_contiguous(t));
        assert_int_equal(cks_tensor_nseg(t), m->heads);
        /* its elements, through the gathered copy, are the fused rows of that part */
        double *want = part_rows(fused[0], m->heads, d, H, part);
        double *want1 = part_rows(fused[1], m->heads, d, H, part);
        cks_tensor g;
        void *own;
        assert_int_equal(cks_tensor_gather(t, &g, &own), 0);
        assert_true(cks_tensor_is_contiguous(&g));
        float *x = malloc((size_t)t->numel * sizeof *x);
        cks_widen_f32(g.dtype, g.data, x, (size_t)g.numel);
        double ss = 0, dd = 0, rr = 0;
        for (int64_t i = 0; i < t->numel; i++) {
            assert_true(x[i] == (float)want[i]);
            ss += want[i] * want[i];
            dd += (want1[i] - want[i]) * (want1[i] - want[i]);
            rr += want[i] * want[i];
        }
        /* norms and drift of the view: against double sums over the fused rows, and
           bit-equal to those of the contiguous copy */
        cks_norms nv, nc;
        assert_int_equal(cks_norms_compute(t, 2, &nv), 0);
        assert_int_equal(cks_norms_compute(&g, 2, &nc), 0);
        assert_close(nv.fro, sqrt(ss), 1e-12, 0);
        assert_true(nv.fro == nc.fro && nv.mean == nc.mean && nv.absmax == nc.absmax);
        cks_drift dr;
        assert_int_equal(cks_drift_compute(t1, 100, t, 0, 2, &dr), 0);
        assert_close(dr.rel_fro, sqrt(dd) / sqrt(rr), 1e-9, 0);
        cks_spectral sv, sc;
        assert_int_equal(cks_spectral_compute(t, 1, 0, NULL, &sv), 0);
        assert_int_equal(cks_spectral_compute(&g, 1, 0, NULL, &sc), 0);
        assert_true(sv.sigma_max == sc.sigma_max && sv.stable_rank == sc.stable_rank);
        assert_close(sv.log_norm, log10(ss), 1e-9, 0);
        free(own);
        free(x);
        free(want);
        free(want1);
        /* the bias's views */
        snprintf(name, sizeof name, "%s.bias:%c", base, "qkv"[part]);
        t = find(n->w[0], name);
        assert_int_equal(t->kind, cks_kind_bias((cks_kind)(CKS_KIND_Q + part)));
        assert_true(t->ndim == 1 && t->shape[0] == H);
        for (int64_t h = 0; h < m->heads; h++) {
            size_t cnt;
            const float *seg = cks_tensor_seg(t, h, &cnt);
            assert_int_equal(cnt, d);
            for (int64_t i = 0; i < d; i++)
                assert_true(seg[i] == (float)bias[3 * h * d + part * d + i]);
        }
    }
    free(bias);
    free(fused[0]);
    free(fused[1]);
}

static void test_families__fused_qkv_as_row_block_views(void **state)
{
    neox n;
    neox_open(&n, 0);
    check_views(&n);
    assert_int_equal(cks_weights_buffers(n.w[0])->count, 0);
    assert_string_equal(cks_weights_family(n.w[0])->model_type, "gpt_neox");
    neox_close(&n);
}

/* Older Pythia files: .bin shards with the causal mask, its fill value and the rotary
 * table per layer; they are not weights and are kept apart. */
static void test_families__pythia_bin_with_buffers(void **state)
{
    neox n;
    neox_open(&n, 1);
    const cks_tensor_list *b = cks_weights_buffers(n.w[0]), *t = cks_weights_tensors(n.w[0]);
    assert_int_equal(b->count, 3 * (size_t)n.spec.model.layers);
    for (size_t i = 0; i < b->count; i++)
        assert_int_equal(b->items[i].kind, CKS_KIND_OTHER);
    assert_true(cks_tensor_list_find(b, "gpt_neox.layers.0.attention.bias") >= 0);
    for (size_t i = 0; i < t->count; i++)
        assert_true(strstr(t->items[i].name, "masked_bias") == NULL &&
                    strstr(t->items[i].name, "inv_freq") == NULL);
    neox_close(&n);
}

static void rewrite_config(neox *n, const char *key, const char *value)
{
    char p[4300], buf[8192];
    snprintf(p, sizeof p, "%s/ckpt_000/config.json", n->dir);
    FILE *f = fopen(p, "r");
    assert_non_null(f);
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[len] = '\0';
    json_t *j = json_loads(buf, 0, NULL);
    assert_non_null(j);
    if (value)
        json_object_set_new(j, key, json_loads(value, JSON_DECODE_ANY, NULL));
    else
        json_object_del(j, key);
    assert_int_equal(json_dump_file(j, p, 0), 0);
    json_decref(j);
}

static void test_families__fused_qkv_that_does_not_split(void **state)
{
    neox n;
    cks_weights *w;
    cks_ckpt *c;
    neox_open(&n, 0);
    static const struct {
        const char *key, *value, *needle;
    } bad[] = {
        {"num_attention_heads", "5", "not num_attention_heads (5) x 3 x head size"},
        {"hidden_size", "32", "hidden_size 32"},
        {"num_attention_heads", NULL, "no num_attention_heads"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        neox_close(&n);
        neox_open(&n, 0);
        rewrite_config(&n, bad[i].key, bad[i].value);
        assert_int_equal(cks_ckpt_open(&c, n.src, 0), 0);
        cks_error_clear();
        int err = cks_weights_open(&w, c);
        if (err != CKS_EFORMAT || !strstr(cks_error_last(), bad[i].needle) ||
            !strstr(cks_error_last(), "@ckpt_000") ||
            !strstr(cks_error_last(), "attention.query_key_value"))
            fail_msg("%s=%s: %d '%s'", bad[i].key, bad[i].value, err, cks_error_last());
        cks_ckpt_free(c);
    }
    /* without a family (model_type unknown) nothing is split: LLaMA's names, kind other */
    rewrite_config(&n, "model_type", "\"pythia-ish\"");
    assert_int_equal(cks_ckpt_open(&c, n.src, 0), 0);
    assert_int_equal(cks_weights_open(&w, c), 0);
    assert_null(cks_weights_family(w));
    const cks_tensor *t = find(w, "gpt_neox.layers.0.attention.query_key_value.weight");
    assert_int_equal(t->kind, CKS_KIND_OTHER);
    assert_true(cks_tensor_is_contiguous(t));
    cks_weights_free(w);
    cks_ckpt_free(c);
    neox_close(&n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_families__names_to_layer_and_kind),
        cmocka_unit_test(test_families__tensor_names_round_trip),
        cmocka_unit_test(test_families__fused_qkv_as_row_block_views),
        cmocka_unit_test(test_families__pythia_bin_with_buffers),
        cmocka_unit_test(test_families__fused_qkv_that_does_not_split),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
