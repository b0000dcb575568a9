/* Unit tests of the loaders' parsers and tables: dtype conversions, tensor names,
 * config.json validation, Git LFS pointers, safetensors headers, shard index json, paths.
 * Expected values are analytic (IEEE-754 bit patterns, hand-made inputs). */
#include "testutil.h"

#include "config.h"
#include "dtype.h"
#include "error.h"
#include "fixture.h"
#include "grow.h"
#include "lfs.h"
#include "map.h"
#include "path.h"
#include "safetensors.h"
#include "shard_index.h"
#include "tensor.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- dtype ---- */

static void test_dtype__f16_known_values(void **state)
{
    assert_true(cks_f16_to_f32(0x3c00) == 1.0f);
    assert_true(cks_f16_to_f32(0xc000) == -2.0f);
    assert_true(cks_f16_to_f32(0x7bff) == 65504.0f);
    assert_true(cks_f16_to_f32(0x0001) == ldexpf(1.0f, -24)); /* smallest subnormal */
    assert_true(cks_f16_to_f32(0x03ff) == ldexpf(1023.0f, -24));
    assert_true(isinf(cks_f16_to_f32(0x7c00)) && cks_f16_to_f32(0x7c00) > 0);
    assert_true(isnan(cks_f16_to_f32(0x7e00)));
    assert_true(signbit(cks_f16_to_f32(0x8000)) && cks_f16_to_f32(0x8000) == 0.0f);
}

static void test_dtype__f16_round_trip_every_value(void **state)
{
    /* every finite half converts to f32 and back to the same bits */
    for (uint32_t h = 0; h < 65536; h++) {
        float f = cks_f16_to_f32((uint16_t)h);
        if (isnan(f))
            continue;
        assert_int_equal(cks_f32_to_f16(f), h);
    }
    /* ties round to even: 1 + 2^-11 is halfway between 1 and 1+2^-10 */
    assert_int_equal(cks_f32_to_f16(1.0f + ldexpf(1.0f, -11)), 0x3c00);
    assert_int_equal(cks_f32_to_f16(1.0f + 3 * ldexpf(1.0f, -11)), 0x3c02);
    assert_int_equal(cks_f32_to_f16(65520.0f), 0x7c00); /* overflow to inf */
}

static void test_dtype__bf16_rounding(void **state)
{
    assert_int_equal(cks_f32_to_bf16(1.0f), 0x3f80);
    /* 1 + 2^-8 is halfway between bf16 1 and 1 + 2^-7: ties to even (1) */
    assert_int_equal(cks_f32_to_bf16(1.0f + ldexpf(1.0f, -8)), 0x3f80);
    assert_int_equal(cks_f32_to_bf16(1.0f + 3 * ldexpf(1.0f, -8)), 0x3f82);
    assert_true(isnan(cks_bf16_to_f32(cks_f32_to_bf16(NAN))));
    assert_true(cks_bf16_to_f32(0xbf80) == -1.0f);
}

static void test_dtype__widen_all_float_types(void **state)
{
    const float want[5] = {0.5f, -1.25f, 3.0f, 0.0f, -0.0078125f};
    uint16_t bf[5], hf[5];
    double d[5], got64[5];
    float got[5];
    for (int i = 0; i < 5; i++) {
        bf[i] = cks_f32_to_bf16(want[i]);
        hf[i] = cks_f32_to_f16(want[i]);
        d[i] = want[i];
    }
    cks_widen_f32(CKS_DT_BF16, bf, got, 5);
    assert_memory_equal(got, want, sizeof want);
    cks_widen_f32(CKS_DT_F16, hf, got, 5);
    assert_memory_equal(got, want, sizeof want);
    cks_widen_f32(CKS_DT_F64, d, got, 5);
    assert_memory_equal(got, want, sizeof want);
    cks_widen_f64(CKS_DT_BF16, bf, got64, 5);
    for (int i = 0; i < 5; i++)
        assert_true(got64[i] == want[i]);
    cks_dtype dt;
    assert_int_equal(cks_dtype_from_name("BF16", &dt), 0);
    assert_int_equal(dt, CKS_DT_BF16);
    assert_int_equal(cks_dtype_from_name("Q4_K", &dt), CKS_ENOTFOUND);
    assert_false(cks_dtype_is_float(CKS_DT_I64));
}

