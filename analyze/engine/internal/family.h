/* The metric families a scan computes, as one table (families.c): adding a family is
 * one file defining a cks_family and one row of that table. Private to the engine.
 *
 * A family is either per tensor (norms, spectral, drift: `tensor` fills one value per
 * metric for one tensor of the checkpoint, the engine lays them out as [N, T] datasets
 * under `path`) or per checkpoint (ppl: `checkpoint` runs once, typically a forward
 * pass, and emits its values as items, cks_items in values.h, which the engine writes
 * and ships between MPI ranks without knowing them).
 *
 * A per-checkpoint family may keep something it computed for a checkpoint (its carry,
 * e.g. the next-token distributions a KL divergence against the following checkpoint
 * needs): the engine holds it with the mapped checkpoint and hands it back when that
 * checkpoint is the previous one or the reference of a later task in the same process
 * (NULL otherwise: the family recomputes it from the weights it is given). */
#ifndef CKS_ENGINE_FAMILY_H
#define CKS_ENGINE_FAMILY_H

#include "metric_info.h"
#include "scan.h"
#include "source.h"
#include "tensor.h"
#include "values.h"
#include "weights.h"

#include <stddef.h>
#include <stdint.h>

#define CKS_FAMILY_PREV 1u /* needs the previous complete checkpoint */
#define CKS_FAMILY_REF  2u /* needs the reference */

/* One tensor of the checkpoint being analysed, and the same tensor in the previous
 * checkpoint and the reference (NULL when there is none or it lacks it). */
typedef struct {
    const cks_tensor *t;
    int64_t step;
    const cks_tensor *prev, *ref;
    int64_t prev_step, ref_step;
    int threads;
    float *top;   /* CKS_SPECTRA_K floats, NaN-filled */
    int *has_top; /* set to 1 by a family that filled top */
} cks_family_tensor;

/* One checkpoint mapped for a per-checkpoint family: NULL members when absent. */
typedef struct {
    size_t pos; /* position in the selection; CKS_PLAN_NONE when absent */
    const cks_ckpt *ckpt;
    const cks_weights *w;
    void *carry; /* what this family kept for it in this process, or NULL */
} cks_family_view;

typedef struct {
    const cks_scan_options *o;
    const cks_scan_hooks *h;
    const char *display; /* "SOURCE@name" of the current checkpoint, for messages */
    size_t nsel;
    cks_family_view cur, prev, ref;
    void **carry; /* set *carry to keep something for the current checkpoint */
    const struct cks_family *const *fam; /* the enabled families (table order) */
    size_t nfam;
} cks_family_ckpt;

typedef struct cks_family {
    const char *option; /* its name in --metrics (two rows may share one: drift) */
    const char *path;   /* its group in the run file */
    unsigned needs;     /* CKS_FAMILY_PREV | CKS_FAMILY_REF */
    /* per tensor: the metric names, descriptions and units, in the order `tensor`
     * writes them; per checkpoint: NULL */
    const cks_metric_info *(*metrics)(size_t *count);
    /* Writes the values for in->t, NaN where one does not apply. A non-zero return
     * (message set) leaves them NaN and is reported as a warning. */
    int (*tensor)(const cks_family_tensor *in, double *out);
    /* Per checkpoint: appends its values to out. A non-zero return (message set) is a
     * warning; what it appended is written all the same. */
    int (*checkpoint)(const cks_family_ckpt *in, cks_items *out);
    void (*carry_free)(void *carry); /* NULL when it keeps nothing */
    /* Inputs from the command line (NULL when it needs none): given() tells whether they
     * were given, named by `inputs` in messages; prepare() checks them and describes
     * them as the value of root attribute `attr` (a new string), so that a resumed scan
     * or another shard cannot mix them. */
    const char *inputs;
    int (*given)(const cks_scan_options *o);
    const char *attr;
    int (*prepare)(const cks_scan_options *o, char **value);
    /* the option of a family that must be enabled too (whose work this one extends), or
       NULL */
    const char *requires;
} cks_family;

#define CKS_MAX_FAMILIES 16

/* The table, in run-file order. */
const cks_family *const *cks_families(size_t *n);

/* The comma-separated names of the families that need no input (the default of
 * --metrics; families whose inputs are given join it). Static string. */
const char *cks_families_default(void);

/* Parses a comma-separated list of family names into the enabled rows (table order) and
 * their canonical spelling (table order, no repeats) into canon[cap]. CKS_EINVAL naming
 * an unknown name and the known ones. */
int cks_families_parse(const char *list, const cks_family **out, size_t *n, char *canon,
                       size_t cap);

/* 1 when the family named option is enabled in the task in. */
int cks_family_enabled(const cks_family_ckpt *in, const char *option);

extern const cks_family cks_family_norms, cks_family_spectral, cks_family_drift_prev,
    cks_family_drift_ref, cks_family_ppl, cks_family_memo;
extern const cks_family cks_family_kl;

#endif
