/* Fuzz target: what the hub's API sends the hf:// source (hub_api.h). The first byte
 * picks the parser, the rest is its input: 0 a refs response (cks_hub_refs_parse), 1 one
 * or more tree pages separated by NUL bytes (cks_hub_tree_parse each, then
 * cks_hub_tree_finish), 2 a Link header (cks_hub_link_next), 3 an hf:// repository id
 * (cks_hub_repo_check). Every name that becomes a path must come out safe. */
#include "check.h"
#include "fuzz.h"
#include "hub_api.h"
#include "lfs.h"
#include "path.h"

#define DISPLAY "hf://fuzz/repo@ckpt_000"

static int hex_of(const char *s, size_t n)
{
    return strlen(s) == n && strspn(s, "0123456789abcdef") == n;
}

static void refs(const char *text, size_t len)
{
    cks_hub_refs r = {0};
    int err = cks_hub_refs_parse(text, len, DISPLAY, &r);
    if (err) {
        fuzz_check_refusal(err, DISPLAY);
    } else {
        for (size_t i = 0; i < r.count; i++) {
            FUZZ_REQUIRE(cks_path_check_relative(r.items[i].name) == 0);
            FUZZ_REQUIRE(strlen(r.items[i].name) <= CKS_HUB_MAX_REFNAME);
            FUZZ_REQUIRE(hex_of(r.items[i].commit, 40));
        }
    }
    cks_hub_refs_release(&r);
}

static void tree(const char *text, size_t len)
{
    cks_hub_tree t = {0};
    int err = 0;
    for (size_t off = 0; off <= len && !err;) {
        const char *end = memchr(text + off, '\0', len - off);
        size_t n = end ? (size_t)(end - (text + off)) : len - off;
        err = cks_hub_tree_parse(text + off, n, DISPLAY, &t);
        off += n + 1;
    }
    if (!err)
        err = cks_hub_tree_finish(&t, DISPLAY);
    if (err) {
        fuzz_check_refusal(err, DISPLAY);
    } else {
        for (size_t i = 0; i < t.count; i++) {
            const cks_hub_entry *e = &t.items[i];
            FUZZ_REQUIRE(cks_path_check_relative(e->path) == 0);
            FUZZ_REQUIRE(strlen(e->path) <= CKS_HUB_MAX_PATH);
            FUZZ_REQUIRE(e->size <= CKS_LFS_MAX_SIZE);
            FUZZ_REQUIRE(hex_of(e->blob, e->lfs ? 64 : 40));
            FUZZ_REQUIRE(i == 0 || strcmp(t.items[i - 1].path, e->path) < 0);
        }
    }
    cks_hub_tree_release(&t);
}

static void link_header(const char *text, size_t len)
{
    char *s = strndup(text, len), *next = NULL;
    if (!s)
        return;
    int err = cks_hub_link_next(s, DISPLAY, &next);
    if (err) {
        fuzz_check_refusal(err, DISPLAY);
        FUZZ_REQUIRE(next == NULL);
    } else if (next) {
        FUZZ_REQUIRE(*next && !strchr(next, '>') && strstr(s, next));
    }
    free(next);
    free(s);
}

static void repo(const char *text, size_t len)
{
    char *s = strndup(text, len);
    if (!s)
        return;
    int err = cks_hub_repo_check(s);
    if (err) {
        fuzz_check_refusal(err, "hf://");
    } else {
        const char *slash = strchr(s, '/');
        FUZZ_REQUIRE(slash && !strchr(slash + 1, '/') && !strstr(s, "..") && !strstr(s, "--"));
        FUZZ_REQUIRE(s[0] != '.' && slash[1] != '.' &&
                     strspn(s, "abcdefghijklmnopqrstuvwxyz"
                               "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                               "0123456789._-/") == strlen(s));
    }
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const char *text = (const char *)data + 1;
    switch (data[0] % 4) {
    case 0:
        refs(text, size - 1);
        break;
    case 1:
        tree(text, size - 1);
        break;
    case 2:
        link_header(text, size - 1);
        break;
    default:
        repo(text, size - 1);
        break;
    }
    cks_error_clear();
    return 0;
}
