/* cks-fuzz-corpus OUTDIR SOURCE_DIR: writes the seed corpora of the fuzz targets into
 * OUTDIR/<target>/, made by our fixture code (safetensors, configs, LFS pointers, pickles
 * packed into archives, lm-eval results, run files through the store) and from the
 * committed test data under SOURCE_DIR/tests/data (torch archives, tokenizer models).
 * Deterministic: the same tree gives the same files. Small on purpose: fuzzing speed falls
 * with input size. tools/fuzz.sh --seeds runs it. */
#include "error.h"
#include "fixture.h"
#include "map.h"
#include "store.h"
#include "torchfx.h"
#include "torchzip.h"

#include <errno.h>
#include <stdio.h>
#include <zlib.h>
#include <zstd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *outdir, *srcdir;

static void die(const char *what)
{
    fprintf(stderr, "cks-fuzz-corpus: %s\n", what);
    exit(1);
}

static void put(const char *target, const char *name, const void *prefix, size_t plen,
                const void *data, size_t len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", outdir, target);
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        die(path);
    snprintf(path, sizeof path, "%s/%s/%s", outdir, target, name);
    FILE *f = fopen(path, "wb");
    if (!f || (plen && fwrite(prefix, 1, plen, f) != plen) ||
        (len && fwrite(data, 1, len, f) != len) || fclose(f) != 0)
        die(path);
}

static void put_text(const char *target, const char *name, const char *text)
{
    put(target, name, NULL, 0, text, strlen(text));
}

