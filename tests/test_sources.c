/* Integration tests of checkpoint sources over generated fixtures: every layout, step
 * order, LFS present / missing / malformed, hub-cache symlinks, shard indexes, and that
 * reading never writes to the repository. Tensor bytes are compared with the values the
 * fixture generator wrote (cks_fx_tensor_values). */
#include "testutil.h"

#include "error.h"
#include "fixture.h"
#include "sha256.h"
#include "source.h"
#include "weights.h"

#include <dirent.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *make(const char *tag, void (*tweak)(cks_fx_spec *), char **root)
{
    *root = cks_tmpdir_new(tag);
    char *dir = malloc(4200);
    snprintf(dir, 4200, "%s/src", *root);
    cks_fx_spec s;
    cks_fx_spec_default(&s, dir);
    if (tweak)
        tweak(&s);
    assert_int_equal(cks_fx_write(&s), 0);
    return dir;
}

/* Every tensor of checkpoint k equals what the generator wrote. */
static void check_values(const cks_fx_spec *spec, const cks_ckpt *c, int k)
{
    cks_weights *w;
    assert_int_equal(cks_weights_open(&w, c), 0);
    const cks_tensor_list *tl = cks_weights_tensors(w);
    cks_fx_tensor want[64];
    int nt = cks_fx_tensors(&spec->model, want, 64);
    assert_int_equal(tl->count, (size_t)nt);
    for (int i = 0; i < nt; i++) {
        long j = cks_tensor_list_find(tl, want[i].name);
        assert_true(j >= 0);
        const cks_tensor *t = &tl->items[j];
        assert_int_equal(t->dtype, spec->model.dtype);
        double *v = malloc((size_t)t->numel * sizeof *v), *g = malloc((size_t)t->numel * sizeof *g);
        cks_fx_tensor_values(spec, t->name, t->numel, k, v);
        cks_widen_f64(t->dtype, t->data, g, (size_t)t->numel);
        assert_memory_equal(v, g, (size_t)t->numel * sizeof *v);
        free(v);
        free(g);
    }
    cks_weights_free(w);
}

static void open_ok(cks_source **s, const char *dir, const char *glob)
{
    cks_error_clear();
    int err = cks_source_open(s, dir, glob);
    if (err)
        print_error("open %s: %s\n", dir, cks_error_last());
    assert_int_equal(err, 0);
}

static void tweak_git_lfs(cks_fx_spec *s)
{
    s->nckpt = 4;
    s->lfs = 1;
    s->lfs_missing_from = 3;
    s->model.dtype = CKS_DT_BF16;
}

static void test_git__lfs_present_and_missing(void **state)
{
    char *root, *dir = make("git-lfs", tweak_git_lfs, &root);
    cks_fx_spec spec;
    cks_fx_spec_default(&spec, dir);
    tweak_git_lfs(&spec);
    cks_source *s;
    open_ok(&s, dir, NULL);
    assert_int_equal(cks_source_kind_of(s), CKS_SOURCE_GIT);
    assert_int_equal(cks_source_count(s), 4);
    for (size_t i = 0; i < 4; i++) {
        const cks_ckpt_info *ci = cks_source_ckpt(s, i);
        char want[16];
        snprintf(want, sizeof want, "ckpt_%03zu", i);
        assert_string_equal(ci->name, want);
        assert_int_equal(ci->step, (int64_t)i);
        assert_int_equal(strlen(ci->commit), 40);
        cks_ckpt *c;
        assert_int_equal(cks_ckpt_open(&c, s, i), 0);
        long f = cks_ckpt_find_file(c, "model.safetensors");
        assert_true(f >= 0);
        assert_true(cks_ckpt_file(c, (size_t)f)->lfs);
        if (i < 3) {
            assert_true(cks_ckpt_complete(c));
            check_values(&spec, c, (int)i);
        } else {
            assert_false(cks_ckpt_complete(c));
            cks_map *m;
            cks_error_clear();
            assert_int_equal(cks_ckpt_map(c, "model.safetensors", &m), CKS_EINCOMPLETE);
            assert_non_null(strstr(cks_error_last(), "lfs fetch origin ckpt_003"));
            assert_non_null(strstr(cks_error_last(), "--include=model.safetensors"));
        }
        cks_ckpt_free(c);
    }
    cks_source_free(s);
    free(dir);
    cks_tmpdir_remove(root);
}

