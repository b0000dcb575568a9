/* Format detection and tensor views for one checkpoint (see weights.h). */
#include "weights.h"
#include "error.h"
#include "model_family.h"
#include "safetensors.h"
#include "shard_index.h"
#include "torchbin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Format readers: append the tensors of one mapped file. */
typedef int (*format_parse_fn)(const cks_map *m, int file, cks_tensor_list *out);

static const struct {
    cks_format format;
    const char *index, *single;
    format_parse_fn parse;
} formats[] = {
    {CKS_FORMAT_SAFETENSORS, "model.safetensors.index.json", "model.safetensors",
     cks_safetensors_parse},
    {CKS_FORMAT_PYTORCH, "pytorch_model.bin.index.json", "pytorch_model.bin", cks_torchbin_parse},
};

const char *cks_format_name(cks_format f)
{
    return f == CKS_FORMAT_SAFETENSORS ? "safetensors" : f == CKS_FORMAT_PYTORCH ? "pytorch" : NULL;
}

void cks_weight_files_release(cks_weight_files *wf)
{
    if (!wf)
        return;
    for (size_t i = 0; i < wf->nfiles; i++)
        free(wf->files[i]);
    free(wf->files);
    free(wf->index);
    memset(wf, 0, sizeof *wf);
}

static int set_single(cks_weight_files *wf, cks_format f, const char *name)
{
    wf->format = f;
    wf->files = calloc(1, sizeof *wf->files);
    if (!wf->files || !(wf->files[0] = strdup(name)))
        return cks_error_set(CKS_ENOMEM, "out of memory");
    wf->nfiles = 1;
    return 0;
}

static int from_index(const cks_ckpt *c, cks_format f, const char *index, cks_weight_files *wf,
                      cks_shard_index *ix_out)
{
    char *text = NULL, display[4096];
    size_t len;
    cks_shard_index ix;
    int err = cks_ckpt_read(c, index, CKS_MAX_INDEX_BYTES, &text, &len);
    if (err)
        return err;
    cks_ckpt_display(c, index, display, sizeof display);
    err = cks_shard_index_parse(text, len, display, &ix);
    free(text);
    if (err)
        return err;
    for (size_t i = 0; i < ix.nfiles; i++) {
        if (cks_ckpt_find_file(c, ix.files[i]) < 0) {
            err = cks_error_set(CKS_ENOTFOUND,
                                "%s: names shard '%s', which is not in the "
                                "checkpoint",
                                display, ix.files[i]);
            cks_shard_index_release(&ix);
            return err;
        }
    }
    wf->format = f;
    wf->files = ix.files; /* take ownership of the distinct sorted names */
    wf->nfiles = ix.nfiles;
    ix.files = NULL;
    ix.nfiles = 0;
    if (!(wf->index = strdup(index))) {
        cks_shard_index_release(&ix);
        return cks_error_set(CKS_ENOMEM, "out of memory");
    }
    if (ix_out)
        *ix_out = ix;
    else
        cks_shard_index_release(&ix);
    return 0;
}

static int find_files(const cks_ckpt *c, cks_weight_files *out, cks_shard_index *ix)
{
    cks_weight_files wf;
    int err = 0;
    memset(&wf, 0, sizeof wf);
    if (ix)
        memset(ix, 0, sizeof *ix);
    for (size_t k = 0; k < sizeof formats / sizeof formats[0]; k++) {
        if (cks_ckpt_find_file(c, formats[k].index) >= 0) {
            err = from_index(c, formats[k].format, formats[k].index, &wf, ix);
            goto done;
        }
        if (cks_ckpt_find_file(c, formats[k].single) >= 0) {
            err = set_single(&wf, formats[k].format, formats[k].single);
            goto done;
        }
    }
    {
        const cks_ckpt_info *ci = cks_ckpt_info_of(c);
        return cks_error_set(CKS_ENOTFOUND,
                             "%s@%s: no weights (looked for model.safetensors[.index.json] and "
                             "pytorch_model.bin[.index.json])",
                             cks_source_path(cks_ckpt_source(c)), ci->name);
    }
done:
    if (err) {
        cks_weight_files_release(&wf);
        return err;
    }
    *out = wf;
    return 0;
}

cks_format cks_weight_format_detect(const cks_ckpt *c)
{
    for (size_t k = 0; k < sizeof formats / sizeof formats[0]; k++)
        if (cks_ckpt_find_file(c, formats[k].index) >= 0 ||
            cks_ckpt_find_file(c, formats[k].single) >= 0)
            return formats[k].format;
    return CKS_FORMAT_NONE;
}