static unsigned char *slurp(const char *rel, size_t *len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/data/%s", srcdir, rel);
    FILE *f = fopen(path, "rb");
    if (!f)
        die(path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(n ? (size_t)n : 1);
    if (!b || fread(b, 1, (size_t)n, f) != (size_t)n)
        die(path);
    fclose(f);
    *len = (size_t)n;
    return b;
}

/* ---- safetensors, shard index, config, LFS ---- */

static void safetensors(void)
{
    float a[6] = {1, -2, 3.5f, 0, 1e-3f, 7};
    uint16_t h[4] = {0x3c00, 0xc000, 0x7bff, 0x0001};
    double d[2] = {1.0 / 3, -1e300};
    int8_t q[3] = {-1, 0, 1};
    cks_fx_st_tensor t[] = {
        {"model.layers.0.self_attn.q_proj.weight", CKS_DT_F32, 2, {2, 3}, a, sizeof a},
        {"model.norm.weight", CKS_DT_BF16, 1, {4}, h, sizeof h},
        {"model.embed_tokens.weight", CKS_DT_F16, 2, {2, 2}, h, sizeof h},
        {"lm_head.weight", CKS_DT_F64, 1, {2}, d, sizeof d},
        {"scale", CKS_DT_F32, 0, {0}, a, 4},
        {"empty", CKS_DT_F32, 2, {0, 4}, NULL, 0},
    };
    size_t n;
    unsigned char *b = cks_fx_safetensors(t, 2, &n);
    put("safetensors", "two_tensors", NULL, 0, b, n);
    free(b);
    b = cks_fx_safetensors(t, 6, &n);
    put("safetensors", "dtypes_scalar_empty", NULL, 0, b, n);
    free(b);
    (void)q;
    /* a header with __metadata__ and padding, written by hand */
    static const char hdr[] = "{\"__metadata__\":{\"format\":\"pt\"},\"w\":{\"dtype\":\"I8\","
                              "\"shape\":[3],\"data_offsets\":[0,3]}}   ";
    unsigned char buf[256];
    uint64_t hl = sizeof hdr - 1;
    for (int i = 0; i < 8; i++)
        buf[i] = (unsigned char)(hl >> (8 * i));
    memcpy(buf + 8, hdr, hl);
    memcpy(buf + 8 + hl, q, 3);
    put("safetensors", "metadata_i8", NULL, 0, buf, 8 + hl + 3);
    size_t len;
    unsigned char *real = slurp("torch/llama_bf16.safetensors", &len);
    put("safetensors", "llama_bf16", NULL, 0, real, len);
    free(real);
}

static void shard_index(void)
{
    put_text("shard_index", "two_shards",
             "{\"metadata\": {\"total_size\": 96}, \"weight_map\": {"
             "\"model.embed_tokens.weight\": \"model-00001-of-00002.safetensors\", "
             "\"model.norm.weight\": \"model-00002-of-00002.safetensors\", "
             "\"lm_head.weight\": \"sub/model-00002-of-00002.safetensors\"}}");
    size_t len;
    unsigned char *b = slurp("torch/sharded/pytorch_model.bin.index.json", &len);
    put("shard_index", "pytorch_sharded", NULL, 0, b, len);
    free(b);
}

static void config(void)
{
    cks_fx_spec spec;
    cks_fx_spec_default(&spec, NULL);
    cks_fx_model m = spec.model;
    char *c = cks_fx_config_json(&m);
    put_text("config", "fixture", c);
    free(c);
    m.tied = 1;
    m.kv_heads = 4;
    c = cks_fx_config_json(&m);
    put_text("config", "fixture_tied_mha", c);
    free(c);
    /* one config of every family, as the fixture generator writes them */
    static const char *const families[] = {"mistral", "qwen2", "gpt_neox", "olmo", "olmo2"};
    for (size_t i = 0; i < sizeof families / sizeof families[0]; i++) {
        char name[64];
        m = spec.model;
        m.family = families[i];
        m.clip_qkv = 8.0;
        m.use_sliding_window = 1;
        c = cks_fx_config_json(&m);
        snprintf(name, sizeof name, "fixture_%s", families[i]);
        put_text("config", name, c);
        free(c);
    }
    size_t len;
    unsigned char *b = slurp("torch/config.json", &len);
    put("config", "torch_fixture", NULL, 0, b, len);
    free(b);
    put_text("config", "k2_like",
             "{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\", "
             "\"hidden_size\": 8192, \"intermediate_size\": 22016, \"num_hidden_layers\": 80, "
             "\"num_attention_heads\": 64, \"num_key_value_heads\": 64, \"head_dim\": 128, "
             "\"vocab_size\": 32032, \"rms_norm_eps\": 1e-06, \"rope_theta\": 10000.0, "
             "\"max_position_embeddings\": 8192, \"tie_word_embeddings\": false, "
             "\"torch_dtype\": \"float16\", \"bos_token_id\": 1, \"eos_token_id\": [2, 3]}");
}

static void lfs(void)
{
    char ptr[512], oid[65];
    cks_fx_lfs_pointer("hello", 5, ptr, sizeof ptr, oid);
    put_text("lfs", "pointer", ptr);
    char more[700];
    snprintf(more, sizeof more,
             "version https://hawser.github.com/spec/v1\next-0-foo sha256:%s\noid sha256:%s\n"
             "size 1099511627776\n",
             oid, oid);
    put_text("lfs", "hawser_ext", more);
}

/* ---- torch archives: raw (mode byte 0) and pickle-packed (mode byte 1) ---- */

static void torch_one(const char *rel, const char *name)
{
    size_t len;
    unsigned char *b = slurp(rel, &len);
    put("torchbin", name, "\0", 1, b, len);
    /* the same state dict as pickle + storage sizes, for the packed mode */
    cks_map *m;
    cks_torchzip z;
    if (cks_map_adopt(&m, b, len, NULL, NULL, rel) != 0 || cks_torchzip_open(m, &z) != 0) {
        cks_map_free(m);
        free(b);
        return; /* a hostile archive: raw mode only */
    }
    const cks_zip_entry *pkl = cks_torchzip_find(&z, "data.pkl");
    unsigned char head[1 + 1 + 64];
    size_t n = 0;
    for (; n < 32; n++) {
        char key[32];
        snprintf(key, sizeof key, "data/%zu", n);
        const cks_zip_entry *e = cks_torchzip_find(&z, key);
        if (!e || e->size > 0xFFFF)
            break;
        head[2 + 2 * n] = (unsigned char)e->size;
        head[3 + 2 * n] = (unsigned char)(e->size >> 8);
    }
    head[0] = 1;
    head[1] = (unsigned char)n;
    char pname[128];
    snprintf(pname, sizeof pname, "packed_%s", name);
    if (pkl)
        put("torchbin", pname, head, 2 + 2 * n, pkl->data, (size_t)pkl->size);
    cks_torchzip_release(&z);
    cks_map_free(m);
    free(b);
}

static void torchbin(void)
{
    static const char *const good[] = {"llama_f32_proto4", "tied_f32",      "views_f32",
                                       "v3_u16",           "noncontig_f32", "zip64_local"};
    static const char *const bad[] = {"memo_huge",     "build_list",     "os_system", "overlap",
                                      "too_many_dims", "truncated_tail", "bomb_count"};
    char rel[256];
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        snprintf(rel, sizeof rel, "torch/%s.bin", good[i]);
        torch_one(rel, good[i]);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(rel, sizeof rel, "torch/hostile/%s.bin", bad[i]);
        torch_one(rel, bad[i]);
    }
    /* a fixture-built pickle: two tensors sharing a storage at an offset (packed mode) */
    cks_fx_buf pk = {0};
    static const unsigned char proto[] = {0x80, 0x02};
    cks_fx_put(&pk, proto, 2);
    cks_fx_pk_odict(&pk);
    cks_fx_putc(&pk, '(');
    int64_t s1[2] = {2, 3}, st1[2] = {3, 1}, s2[1] = {4}, st2[1] = {1};
    cks_fx_pk_str(&pk, "model.layers.0.mlp.up_proj.weight");
    cks_fx_pk_tensor(&pk, "0", "FloatStorage", 10, 0, 2, s1, st1);
    cks_fx_pk_str(&pk, "model.norm.weight");
    cks_fx_pk_tensor(&pk, "0", "FloatStorage", 10, 6, 1, s2, st2);
    cks_fx_putc(&pk, 'u'); /* SETITEMS */
    cks_fx_putc(&pk, '.'); /* STOP */
    unsigned char head[4] = {1, 1, 40, 0};
    put("torchbin", "packed_fixture_shared_storage", head, 4, pk.p, pk.n);
    cks_fx_buf_free(&pk);
}

