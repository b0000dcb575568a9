/* Test helpers for the forward pass (see llama_support.h). */
#include "llama_support.h"
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

json_t *lfx_reference(const char *args)
{
    const char *py = getenv("CKS_PYTHON"), *srcdir = getenv("CKS_SOURCE_DIR");
    char out[4096], cmd[16384];
    if (!py || !srcdir || access(py, X_OK) != 0)
        return NULL;
    snprintf(cmd, sizeof cmd, "%s -c 'import torch' 2>/dev/null", py);
    if (system(cmd) != 0)
        return NULL;
    char *tmp = cks_tmpdir_new("ref");
    snprintf(out, sizeof out, "%s/ref.json", tmp);
    snprintf(cmd, sizeof cmd, "%s %s/tools/llama_ref.py %s --out %s", py, srcdir, args, out);
    if (system(cmd) != 0) {
        print_error("reference failed: %s\n", cmd);
        cks_tmpdir_remove(tmp);
        fail();
    }
    json_error_t jerr;
    json_t *j = json_load_file(out, 0, &jerr);
    cks_tmpdir_remove(tmp);
    assert_non_null(j);
    return j;
}
