/* SOURCE@REF resolution shared by the commands that analyse one checkpoint. */
#include "spec.h"
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