/* ---- tokenizers ---- */

static void tokenizers(void)
{
    static const char *const models[] = {"small.model", "uds.model", "nows.model",
                                         "small_unused.model"};
    static const char *const jsons[] = {"small.tokenizer.json", "nows.tokenizer.json",
                                        "small.metasplit.tokenizer.json"};
    char rel[256];
    size_t len;
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) {
        snprintf(rel, sizeof rel, "tok/%s", models[i]);
        unsigned char *b = slurp(rel, &len);
        put("spm", models[i], NULL, 0, b, len);
        free(b);
    }
    for (size_t i = 0; i < sizeof jsons / sizeof jsons[0]; i++) {
        snprintf(rel, sizeof rel, "tok/%s", jsons[i]);
        unsigned char *b = slurp(rel, &len);
        put("hf_tokenizer", jsons[i], NULL, 0, b, len);
        free(b);
    }
    static const char *const bpe[] = {"bytes_nfc.tokenizer.json", "tiny_qwen2.tokenizer.json"};
    for (size_t i = 0; i < sizeof bpe / sizeof bpe[0]; i++) {
        snprintf(rel, sizeof rel, "bpe/%s", bpe[i]);
        unsigned char *b = slurp(rel, &len);
        put("hf_tokenizer", bpe[i], NULL, 0, b, len);
        free(b);
    }
    /* a GPT-NeoX-like file: NFC, ByteLevel with its own pattern, space-run added tokens */
    put_text("hf_tokenizer", "neox_like",
             "{\"added_tokens\": [{\"id\": 6, \"content\": \"<|endoftext|>\", \"special\": "
             "true, \"normalized\": false}, {\"id\": 7, \"content\": \"  \", \"normalized\": "
             "true}, {\"id\": 8, \"content\": \"   \", \"normalized\": true}], \"normalizer\": "
             "{\"type\": \"NFC\"}, \"pre_tokenizer\": {\"type\": \"ByteLevel\", "
             "\"add_prefix_space\": false, \"trim_offsets\": true}, \"model\": {\"type\": "
             "\"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"\\u0120\": 2, \"\\u0120a\": 3, "
             "\"ab\": 4, \"\\u00c3\": 5}, \"merges\": [\"\\u0120 a\", [\"a\", \"b\"]]}}");
    put_text("tokenize", "byte_level",
             "Hello   world! It's 12345 caf\xc3\xa9 e\xcc\x81 \xf0\x9f\x91\xa9\xe2\x80\x8d\xf0\x9f"
             "\x91\xa7 \xc2\x85 \xef\xbb\xbf <|endoftext|> <|im_start|>");
    put_text("tokenize", "ascii", "Hello world, this is a test.");
    put_text("tokenize", "spaces", "  leading\tand  double  spaces\n\nand newlines  ");
    put_text("tokenize", "unicode",
             "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80 \xe2\x96\x81x <s>a</s>");
    put("tokenize", "invalid_utf8", NULL, 0, "ab\xc0\xafz\xed\xa0\x80\xf4\x90\x80\x80", 12);
}