int cks_weight_files_find(const cks_ckpt *c, cks_weight_files *out)
{
    return find_files(c, out, NULL);
}

struct cks_weights {
    cks_format format;
    cks_map **maps;
    size_t nmaps;
    cks_tensor_list tensors;
    cks_tensor_list buffers;
    const cks_model_family *family;
};

void cks_weights_free(cks_weights *w)
{
    if (!w)
        return;
    cks_tensor_list_release(&w->tensors); /* views first, then what they borrow from */
    cks_tensor_list_release(&w->buffers);
    for (size_t i = 0; i < w->nmaps; i++)
        cks_map_free(w->maps[i]);
    free(w->maps);
    free(w);
}

static int check_index(const cks_weights *w, const cks_weight_files *wf, const cks_shard_index *ix,
                       const char *display)
{
    for (size_t i = 0; i < ix->ntensors; i++) {
        long t = cks_tensor_list_find(&w->tensors, ix->tensors[i]);
        if (t < 0)
            return cks_error_set(CKS_EFORMAT, "%s: tensor '%s' is not in its shard '%s'", display,
                                 ix->tensors[i], wf->files[ix->file_of[i]]);
        if ((size_t)w->tensors.items[t].file != ix->file_of[i])
            return cks_error_set(CKS_EFORMAT, "%s: tensor '%s' is in '%s', the index says '%s'",
                                 display, ix->tensors[i], wf->files[w->tensors.items[t].file],
                                 wf->files[ix->file_of[i]]);
    }
    return 0;
}

/* The q, k, v row blocks of a fused per-head [q|k|v] projection t (DESIGN §2): per head
 * h, rows [3hd, 3hd+d) are q, the next d rows k, the next d v. */
static int split_fused(cks_tensor_list *out, const cks_tensor *t, const cks_config *cfg,
                       const char *display)
{
    int64_t heads = cfg ? cfg->num_attention_heads : 0, rows = t->ndim ? t->shape[0] : 0;
    if (heads <= 0)
        return cks_error_set(CKS_EFORMAT,
                             "%s: config.json gives no num_attention_heads, which splitting the "
                             "fused %s into q, k and v needs",
                             display, t->name);
    if (t->ndim < 1 || t->ndim > 2 || rows % (3 * heads) != 0 ||
        (cfg->hidden_size > 0 && rows != 3 * cfg->hidden_size))
        return cks_error_set(CKS_EFORMAT,
                             "%s: tensor %s has %lld rows, not num_attention_heads (%lld) x 3 x "
                             "head size (hidden_size %lld / heads)",
                             display, t->name, (long long)rows, (long long)heads,
                             (long long)cfg->hidden_size);
    int64_t d = rows / (3 * heads);
    size_t row = (size_t)t->numel / (size_t)rows * cks_dtype_size(t->dtype);
    char name[512];
    for (int p = 0; p < 3; p++) {
        cks_tensor v = *t;
        snprintf(name, sizeof name, "%s:%c", t->name, "qkv"[p]);
        v.name = name;
        v.shape[0] = heads * d;
        v.numel = t->numel / 3;
        v.nbytes = t->nbytes / 3;
        v.data = (const unsigned char *)t->data + (size_t)(p * d) * row;
        v.block_rows = d;
        v.block_stride = 3 * d;
        int err = cks_tensor_list_push(out, &v);
        if (err)
            return err;
    }
    return 0;
}

/* Names every tensor with the family's mapper, sets the buffers apart and splits fused
 * projections. The config is read leniently: without one (or with one that does not
 * parse) the names are LLaMA's, and a fused projection stays whole (kind other); the
 * commands that need the config report its problems. */
