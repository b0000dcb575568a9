/* The lm-eval result files stored beside the weights (LLM360 keeps eval_arc.json,
 * eval_hellaswag.json, eval_mmlu.json, eval_truthfulqa.json at the top of each
 * checkpoint branch), imported into the checkpoint's row in the transaction that writes
 * its metrics (see record.h): read through the source like any other file, parsed by
 * reports/lmeval.h and written by reports/evals.h. */
#include "error.h"
#include "evals.h"
#include "record.h"

#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EVALS_GLOB "eval_*.json"

static void skipped(const cks_scan_hooks *h, const char *ckpt, const char *file, const char *msg)
{
    char what[4200];
    snprintf(what, sizeof what, "%s skipped", file);
    if (h->warning)
        h->warning(h->ctx, ckpt, what, msg);
}

int cks_record_evals(cks_store *s, const cks_source *src, size_t idx, size_t row,
                     const cks_scan_hooks *h)
{
    const char *name = cks_source_ckpt(src, idx)->name;
    cks_ckpt *c = NULL;
    int err = 0;
    /* a checkpoint that cannot be listed is reported by the scan itself */
    if (cks_ckpt_open(&c, src, idx) != 0) {
        cks_error_clear();
        return 0;
    }
    for (size_t i = 0; i < cks_ckpt_nfiles(c) && !err; i++) {
        const char *path = cks_ckpt_file(c, i)->path;
        char display[4200], *text = NULL;
        size_t len;
        cks_eval_result r;
        if (strchr(path, '/') || fnmatch(EVALS_GLOB, path, 0) != 0)
            continue;
        snprintf(display, sizeof display, "%s@%s:%s", cks_source_path(src), name, path);
        if (cks_ckpt_read(c, path, CKS_MAX_EVAL_BYTES, &text, &len) != 0 ||
            cks_lmeval_parse(text, len, display, &r) != 0) {
            skipped(h, name, path, cks_error_last());
            free(text);
            continue;
        }
        free(text);
        if (cks_evals_check(&r, display) != 0)
            skipped(h, name, path, cks_error_last());
        else /* the file is fine: what fails now is the run file, which ends the scan */
            err = cks_evals_write(s, row, &r, display, NULL);
        cks_lmeval_release(&r);
    }
    cks_ckpt_free(c);
    return err;
}