/* ---- lm-eval results ---- */

static void lmeval(void)
{
    put_text("lmeval", "v03",
             "{\"results\": {\"arc_challenge\": {\"acc\": 0.25, \"acc_stderr\": 0.0126, "
             "\"acc_norm\": 0.28, \"acc_norm_stderr\": 0.013}, \"lambada_openai\": {\"ppl\": "
             "3.9, \"ppl_stderr\": 0.08, \"acc\": 0.7, \"acc_stderr\": 0.006}}, \"versions\": "
             "{\"arc_challenge\": 0, \"lambada_openai\": 0}, \"config\": {\"model\": \"gpt2\", "
             "\"model_args\": \"pretrained=EleutherAI/pythia-12b,revision=step143000\", "
             "\"num_fewshot\": 0, \"batch_size\": 16}}");
    put_text("lmeval", "v04",
             "{\"results\": {\"mmlu\": {\"alias\": \"mmlu\", \"acc,none\": 0.41, "
             "\"acc_stderr,none\": \"N/A\"}, \"gsm8k\": {\"exact_match,strict-match\": 0.1, "
             "\"exact_match_stderr,strict-match\": 0.008}, \"hellaswag\": {\"acc,none\": NaN, "
             "\"acc_norm,none\": Infinity}}, \"groups\": {\"mmlu\": {\"acc,none\": 0.41}}, "
             "\"higher_is_better\": {\"mmlu\": {\"acc\": true}, \"gsm8k\": {\"exact_match\": "
             "true}}, \"n-samples\": {\"mmlu\": {\"original\": 14042, \"effective\": 14042}}, "
             "\"config\": {\"model_args\": \"pretrained=/ckpts/ckpt_120,dtype=float16\"}}");
    put_text("lmeval", "minimal", "{\"results\": {\"t\": {\"acc\": null}}}");
}

/* ---- run files: one written through the store (raw mode) and recipes ---- */

/* A recipe (fuzz_runfile.c's cursor order) for a file the reader accepts: format and
 * version right, 3 checkpoints, 4 tensors, /norms/fro and /drift/prev/rel_fro [3, 4],
 * /evals/arc/acc [3], /spectra/<q> float32 [3, 5]. */