/* Branch names: step is the last run of digits; unnumbered names sort last. */
static void test_git__order_by_step_and_glob(void **state)
{
    char *root = cks_tmpdir_new("order"), dir[4200];
    snprintf(dir, sizeof dir, "%s/repo", root);
    const char *names[] = {"ckpt_100", "ckpt_9", "ckpt_final", "ckpt_10", "main", "ckpt_v2_20"};
    cks_fx_file f = {"config.json", "{}", 2};
    for (size_t i = 0; i < 6; i++) {
        char ref[128];
        snprintf(ref, sizeof ref, "refs/heads/%s", names[i]);
        assert_int_equal(cks_fx_git_commit(dir, 0, ref, &f, 1, NULL, 0, NULL), 0);
    }
    cks_source *s;
    open_ok(&s, dir, NULL);
    const char *want[] = {"ckpt_9", "ckpt_10", "ckpt_v2_20", "ckpt_100", "ckpt_final"};
    assert_int_equal(cks_source_count(s), 5);
    for (size_t i = 0; i < 5; i++)
        assert_string_equal(cks_source_ckpt(s, i)->name, want[i]);
    assert_int_equal(cks_source_ckpt(s, 4)->step, -1);
    size_t idx;
    cks_error_clear();
    assert_int_equal(cks_source_find(s, "ckpt_999", &idx), CKS_ENOTFOUND);
    assert_non_null(strstr(cks_error_last(), "ckpt_999"));
    cks_source_free(s);
    cks_error_clear();
    assert_int_equal(cks_source_open(&s, dir, "step*"), CKS_ENOTFOUND);
    assert_non_null(strstr(cks_error_last(), "no checkpoint matches 'step*'"));
    cks_tmpdir_remove(root);
}

/* DESIGN §2's order on Pythia's 154 branch names (step0, step1, step2, step4 ... step512,
 * step1000 ... step143000) and OLMo-style names, whose token counts must not decide:
 * the digits after the last "step", else the last run of digits; equal steps by name;
 * names without digits or with digits past int64 last, by name. */