/* Every one of the 65536 F16 and BF16 bit patterns widened by the vector path (16 at a
 * time, from an odd address so loads are unaligned) against the IEEE 754 definition written
 * here: F16 (-1)^s 2^(e-15) (1 + m/1024), subnormal (-1)^s m 2^-24, exponent 31 Inf (m = 0)
 * or NaN; BF16 the high half of an f32. */
static void test_dtype__widen_every_half_pattern(void **state)
{
    enum { N = 65536 };
    unsigned char *raw = malloc(2 * N + 1);
    float *got = malloc(N * sizeof *got);
    for (uint32_t i = 0; i < N; i++) {
        uint16_t h = (uint16_t)i;
        memcpy(raw + 1 + 2 * i, &h, 2);
    }
    cks_widen_f32(CKS_DT_F16, raw + 1, got, N);
    for (uint32_t i = 0; i < N; i++) {
        int s = i >> 15, e = (i >> 10) & 31, m = i & 1023;
        if (e == 31) {
            assert_true(m ? isnan(got[i]) : isinf(got[i]));
            assert_int_equal(!!signbit(got[i]), s);
            continue;
        }
        double v = e ? ldexp(1.0 + m / 1024.0, e - 15) : ldexp((double)m, -24);
        float want = (float)(s ? -v : v);
        assert_memory_equal(&got[i], &want, 4); /* exact, and -0 stays -0 */
    }
    cks_widen_f32(CKS_DT_BF16, raw + 1, got, N);
    for (uint32_t i = 0; i < N; i++) {
        uint32_t bits = i << 16, g;
        memcpy(&g, &got[i], 4);
        assert_int_equal(g, bits);
    }
    free(raw);
    free(got);
}

/* ---- tensor names ---- */

/* ---- growing arrays ---- */

static void test_grow__doubles_and_keeps_contents(void **state)
{
    (void)state;
    int *a = NULL;
    size_t cap = 0, n;
    for (n = 0; n < 1000; n++) {
        assert_int_equal(cks_grow(&a, &cap, n, sizeof *a, 8), 0);
        assert_true(cap > n);
        a[n] = (int)n;
    }
    assert_int_equal(cap, 1024); /* 8, 16, ..., 1024 */
    for (n = 0; n < 1000; n++)
        assert_int_equal(a[n], (int)n);
    /* a capacity whose double does not fit in size_t is refused, leaving the array alone */
    size_t huge = SIZE_MAX / 2;
    int *keep = a;
    assert_int_equal(cks_grow(&a, &huge, huge, sizeof *a, 8), CKS_ENOMEM);
    assert_ptr_equal(a, keep);
    assert_int_equal(huge, SIZE_MAX / 2);
    cks_error_clear();
    free(a);
}

