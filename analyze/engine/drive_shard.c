/* The shard driver, scan --shard I/N: the walk over the whole plan, executing only the
 * positions that are I modulo N, into a part file (reports/part.h) that `merge` joins
 * with the other N-1 into the run file a single scan writes. A shard finds its
 * neighbours' availability by probing them (their weights open or not) and, like every
 * driver, plans a task again when reading its previous checkpoint or reference shows that
 * one failed. With --extend RUN.h5 the checkpoints whose rows RUN.h5 holds and that would
 * not change are left out of the part. */
#include "drive.h"
#include "error.h"
#include "part.h"
#include "runfile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The marks of a new part, and what is needed to check a resumed one. */
typedef struct {
    char shard[24], count[24];
    char *list;    /* part_checkpoints */
    char *ref;     /* part_ref */
    char *extends; /* realpath of --extend, or NULL */
} marks;

static void marks_release(marks *m)
{
    free(m->list);
    free(m->ref);
    free(m->extends);
}

static int selection_list(const cks_selection *sel, cks_part_ckpt **out)
{
    cks_part_ckpt *c = calloc(sel->n ? sel->n : 1, sizeof *c);
    if (!c)
        return cks_error_set(CKS_ENOMEM, "out of memory");
    for (size_t i = 0; i < sel->n; i++) {
        const cks_ckpt_info *ci = cks_selection_info(sel, i);
        c[i] = (cks_part_ckpt){(char *)ci->name, ci->step, (char *)(ci->commit ? ci->commit : "")};
    }
    *out = c;
    return 0;
}

/* --extend RUN.h5: its families, its reference and what it holds. */
static int load_base(cks_drive *d, marks *m)
{
    const char *path = d->cfg.o->extend;
    cks_store *b = NULL;
    cks_part_info p;
    char *ref = NULL;
    int err = cks_store_open(&b, path, CKS_STORE_READ);
    if (err)
        return err;
    if ((err = cks_part_read(b, &p)) == 0) {
        cks_part_info_release(&p);
        err = cks_error_set(CKS_EINVAL,
                            "%s is a part file: --extend takes a finished run (merge the parts "
                            "first)",
                            path);
    } else if (err == CKS_ENOTFOUND && (err = cks_scan_cfg_adopt(&d->cfg, b)) == 0 &&
               (err = cks_runfile_ref(b, 0, &ref)) == 0 &&
               (err = cks_runfile_held(b, &d->sel, d->w.ck, 1, 0)) == 0) {
        d->w.in.extend = 1;
        if (!(m->extends = realpath(path, NULL)))
            err = cks_error_set(CKS_ENOMEM, "%s: out of memory or unresolvable path", path);
        else
            err = cks_walk_set_ref(&d->w, &d->cfg, &d->sel, ref, path);
    }
    free(ref);
    cks_store_free(b);
    return err;
}

/* The marks of a new part: the reference a single scan would take, so that every part
 * records the same one. */
static int make_marks(cks_drive *d, marks *m, const char **attrs)
{
    const cks_scan_options *o = d->cfg.o;
    cks_part_ckpt *c = NULL;
    int err;
    snprintf(m->shard, sizeof m->shard, "%lld", (long long)o->shard);
    snprintf(m->count, sizeof m->count, "%lld", (long long)o->nshards);
    if (!o->extend && (err = cks_walk_set_ref(&d->w, &d->cfg, &d->sel, NULL, o->output)) != 0)
        return err;
    if ((err = cks_walk_resolve_ref(&d->w, d->eng, &d->sel)) != 0)
        return err;
    cks_walk_plan(&d->w);
    size_t ref = d->w.plan.ref;
    if (!(m->ref = strdup(ref == CKS_PLAN_NONE ? "" : cks_selection_info(&d->sel, ref)->name)) ||
        (err = selection_list(&d->sel, &c)) != 0 ||
        (err = cks_part_list_encode(c, d->sel.n, &m->list)) != 0) {
        free(c);
        return m->ref ? err : cks_error_set(CKS_ENOMEM, "out of memory");
    }
    free(c);
    const char *mine[] = {CKS_PART_SHARD,       m->shard,  CKS_PART_COUNT, m->count,
                          CKS_PART_CHECKPOINTS, m->list,   CKS_PART_REF,   m->ref,
                          CKS_PART_EXTENDS,     m->extends};
    size_t k = 0;
    for (size_t i = 0; i < sizeof mine / sizeof mine[0] && mine[i + 1]; i += 2) {
        attrs[k++] = mine[i];
        attrs[k++] = mine[i + 1];
    }
    attrs[k] = NULL;
    return 0;
}

/* A resumed part: only by the same shard of the same checkpoints, extending the same
 * run. */
static int check_part(const cks_drive *d, const marks *m)
{
    const cks_scan_options *o = d->cfg.o;
    cks_part_info p;
    cks_part_ckpt *cur = NULL;
    char diff[1024];
    int err = cks_part_read(d->rec.store, &p);
    if (err)
        return err;
    if (p.shard != o->shard || p.count != o->nshards) {
        err = cks_error_set(CKS_EINVAL,
                            "%s is part %lld/%lld; --shard %lld/%lld would mix shards: resume "
                            "it with --shard %lld/%lld",
                            o->output, (long long)p.shard, (long long)p.count, (long long)o->shard,
                            (long long)o->nshards, (long long)p.shard, (long long)p.count);
    } else if ((err = selection_list(&d->sel, &cur)) == 0 &&
               cks_part_list_diff(p.ckpts, p.n, o->output, cur, d->sel.n, o->source, diff,
                                  sizeof diff)) {
        err = cks_error_set(CKS_EINVAL,
                            "the checkpoints changed since %s was started (%s): scan this shard "
                            "into a new part file",
                            o->output, diff);
    } else if (!err &&
               (!p.extends != !m->extends || (p.extends && strcmp(p.extends, m->extends) != 0))) {
        err = p.extends ? cks_error_set(CKS_EINVAL, "%s extends %s: resume it with --extend %s",
                                        o->output, p.extends, p.extends)
                        : cks_error_set(CKS_EINVAL, "%s extends no run: resume it without --extend",
                                        o->output);
    }
    free(cur);
    cks_part_info_release(&p);
    return err;
}

int cks_scan_shard(const cks_scan_options *o, const cks_scan_hooks *h, cks_scan_summary *sum)
{
    cks_drive d;
    marks m;
    const char *attrs[12];
    memset(&m, 0, sizeof m);
    int err = cks_drive_begin(&d, o, h, sum);
    if (!err) {
        sum->own = 0;
        for (size_t p = (size_t)o->shard; p < d.sel.n; p += (size_t)o->nshards)
            sum->own++;
    }
    if (!err && o->extend)
        err = load_base(&d, &m);
    if (!err)
        err = make_marks(&d, &m, attrs);
    if (!err && (err = cks_drive_open(&d, attrs)) == 0 && (err = check_part(&d, &m)) == 0)
        err = cks_walk_run(&d.w, d.eng, &d.rec);
    marks_release(&m);
    cks_drive_end(&d);
    return err;
}
