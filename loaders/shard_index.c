/* Shard index json parsing (see shard_index.h). */
#include "shard_index.h"
#include "error.h"
#include "json.h"
#include "path.h"
#include "safetensors.h"

#include <stdlib.h>
#include <string.h>

void cks_shard_index_release(cks_shard_index *ix)
{
    if (!ix)
        return;
    for (size_t i = 0; i < ix->nfiles; i++)
        free(ix->files[i]);
    for (size_t i = 0; i < ix->ntensors; i++)
        free(ix->tensors[i]);
    free(ix->files);
    free(ix->tensors);
    free(ix->file_of);
    memset(ix, 0, sizeof *ix);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int cks_shard_index_parse(const char *text, size_t len, const char *display, cks_shard_index *out)
{
    cks_shard_index ix;
    json_t *j = NULL;
    int err;
    memset(&ix, 0, sizeof ix);
    if ((err = cks_json_parse(text, len, display, 1, &j)) != 0)
        return err;
    json_t *wm = json_object_get(j, "weight_map");
    if (!json_is_object(wm)) {
        err = cks_error_set(CKS_EFORMAT, "%s: no \"weight_map\" object", display);
        goto done;
    }
    size_t n = json_object_size(wm);
    if (n > CKS_MAX_TENSORS) {
        err = cks_error_set(CKS_ELIMIT, "%s: %zu tensors (limit %d)", display, n, CKS_MAX_TENSORS);
        goto done;
    }
    ix.tensors = calloc(n ? n : 1, sizeof *ix.tensors);
    ix.file_of = calloc(n ? n : 1, sizeof *ix.file_of);
    char **names = calloc(n ? n : 1, sizeof *names); /* borrowed shard names, one per tensor */
    ix.files = calloc(n ? n : 1, sizeof *ix.files);
    if (!ix.tensors || !ix.file_of || !names || !ix.files) {
        free(names);
        err = cks_error_set(CKS_ENOMEM, "out of memory");
        goto done;
    }
    const char *key;
    json_t *val;
    json_object_foreach(wm, key, val)
    {
        if (!json_is_string(val)) {
            err = cks_error_set(CKS_EFORMAT, "%s: shard of '%s' is not a string", display, key);
            break;
        }
        const char *f = json_string_value(val);
        if (cks_path_check_relative(f) != 0) {
            err = cks_error_set(CKS_EFORMAT,
                                "%s: shard '%s' of '%s' is not a plain path inside the "
                                "checkpoint",
                                display, f, key);
            break;
        }
        if (!(ix.tensors[ix.ntensors] = strdup(key))) {
            err = cks_error_set(CKS_ENOMEM, "out of memory");
            break;
        }
        names[ix.ntensors++] = (char *)f;
    }
    if (!err) {
        /* distinct shard names, sorted */
        char **sorted = malloc((n ? n : 1) * sizeof *sorted);
        if (!sorted) {
            err = cks_error_set(CKS_ENOMEM, "out of memory");
        } else {
            memcpy(sorted, names, ix.ntensors * sizeof *sorted);
            qsort(sorted, ix.ntensors, sizeof *sorted, cmp_str);
            for (size_t i = 0; i < ix.ntensors && !err; i++) {
                if (ix.nfiles && strcmp(ix.files[ix.nfiles - 1], sorted[i]) == 0)
                    continue;
                if (!(ix.files[ix.nfiles] = strdup(sorted[i])))
                    err = cks_error_set(CKS_ENOMEM, "out of memory");
                else
                    ix.nfiles++;
            }
            for (size_t i = 0; i < ix.ntensors && !err; i++) {
                char **hit = bsearch(&names[i], ix.files, ix.nfiles, sizeof *ix.files, cmp_str);
                ix.file_of[i] = (size_t)(hit - ix.files);
            }
            free(sorted);
        }
    }
    free(names);
    if (!err) {
        *out = ix;
        memset(&ix, 0, sizeof ix);
    }
done:
    cks_shard_index_release(&ix);
    json_decref(j);
    return err;
}