static void test_tensor__classify_llama_names(void **state)
{
    static const struct {
        const char *name;
        int layer;
        cks_kind kind;
    } cases[] = {
        {"model.embed_tokens.weight", -1, CKS_KIND_EMBED},
        {"model.layers.0.self_attn.q_proj.weight", 0, CKS_KIND_Q},
        {"model.layers.79.self_attn.k_proj.weight", 79, CKS_KIND_K},
        {"model.layers.12.self_attn.v_proj.weight", 12, CKS_KIND_V},
        {"model.layers.3.self_attn.o_proj.weight", 3, CKS_KIND_O},
        {"model.layers.3.mlp.gate_proj.weight", 3, CKS_KIND_GATE},
        {"model.layers.3.mlp.up_proj.weight", 3, CKS_KIND_UP},
        {"model.layers.3.mlp.down_proj.weight", 3, CKS_KIND_DOWN},
        {"model.layers.5.input_layernorm.weight", 5, CKS_KIND_ATTN_NORM},
        {"model.layers.5.post_attention_layernorm.weight", 5, CKS_KIND_MLP_NORM},
        {"model.norm.weight", -1, CKS_KIND_FINAL_NORM},
        {"lm_head.weight", -1, CKS_KIND_LM_HEAD},
        {"model.layers.5.self_attn.rotary_emb.inv_freq", 5, CKS_KIND_OTHER},
        {"model.layers.x.mlp.up_proj.weight", -1, CKS_KIND_OTHER},
        {"something.else", -1, CKS_KIND_OTHER},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int layer;
        cks_kind kind;
        cks_tensor_classify(cases[i].name, &layer, &kind);
        assert_int_equal(layer, cases[i].layer);
        assert_int_equal(kind, cases[i].kind);
    }
    cks_kind k;
    assert_int_equal(cks_kind_from_name("gate", &k), 0);
    assert_int_equal(k, CKS_KIND_GATE);
}

static void test_tensor__check_extent_overflow(void **state)
{
    int64_t n, big[2] = {INT64_C(1) << 40, INT64_C(1) << 40}, ok[2] = {3, 5};
    assert_int_equal(cks_tensor_check_extent(CKS_DT_F32, 2, ok, 60, &n), 0);
    assert_int_equal(n, 15);
    assert_int_equal(cks_tensor_check_extent(CKS_DT_F32, 2, ok, 64, &n), CKS_EFORMAT);
    assert_int_equal(cks_tensor_check_extent(CKS_DT_F32, 2, big, 0, &n), CKS_EFORMAT);
}

/* ---- config.json ---- */

static const char good_config[] =
    "{\"hidden_size\": 64, \"intermediate_size\": 160, \"num_hidden_layers\": 2,"
    " \"num_attention_heads\": 4, \"num_key_value_heads\": 2, \"vocab_size\": 256,"
    " \"rms_norm_eps\": 1e-5, \"rope_theta\": 500000.0, \"max_position_embeddings\": 128,"
    " \"tie_word_embeddings\": false, \"torch_dtype\": \"bfloat16\", \"bos_token_id\": 1,"
    " \"eos_token_id\": [2, 3]}";

static int parse_cfg(const char *text, cks_config *c)
{
    return cks_config_parse(text, strlen(text), "test/config.json", c);
}

static void test_config__valid(void **state)
{
    cks_config c;
    assert_int_equal(parse_cfg(good_config, &c), 0);
    assert_int_equal(c.hidden_size, 64);
    assert_int_equal(c.num_key_value_heads, 2);
    assert_int_equal(c.head_dim, 16);
    assert_true(c.rope_theta == 500000.0);
    assert_int_equal(c.bos_token_id, 1);
    assert_int_equal(c.eos_token_id, -1); /* a list: not a single id */
    assert_string_equal(c.torch_dtype, "bfloat16");
    /* defaults: kv heads = heads, theta 10000 */
    assert_int_equal(parse_cfg("{\"hidden_size\": 8, \"intermediate_size\": 16, "
                               "\"num_hidden_layers\": 1, \"num_attention_heads\": 2, "
                               "\"vocab_size\": 10}",
                               &c),
                     0);
    assert_int_equal(c.num_key_value_heads, 2);
    assert_true(c.rope_theta == 10000.0);
}

/* parse, then the forward pass's checks: what `ppl` runs */
static void expect_config_error(const char *text, int code, const char *needle)
{
    cks_config c;
    cks_error_clear();
    int err = parse_cfg(text, &c);
    if (err == 0)
        err = cks_config_check_forward(&c, "test/config.json");
    if (err != code || !strstr(cks_error_last(), needle)) {
        print_error("config %s\n -> %d '%s'\n", text, err, cks_error_last());
        fail();
    }
    assert_non_null(strstr(cks_error_last(), "test/config.json"));
}