static int organise(cks_weights *w, const cks_ckpt *c, const char *display)
{
    cks_config cfg;
    const cks_config *cp = NULL;
    cks_tensor_list all = w->tensors;
    int err = 0;
    if (cks_ckpt_find_file(c, "config.json") >= 0) {
        if (cks_ckpt_config(c, &cfg) == 0)
            cp = &cfg;
        else
            cks_error_clear();
    }
    w->family = cp ? cp->family : NULL;
    cks_tensor_list_init(&w->tensors);
    for (size_t i = 0; i < all.count && !err; i++) {
        const cks_tensor *t = &all.items[i];
        int layer;
        cks_kind kind;
        if (cks_model_family_classify(w->family, t->name, &layer, &kind))
            err = cks_tensor_list_push(&w->buffers, t);
        else if (cks_model_family_is_fused(w->family, t->name))
            err = split_fused(&w->tensors, t, cp, display);
        else
            err = cks_tensor_list_push(&w->tensors, t);
    }
    cks_tensor_list_release(&all);
    for (size_t i = 0; i < w->tensors.count; i++)
        cks_model_family_classify(w->family, w->tensors.items[i].name, &w->tensors.items[i].layer,
                                  &w->tensors.items[i].kind);
    for (size_t i = 0; i < w->buffers.count; i++)
        cks_model_family_classify(w->family, w->buffers.items[i].name, &w->buffers.items[i].layer,
                                  &w->buffers.items[i].kind);
    return err;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int cks_weights_open(cks_weights **out, const cks_ckpt *c)
{
    cks_weight_files wf;
    cks_shard_index ix;
    cks_weights *w = NULL;
    const char **names = NULL;
    int err;
    char display[4096];

    if ((err = find_files(c, &wf, &ix)) != 0)
        return err;
    format_parse_fn parse = NULL;
    for (size_t k = 0; k < sizeof formats / sizeof formats[0]; k++)
        if (formats[k].format == wf.format)
            parse = formats[k].parse;
    if (!(w = calloc(1, sizeof *w)) || !(w->maps = calloc(wf.nfiles, sizeof *w->maps))) {
        err = cks_error_set(CKS_ENOMEM, "out of memory");
        goto done;
    }
    w->format = wf.format;
    cks_tensor_list_init(&w->tensors);
    cks_tensor_list_init(&w->buffers);
    for (size_t i = 0; i < wf.nfiles; i++) {
        if ((err = cks_ckpt_map(c, wf.files[i], &w->maps[i])) != 0)
            goto done;
        w->nmaps++;
        if ((err = parse(w->maps[i], (int)i, &w->tensors)) != 0)
            goto done;
    }
    /* a tensor in two files is ambiguous */
    if (!(names = malloc((w->tensors.count ? w->tensors.count : 1) * sizeof *names))) {
        err = cks_error_set(CKS_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < w->tensors.count; i++)
        names[i] = w->tensors.items[i].name;
    qsort(names, w->tensors.count, sizeof *names, cmp_name);
    for (size_t i = 1; i < w->tensors.count; i++) {
        if (strcmp(names[i], names[i - 1]) == 0) {
            err = cks_error_set(CKS_EFORMAT, "%s@%s: tensor '%s' appears in two weight files",
                                cks_source_path(cks_ckpt_source(c)), cks_ckpt_info_of(c)->name,
                                names[i]);
            goto done;
        }
    }
    /* sorted for reading, indexed for lookups by name (check_index, and scan and diff look
     * up every tensor in another checkpoint) */
    cks_tensor_list_sort(&w->tensors);
    if ((err = cks_tensor_list_index(&w->tensors)) != 0)
        goto done;
    if (wf.index &&
        (err = check_index(w, &wf, &ix, cks_ckpt_display(c, wf.index, display, sizeof display))))
        goto done;
    snprintf(display, sizeof display, "%s@%s", cks_source_path(cks_ckpt_source(c)),
             cks_ckpt_info_of(c)->name);
    if ((err = organise(w, c, display)) != 0)
        goto done;
    cks_tensor_list_sort(&w->tensors);
    if ((err = cks_tensor_list_index(&w->tensors)) != 0)
        goto done;
    *out = w;
    w = NULL;
done:
    free(names);
    cks_weights_free(w);
    cks_shard_index_release(&ix);
    cks_weight_files_release(&wf);
    return err;
}

cks_format cks_weights_format(const cks_weights *w)
{
    return w->format;
}

const cks_tensor_list *cks_weights_tensors(const cks_weights *w)
{
    return &w->tensors;
}

const cks_tensor_list *cks_weights_buffers(const cks_weights *w)
{
    return &w->buffers;
}

const cks_model_family *cks_weights_family(const cks_weights *w)
{
    return w->family;
}

int cks_weights_check(const cks_weights *w)
{
    for (size_t i = 0; i < w->nmaps; i++) {
        int err = cks_map_check(w->maps[i]);
        if (err)
            return err;
    }
    return 0;
}

const cks_map *cks_weights_file(const cks_weights *w, int file)
{
    return file >= 0 && (size_t)file < w->nmaps ? w->maps[file] : NULL;
}
