/* The output run file of a scan (see runfile.h). */
#include "runfile.h"
#include "error.h"
#include "part.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

char *cks_runfile_config(const cks_selection *sel)
{
    cks_ckpt *c;
    char *text = NULL;
    size_t len;
    if (sel->n == 0 || cks_ckpt_open(&c, sel->src, sel->idx[0]) != 0) {
        cks_error_clear();
        return NULL;
    }
    /* the config.json limit: a larger one cannot be a valid config, and the run file's
     * readers refuse root attributes past CKS_STORE_MAX_STRING */
    cks_ckpt_read(c, "config.json", CKS_MAX_CONFIG_BYTES, &text, &len);
    cks_ckpt_free(c);
    cks_error_clear();
    return text;
}

static int create(cks_store **out, const cks_scan_cfg *cfg, const cks_selection *sel,
                  const char *const *extra)
{
    const char *attrs[32];
    /* the families are a root attribute from the start: a file killed before its first
     * checkpoint must still say what a resumed scan has to compute; a part's marks too */
    size_t k = cks_scan_cfg_attrs(cfg, attrs, 24);
    for (size_t i = 0; extra && extra[i] && k + 1 < sizeof attrs / sizeof attrs[0]; i++)
        attrs[k++] = extra[i];
    attrs[k] = NULL;
    char *config = cks_runfile_config(sel), *abs = realpath(cfg->o->source, NULL);
    cks_store_meta meta = {abs ? abs : cfg->o->source, config, NULL, attrs};
    int err = cks_store_create(out, cfg->o->output, &meta);
    free(config);
    free(abs);
    return err;
}

/* A part resumed as a whole run, or the reverse. */
static int check_kind(cks_store *st, int part)
{
    cks_part_info p;
    const char *path = cks_store_path(st);
    int err = cks_part_read(st, &p);
    if (err == CKS_ENOTFOUND)
        return !part ? 0
                     : cks_error_set(CKS_EINVAL,
                                     "%s is a whole run file, not a part: --shard writes a new "
                                     "part file (or resumes a part of the same shard)",
                                     path);
    if (err)
        return err;
    if (!part)
        err = cks_error_set(CKS_EINVAL,
                            "%s is part %lld/%lld of a sharded scan: resume it with --shard "
                            "%lld/%lld, or join the parts with 'ckptscope merge'",
                            path, (long long)p.shard, (long long)p.count, (long long)p.shard,
                            (long long)p.count);
    cks_part_info_release(&p);
    return err;
}

int cks_runfile_open(cks_store **out, cks_scan_cfg *cfg, const cks_selection *sel,
                     const char *const *extra, int part)
{
    const cks_scan_options *o = cfg->o;
    int err = cks_store_open(out, o->output, CKS_STORE_WRITE);
    if (err == CKS_ENOTFOUND)
        return create(out, cfg, sel, extra);
    if (err == 0 && !o->resume)
        err = cks_error_set(CKS_EEXISTS,
                            "%s exists: pass --resume to continue it, or choose another -o",
                            o->output);
    if (err == 0 && (err = check_kind(*out, part)) == 0)
        err = cks_scan_cfg_adopt(cfg, *out);
    if (err) {
        cks_store_free(*out);
        *out = NULL;
    }
    return err;
}

/* /part/prev of the rows st holds, by selected position. */
static int load_part_prev(cks_store *st, const cks_selection *sel, cks_plan_ckpt *ck,
                          const cks_store_ckpt *rows, size_t n)
{
    double *prev = NULL;
    size_t r = 0, c = 0;
    if (!cks_store_exists(st, CKS_PART_PREV))
        return 0;
    int err = cks_store_read_matrix(st, CKS_PART_PREV, &prev, &r, &c);
    for (size_t pos = 0; !err && pos < sel->n; pos++) {
        const char *name = cks_selection_info(sel, pos)->name;
        for (size_t k = 0; k < n && k < r && c == 1; k++) {
            double v = prev[k];
            if (strcmp(rows[k].name, name) == 0)
                ck[pos].file_prev =
                    isnan(v) || v < 0 || v >= (double)pos ? CKS_PLAN_NONE : (size_t)v;
        }
    }
    free(prev);
    return err;
}

int cks_runfile_held(cks_store *st, const cks_selection *sel, cks_plan_ckpt *ck, int base,
                     int part_prev)
{
    cks_store_ckpt *rows;
    size_t n;
    int err = cks_store_checkpoints(st, &rows, &n);
    if (err)
        return err;
    for (size_t pos = 0; pos < sel->n; pos++) {
        const cks_ckpt_info *ci = cks_selection_info(sel, pos);
        cks_held *h = base ? &ck[pos].base : &ck[pos].file;
        for (size_t r = 0; r < n; r++) {
            if (strcmp(rows[r].name, ci->name) != 0)
                continue;
            *h = strcmp(rows[r].status, "complete") != 0                     ? CKS_HELD_NONE
                 : strcmp(rows[r].commit, ci->commit ? ci->commit : "") == 0 ? CKS_HELD_SAME
                                                                             : CKS_HELD_OTHER;
        }
    }
    if (part_prev)
        err = load_part_prev(st, sel, ck, rows, n);
    cks_store_ckpts_free(rows, n);
    return err;
}

/* 1 when st holds a complete row. */
static int holds_complete(cks_store *st)
{
    cks_store_ckpt *rows;
    size_t n, k = 0;
    if (cks_store_checkpoints(st, &rows, &n) != 0) {
        cks_error_clear();
        return 1; /* the caller's next read says what is wrong */
    }
    while (k < n && strcmp(rows[k].status, "complete") != 0)
        k++;
    cks_store_ckpts_free(rows, n);
    return k < n;
}

int cks_runfile_ref(cks_store *st, int part, char **out)
{
    *out = NULL;
    /* a part names its reference from the start; it binds only once a row was measured
     * against it (a whole run file names it with its first complete row) */
    if (part && !holds_complete(st))
        return 0;
    int err = part ? cks_store_get_attr(st, "/", CKS_PART_REF, out)
                   : cks_store_get_attr(st, "/drift/ref", "ref", out);
    if (err == CKS_ENOTFOUND)
        return 0;
    if (!err && !**out) {
        free(*out);
        *out = NULL;
    }
    return err;
}