static void test_folder__step_order_pythia_and_olmo(void **state)
{
    char *root = cks_tmpdir_new("steps"), p[4400];
    static const char *const tail[] = {
        "stage1-step140000-tokens294B", /* 140000, not 294 */
        "step143000-tokens600B",        /* 143000: equal steps by name */
        "STEP5-v999998",                /* no lower-case "step": the last digits */
        "step999999-tokens1B",          /* the token count would put it first */
        "main",                         /* no digits */
        "step99999999999999999999",     /* overflows int64 */
    };
    const char *want_tail[] = {"step143000",    "step143000-tokens600B",
                               "STEP5-v999998", "step999999-tokens1B",
                               "main",          "step99999999999999999999"};
    char names[200][64];
    int n = 0;
    snprintf(names[n++], 64, "step0");
    for (int s = 1; s <= 512; s *= 2)
        snprintf(names[n++], 64, "step%d", s);
    for (int s = 1000; s <= 143000; s += 1000)
        snprintf(names[n++], 64, "step%d", s);
    assert_int_equal(n, 154);
    /* OLMo 2's parallel branches and equal steps, before Pythia's step1000 by name */
    const char *olmo[] = {"stage2-ingredient2-step1000-tokens5B",
                          "stage2-ingredient1-step1000-tokens5B", "step1000-tokens4B",
                          "step2000-tokens9B", "step10000-tokens42B"};
    for (int i = n - 1; i >= 0; i--) { /* created in reverse: the listing order must not matter */
        snprintf(p, sizeof p, "%s/%s", root, names[i]);
        assert_int_equal(mkdir(p, 0755), 0);
    }
    for (size_t i = 0; i < sizeof olmo / sizeof olmo[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", root, olmo[i]);
        assert_int_equal(mkdir(p, 0755), 0);
    }
    for (size_t i = 0; i < sizeof tail / sizeof tail[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", root, tail[i]);
        assert_int_equal(mkdir(p, 0755), 0);
    }
    cks_source *s;
    assert_int_equal(cks_source_open(&s, root, "*"), 0);
    assert_int_equal(cks_source_count(s), 154 + 5 + 6);
    /* Pythia's names in numeric order, OLMo's step1000 names (by name, byte order) before
       Pythia's step1000, step2000 and step10000 beside theirs */
    size_t k = 0;
    for (int i = 0; i < 154; i++) {
        int64_t st = cks_name_step(names[i]);
        if (st == 1000) {
            assert_string_equal(cks_source_ckpt(s, k++)->name, olmo[1]);
            assert_string_equal(cks_source_ckpt(s, k++)->name, olmo[0]);
            assert_string_equal(cks_source_ckpt(s, k++)->name, "step1000");
            assert_string_equal(cks_source_ckpt(s, k++)->name, olmo[2]);
            continue;
        }
        if (st == 143000)
            break;
        if (st == 140000) /* equal steps: by name, "sta" < "ste" */
            assert_string_equal(cks_source_ckpt(s, k++)->name, tail[0]);
        assert_string_equal(cks_source_ckpt(s, k)->name, names[i]);
        assert_int_equal(cks_source_ckpt(s, k)->step, st);
        k++;
        if (st == 2000)
            assert_string_equal(cks_source_ckpt(s, k++)->name, olmo[3]);
        if (st == 10000)
            assert_string_equal(cks_source_ckpt(s, k++)->name, olmo[4]);
    }
    assert_int_equal(cks_source_ckpt(s, k - 1)->step, 142000);
    for (size_t i = 0; i < sizeof want_tail / sizeof want_tail[0]; i++, k++)
        assert_string_equal(cks_source_ckpt(s, k)->name, want_tail[i]);
    assert_int_equal(k, cks_source_count(s));
    assert_int_equal(cks_name_step("stage1-step140000-tokens294B"), 140000);
    assert_int_equal(cks_name_step("STEP5-v999998"), 999998);
    assert_int_equal(cks_name_step("ckpt_009"), 9);
    assert_int_equal(cks_name_step("step12-stepx"), 12); /* the last "step" with digits */
    assert_int_equal(cks_name_step("main"), -1);
    assert_int_equal(cks_name_step("step99999999999999999999"), -1);
    assert_int_equal(cks_name_step("ckpt_9223372036854775807"), INT64_MAX);
    assert_int_equal(cks_name_step("ckpt_9223372036854775808"), -1);
    cks_source_free(s);
    cks_tmpdir_remove(root);
}

static void tweak_remote(cks_fx_spec *s)
{
    s->remote = 1;
    s->bare = 1;
    s->shards = 3;
}

static void test_git__remote_tracking_bare_sharded(void **state)
{
    char *root, *dir = make("remote", tweak_remote, &root);
    cks_fx_spec spec;
    cks_fx_spec_default(&spec, dir);
    tweak_remote(&spec);
    /* a local branch with the same name as a remote one: listed once, the local wins */
    cks_fx_file f = {"config.json", "{}", 2};
    char local[41];
    assert_int_equal(cks_fx_git_commit(dir, 1, "refs/heads/ckpt_001", &f, 1, NULL, 0, local), 0);
    cks_source *s;
    open_ok(&s, dir, NULL);
    assert_int_equal(cks_source_count(s), 3);
    assert_string_equal(cks_source_ckpt(s, 0)->remote, "origin");
    assert_null(cks_source_ckpt(s, 1)->remote);
    assert_string_equal(cks_source_ckpt(s, 1)->commit, local);
    cks_ckpt *c;
    assert_int_equal(cks_ckpt_open(&c, s, 2), 0);
    assert_true(cks_ckpt_find_file(c, "model.safetensors.index.json") >= 0);
    check_values(&spec, c, 2);
    cks_ckpt_free(c);
    cks_source_free(s);
    free(dir);
    cks_tmpdir_remove(root);
}

/* Commits a checkpoint whose model.safetensors blob is the given LFS pointer text. */
static void commit_pointer(const char *dir, const char *ptr)
{
    cks_fx_file files[2] = {{"config.json", "{}", 2}, {"model.safetensors", ptr, strlen(ptr)}};
    assert_int_equal(cks_fx_git_commit(dir, 0, "refs/heads/ckpt_001", files, 2, NULL, 0, NULL), 0);
}

static void test_git__rejects_bad_lfs_pointers(void **state)
{
    char *root = cks_tmpdir_new("badlfs"), dir[4200];
    snprintf(dir, sizeof dir, "%s/repo", root);
    /* oid that is a path, not 64 hex digits */
    commit_pointer(dir, "version https://git-lfs.github.com/spec/v1\noid sha256:../../etc/passwd\n"
                        "size 10\n");
    cks_source *s;
    cks_ckpt *c;
    open_ok(&s, dir, NULL);
    cks_error_clear();
    assert_int_equal(cks_ckpt_open(&c, s, 0), CKS_EFORMAT);
    assert_non_null(strstr(cks_error_last(), "ckpt_001:model.safetensors"));
    assert_non_null(strstr(cks_error_last(), "64"));
    cks_source_free(s);

    /* object present but its size differs from the pointer */
    const char content[] = "twelve bytes";
    char ptr[512], oid[65], objdir[4400], obj[4500];
    cks_fx_lfs_pointer(content, 12, ptr, sizeof ptr, oid);
    char *sz = strstr(ptr, "size 12");
    memcpy(sz, "size 13", 7);
    commit_pointer(dir, ptr);
    snprintf(objdir, sizeof objdir, "%s/.git/lfs/objects/%.2s/%.2s", dir, oid, oid + 2);
    char cmd[9000];
    snprintf(cmd, sizeof cmd, "mkdir -p %s", objdir);
    assert_int_equal(system(cmd), 0);
    snprintf(obj, sizeof obj, "%s/%s", objdir, oid);
    cks_write_file(obj, content, 12);
    open_ok(&s, dir, NULL);
    cks_error_clear();
    assert_int_equal(cks_ckpt_open(&c, s, 0), CKS_EFORMAT);
    assert_non_null(strstr(cks_error_last(), "has 12 bytes, its pointer says 13"));
    cks_source_free(s);
    cks_tmpdir_remove(root);
}

static void tweak_hf(cks_fx_spec *s)
{
    s->layout = CKS_FX_HF;
    s->shards = 2;
    s->model.dtype = CKS_DT_F16;
}

static void test_hf__cache_layout_and_escapes(void **state)
{
    char *root, *dir = make("hf", tweak_hf, &root);
    cks_fx_spec spec;
    cks_fx_spec_default(&spec, dir);
    tweak_hf(&spec);
    cks_source *s;
    cks_ckpt *c;
    open_ok(&s, dir, NULL);
    assert_int_equal(cks_source_kind_of(s), CKS_SOURCE_HF_CACHE);
    assert_int_equal(cks_source_count(s), 3);
    assert_int_equal(cks_ckpt_open(&c, s, 1), 0);
    assert_true(cks_ckpt_complete(c));
    check_values(&spec, c, 1);
    cks_ckpt_free(c);

    /* a dangling symlink (blob never downloaded) makes the checkpoint incomplete */
    char snap[4400], link[4600], ref[4400], commit[64] = "";
    snprintf(ref, sizeof ref, "%s/refs/ckpt_002", dir);
    FILE *f = fopen(ref, "r");
    assert_non_null(fgets(commit, sizeof commit, f));
    fclose(f);
    snprintf(snap, sizeof snap, "%s/snapshots/%s", dir, commit);
    snprintf(link, sizeof link, "%s/extra.bin", snap);
    assert_int_equal(symlink("../../blobs/0000missing", link), 0);
    assert_int_equal(cks_ckpt_open(&c, s, 2), 0);
    assert_false(cks_ckpt_complete(c));
    cks_ckpt_free(c);
    /* a symlink that escapes the cache folder is refused */
    unlink(link);
    assert_int_equal(symlink("/etc/passwd", link), 0);
    cks_error_clear();
    assert_int_equal(cks_ckpt_open(&c, s, 2), CKS_EFORMAT);
    assert_non_null(strstr(cks_error_last(), "outside the cache folder"));
    cks_source_free(s);

    /* a ref that does not hold a commit id */
    cks_write_file(ref, "../../../etc\n", 13);
    cks_error_clear();
    assert_int_equal(cks_source_open(&s, dir, NULL), CKS_EFORMAT);
    assert_non_null(strstr(cks_error_last(), "not a commit id"));
    free(dir);
    cks_tmpdir_remove(root);
}

static void tweak_folder(cks_fx_spec *s)
{
    s->layout = CKS_FX_FOLDER;
    s->model.dtype = CKS_DT_F64;
}

static void test_folder__subfolders_and_single(void **state)
{
    char *root, *dir = make("folder", tweak_folder, &root);
    cks_fx_spec spec;
    cks_fx_spec_default(&spec, dir);
    tweak_folder(&spec);
    cks_source *s;
    cks_ckpt *c;
    open_ok(&s, dir, NULL);
    assert_int_equal(cks_source_kind_of(s), CKS_SOURCE_FOLDER);
    assert_int_equal(cks_source_count(s), 3);
    assert_null(cks_source_ckpt(s, 0)->commit);
    assert_int_equal(cks_ckpt_open(&c, s, 0), 0);
    check_values(&spec, c, 0);
    cks_ckpt_free(c);
    cks_source_free(s);
    /* one checkpoint folder on its own */
    char one[4400];
    snprintf(one, sizeof one, "%s/ckpt_002", dir);
    open_ok(&s, one, NULL);
    assert_int_equal(cks_source_count(s), 1);
    assert_string_equal(cks_source_ckpt(s, 0)->name, "ckpt_002");
    assert_int_equal(cks_ckpt_open(&c, s, 0), 0);
    check_values(&spec, c, 2);
    cks_ckpt_free(c);
    cks_source_free(s);
    free(dir);
    cks_tmpdir_remove(root);
}

static void test_sources__bad_paths(void **state)
{
    cks_source *s;
    cks_error_clear();
    assert_int_equal(cks_source_open(&s, "/nonexistent/ckptscope", NULL), CKS_ENOTFOUND);
    assert_non_null(strstr(cks_error_last(), "/nonexistent/ckptscope"));
    char *root = cks_tmpdir_new("badpath"), file[4200];
    snprintf(file, sizeof file, "%s/plain.txt", root);
    cks_write_file(file, "x", 1);
    cks_error_clear();
    assert_int_equal(cks_source_open(&s, file, NULL), CKS_EINVAL);
    assert_non_null(strstr(cks_error_last(), "not a checkpoint source"));
    cks_error_clear();
    assert_int_equal(cks_source_open(&s, root, NULL), CKS_ENOTFOUND); /* empty folder */
    cks_tmpdir_remove(root);
}

/* Writes a folder checkpoint with the given files, returns an opened checkpoint. */
static void folder_ckpt(const char *root, const cks_fx_file *files, int n, cks_source **s,
                        cks_ckpt **c)
{
    char dir[4200], p[4400];
    snprintf(dir, sizeof dir, "%s/ckpt_001", root);
    mkdir(dir, 0755);
    for (int i = 0; i < n; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, files[i].path);
        cks_write_file(p, files[i].data, files[i].len);
    }
    open_ok(s, root, NULL);
    assert_int_equal(cks_ckpt_open(c, *s, 0), 0);
}

static void expect_weights_error(const cks_fx_file *files, int n, int code, const char *needle)
{
    char *root = cks_tmpdir_new("weights");
    cks_source *s;
    cks_ckpt *c;
    cks_weights *w;
    folder_ckpt(root, files, n, &s, &c);
    cks_error_clear();
    int err = cks_weights_open(&w, c);
    if (err != code || !strstr(cks_error_last(), needle)) {
        print_error("got %d '%s', want %d '%s'\n", err, cks_error_last(), code, needle);
        fail();
    }
    cks_ckpt_free(c);
    cks_source_free(s);
    cks_tmpdir_remove(root);
}

static void test_weights__rejects_bad_indexes(void **state)
{
    float a[2] = {1, 2};
    cks_fx_st_tensor t1 = {"a", CKS_DT_F32, 1, {2}, a, 8}, t2 = {"b", CKS_DT_F32, 1, {2}, a, 8};
    size_t n1, n2;
    unsigned char *s1 = cks_fx_safetensors(&t1, 1, &n1), *s2 = cks_fx_safetensors(&t2, 1, &n2),
                  *s1b;
    cks_fx_st_tensor both[2] = {t1, t2};
    size_t nb;
    s1b = cks_fx_safetensors(both, 2, &nb);
    const char *missing =
        "{\"weight_map\": {\"a\": \"m-1.safetensors\", \"b\": \"m-9.safetensors\"}}";
    const char *escape = "{\"weight_map\": {\"a\": \"../m-1.safetensors\"}}";
    const char *wrong =
        "{\"weight_map\": {\"a\": \"m-2.safetensors\", \"b\": \"m-1.safetensors\"}}";
    const char *absent =
        "{\"weight_map\": {\"a\": \"m-1.safetensors\", \"zz\": \"m-1.safetensors\"}}";
    const char *dup = "{\"weight_map\": {\"a\": \"m-1.safetensors\", \"b\": \"m-2.safetensors\"}}";
    cks_fx_file f[4] = {{"m-1.safetensors", s1, n1}, {"m-2.safetensors", s2, n2}};
    f[2] = (cks_fx_file){"model.safetensors.index.json", missing, strlen(missing)};
    expect_weights_error(f, 3, CKS_ENOTFOUND, "names shard 'm-9.safetensors'");
    f[2].data = escape, f[2].len = strlen(escape);
    expect_weights_error(f, 3, CKS_EFORMAT, "not a plain path");
    f[2].data = wrong, f[2].len = strlen(wrong);
    expect_weights_error(f, 3, CKS_EFORMAT, "the index says");
    f[2].data = absent, f[2].len = strlen(absent);
    expect_weights_error(f, 3, CKS_EFORMAT, "'zz' is not in its shard");
    /* the same tensor in two shards */
    f[1] = (cks_fx_file){"m-2.safetensors", s1b, nb};
    f[2].data = dup, f[2].len = strlen(dup);
    expect_weights_error(f, 3, CKS_EFORMAT, "appears in two weight files");
    /* no weights at all */
    expect_weights_error(f, 0, CKS_ENOTFOUND, "no weights");
    free(s1);
    free(s2);
    free(s1b);
}

static void test_config__missing_and_bad(void **state)
{
    char *root = cks_tmpdir_new("cfg");
    cks_source *s;
    cks_ckpt *c;
    cks_config cfg;
    cks_fx_file f = {"config.json",
                     "{\"model_type\": \"llama\", \"hidden_size\": 64, \"intermediate_size\": 1, "
                     "\"num_hidden_layers\": 1, \"num_attention_heads\": 6, "
                     "\"vocab_size\": 5}",
                     0};
    f.len = strlen(f.data);
    folder_ckpt(root, &f, 1, &s, &c);
    cks_error_clear();
    /* it parses (norms and drift need no more); the forward pass's checks refuse it */
    assert_int_equal(cks_ckpt_config(c, &cfg), 0);
    char disp[512];
    assert_int_equal(
        cks_config_check_forward(&cfg, cks_ckpt_display(c, "config.json", disp, sizeof disp)),
        CKS_EFORMAT);
    assert_non_null(strstr(cks_error_last(), "ckpt_001:config.json"));
    assert_non_null(strstr(cks_error_last(), "does not divide"));
    cks_ckpt_free(c);
    cks_source_free(s);
    char p[4400];
    snprintf(p, sizeof p, "%s/ckpt_001/config.json", root);
    unlink(p);
    snprintf(p, sizeof p, "%s/ckpt_001/other.txt", root);
    cks_write_file(p, "x", 1);
    open_ok(&s, root, NULL);
    assert_int_equal(cks_ckpt_open(&c, s, 0), 0);
    cks_error_clear();
    assert_int_equal(cks_ckpt_config(c, &cfg), CKS_ENOTFOUND);
    assert_non_null(strstr(cks_error_last(), "config.json"));
    cks_ckpt_free(c);
    cks_source_free(s);
    cks_tmpdir_remove(root);
}

/* ---- reading never writes: a digest of every file under the repository ---- */

static char digest_acc[65 * 4096];
static size_t digest_len;

static int digest_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    char line[8192], hex[65] = "-";
    if (flag == FTW_F) {
        FILE *f = fopen(p, "rb");
        size_t n = (size_t)sb->st_size;
        char *buf = malloc(n + 1);
        if (f && fread(buf, 1, n, f) == n)
            cks_sha256_hex(buf, n, hex);
        if (f)
            fclose(f);
        free(buf);
    }
    int k = snprintf(line, sizeof line, "%s %o %lld %lld %s\n", p, sb->st_mode,
                     (long long)sb->st_size, (long long)sb->st_mtime, hex);
    char h[65];
    cks_sha256_hex(line, (size_t)k, h);
    if (digest_len + 65 < sizeof digest_acc) {
        memcpy(digest_acc + digest_len, h, 64);
        digest_len += 64;
    }
    return 0;
}

