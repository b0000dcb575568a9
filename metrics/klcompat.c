/* Whether two checkpoints can be compared by KL (see klcompat.h). */
#include "klcompat.h"
#include "error.h"

#include <string.h>

/* 1 when file name is the same in both (absent in both counts as the same). */
static int same_file(const cks_ckpt *a, const cks_ckpt *b, const char *name, int *same)
{
    int ha = cks_ckpt_find_file(a, name) >= 0, hb = cks_ckpt_find_file(b, name) >= 0;
    cks_map *ma = NULL, *mb = NULL;
    int err = 0;
    *same = ha == hb;
    if (!ha || !hb)
        return 0;
    if ((err = cks_ckpt_map(a, name, &ma)) == 0 && (err = cks_ckpt_map(b, name, &mb)) == 0)
        *same = ma->size == mb->size && (!ma->size || memcmp(ma->data, mb->data, ma->size) == 0);
    if (!err && (err = cks_map_check(ma)) == 0)
        err = cks_map_check(mb);
    cks_map_free(mb);
    cks_map_free(ma);
    return err;
}

int cks_kl_check_compatible(const cks_ckpt *a, const cks_config *ca, const char *da,
                            const cks_ckpt *b, const cks_config *cb, const char *db)
{
    static const char *names[] = {"tokenizer.model", "tokenizer.json"};
    if (ca->vocab_size != cb->vocab_size)
        return cks_error_set(CKS_EINVAL,
                             "%s (vocab_size %lld) and %s (vocab_size %lld) have different "
                             "vocabularies: their next-token distributions cannot be compared",
                             da, (long long)ca->vocab_size, db, (long long)cb->vocab_size);
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        int same, err = same_file(a, b, names[k], &same);
        if (err)
            return err;
        if (!same)
            return cks_error_set(CKS_EINVAL,
                                 "%s and %s have different tokenizers (%s differs): their "
                                 "next-token distributions cannot be compared",
                                 da, db, names[k]);
    }
    return 0;
}