#define LLAMA "\"model_type\": \"llama\", "

static void test_config__rejects_bad_values(void **state)
{
    expect_config_error("{", CKS_EFORMAT, "not valid JSON");
    expect_config_error("[1, 2]", CKS_EFORMAT, "not an object");
    expect_config_error("{" LLAMA "\"hidden_size\": 64}", CKS_ENOTFOUND, "intermediate_size");
    expect_config_error("{\"hidden_size\": 64, \"intermediate_size\": 1, \"num_hidden_layers\": 1,"
                        " \"num_attention_heads\": 0, \"vocab_size\": 5}",
                        CKS_EFORMAT, "num_attention_heads");
    expect_config_error("{\"hidden_size\": 64, \"intermediate_size\": 1, \"num_hidden_layers\": 1,"
                        " \"num_attention_heads\": -4, \"vocab_size\": 5}",
                        CKS_EFORMAT, "num_attention_heads");
    expect_config_error("{" LLAMA "\"hidden_size\": 64, \"intermediate_size\": 1, "
                        "\"num_hidden_layers\": 1, \"num_attention_heads\": 5, \"vocab_size\": 5}",
                        CKS_EFORMAT, "does not divide hidden_size");
    expect_config_error("{" LLAMA "\"hidden_size\": 64, \"intermediate_size\": 1, "
                        "\"num_hidden_layers\": 1, \"num_attention_heads\": 4, "
                        "\"num_key_value_heads\": 3, \"vocab_size\": 5}",
                        CKS_EFORMAT, "num_key_value_heads");
    expect_config_error("{\"hidden_size\": 64, \"intermediate_size\": 1, \"num_hidden_layers\": 1,"
                        " \"num_attention_heads\": 4, \"vocab_size\": 1e30}",
                        CKS_EFORMAT, "vocab_size");
    expect_config_error("{\"hidden_size\": 64, \"intermediate_size\": 1, \"num_hidden_layers\": 1,"
                        " \"num_attention_heads\": 4, \"vocab_size\": \"many\"}",
                        CKS_EFORMAT, "vocab_size");
    expect_config_error("{\"hidden_size\": 99999999999, \"intermediate_size\": 1, "
                        "\"num_hidden_layers\": 1, \"num_attention_heads\": 4, \"vocab_size\": 5}",
                        CKS_EFORMAT, "hidden_size");
    /* every size at its limit: the products would overflow the buffers sized from them */
    expect_config_error("{\"hidden_size\": 131072, \"intermediate_size\": 1048576, "
                        "\"num_hidden_layers\": 4096, \"num_attention_heads\": 4096, "
                        "\"vocab_size\": 4194304}",
                        CKS_ELIMIT, "too large");
    expect_config_error("{\"hidden_size\": 64, \"intermediate_size\": 1, \"num_hidden_layers\": 1,"
                        " \"num_attention_heads\": 4, \"vocab_size\": 5, \"rms_norm_eps\": -1}",
                        CKS_EFORMAT, "rms_norm_eps");
    /* what only the forward pass needs does not stop the parse (inspect, diff, scan) */
    cks_config c;
    assert_int_equal(parse_cfg("{\"model_type\": \"bert\", \"hidden_size\": 64}", &c), 0);
    assert_null(c.family);
    assert_int_equal(c.intermediate_size, 0);
    assert_int_equal(parse_cfg("{" LLAMA "\"hidden_size\": 64, \"num_attention_heads\": 4, "
                               "\"head_dim\": 5}",
                               &c),
                     0);
    assert_int_equal(c.head_dim, 5);
}

/* ---- Git LFS pointers ---- */

#define OID "4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393"