static void tree_digest(const char *dir, char out[65])
{
    digest_len = 0;
    assert_int_equal(nftw(dir, digest_one, 16, FTW_PHYS), 0);
    cks_sha256_hex(digest_acc, digest_len, out);
}

static void tweak_ro(cks_fx_spec *s)
{
    s->lfs = 1;
    s->lfs_missing_from = 2;
}

static void test_git__reading_never_writes(void **state)
{
    char *root, *dir = make("ro", tweak_ro, &root), before[65], after[65];
    tree_digest(dir, before);
    cks_source *s;
    open_ok(&s, dir, NULL);
    for (size_t i = 0; i < cks_source_count(s); i++) {
        cks_ckpt *c;
        cks_weights *w;
        cks_config cfg;
        assert_int_equal(cks_ckpt_open(&c, s, i), 0);
        assert_int_equal(cks_ckpt_config(c, &cfg), 0);
        if (cks_ckpt_complete(c)) {
            assert_int_equal(cks_weights_open(&w, c), 0);
            cks_weights_free(w);
        }
        cks_ckpt_free(c);
    }
    cks_source_free(s);
    tree_digest(dir, after);
    assert_string_equal(before, after);
    free(dir);
    cks_tmpdir_remove(root);
}

/* A weight file truncated while mapped: reading past the new end raises SIGBUS, which
 * the guard absorbs; the checkpoint reports the file as changed instead of crashing. */