static void recipe_valid(void)
{
    cks_fx_buf b = {0};
    cks_fx_putc(&b, 1); /* mode: recipe */
    cks_fx_putc(&b, 0); /* root flags: format, version 1, no other attributes, tables */
    static const unsigned char ckhead[] = {0, 3},
                               ckrow[] = {0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    cks_fx_put(&b, ckhead, 2);
    for (int r = 0; r < 3; r++)
        cks_fx_put(&b, ckrow, sizeof ckrow);
    static const unsigned char thead[] = {0, 4}, kinds[4] = {9, 0, 6, 7};
    cks_fx_put(&b, thead, 2);
    for (int r = 0; r < 4; r++) {
        unsigned char row[] = {(unsigned char)r, kinds[r], 0, 0, 1, 8, 0, 0, 0, 0, 0, 0, 0, 1};
        cks_fx_put(&b, row, sizeof row);
    }
    /* path index, shape (rank | 16: chunked), type, dims, values, attrs (1: axes), axes */
    static const struct {
        unsigned char path, shape, type, d0, d1, axes;
    } ds[] = {{0, 18, 0, 3, 4, 0}, {3, 18, 0, 3, 4, 0}, {14, 17, 0, 3, 0, 1}, {9, 18, 1, 3, 5, 2}};
    for (size_t i = 0; i < sizeof ds / sizeof ds[0]; i++) {
        unsigned char h[] = {ds[i].path, ds[i].shape, ds[i].type, ds[i].d0, ds[i].d1, 0};
        cks_fx_put(&b, h, sizeof h);
        int cells = ds[i].d0 * (ds[i].shape % 4 == 2 ? ds[i].d1 : 1);
        for (int k = 0; k < cells; k++)
            cks_fx_putc(&b, k == 5 ? 255 : 40 + 3 * k);
        unsigned char at[] = {1, ds[i].axes};
        cks_fx_put(&b, at, 2);
    }
    put("runfile", "recipe_valid", NULL, 0, b.p, b.n);
    cks_fx_buf_free(&b);
}

static void runfile(void)
{
    char dir[] = "/tmp/cks-fuzz-corpus-XXXXXX", path[256];
    if (!mkdtemp(dir))
        die("mkdtemp");
    snprintf(path, sizeof path, "%s/run.h5", dir);
    cks_store *s;
    const char *attrs[] = {"metrics", "norms,drift", NULL};
    cks_store_meta meta = {"/src", "{\"hidden_size\": 8}", "ckptscope fuzz", attrs};
    cks_store_tensor t[3] = {{"model.embed_tokens.weight", -1, "embed", 16, 8},
                             {"model.layers.0.self_attn.q_proj.weight", 0, "q", 8, 8},
                             {"model.norm.weight", -1, "final_norm", 8, 0}};
    size_t row;
    double v[3] = {1.5, 2.5, 0.25};
    float top[4] = {9, 4, 1, 0.5f};
    if (cks_store_create(&s, path, &meta) != 0 || cks_store_begin(s) != 0 ||
        cks_store_add_tensors(s, t, 3, NULL) != 0)
        die(cks_error_last());
    for (int k = 0; k < 2; k++) {
        char name[16];
        snprintf(name, sizeof name, "ckpt_%03d", k);
        if (cks_store_put_checkpoint(s, name, 100 * k, "0123abcd", "complete", &row) != 0 ||
            cks_store_write_row(s, "/norms/fro", row, v, 3, "Frobenius norm", NULL) != 0 ||
            cks_store_write_row(s, "/drift/prev/rel_fro", row, v, 3, "drift", NULL) != 0 ||
            cks_store_write_row(s, "/drift/ref/rel_fro", row, v, 3, "drift", NULL) != 0 ||
            cks_store_write_row_f32(s, "/spectra/model.layers.0.self_attn.q_proj.weight", row, top,
                                    4, "rank", "eigenvalues", NULL) != 0 ||
            cks_store_write_series(s, "/evals/arc/acc", row, 0.25 + k, "accuracy", NULL) != 0)
            die(cks_error_last());
    }
    if (cks_store_set_attr(s, "/drift/ref", "ref", "ckpt_000") != 0 || cks_store_commit(s) != 0)
        die(cks_error_last());
    cks_store_free(s);
    FILE *f = fopen(path, "rb");
    if (!f)
        die(path);
    static unsigned char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    put("runfile", "store_two_checkpoints", "\0", 1, buf, n);
    unlink(path);
    rmdir(dir);
    recipe_valid();
    /* recipes (mode byte 1): pseudo-random bytes of a few lengths; the recipe reads them
     * as tables, datasets and attributes */
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (int k = 0; k < 6; k++) {
        unsigned char r[400];
        size_t len = 40 + 70 * (size_t)k;
        r[0] = 1;
        for (size_t i = 1; i < len; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            r[i] = (unsigned char)x;
        }
        r[1] = (unsigned char)(k & 0x76); /* mostly a valid format and version */
        char name[32];
        snprintf(name, sizeof name, "recipe_%d", k);
        put("runfile", name, NULL, 0, r, len);
    }
}

/* ---- held-out and training data files (docfile, trainset) ---- */

/* gzip of text (one member) into buf; returns its length. */
static size_t gzip_of(const char *text, unsigned char *buf, size_t cap)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 9, Z_DEFLATED, 16 + 15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        die("deflateInit2");
    z.next_in = (unsigned char *)text;
    z.avail_in = (uInt)strlen(text);
    z.next_out = buf;
    z.avail_out = (uInt)cap;
    if (deflate(&z, Z_FINISH) != Z_STREAM_END)
        die("deflate");
    size_t n = cap - z.avail_out;
    deflateEnd(&z);
    return n;
}