static int parse_ptr(const char *text, cks_lfs_pointer *p)
{
    cks_error_clear();
    return cks_lfs_pointer_parse(text, strlen(text), "ckpt_001:model.safetensors", p);
}

static void test_lfs__valid_pointer(void **state)
{
    cks_lfs_pointer p;
    assert_int_equal(parse_ptr("version https://git-lfs.github.com/spec/v1\noid sha256:" OID
                               "\nsize 12345\n",
                               &p),
                     0);
    assert_string_equal(p.oid, OID);
    assert_int_equal(p.size, 12345);
    char path[512];
    assert_int_equal(cks_lfs_object_path("/r/.git/lfs", &p, path, sizeof path), 0);
    assert_string_equal(path, "/r/.git/lfs/objects/4d/7a/" OID);
    assert_false(cks_lfs_is_pointer("PK\3\4", 4));
}

static void test_lfs__rejects_bad_pointers(void **state)
{
    static const char *bad[] = {
        "version https://git-lfs.github.com/spec/v1\noid sha256:../../etc/passwd\nsize 1\n",
        "version https://git-lfs.github.com/spec/v1\noid sha256:" OID "0\nsize 1\n",
        "version https://git-lfs.github.com/spec/v1\noid sha256:4D7A214614AB2935C943F9E0FF69D22E"
        "ADBB8F32B1258DAAA5E2CA24D17E2393\nsize 1\n",
        "version https://git-lfs.github.com/spec/v1\noid md5:" OID "\nsize 1\n",
        "version https://git-lfs.github.com/spec/v1\noid sha256:" OID "\n",
        "version https://git-lfs.github.com/spec/v1\nsize 5\n",
        "version https://git-lfs.github.com/spec/v1\noid sha256:" OID "\nsize -5\n",
        "version https://git-lfs.github.com/spec/v1\noid sha256:" OID "\nsize 99999999999999999\n",
        "version https://git-lfs.github.com/spec/v1\noid sha256:" OID "\nsize 12",
        "version https://git-lfs.github.com/spec/v1\noid sha256:" OID "\n\nsize 12\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cks_lfs_pointer p;
        int err = parse_ptr(bad[i], &p);
        if (err >= 0) {
            print_error("accepted: %s\n", bad[i]);
            fail();
        }
        assert_non_null(strstr(cks_error_last(), "ckpt_001:model.safetensors"));
    }
}

/* ---- safetensors ---- */

static cks_map *adopt(unsigned char *buf, size_t n)
{
    cks_map *m;
    assert_int_equal(cks_map_adopt(&m, buf, n, free, buf, "w.safetensors"), 0);
    return m;
}

static unsigned char *raw_file(const char *header, const void *data, size_t dlen, size_t *n)
{
    size_t hl = strlen(header);
    unsigned char *b = malloc(8 + hl + dlen);
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)((uint64_t)hl >> (8 * i));
    memcpy(b + 8, header, hl);
    if (dlen)
        memcpy(b + 8 + hl, data, dlen);
    *n = 8 + hl + dlen;
    return b;
}

static void test_safetensors__parses_views(void **state)
{
    float a[6] = {1, 2, 3, 4, 5, 6};
    uint16_t b[4] = {0x3f80, 0x4000, 0x4040, 0x4080};
    cks_fx_st_tensor ts[2] = {{"model.layers.0.mlp.up_proj.weight", CKS_DT_F32, 2, {2, 3}, a, 24},
                              {"model.norm.weight", CKS_DT_BF16, 1, {4}, b, 8}};
    size_t n;
    unsigned char *buf = cks_fx_safetensors(ts, 2, &n);
    cks_map *m = adopt(buf, n);
    cks_tensor_list l;
    cks_tensor_list_init(&l);
    assert_int_equal(cks_safetensors_parse(m, 7, &l), 0);
    assert_int_equal(l.count, 2);
    long i = cks_tensor_list_find(&l, "model.layers.0.mlp.up_proj.weight");
    assert_true(i >= 0);
    assert_int_equal(l.items[i].ndim, 2);
    assert_int_equal(l.items[i].numel, 6);
    assert_int_equal(l.items[i].layer, 0);
    assert_int_equal(l.items[i].kind, CKS_KIND_UP);
    assert_int_equal(l.items[i].file, 7);
    assert_memory_equal(l.items[i].data, a, sizeof a);
    i = cks_tensor_list_find(&l, "model.norm.weight");
    float w[4];
    cks_widen_f32(l.items[i].dtype, l.items[i].data, w, 4);
    assert_true(w[0] == 1.0f && w[3] == 4.0f);
    cks_tensor_list_release(&l);
    cks_map_free(m);
}

