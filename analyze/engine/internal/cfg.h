/* What a scan computes, fixed before it starts: the options, the enabled metric families
 * (their rows in the values table) and the root attributes that describe their inputs.
 * Every rank of an MPI scan builds the same one. Private to the engine. */
#ifndef CKS_ENGINE_CFG_H
#define CKS_ENGINE_CFG_H

#include "family.h"
#include "scan.h"
#include "store.h"

typedef struct {
    const cks_scan_options *o;
    const cks_scan_hooks *h;
    const cks_family *fam[CKS_MAX_FAMILIES];
    size_t nfam;
    size_t first[CKS_MAX_FAMILIES]; /* per-tensor family f's metric m is values row first[f]+m */
    size_t nvals;
    char canon[256];              /* the families as the run file's "metrics" attribute */
    char *attr[CKS_MAX_FAMILIES]; /* family f's input attribute value, or NULL */
    int uses_prev, uses_ref;
} cks_scan_cfg;

/* The families of list (NULL: --metrics, else the defaults and the families whose inputs
 * are given), with their inputs checked. Release with cks_scan_cfg_release. */
int cks_scan_cfg_init(cks_scan_cfg *c, const cks_scan_options *o, const cks_scan_hooks *h,
                      const char *list);
void cks_scan_cfg_release(cks_scan_cfg *c);

/* Takes the families of run file st (resume, --extend), refusing a --metrics that
 * differs, and checks that the inputs of every family are the ones st was written
 * with. */
int cks_scan_cfg_adopt(cks_scan_cfg *c, cks_store *st);

/* The root attributes of a new run file: "metrics" and each family's input attribute,
 * as name, value pairs into attrs[cap] (NULL-ended); returns the count of strings. */
size_t cks_scan_cfg_attrs(const cks_scan_cfg *c, const char **attrs, size_t cap);

#endif
