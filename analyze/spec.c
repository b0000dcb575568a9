/* SOURCE@REF resolution shared by the commands that analyse one checkpoint. */
#include "spec.h"
#include "cli.h"
#include "error.h"

#include <stdlib.h>

int spec_open(const char *spec, cks_source **src, cks_ckpt **ckpt)
{
    char *path = NULL, *ref = NULL;
    cks_source *s = NULL;
    size_t idx = 0;
    int err;
    if ((err = cks_source_spec_split(spec, &path, &ref)) != 0)
        return err;
    /* with an explicit REF any branch may be named; without one, the default glob */
    if ((err = cks_source_open(&s, path, ref ? "*" : NULL)) != 0)
        goto done;
    if (ref) {
        err = cks_source_find(s, ref, &idx);
    } else if (cks_source_count(s) != 1) {
        err = cks_error_set(CKS_EINVAL, "%s holds %zu checkpoints; name one as %s@REF (e.g. %s@%s)",
                            path, cks_source_count(s), path, path, cks_source_ckpt(s, 0)->name);
    }
    if (err)
        goto done;
    if ((err = cks_ckpt_open(ckpt, s, idx)) != 0)
        goto done;
    *src = s;
    s = NULL;
done:
    cks_source_free(s);
    free(path);
    free(ref);
    return err;
}

int spec_open_fetched(const char *spec, cks_source **src, cks_ckpt **ckpt)
{
    cli_progress progress;
    size_t idx;
    int err = spec_open(spec, src, ckpt);
    if (err)
        return err;
    cli_progress_init(&progress, 0);
    cks_source_set_progress(*src, cli_fetch_progress, &progress);
    if ((err = cks_source_find(*src, cks_ckpt_info_of(*ckpt)->name, &idx)) == 0)
        err = cks_source_wait(*src, idx);
    cks_source_set_progress(*src, NULL, NULL);
    cli_progress_done(&progress);
    if (err) {
        cks_ckpt_free(*ckpt);
        cks_source_free(*src);
        *ckpt = NULL;
        *src = NULL;
    }
    return err;
}
