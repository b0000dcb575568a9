/* scan's import of the eval_*.json files found on each checkpoint (see scan_evals.h):
 * read through the source like any other file (git blobs, LFS objects, folders), parsed
 * by reports/lmeval.h and written by reports/evals.h. */
#include "scan_evals.h"
#include "error.h"
#include "evals.h"

#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void warn(cli_progress *prog, const char *ckpt, const char *file, const char *msg)
{
    cli_progress_done(prog);
    fprintf(stderr, "ckptscope scan: warning: %s: %s skipped: %s\n", ckpt, file, msg);
}

int scan_evals_import(cks_store *s, const cks_source *src, const char *name, size_t row,
                      cli_progress *prog, size_t *nfiles)
{
    cks_ckpt *c = NULL;
    size_t idx, done = 0;
    int err = 0;
    if (nfiles)
        *nfiles = 0;
    /* a checkpoint that cannot be listed is reported by the scan itself */
    if (cks_source_find(src, name, &idx) != 0 || cks_ckpt_open(&c, src, idx) != 0) {
        cks_error_clear();
        return 0;
    }
    for (size_t i = 0; i < cks_ckpt_nfiles(c) && !err; i++) {
        const char *path = cks_ckpt_file(c, i)->path;
        char display[4200], *text = NULL;
        size_t len;
        cks_eval_result r;
        if (strchr(path, '/') || fnmatch(SCAN_EVALS_GLOB, path, 0) != 0)
            continue;
        snprintf(display, sizeof display, "%s@%s:%s", cks_source_path(src), name, path);
        if (cks_ckpt_read(c, path, CKS_MAX_EVAL_BYTES, &text, &len) != 0 ||
            cks_lmeval_parse(text, len, display, &r) != 0) {
            warn(prog, name, path, cks_error_last());
            free(text);
            continue;
        }
        free(text);
        if (cks_evals_check(&r, display) != 0) {
            warn(prog, name, path, cks_error_last());
        } else {
            /* the file is fine: what fails now is the run file, which ends the scan */
            err = cks_evals_write(s, row, &r, display, NULL);
            done += err == 0;
        }
        cks_lmeval_release(&r);
    }
    cks_ckpt_free(c);
    if (!err && nfiles)
        *nfiles = done;
    return err;
}
