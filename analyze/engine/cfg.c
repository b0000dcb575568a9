/* What a scan computes (see cfg.h): --metrics and the defaults, the families' inputs,
 * and adopting the families and inputs of a run file being resumed or extended. */
#include "cfg.h"
#include "error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void drop_attrs(cks_scan_cfg *c)
{
    for (size_t f = 0; f < CKS_MAX_FAMILIES; f++) {
        free(c->attr[f]);
        c->attr[f] = NULL;
    }
}

void cks_scan_cfg_release(cks_scan_cfg *c)
{
    drop_attrs(c);
}

/* Parses list and lays out the values table. */
static int choose(cks_scan_cfg *c, const char *list)
{
    int err = cks_families_parse(list, c->fam, &c->nfam, c->canon, sizeof c->canon);
    if (err)
        return err;
    for (size_t f = 0; f < c->nfam; f++) {
        int found = !c->fam[f]->requires;
        for (size_t g = 0; g < c->nfam && !found; g++)
            found = strcmp(c->fam[g]->option, c->fam[f]->requires) == 0;
        if (!found)
            return cks_error_set(CKS_EINVAL,
                                 "the %s family extends the %s family: add %s to --metrics",
                                 c->fam[f]->option, c->fam[f]->requires, c->fam[f]->requires);
    }
    c->nvals = 0;
    c->uses_prev = c->uses_ref = 0;
    for (size_t f = 0; f < c->nfam; f++) {
        size_t count = 0;
        if (c->fam[f]->tensor)
            c->fam[f]->metrics(&count);
        c->first[f] = c->nvals;
        c->nvals += count;
        c->uses_prev |= (c->fam[f]->needs & CKS_FAMILY_PREV) != 0;
        c->uses_ref |= (c->fam[f]->needs & CKS_FAMILY_REF) != 0;
    }
    return 0;
}

static int enabled(const cks_scan_cfg *c, const cks_family *fam)
{
    for (size_t f = 0; f < c->nfam; f++)
        if (c->fam[f] == fam)
            return 1;
    return 0;
}

/* Inputs given for a family that is not enabled: refused (holder: the run file whose
 * families were adopted, or NULL for --metrics). */
static int unused_inputs(const cks_scan_cfg *c, const char *holder)
{
    size_t n;
    const cks_family *const *all = cks_families(&n);
    for (size_t i = 0; i < n; i++) {
        if (!all[i]->given || !all[i]->given(c->o) || enabled(c, all[i]))
            continue;
        if (holder)
            return cks_error_set(CKS_EINVAL,
                                 "%s was written without the %s family; %s cannot join it "
                                 "(write a new file)",
                                 holder, all[i]->option, all[i]->inputs);
        return cks_error_set(CKS_EINVAL, "%s feeds the %s family: add %s to --metrics",
                             all[i]->inputs, all[i]->option, all[i]->option);
    }
    return 0;
}

static int prepare(cks_scan_cfg *c)
{
    drop_attrs(c);
    for (size_t f = 0; f < c->nfam; f++) {
        int err;
        if (c->fam[f]->prepare && (err = c->fam[f]->prepare(c->o, &c->attr[f])) != 0)
            return err;
    }
    return 0;
}

int cks_scan_cfg_init(cks_scan_cfg *c, const cks_scan_options *o, const cks_scan_hooks *h,
                      const char *list)
{
    char deflist[512];
    memset(c, 0, sizeof *c);
    c->o = o;
    c->h = h;
    if (!list && !(list = o->metrics)) {
        size_t n, k = (size_t)snprintf(deflist, sizeof deflist, "%s", cks_families_default());
        const cks_family *const *all = cks_families(&n);
        for (size_t i = 0; i < n && k < sizeof deflist; i++)
            if (all[i]->given && all[i]->given(o) &&
                (i == 0 || strcmp(all[i - 1]->option, all[i]->option) != 0))
                k += (size_t)snprintf(deflist + k, sizeof deflist - k, ",%s", all[i]->option);
        list = deflist;
    }
    int err = choose(c, list);
    if (!err)
        err = unused_inputs(c, NULL);
    return err ? err : prepare(c);
}

/* The inputs of every family as st holds them. */
static int same_inputs(const cks_scan_cfg *c, cks_store *st)
{
    const char *path = cks_store_path(st);
    int err = 0;
    for (size_t f = 0; f < c->nfam && !err; f++) {
        const cks_family *fam = c->fam[f];
        char *have = NULL;
        if (!fam->attr)
            continue;
        err = cks_store_get_attr(st, "/", fam->attr, &have);
        if (err == CKS_ENOTFOUND)
            err = cks_error_set(CKS_EFORMAT, "%s: the %s family without an '%s' attribute", path,
                                fam->option, fam->attr);
        else if (!err && strcmp(have, c->attr[f]) != 0)
            err = cks_error_set(CKS_EINVAL,
                                "%s has %s %s; this scan's %s give %s: give the same ones or "
                                "write a new file",
                                path, fam->attr, have, fam->inputs, c->attr[f]);
        free(have);
    }
    return err;
}

int cks_scan_cfg_adopt(cks_scan_cfg *c, cks_store *st)
{
    const char *path = cks_store_path(st);
    char *have = NULL;
    int err = cks_store_get_attr(st, "/", "metrics", &have);
    if (err == CKS_ENOTFOUND)
        return cks_error_set(CKS_EFORMAT, "%s: run file without a 'metrics' attribute", path);
    if (err)
        return err;
    if (strcmp(have, c->canon) != 0 && c->o->metrics) {
        err = cks_error_set(CKS_EINVAL,
                            "%s holds the metric families '%s'; --metrics '%s' would leave rows "
                            "without them: resume with the same --metrics or write a new file",
                            path, have, c->o->metrics);
    } else if (strcmp(have, c->canon) != 0) { /* the file's families, not the default */
        if ((err = choose(c, have)) != 0)
            cks_error_prefix(err, "%s", path);
        else if ((err = unused_inputs(c, path)) == 0)
            err = prepare(c);
    }
    free(have);
    return err ? err : same_inputs(c, st);
}

size_t cks_scan_cfg_attrs(const cks_scan_cfg *c, const char **attrs, size_t cap)
{
    size_t k = 0;
    if (cap >= 3) {
        attrs[k++] = "metrics";
        attrs[k++] = c->canon;
    }
    for (size_t f = 0; f < c->nfam; f++)
        if (c->attr[f] && k + 3 <= cap) {
            attrs[k++] = c->fam[f]->attr;
            attrs[k++] = c->attr[f];
        }
    attrs[k] = NULL;
    return k;
}
