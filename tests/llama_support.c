/* Test helpers for the forward pass (see llama_support.h). */
#include "llama_support.h"
#include "sha256.h"
#include "testutil.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void lfx_model_default(cks_fx_model *m)
{
    cks_fx_spec s;
    cks_fx_spec_default(&s, NULL);
    *m = s.model;
    m->hidden = 64;
    m->intermediate = 160;
    m->layers = 2;
    m->heads = 4;
    m->kv_heads = 2;
    m->vocab = 256;
    m->max_pos = 128;
    m->rope_theta = 50000.0;
    m->eps = 1e-3;
    m->std = 0.3;
}

void lfx_open(lfx *f, const cks_fx_model *m, const char *tag)
{
    char dir[4096];
    cks_fx_spec s;
    memset(f, 0, sizeof *f);
    f->tmp = cks_tmpdir_new(tag);
    snprintf(dir, sizeof dir, "%s/src", f->tmp);
    cks_fx_spec_default(&s, dir);
    s.layout = CKS_FX_FOLDER;
    s.nckpt = 1;
    s.model = *m;
    assert_int_equal(cks_fx_write(&s), 0);
    snprintf(f->ckdir, sizeof f->ckdir, "%s/ckpt_000", dir);
    assert_int_equal(cks_source_open(&f->src, dir, NULL), 0);
    assert_int_equal(cks_ckpt_open(&f->ck, f->src, 0), 0);
    assert_int_equal(cks_ckpt_config(f->ck, &f->cfg), 0);
    assert_int_equal(cks_weights_open(&f->w, f->ck), 0);
}

void lfx_close(lfx *f)
{
    cks_weights_free(f->w);
    cks_ckpt_free(f->ck);
    cks_source_free(f->src);
    cks_tmpdir_remove(f->tmp);
    memset(f, 0, sizeof *f);
}

/* Appends "<path relative to tmp> <sha256>" lines for path (a file, or a folder file by
 * file in name order) to text. */
static void digest_path(const char *tmp, const char *path, char **text, size_t *len)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return;
    if (S_ISDIR(st.st_mode)) {
        struct dirent **ents;
        int n = scandir(path, &ents, NULL, alphasort);
        assert_true(n >= 0);
        for (int i = 0; i < n; i++) {
            if (strcmp(ents[i]->d_name, ".") != 0 && strcmp(ents[i]->d_name, "..") != 0) {
                char sub[4096];
                snprintf(sub, sizeof sub, "%s/%s", path, ents[i]->d_name);
                digest_path(tmp, sub, text, len);
            }
            free(ents[i]);
        }
        free(ents);
        return;
    }
    size_t n;
    unsigned char *data = cks_read_test_file(path, &n);
    char hex[65], line[4400];
    cks_sha256_hex(data, n, hex);
    free(data);
    size_t k = strlen(tmp);
    int m =
        snprintf(line, sizeof line, "%s %s\n", strncmp(path, tmp, k) == 0 ? path + k : path, hex);
    *text = realloc(*text, *len + (size_t)m + 1);
    memcpy(*text + *len, line, (size_t)m + 1);
    *len += (size_t)m;
}

/* The inputs a reference is computed from, as one digest: args with the temporary folder
 * tmp cut out of its paths, then every file args names (a word, or what follows NAME= up
 * to an optional :FORMAT) with its SHA-256. */
static void inputs_digest(const char *tmp, const char *args, char hex[65])
{
    size_t len = 0, k = strlen(tmp);
    char *text = calloc(1, 1), *copy = strdup(args), *save = NULL;
    for (const char *p = args; *p; p++) { /* args with tmp cut out */
        if (strncmp(p, tmp, k) == 0)
            p += k;
        text = realloc(text, len + 2);
        text[len++] = *p;
        text[len] = '\0';
    }
    text = realloc(text, len + 2);
    text[len++] = '\n';
    text[len] = '\0';
    for (char *w = strtok_r(copy, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
        char *path = strchr(w, '=') ? strchr(w, '=') + 1 : w, *colon = strrchr(path, ':');
        if (colon)
            *colon = '\0';
        if (strncmp(path, tmp, k) == 0)
            digest_path(tmp, path, &text, &len);
    }
    cks_sha256_hex(text, len, hex);
    free(copy);
    free(text);
}

json_t *lfx_reference(const char *tmp, const char *name, const char *args)
{
    const char *rec = getenv("CKS_LLAMA_REF_RECORD");
    char path[4096], cmd[16384], digest[65];
    json_error_t jerr;
    inputs_digest(tmp, args, digest);
    if (!rec) {
        const char *src = getenv("CKS_SOURCE_DIR");
        assert_non_null(src);
        snprintf(path, sizeof path, "%s/tests/data/llama/%s.json", src, name);
        json_t *j = json_load_file(path, 0, &jerr);
        if (!j)
            fail_msg("%s: %s (tools/make_llama_refs.sh makes it)", path, jerr.text);
        const char *made = json_string_value(json_object_get(j, "inputs"));
        if (!made || strcmp(made, digest) != 0)
            fail_msg("%s was made from other inputs than this test's (model, ids or token "
                     "files changed): remake it with tools/make_llama_refs.sh",
                     path);
        return j;
    }
    const char *py = getenv("CKS_PYTHON"), *srcdir = getenv("CKS_SOURCE_DIR");
    assert_non_null(py);
    assert_non_null(srcdir);
    snprintf(path, sizeof path, "%s/%s.json", rec, name);
    snprintf(cmd, sizeof cmd, "%s %s/tools/llama_ref.py %s --out %s", py, srcdir, args, path);
    if (system(cmd) != 0)
        fail_msg("reference failed: %s", cmd);
    json_t *j = json_load_file(path, 0, &jerr);
    assert_non_null(j);
    /* the inputs' digest, and 9 significant digits: the float32 logits' shortest forms
     * stay as they are, float64 sums keep far more than the tests' 1e-5 */
    json_object_set_new(j, "inputs", json_string(digest));
    assert_int_equal(json_dump_file(j, path, JSON_COMPACT | JSON_REAL_PRECISION(9)), 0);
    return j;
}
