/* What a recording driver (serial, shard, MPI rank 0) opens before it walks, in the
 * order of its steps, and the release of all of it. The pieces stay separate: the
 * options and families (cfg), the checkpoints (sel), the mapped checkpoints (eng), the
 * run file (rec) and the plan (w); each function takes only the ones it uses. Private
 * to the engine. */
#ifndef CKS_ENGINE_DRIVE_H
#define CKS_ENGINE_DRIVE_H

#include "cfg.h"
#include "engine.h"
#include "record.h"
#include "selection.h"
#include "walk.h"

typedef struct {
    cks_scan_cfg cfg;
    cks_selection sel;
    cks_engine *eng;
    cks_recorder rec;
    cks_walk w;
} cks_drive;

/* The families, the selection (a bad --ref is refused here, before any file is made),
 * the engine and an empty plan state. */
int cks_drive_begin(cks_drive *d, const cks_scan_options *o, const cks_scan_hooks *h,
                    cks_scan_summary *sum);
/* The run file (extra: a part's marks), what it holds and its reference (resolved). */
int cks_drive_open(cks_drive *d, const char *const *extra);
void cks_drive_end(cks_drive *d);

/* The serial scan once begun: open, walk. (MPI with one rank runs it too.) */
int cks_drive_serial(cks_drive *d);

#endif
