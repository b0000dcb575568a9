/* The marks of a part file (see part.h): writing the checkpoint list as JSON, reading
 * the marks back with every field checked, and comparing two lists. */
#include "part.h"
#include "error.h"
#include "json.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cks_part_list_encode(const cks_part_ckpt *c, size_t n, char **out)
{
    json_t *a = json_array();
    int err = a ? 0 : CKS_ENOMEM;
    for (size_t i = 0; i < n && !err; i++) {
        json_t *o = json_pack("{s:s, s:I, s:s}", "name", c[i].name, "step", (json_int_t)c[i].step,
                              "commit", c[i].commit ? c[i].commit : "");
        if (!o || json_array_append_new(a, o) != 0)
            err = CKS_ENOMEM;
    }
    char *text = err ? NULL : json_dumps(a, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(a);
    if (!text)
        return cks_error_set(CKS_ENOMEM, "out of memory");
    *out = text;
    return 0;
}

void cks_part_info_release(cks_part_info *p)
{
    for (size_t i = 0; p->ckpts && i < p->n; i++) {
        free(p->ckpts[i].name);
        free(p->ckpts[i].commit);
    }
    free(p->ckpts);
    free(p->ref);
    free(p->extends);
    memset(p, 0, sizeof *p);
}

/* A whole decimal integer in [lo, hi] from an attribute. */
static int attr_int(cks_store *s, const char *name, int64_t lo, int64_t hi, int64_t *out)
{
    char *v = NULL, *end;
    int err = cks_store_get_attr(s, "/", name, &v);
    if (err == CKS_ENOTFOUND)
        return cks_error_set(CKS_EFORMAT, "%s: damaged part file: no attribute '%s'",
                             cks_store_path(s), name);
    if (err)
        return err;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (!*v || *end || errno || x < lo || x > hi)
        err = cks_error_set(CKS_EFORMAT,
                            "%s: damaged part file: attribute '%s' is '%.40s', not an integer in "
                            "[%lld, %lld]",
                            cks_store_path(s), name, v, (long long)lo, (long long)hi);
    else
        *out = x;
    free(v);
    return err;
}

static int decode_list(const char *text, const char *display, cks_part_info *p)
{
    json_t *root = NULL;
    int err = cks_json_parse(text, strlen(text), display, 0, &root);
    if (err)
        return err;
    size_t n = json_is_array(root) ? json_array_size(root) : 0;
    if (!json_is_array(root)) {
        err = cks_error_set(CKS_EFORMAT, "%s: not a JSON array", display);
        goto done;
    }
    if (n > CKS_STORE_MAX_ROWS) {
        err = cks_error_set(CKS_ELIMIT, "%s: %zu checkpoints, more than %d", display, n,
                            CKS_STORE_MAX_ROWS);
        goto done;
    }
    if (!(p->ckpts = calloc(n ? n : 1, sizeof *p->ckpts))) {
        err = cks_error_set(CKS_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n && !err; i++) {
        const json_t *o = json_array_get(root, i);
        const char *name, *commit;
        int64_t step;
        char where[300];
        snprintf(where, sizeof where, "%s[%zu]", display, i);
        if (!json_is_object(o)) {
            err = cks_error_set(CKS_EFORMAT, "%s: not an object", where);
            break;
        }
        if ((err = cks_json_get_string(o, "name", 0, where, &name)) ||
            (err = cks_json_get_int(o, "step", -1, INT64_MAX, 0, 0, where, &step)) ||
            (err = cks_json_get_string(o, "commit", 0, where, &commit)))
            break;
        if (!*name || strlen(name) > CKS_STORE_MAX_NAME || strlen(commit) > CKS_STORE_MAX_NAME) {
            err = cks_error_set(CKS_EFORMAT, "%s: empty or overlong name or commit", where);
            break;
        }
        for (size_t k = 0; k < p->n; k++) {
            if (strcmp(p->ckpts[k].name, name) == 0) {
                err = cks_error_set(CKS_EFORMAT, "%s: checkpoint '%.200s' listed twice", display,
                                    name);
                break;
            }
        }
        if (err)
            break;
        if (!(p->ckpts[i].name = strdup(name)) || !(p->ckpts[i].commit = strdup(commit))) {
            free(p->ckpts[i].name);
            err = cks_error_set(CKS_ENOMEM, "out of memory");
            break;
        }
        p->ckpts[i].step = step;
        p->n = i + 1;
    }
done:
    json_decref(root);
    return err;
}

int cks_part_read(cks_store *s, cks_part_info *out)
{
    cks_part_info p;
    char *list = NULL, display[4200];
    memset(&p, 0, sizeof p);
    char *probe = NULL;
    int err = cks_store_get_attr(s, "/", CKS_PART_SHARD, &probe);
    free(probe);
    if (err)
        return err; /* CKS_ENOTFOUND: a whole run */
    snprintf(display, sizeof display, "%s: attribute " CKS_PART_CHECKPOINTS, cks_store_path(s));
    if ((err = attr_int(s, CKS_PART_COUNT, 1, CKS_STORE_MAX_ROWS, &p.count)) ||
        (err = attr_int(s, CKS_PART_SHARD, 0, p.count - 1, &p.shard)))
        goto fail;
    if ((err = cks_store_get_attr(s, "/", CKS_PART_CHECKPOINTS, &list)) == CKS_ENOTFOUND ||
        (!err && (err = cks_store_get_attr(s, "/", CKS_PART_REF, &p.ref)) == CKS_ENOTFOUND)) {
        err = cks_error_set(CKS_EFORMAT, "%s: damaged part file: no attribute '%s'",
                            cks_store_path(s), list ? CKS_PART_REF : CKS_PART_CHECKPOINTS);
        goto fail;
    }
    if (err || (err = decode_list(list, display, &p)) != 0)
        goto fail;
    err = cks_store_get_attr(s, "/", CKS_PART_EXTENDS, &p.extends);
    if (err && err != CKS_ENOTFOUND)
        goto fail;
    free(list);
    *out = p;
    return 0;
fail:
    free(list);
    cks_part_info_release(&p);
    return err;
}

int cks_part_list_diff(const cks_part_ckpt *a, size_t na, const char *name_a,
                       const cks_part_ckpt *b, size_t nb, const char *name_b, char *buf, size_t cap)
{
    for (size_t i = 0; i < na || i < nb; i++) {
        if (i >= na || i >= nb) {
            const cks_part_ckpt *x = i >= na ? &b[i] : &a[i];
            snprintf(buf, cap, "%.200s (step %lld) is only in %s", x->name, (long long)x->step,
                     i >= na ? name_b : name_a);
            return 1;
        }
        if (strcmp(a[i].name, b[i].name) != 0) {
            snprintf(buf, cap, "checkpoint %zu is %.200s in %s but %.200s in %s", i + 1, a[i].name,
                     name_a, b[i].name, name_b);
            return 1;
        }
        if (a[i].step != b[i].step || strcmp(a[i].commit, b[i].commit) != 0) {
            snprintf(buf, cap,
                     "%.200s has commit '%.64s' (step %lld) in %s but '%.64s' (step %lld) in %s",
                     a[i].name, a[i].commit, (long long)a[i].step, name_a, b[i].commit,
                     (long long)b[i].step, name_b);
            return 1;
        }
    }
    return 0;
}
