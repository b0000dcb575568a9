/* Unit tests of the hub source's pure parts: the repository id, the refs and tree listings
 * and the Link header (hub_api.h), URL escaping and the same-origin rule that decides who
 * gets the token (http.h), incremental SHA-256 (FIPS 180-2 known answers) and the cache
 * layout (hub_cache.h). Expected values are hand-made inputs, the standard's test vectors
 * and huggingface_hub's relative-link layout. */
#include "testutil.h"

#include "error.h"
#include "http.h"
#include "hub_api.h"
#include "hub_cache.h"
#include "sha256.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define GIT "8fa669a1d383284e6964802020486e3f9cae068f"
#define SHA "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
#define D   "hf://o/n@ckpt_000"

static void test_hub__repo_ids(void **state)
{
    static const char *const good[] = {"LLM360/K2", "EleutherAI/pythia-70m", "a.b_c-d/x.y"};
    static const char *const bad[] = {"K2",     "a/b/c", "../x",   "a/..",   "a/b..c",
                                      "a--b/c", "-a/b",  "a/b.",   "",       "a/",
                                      "/b",     "a b/c", "a/b\nc", "a/b%2f", "a\\b/c"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        assert_int_equal(cks_hub_repo_check(good[i]), 0);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cks_expect_error(cks_hub_repo_check(bad[i]), CKS_EINVAL, "ORG/NAME", NULL);
    char name[128];
    memset(name, 'a', sizeof name);
    memcpy(name + 97, "/b", 3); /* a part of 97 characters: refused */
    cks_expect_error(cks_hub_repo_check(name), CKS_EINVAL, "ORG/NAME", NULL);
    memcpy(name + 96, "/b", 3); /* 96: allowed */
    assert_int_equal(cks_hub_repo_check(name), 0);
}

static int refs(const char *text, cks_hub_refs *r)
{
    memset(r, 0, sizeof *r);
    return cks_hub_refs_parse(text, strlen(text), D, r);
}

static void test_hub__refs(void **state)
{
    cks_hub_refs r;
    assert_int_equal(refs("{\"branches\":[{\"name\":\"ckpt_000\",\"targetCommit\":\"" GIT
                          "\"},{\"name\":\"stage1/step1\",\"targetCommit\":\"" GIT
                          "\"}],\"tags\":[{\"name\":\"v1\",\"targetCommit\":\"zz\"}]}",
                          &r),
                     0);
    assert_int_equal(r.count, 2);
    assert_string_equal(r.items[1].name, "stage1/step1");
    assert_string_equal(r.items[0].commit, GIT);
    cks_hub_refs_release(&r);
    static const struct {
        const char *text, *want;
    } bad[] = {
        {"[]", "not an object"},
        {"{\"tags\":[]}", "\"branches\""},
        {"{\"branches\":[1]}", "not an object"},
        {"{\"branches\":[{\"name\":\"x\"}]}", "targetCommit"},
        {"{\"branches\":[{\"name\":\"x\",\"targetCommit\":\"" SHA "\"}]}", "40 hex"},
        {"{\"branches\":[{\"name\":\"x\",\"targetCommit\":"
         "\"8FA669A1D383284E6964802020486E3F9CAE068F\"}]}",
         "40 hex"},
        {"{\"branches\":[{\"name\":\"../x\",\"targetCommit\":\"" GIT "\"}]}", "safe path"},
        {"{\"branches\":[{\"name\":\"/etc\",\"targetCommit\":\"" GIT "\"}]}", "safe path"},
        {"{\"branches\":[{\"name\":\"a//b\",\"targetCommit\":\"" GIT "\"}]}", "safe path"},
        {"{\"branches\":[{\"name\":7,\"targetCommit\":\"" GIT "\"}]}", "not a string"},
        {"{\"branches\":[", "not valid JSON"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int rc = refs(bad[i].text, &r);
        if (rc >= 0 || !strstr(cks_error_last(), D) || !strstr(cks_error_last(), bad[i].want))
            fail_msg("case %zu: rc %d, message '%s', wanted '%s'", i, rc, cks_error_last(),
                     bad[i].want);
        cks_error_clear();
        cks_hub_refs_release(&r);
    }
}

#define FILE_E(path, size) \
    "{\"type\":\"file\",\"oid\":\"" GIT "\",\"size\":" #size ",\"path\":\"" path "\"}"
#define LFS_E(path, size, lsize)                                                       \
    "{\"type\":\"file\",\"oid\":\"" GIT "\",\"size\":" #size ",\"path\":\"" path "\"," \
    "\"lfs\":{\"oid\":\"" SHA "\",\"size\":" #lsize ",\"pointerSize\":130}}"

static int tree(const char *page1, const char *page2, cks_hub_tree *t)
{
    int err;
    memset(t, 0, sizeof *t);
    if ((err = cks_hub_tree_parse(page1, strlen(page1), D, t)) != 0)
        return err;
    if (page2 && (err = cks_hub_tree_parse(page2, strlen(page2), D, t)) != 0)
        return err;
    return cks_hub_tree_finish(t, D);
}

static void test_hub__tree(void **state)
{
    cks_hub_tree t;
    assert_int_equal(
        tree("[" LFS_E("sub/model.safetensors", 5, 5) ",{\"type\":\"directory\","
                                                      "\"oid\":\"" GIT
                                                      "\",\"size\":0,\"path\":\"sub\"}]",
             "[" FILE_E("config.json", 12) "," FILE_E("a-b", 1) "," FILE_E("sub-x/y", 2) "]", &t),
        0);
    assert_int_equal(t.count, 4); /* the directory is skipped; sorted by path */
    assert_string_equal(t.items[0].path, "a-b");
    assert_string_equal(t.items[2].path, "sub-x/y");
    assert_string_equal(t.items[3].path, "sub/model.safetensors");
    assert_true(t.items[3].lfs);
    assert_string_equal(t.items[3].blob, SHA); /* LFS files are named by their sha256 */
    assert_int_equal(t.items[3].size, 5);
    assert_string_equal(t.items[1].blob, GIT); /* the others by their git blob id */
    cks_hub_tree_release(&t);
    static const struct {
        const char *p1, *p2, *want;
    } bad[] = {
        {"{}", NULL, "not a JSON array"},
        {"[1]", NULL, "not an object"},
        {"[" FILE_E("../x", 1) "]", NULL, "not a safe relative path"},
        {"[" FILE_E("/etc/passwd", 1) "]", NULL, "not a safe relative path"},
        {"[" FILE_E("a/./b", 1) "]", NULL, "not a safe relative path"},
        {"[" FILE_E("a\\\\b", 1) "]", NULL, "not a safe relative path"},
        {"[" FILE_E("a\\u0001b", 1) "]", NULL, "not a safe relative path"},
        {"[" FILE_E("x", -1) "]", NULL, "outside"},
        {"[" FILE_E("x", 1125899906842625) "]", NULL, "outside"},
        {"[" LFS_E("x", 5, 6) "]", NULL, "disagree"},
        {"[{\"type\":\"file\",\"oid\":\"" GIT "\",\"size\":1,\"path\":\"x\",\"lfs\":{\"oid\":\"" GIT
         "\",\"size\":1}}]",
         NULL, "sha256"},
        {"[{\"type\":\"file\",\"oid\":\"abc\",\"size\":1,\"path\":\"x\"}]", NULL, "git blob id"},
        {"[{\"type\":\"submodule\",\"oid\":\"" GIT "\",\"size\":0,\"path\":\"x\"}]", NULL,
         "type 'submodule'"},
        {"[" FILE_E("x", 1) "]", "[" FILE_E("x", 1) "]", "listed twice"},
        {"[" FILE_E("a", 1) "]", "[" FILE_E("a/b", 1) "]", "as a file and as a folder"},
        {"[" FILE_E("a/b", 1) "," FILE_E("a/b/c/d", 1) "]", NULL, "as a file and as a folder"},
        {"[{\"type\":\"file\",\"size\":1,\"path\":\"x\"}]", NULL, "oid"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int rc = tree(bad[i].p1, bad[i].p2, &t);
        if (rc >= 0 || !strstr(cks_error_last(), D) || !strstr(cks_error_last(), bad[i].want))
            fail_msg("case %zu: rc %d, message '%s', wanted '%s'", i, rc, cks_error_last(),
                     bad[i].want);
        cks_error_clear();
        cks_hub_tree_release(&t);
    }
}

static void test_hub__link_next(void **state)
{
    char *next;
    assert_int_equal(cks_hub_link_next("<https://h/a?cursor=1>; rel=\"next\"", D, &next), 0);
    assert_string_equal(next, "https://h/a?cursor=1");
    free(next);
    assert_int_equal(
        cks_hub_link_next("<https://h/p>; rel=prev, <https://h/n>; rel=next", D, &next), 0);
    assert_string_equal(next, "https://h/n");
    free(next);
    assert_int_equal(
        cks_hub_link_next("<https://h/n>; title=\"a, b; c\"; rel=\"prev next\"", D, &next), 0);
    assert_string_equal(next, "https://h/n");
    free(next);
    assert_int_equal(cks_hub_link_next("<https://h/p>; rel=\"prev\"", D, &next), 0);
    assert_null(next);
    assert_int_equal(cks_hub_link_next("", D, &next), 0);
    assert_null(next);
    cks_expect_error(cks_hub_link_next("<https://h/n; rel=next", D, &next), CKS_EFORMAT, D, "Link");
    cks_expect_error(cks_hub_link_next("https://h/n; rel=next", D, &next), CKS_EFORMAT, D, "Link");
    cks_expect_error(cks_hub_link_next("<>; rel=next", D, &next), CKS_EFORMAT, D, "empty");
    cks_expect_error(cks_hub_link_next("<x>; title=\"open", D, &next), CKS_EFORMAT, D, "Link");
}

static void test_hub__escape_and_origin(void **state)
{
    char *e;
    assert_int_equal(cks_http_escape("sub dir/a%b+c~.json", 1, &e), 0);
    assert_string_equal(e, "sub%20dir/a%25b%2Bc~.json");
    free(e);
    assert_int_equal(cks_http_escape("stage1/step1", 0, &e), 0);
    assert_string_equal(e, "stage1%2Fstep1");
    free(e);
    cks_http *h;
    cks_http_opts o = {"http://127.0.0.1:8080", "tok", 5, 5};
    assert_int_equal(cks_http_new(&h, &o), 0);
    assert_true(cks_http_same_origin(h, "http://127.0.0.1:8080/api/models/a/b/refs"));
    assert_true(cks_http_same_origin(h, "HTTP://127.0.0.1:8080/x"));
    assert_false(cks_http_same_origin(h, "http://localhost:8080/x"));
    assert_false(cks_http_same_origin(h, "https://127.0.0.1:8080/x"));
    assert_false(cks_http_same_origin(h, "http://127.0.0.1:8081/x"));
    assert_false(cks_http_same_origin(h, "http://127.0.0.1:8080@evil.example/x"));
    assert_false(cks_http_same_origin(h, "not a url"));
    cks_http_free(h);
    cks_http_opts d = {"https://huggingface.co", NULL, 5, 5};
    assert_int_equal(cks_http_new(&h, &d), 0);
    assert_true(cks_http_same_origin(h, "https://huggingface.co:443/x"));
    assert_true(cks_http_same_origin(h, "https://HuggingFace.co/x"));
    assert_false(cks_http_same_origin(h, "https://cdn-lfs.huggingface.co/x"));
    cks_http_free(h);
    cks_http_opts f = {"file:///etc", NULL, 5, 5};
    cks_expect_error(cks_http_new(&h, &f), CKS_EINVAL, "file:///etc", "http");
}

static void test_hub__sha256_known_answers(void **state)
{
    char hex[65];
    cks_sha256_hex("abc", 3, hex); /* FIPS 180-2, appendix B.1 */
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    cks_sha256_hex("", 0, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    /* B.3: a million 'a', fed in uneven pieces across block boundaries */
    static char a[1000];
    memset(a, 'a', sizeof a);
    cks_sha256 c;
    cks_sha256_init(&c);
    size_t done = 0, step = 1;
    while (done < 1000000) {
        size_t n = step < 1000000 - done ? step : 1000000 - done;
        n = n > sizeof a ? sizeof a : n;
        cks_sha256_update(&c, a, n);
        done += n;
        step = step * 7 % 997 + 1;
    }
    cks_sha256_final_hex(&c, hex);
    assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    /* B.2: 56 bytes, the padding spills into a second block */
    cks_sha256_init(&c);
    cks_sha256_update(&c, "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56);
    cks_sha256_final_hex(&c, hex);
    assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

/* The digest by the plain C blocks alone, padding as FIPS 180-4 §5.1.1 says. */
static void portable_hex(const unsigned char *p, size_t len, char hex[65])
{
    uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                     0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    unsigned char tail[128] = {0};
    size_t full = len / 64, r = len % 64, tl = r < 56 ? 64 : 128;
    cks_sha256_blocks_portable(h, p, full);
    memcpy(tail, p + full * 64, r);
    tail[r] = 0x80;
    for (int k = 0; k < 8; k++)
        tail[tl - 1 - k] = (unsigned char)((uint64_t)len * 8 >> (8 * k));
    cks_sha256_blocks_portable(h, tail, tl / 64);
    for (int k = 0; k < 8; k++)
        snprintf(hex + 8 * k, 9, "%08x", h[k]);
}

static void test_hub__sha256_both_implementations_agree(void **state)
{
    /* the run-time pick (SHA-NI where the CPU has it) against the plain C, on every length
     * up to five blocks and on 1 MiB fed in uneven pieces */
    size_t n = 1 << 20;
    unsigned char *buf = malloc(n);
    uint64_t x = 88172645463325252ull;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        buf[i] = (unsigned char)x;
    }
    char a[65], b[65];
    for (size_t len = 0; len <= 320; len++) {
        cks_sha256_hex(buf, len, a);
        portable_hex(buf, len, b);
        assert_string_equal(a, b);
    }
    cks_sha256 c;
    cks_sha256_init(&c);
    for (size_t done = 0, step = 3; done < n; step = step * 5 % 70001 + 1) {
        size_t k = step < n - done ? step : n - done;
        cks_sha256_update(&c, buf + done, k);
        done += k;
    }
    cks_sha256_final_hex(&c, a);
    portable_hex(buf, n, b);
    assert_string_equal(a, b);
    free(buf);
}

static void test_hub__cache_layout(void **state)
{
    char *tmp = cks_tmpdir_new("hubcache"), p[PATH_MAX], real[PATH_MAX], target[PATH_MAX];
    cks_hub_cache c;
    int found, created;
    assert_int_equal(cks_hub_cache_init(&c, tmp, "org/name"), 0);
    assert_int_equal(cks_hub_cache_create(&c), 0);
    snprintf(p, sizeof p, "%s/.locks/models--org--name", tmp);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    /* absent, then linked to a blob: huggingface_hub's relative links */
    assert_int_equal(cks_hub_cache_lookup(&c, GIT, "a/b/w.bin", real, sizeof real, &found), 0);
    assert_false(found);
    snprintf(p, sizeof p, "%s/models--org--name/blobs/%s", tmp, SHA);
    cks_write_file(p, "hello", 5);
    assert_int_equal(cks_hub_cache_link(&c, GIT, "a/b/w.bin", SHA, &created), 0);
    assert_true(created);
    snprintf(p, sizeof p, "%s/models--org--name/snapshots/%s/a/b/w.bin", tmp, GIT);
    ssize_t n = readlink(p, target, sizeof target - 1);
    assert_true(n > 0);
    target[n] = '\0';
    assert_string_equal(target, "../../../../blobs/" SHA);
    assert_int_equal(cks_hub_cache_lookup(&c, GIT, "a/b/w.bin", real, sizeof real, &found), 0);
    assert_true(found);
    assert_non_null(strstr(real, "/blobs/" SHA));
    assert_int_equal(cks_hub_cache_link(&c, GIT, "a/b/w.bin", SHA, &created), 0);
    assert_false(created); /* there already */
    /* refs, written once */
    assert_int_equal(cks_hub_cache_write_ref(&c, "stage1/step1", GIT), 0);
    assert_int_equal(cks_hub_cache_write_ref(&c, "stage1/step1", GIT), 0);
    snprintf(p, sizeof p, "%s/models--org--name/refs/stage1/step1", tmp);
    size_t len;
    unsigned char *text = cks_read_test_file(p, &len);
    assert_int_equal(len, 40);
    assert_memory_equal(text, GIT, 40);
    free(text);
    /* unlink removes the link and the folders it emptied, not the snapshot's parent */
    cks_hub_cache_unlink(&c, GIT, "a/b/w.bin", SHA);
    snprintf(p, sizeof p, "%s/models--org--name/snapshots/%s/a", tmp, GIT);
    assert_int_not_equal(lstat(p, &st), 0);
    snprintf(p, sizeof p, "%s/models--org--name/snapshots", tmp);
    assert_int_equal(stat(p, &st), 0);
    /* a link already in the cache that leads outside it is refused */
    assert_int_equal(cks_hub_cache_link(&c, GIT, "x.json", SHA, &created), 0);
    snprintf(p, sizeof p, "%s/models--org--name/snapshots/%s/evil.json", tmp, GIT);
    assert_int_equal(symlink("/etc/hostname", p), 0);
    cks_expect_error(cks_hub_cache_lookup(&c, GIT, "evil.json", real, sizeof real, &found),
                     CKS_EFORMAT, "evil.json", "outside the cache");
    /* a dangling link counts as absent and is replaced */
    snprintf(p, sizeof p, "%s/models--org--name/snapshots/%s/gone.json", tmp, GIT);
    assert_int_equal(symlink("../../blobs/0000", p), 0);
    assert_int_equal(cks_hub_cache_lookup(&c, GIT, "gone.json", real, sizeof real, &found), 0);
    assert_false(found);
    assert_int_equal(cks_hub_cache_link(&c, GIT, "gone.json", SHA, &created), 0);
    assert_true(created);
    /* a folder on the way that is a symlink is not written through */
    snprintf(p, sizeof p, "%s/models--org--name/snapshots/%s/d", tmp, GIT);
    assert_int_equal(symlink(tmp, p), 0);
    cks_expect_error(cks_hub_cache_link(&c, GIT, "d/f.json", SHA, &created), CKS_EFORMAT,
                     "not a folder", NULL);
    cks_hub_cache_release(&c);
    cks_tmpdir_remove(tmp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hub__repo_ids),
        cmocka_unit_test(test_hub__refs),
        cmocka_unit_test(test_hub__tree),
        cmocka_unit_test(test_hub__link_next),
        cmocka_unit_test(test_hub__escape_and_origin),
        cmocka_unit_test(test_hub__sha256_known_answers),
        cmocka_unit_test(test_hub__sha256_both_implementations_agree),
        cmocka_unit_test(test_hub__cache_layout),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
