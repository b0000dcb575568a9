/* The output run file of a scan, before the walk: created with the attributes that say
 * what it holds (new), or opened for --resume with its families adopted; what it holds
 * for each selected checkpoint; the reference it measures against. Private to the
 * engine. */
#ifndef CKS_ENGINE_RUNFILE_H
#define CKS_ENGINE_RUNFILE_H

#include "cfg.h"
#include "selection.h"
#include "store.h"
#include "walk.h"

/* Creates o->output (refused when it exists without --resume) with cfg's attributes and
 * extra (name, value pairs, NULL-ended; a part's marks), or opens it to resume, adopting
 * its families. A part file is refused unless part, a whole run file when part. */
int cks_runfile_open(cks_store **out, cks_scan_cfg *cfg, const cks_selection *sel,
                     const char *const *extra, int part);

/* Fills ck[].file (base = 0) or ck[].base (base = 1) from the rows st holds, and for a
 * part (part_prev) ck[].file_prev from /part/prev. */
int cks_runfile_held(cks_store *st, const cks_selection *sel, cks_plan_ckpt *ck, int base,
                     int part_prev);

/* The reference the rows of st were measured against (part_ref for a part; *out NULL
 * when none, or when no row is complete yet). */
int cks_runfile_ref(cks_store *st, int part, char **out);

/* config.json of the first selected checkpoint, for a new run file (NULL when it cannot be
 * read: that checkpoint is reported when it is scanned). */
char *cks_runfile_config(const cks_selection *sel);

#endif
