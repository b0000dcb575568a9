/* Whether two checkpoints' next-token distributions can be compared position by position
 * (DESIGN §3: KL over the whole vocabulary, the same scored positions): the same
 * vocabulary size in config.json, and the same tokenizer, byte for byte (tokenizer.model,
 * else tokenizer.json; a file present in one and not the other differs). The ids of one
 * text are then the same for both, and id v means the same piece in both. */
#ifndef CKS_KLCOMPAT_H
#define CKS_KLCOMPAT_H

#include "config.h"
#include "source.h"

/* 0 when comparable; CKS_EINVAL naming both checkpoints (da, db: "SOURCE@REF") and what
 * differs; read errors of the tokenizer files. */
int cks_kl_check_compatible(const cks_ckpt *a, const cks_config *ca, const char *da,
                            const cks_ckpt *b, const cks_config *cb, const char *db);

#endif
