/* Test helpers for the forward pass (see model_support.h). */
#include "model_support.h"
#include "testutil.h"
#include "tokfile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static void open_dir(lfx *f, const char *dir, const char *ckpt)
{
    size_t idx = 0;
    snprintf(f->ckdir, sizeof f->ckdir, "%s/%s", dir, ckpt);
    assert_int_equal(cks_source_open(&f->src, dir, NULL), 0);
    assert_int_equal(cks_source_find(f->src, ckpt, &idx), 0);
    assert_int_equal(cks_ckpt_open(&f->ck, f->src, idx), 0);
    assert_int_equal(cks_ckpt_config(f->ck, &f->cfg), 0);
    assert_int_equal(cks_weights_open(&f->w, f->ck), 0);
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
    open_dir(f, dir, "ckpt_000");
}

void lfx_close(lfx *f)
{
    cks_weights_free(f->w);
    cks_ckpt_free(f->ck);
    cks_source_free(f->src);
    cks_tmpdir_remove(f->tmp);
    memset(f, 0, sizeof *f);
}

json_t *golden_load(void)
{
    const char *srcdir = getenv("CKS_SOURCE_DIR");
    char path[4096];
    json_error_t e;
    assert_non_null(srcdir);
    snprintf(path, sizeof path, "%s/tools/family_ref.json", srcdir);
    json_t *g = json_load_file(path, 0, &e);
    if (!g)
        fail_msg("%s: %s (line %d)", path, e.text, e.line);
    return g;
}

json_t *golden_case(json_t *golden, const char *name)
{
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(golden, "cases"), i, c)
    {
        if (strcmp(json_string_value(json_object_get(c, "name")), name) == 0)
            return c;
    }
    fail_msg("no case %s in tools/family_ref.json", name);
    return NULL;
}

void golden_open(lfx *f, json_t *c)
{
    json_t *args = json_object_get(c, "fixture");
    size_t n = json_array_size(args);
    char dir[4096], **argv = calloc(n + 2, sizeof *argv);
    cks_fx_spec s;
    memset(f, 0, sizeof *f);
    f->tmp = cks_tmpdir_new("golden");
    snprintf(dir, sizeof dir, "%s/src", f->tmp);
    argv[0] = "cks-fixture";
    for (size_t i = 0; i < n; i++)
        argv[i + 1] = (char *)json_string_value(json_array_get(args, i));
    argv[n + 1] = dir;
    assert_int_equal(cks_fx_spec_from_args(&s, (int)n + 2, argv), 0);
    free(argv);
    assert_int_equal(cks_fx_write(&s), 0);
    open_dir(f, dir, json_string_value(json_object_get(c, "ckpt")));
}

static void write_set(json_t *set, const char *path)
{
    const char *fmt = json_string_value(json_object_get(set, "format"));
    json_t *docs = json_object_get(set, "docs"), *doc, *id;
    size_t d, i;
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    json_int_t blank = json_integer_value(json_object_get(set, "blank_after"));
    int has_blank = json_object_get(set, "blank_after") != NULL;
    json_array_foreach(docs, d, doc)
    {
        if (strcmp(fmt, "jsonl") == 0) {
            fputs("{\"token_ids\": [", fp);
            json_array_foreach(doc, i, id)
                fprintf(fp, "%s%lld", i ? ", " : "", (long long)json_integer_value(id));
            fputs("]}\n", fp);
            if (has_blank && (json_int_t)d == blank)
                fputs("\n", fp);
            continue;
        }
        json_array_foreach(doc, i, id)
        {
            uint32_t v = (uint32_t)json_integer_value(id);
            unsigned char b[4] = {(unsigned char)v, (unsigned char)(v >> 8),
                                  (unsigned char)(v >> 16), (unsigned char)(v >> 24)};
            fwrite(b, 1, strcmp(fmt, "u16") == 0 ? 2 : 4, fp);
        }
    }
    assert_int_equal(fclose(fp), 0);
}

int golden_sets(const lfx *f, json_t *c, cks_docset *sets, int cap)
{
    json_t *all = json_object_get(c, "sets"), *set;
    size_t k;
    char path[4200];
    assert_true(json_array_size(all) <= (size_t)cap);
    json_array_foreach(all, k, set)
    {
        const char *name = json_string_value(json_object_get(set, "name"));
        const char *fmt = json_string_value(json_object_get(set, "format"));
        snprintf(path, sizeof path, "%s/%s.%s", f->tmp, name, fmt);
        write_set(set, path);
        assert_int_equal(cks_tokfile_read(&sets[k], path, name, CKS_TOKFILE_AUTO), 0);
    }
    return (int)json_array_size(all);
}

double jnum(json_t *j)
{
    return json_number_value(j);
}