static void expect_st_error(unsigned char *buf, size_t n, int code, const char *needle)
{
    cks_map *m = adopt(buf, n);
    cks_tensor_list l;
    cks_tensor_list_init(&l);
    cks_error_clear();
    int err = cks_safetensors_parse(m, 0, &l);
    if (err != code || !strstr(cks_error_last(), needle) ||
        !strstr(cks_error_last(), "w.safetensors")) {
        print_error("got %d '%s', want %d '%s'\n", err, cks_error_last(), code, needle);
        fail();
    }
    assert_int_equal(l.count, 0); /* nothing appended on error */
    cks_tensor_list_release(&l);
    cks_map_free(m);
}

static void expect_header_error(const char *header, size_t dlen, int code, const char *needle)
{
    unsigned char data[64] = {0};
    size_t n;
    unsigned char *buf = raw_file(header, data, dlen, &n);
    expect_st_error(buf, n, code, needle);
}

static void test_safetensors__rejects_bad_files(void **state)
{
    size_t n;
    unsigned char *b = malloc(5);
    memset(b, 0, 5);
    expect_st_error(b, 5, CKS_EFORMAT, "too short");
    /* header length past the end */
    b = raw_file("{}", NULL, 0, &n);
    b[0] = 200;
    expect_st_error(b, n, CKS_EFORMAT, "past the end");
    /* absurd header length */
    b = raw_file("{}", NULL, 0, &n);
    b[6] = 1;
    expect_st_error(b, n, CKS_ELIMIT, "exceeds");
    expect_header_error("not json at all", 0, CKS_EFORMAT, "not valid JSON");
    expect_header_error("[1,2,3]", 0, CKS_EFORMAT, "not an object");
    expect_header_error("{\"a\": {\"dtype\": \"Q4\", \"shape\": [2], \"data_offsets\": [0, 8]}}", 8,
                        CKS_EFORMAT, "unknown dtype");
    expect_header_error("{\"a\": {\"dtype\": \"F32\", \"shape\": [3], \"data_offsets\": [0, 8]}}",
                        8, CKS_EFORMAT, "do not match");
    expect_header_error("{\"a\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]}}",
                        8, CKS_EFORMAT, "past the data");
    expect_header_error("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
                        " \"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [4, 12]}}",
                        16, CKS_EFORMAT, "overlap");
    expect_header_error("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
                        " \"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [8, 16]}}",
                        16, CKS_EFORMAT, "duplicate");
    expect_header_error("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [8, 0]}}",
                        8, CKS_EFORMAT, "bad data_offsets");
    expect_header_error("{\"a\": {\"dtype\": \"F32\", \"shape\": [-2], \"data_offsets\": [0, 8]}}",
                        8, CKS_EFORMAT, "bad shape");
    expect_header_error("{\"a\": {\"dtype\": \"F32\", \"shape\": [1,1,1,1,1,1,1,1,2], "
                        "\"data_offsets\": [0, 8]}}",
                        8, CKS_ELIMIT, "dimensions");
    expect_header_error("{\"a\": {\"dtype\": \"F32\", \"shape\": [4611686018427387904, 4], "
                        "\"data_offsets\": [0, 8]}}",
                        8, CKS_EFORMAT, "do not match");
    expect_header_error("{\"a\": 5}", 0, CKS_EFORMAT, "lacks dtype");
}

