/* The setup every recording driver shares (see drive.h) and the serial driver: a walk
 * over the whole selection in one process. */
#include "drive.h"
#include "error.h"
#include "part.h"
#include "runfile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void store_point(const char *point, void *ctx)
{
    const cks_scan_hooks *h = ctx;
    if (h->point)
        h->point(h->ctx, point);
}

int cks_drive_begin(cks_drive *d, const cks_scan_options *o, const cks_scan_hooks *h,
                    cks_scan_summary *sum)
{
    size_t idx;
    int err;
    memset(d, 0, sizeof *d);
    memset(sum, 0, sizeof *sum);
    sum->rank = -1;
    d->rec.sum = sum;
    d->rec.cfg = &d->cfg;
    d->rec.sel = &d->sel;
    if ((err = cks_scan_cfg_init(&d->cfg, o, h, NULL)) || (err = cks_selection_open(&d->sel, o)))
        return err;
    if (o->ref && (err = cks_source_find(d->sel.src, o->ref, &idx)) != 0)
        return cks_error_prefix(err, "--ref");
    sum->nsel = sum->own = d->sel.n;
    if ((err = cks_engine_new(&d->eng, &d->cfg, &d->sel)) != 0)
        return err;
    return cks_walk_init(&d->w, &d->cfg, d->sel.n, (size_t)o->shard, (size_t)o->nshards);
}

int cks_drive_open(cks_drive *d, const char *const *extra)
{
    const cks_scan_hooks *h = d->cfg.h;
    int part = extra != NULL, err;
    char *stored = NULL;
    if ((err = cks_runfile_open(&d->rec.store, &d->cfg, &d->sel, extra, part)) != 0)
        return err;
    d->rec.part = part;
    d->w.in.part = part;
    cks_store_set_hook(d->rec.store, store_point, (void *)h);
    store_point("opened", (void *)h);
    if ((err = cks_runfile_held(d->rec.store, &d->sel, d->w.ck, 0, part)) ||
        (err = cks_runfile_ref(d->rec.store, part, &stored)))
        return err;
    if (part && (err = cks_store_get_attr(d->rec.store, "/", CKS_PART_REF, &d->rec.part_ref)) ==
                    CKS_ENOTFOUND)
        err = 0;
    if (!err)
        err = cks_walk_set_ref(&d->w, &d->cfg, &d->sel, stored, d->cfg.o->output);
    if (!err)
        err = cks_walk_resolve_ref(&d->w, d->eng, &d->sel);
    free(stored);
    return err;
}

void cks_drive_end(cks_drive *d)
{
    char keep[4096]; /* the message of the error the driver returns, if any */
    snprintf(keep, sizeof keep, "%s", cks_error_last());
    if (d->rec.store && cks_store_nrows(d->rec.store, &d->rec.sum->rows) != 0)
        cks_error_set(CKS_ERROR, "%s", keep);
    cks_walk_release(&d->w);
    cks_recorder_release(&d->rec);
    cks_store_free(d->rec.store);
    cks_engine_free(d->eng);
    cks_selection_release(&d->sel);
    cks_scan_cfg_release(&d->cfg);
}

int cks_drive_serial(cks_drive *d)
{
    int err = cks_drive_open(d, NULL);
    return err ? err : cks_walk_run(&d->w, d->eng, &d->rec);
}

int cks_scan_serial(const cks_scan_options *o, const cks_scan_hooks *h, cks_scan_summary *sum)
{
    cks_drive d;
    int err = cks_drive_begin(&d, o, h, sum);
    if (!err)
        err = cks_drive_serial(&d);
    cks_drive_end(&d);
    return err;
}