static void test_weights__file_truncated_while_mapped(void **state)
{
    char *root = cks_tmpdir_new("sigbus"), dir[4200], path[4400];
    enum { N = 1 << 18 };
    float *x = malloc(N * sizeof *x);
    for (int i = 0; i < N; i++)
        x[i] = (float)i;
    cks_fx_st_tensor t = {
        "model.layers.0.mlp.up_proj.weight", CKS_DT_F32, 2, {512, 512}, x, N * sizeof *x};
    size_t n;
    unsigned char *buf = cks_fx_safetensors(&t, 1, &n);
    snprintf(dir, sizeof dir, "%s/ckpt_001", root);
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    cks_write_file(path, buf, n);
    assert_int_equal(cks_map_guard_install(), 0);
    cks_source *s;
    cks_ckpt *c;
    cks_weights *w;
    open_ok(&s, root, NULL);
    assert_int_equal(cks_ckpt_open(&c, s, 0), 0);
    assert_int_equal(cks_weights_open(&w, c), 0);
    assert_int_equal(cks_weights_check(w), 0);
    assert_int_equal(truncate(path, (off_t)(n / 4)), 0);
    const cks_tensor *v = &cks_weights_tensors(w)->items[0];
    volatile double sum = 0;
    for (int64_t i = 0; i < v->numel; i += 1024) {
        float f;
        memcpy(&f, (const char *)v->data + 4 * i, 4);
        sum += f;
    }
    (void)sum;
    cks_error_clear();
    assert_int_equal(cks_weights_check(w), CKS_EIO);
    assert_non_null(strstr(cks_error_last(), "model.safetensors"));
    assert_non_null(strstr(cks_error_last(), "changed"));
    cks_weights_free(w);
    cks_ckpt_free(c);
    cks_source_free(s);
    free(buf);
    free(x);
    cks_tmpdir_remove(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_git__lfs_present_and_missing),
        cmocka_unit_test(test_git__order_by_step_and_glob),
        cmocka_unit_test(test_folder__step_order_pythia_and_olmo),
        cmocka_unit_test(test_git__remote_tracking_bare_sharded),
        cmocka_unit_test(test_git__rejects_bad_lfs_pointers),
        cmocka_unit_test(test_hf__cache_layout_and_escapes),
        cmocka_unit_test(test_folder__subfolders_and_single),
        cmocka_unit_test(test_sources__bad_paths),
        cmocka_unit_test(test_weights__rejects_bad_indexes),
        cmocka_unit_test(test_config__missing_and_bad),
        cmocka_unit_test(test_git__reading_never_writes),
        cmocka_unit_test(test_weights__file_truncated_while_mapped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