static size_t zstd_of(const char *text, unsigned char *buf, size_t cap)
{
    size_t n = ZSTD_compress(buf, cap, text, strlen(text), 19);
    if (ZSTD_isError(n))
        die("ZSTD_compress");
    return n;
}

/* The same file as the target reads it: mode byte, then plain, gzip and zstd. */
static void put_three(const char *target, const char *name, unsigned char mode, const char *text)
{
    unsigned char buf[8192];
    char n[64];
    snprintf(n, sizeof n, "%s.txt", name);
    put(target, n, &mode, 1, text, strlen(text));
    snprintf(n, sizeof n, "%s.gz", name);
    put(target, n, &mode, 1, buf, gzip_of(text, buf, sizeof buf));
    snprintf(n, sizeof n, "%s.zst", name);
    put(target, n, &mode, 1, buf, zstd_of(text, buf, sizeof buf));
}

static const char pile_lines[] =
    "{\"text\": \"It is a truth universally acknowledged\", \"meta\": {\"pile_set_name\": "
    "\"Books3\"}}\n"
    "\n"
    "{\"text\": \"int main(void) {\\n\\treturn 0;\\n}\\n\", \"meta\": {\"pile_set_name\": "
    "\"Github\"}}\r\n"
    "{\"text\": \"\\u00e9t\\u00e9 \\ud83d\\ude00\", \"meta\": {\"redpajama_set_name\": "
    "\"RedPajamaC4\"}}\n";

static const char token_lines[] = "{\"token_ids\": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], \"meta\": "
                                  "{\"pile_set_name\": \"A\"}}\n"
                                  "{\"token_ids\": [0, 2147483647], \"meta\": {\"pile_set_name\": "
                                  "\"B\"}}\n"
                                  "{\"token_ids\": [], \"meta\": {\"pile_set_name\": \"A\"}}\n"
                                  "{\"token_ids\": [5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5]}\n";