/* ---- shard index ---- */

static void test_shard_index__valid_and_sorted(void **state)
{
    const char *text = "{\"metadata\": {\"total_size\": 10}, \"weight_map\": {"
                       "\"b\": \"model-00002-of-00002.safetensors\","
                       "\"a\": \"model-00001-of-00002.safetensors\","
                       "\"c\": \"model-00001-of-00002.safetensors\"}}";
    cks_shard_index ix;
    assert_int_equal(cks_shard_index_parse(text, strlen(text), "index.json", &ix), 0);
    assert_int_equal(ix.nfiles, 2);
    assert_string_equal(ix.files[0], "model-00001-of-00002.safetensors");
    assert_int_equal(ix.ntensors, 3);
    for (size_t i = 0; i < 3; i++) {
        if (strcmp(ix.tensors[i], "b") == 0)
            assert_int_equal(ix.file_of[i], 1);
        else
            assert_int_equal(ix.file_of[i], 0);
    }
    cks_shard_index_release(&ix);
}

static void test_shard_index__rejects_escaping_paths(void **state)
{
    static const char *bad[] = {
        "{\"weight_map\": {\"a\": \"../outside.safetensors\"}}",
        "{\"weight_map\": {\"a\": \"/etc/passwd\"}}",
        "{\"weight_map\": {\"a\": \"sub/../../x\"}}",
        "{\"weight_map\": {\"a\": 5}}",
        "{\"weight_map\": [\"a\"]}",
        "{\"metadata\": {}}",
        "{\"weight_map\": {\"a\": \"\"}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cks_shard_index ix;
        cks_error_clear();
        assert_int_equal(cks_shard_index_parse(bad[i], strlen(bad[i]), "index.json", &ix),
                         CKS_EFORMAT);
        assert_non_null(strstr(cks_error_last(), "index.json"));
    }
}

static void test_path__checks(void **state)
{
    assert_int_equal(cks_path_check_relative("model.safetensors"), 0);
    assert_int_equal(cks_path_check_relative("sub/model.safetensors"), 0);
    assert_int_not_equal(cks_path_check_relative("../x"), 0);
    assert_int_not_equal(cks_path_check_relative("a//b"), 0);
    assert_int_not_equal(cks_path_check_relative("./a"), 0);
    assert_int_not_equal(cks_path_check_relative("a\\..\\b"), 0);
    assert_int_not_equal(cks_path_check_relative("a\nb"), 0);
    assert_true(cks_path_is_inside("/a/b", "/a/b/c"));
    assert_false(cks_path_is_inside("/a/b", "/a/bc"));
    assert_false(cks_path_is_inside("/a/b", "/etc/passwd"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dtype__f16_known_values),
        cmocka_unit_test(test_dtype__f16_round_trip_every_value),
        cmocka_unit_test(test_dtype__bf16_rounding),
        cmocka_unit_test(test_dtype__widen_all_float_types),
        cmocka_unit_test(test_dtype__widen_every_half_pattern),
        cmocka_unit_test(test_grow__doubles_and_keeps_contents),
        cmocka_unit_test(test_tensor__classify_llama_names),
        cmocka_unit_test(test_tensor__check_extent_overflow),
        cmocka_unit_test(test_config__valid),
        cmocka_unit_test(test_config__rejects_bad_values),
        cmocka_unit_test(test_lfs__valid_pointer),
        cmocka_unit_test(test_lfs__rejects_bad_pointers),
        cmocka_unit_test(test_safetensors__parses_views),
        cmocka_unit_test(test_safetensors__rejects_bad_files),
        cmocka_unit_test(test_shard_index__valid_and_sorted),
        cmocka_unit_test(test_shard_index__rejects_escaping_paths),
        cmocka_unit_test(test_path__checks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
