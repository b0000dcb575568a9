/* SHA-256 (FIPS 180-4), for writing real Git LFS objects in fixtures. */
#ifndef CKS_TEST_SHA256_H
#define CKS_TEST_SHA256_H

#include <stddef.h>

/* Writes the 64-character lowercase hex digest and a NUL into hex[65]. */
void cks_sha256_hex(const void *data, size_t len, char hex[65]);

#endif