static void docfile(void)
{
    put_three("docfile", "text_split", 1 | 4, pile_lines);
    put_three("docfile", "text_auto", 0, pile_lines);
    put_three("docfile", "tokens_split", 2 | 4, token_lines);
    put_three("docfile", "tokens_auto", 0, token_lines);
    put_three("docfile", "plain_text", 1, "Plain text, one document.\n{ not json }\n");
    /* a skippable zstd frame first, two gzip members, a truncated member */
    unsigned char buf[8192], mode = 0;
    static const unsigned char skip[] = {0x50, 0x2a, 0x4d, 0x18, 2, 0, 0, 0, 'h', 'i'};
    memcpy(buf, skip, sizeof skip);
    size_t n = sizeof skip + zstd_of(token_lines, buf + sizeof skip, sizeof buf - sizeof skip);
    put("docfile", "skippable.zst", &mode, 1, buf, n);
    n = gzip_of("{\"text\": \"a\"}\n", buf, sizeof buf);
    n += gzip_of("{\"text\": \"b\"}\n", buf + n, sizeof buf - n);
    put("docfile", "members.gz", &mode, 1, buf, n);
    put("docfile", "truncated.gz", &mode, 1, buf, n - 5);
}

static void trainset(void)
{
    static const char lines[] = "{\"token_ids\": [1, 2, 3, 4, 5, 6, 7, 8], \"source\": \"a\"}\n"
                                "{\"token_ids\": [9, 9]}\n"
                                "{\"token_ids\": [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5]}\n"
                                "\n"
                                "{\"token_ids\": [100, 0, 0, 0, 0, 0, 0, 0, 0]}\n";
    put_three("trainset", "k2_l2_all", 1 | 1 << 2, lines);
    put_three("trainset", "k4_l4_sample2", 3 | 3 << 2 | 2 << 4 | 1 << 6, lines);
    put_three("trainset", "k1_l1_sample1", 1 << 4, lines);
}

/* hub_listing: a selector byte (0 refs, 1 tree pages, 2 Link header, 3 repository id),
 * then a response as the hub sends it */
static void hub_listing(void)
{
    static const char oid[] = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
    static const char git[] = "8fa669a1d383284e6964802020486e3f9cae068f";
    char buf[4096];
    int n = snprintf(buf, sizeof buf,
                     "{\"branches\":[{\"name\":\"ckpt_000\",\"ref\":\"refs/heads/ckpt_000\","
                     "\"targetCommit\":\"%s\"},{\"name\":\"main\",\"ref\":\"refs/heads/main\","
                     "\"targetCommit\":\"%s\"}],\"converts\":[],\"tags\":[]}",
                     git, git);
    put("hub_listing", "refs", "\0", 1, buf, (size_t)n);
    n = snprintf(buf, sizeof buf,
                 "[{\"type\":\"file\",\"oid\":\"%s\",\"size\":5,\"path\":\"config.json\"},"
                 "{\"type\":\"directory\",\"oid\":\"%s\",\"size\":0,\"path\":\"sub\"},"
                 "{\"type\":\"file\",\"oid\":\"%s\",\"size\":5,\"path\":\"sub/model.safetensors\","
                 "\"lfs\":{\"oid\":\"%s\",\"size\":5,\"pointerSize\":130}}]",
                 git, git, git, oid);
    put("hub_listing", "tree", "\1", 1, buf, (size_t)n);
    char two[8192];
    int m = snprintf(two, sizeof two,
                     "%s%c[{\"type\":\"file\",\"oid\":\"%s\",\"size\":7,"
                     "\"path\":\"tokenizer.json\"}]",
                     buf, 0, git);
    put("hub_listing", "tree_two_pages", "\1", 1, two, (size_t)m);
    static const char link[] = "<https://huggingface.co/api/models/o/n/tree/"
                               "main?recursive=true&cursor=abc>; rel=\"next\", "
                               "<https://huggingface.co/x>; rel=prev";
    put("hub_listing", "link", "\2", 1, link, strlen(link));
    put("hub_listing", "repo", "\3", 1, "LLM360/K2", 9);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: cks-fuzz-corpus OUTDIR SOURCE_DIR\n");
        return 2;
    }
    outdir = argv[1];
    srcdir = argv[2];
    if (mkdir(outdir, 0755) != 0 && errno != EEXIST)
        die(outdir);
    safetensors();
    shard_index();
    config();
    lfs();
    torchbin();
    tokenizers();
    lmeval();
    runfile();
    docfile();
    trainset();
    hub_listing();
    return 0;
}
