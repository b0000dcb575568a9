/* Resolving SOURCE@REF arguments to an opened checkpoint, for every command that takes
 * one (inspect, diff, ppl, tokenize). */
#ifndef CKS_SPEC_H
#define CKS_SPEC_H

#include "source.h"

/* Opens the source and the checkpoint spec names. Without @REF the source must hold
 * exactly one checkpoint. Any branch name is accepted after '@' (not only those matching
 * the default glob). Returns 0 or a CKS_E* code with the message set. */
int spec_open(const char *spec, cks_source **src, cks_ckpt **ckpt);

/* spec_open, then every file of the checkpoint fetched (several at once, with a progress
 * line on a terminal) when the source is the hub; for commands that read the weights. */
int spec_open_fetched(const char *spec, cks_source **src, cks_ckpt **ckpt);

#endif
