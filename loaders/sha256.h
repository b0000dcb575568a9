/* SHA-256 (FIPS 180-4), incremental: the hub source checks every LFS file it downloads
 * against the sha256 the hub lists for it, hashing the bytes as they arrive (a resumed
 * download first re-hashes the part already on disk). The test fixtures use the one-shot
 * cks_sha256_hex to write real Git LFS objects. */
#ifndef CKS_SHA256_H
#define CKS_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t h[8];
    uint64_t len;          /* bytes hashed so far */
    unsigned char buf[64]; /* a partial block */
    size_t n;              /* bytes in buf */
} cks_sha256;

void cks_sha256_init(cks_sha256 *c);
void cks_sha256_update(cks_sha256 *c, const void *data, size_t len);
/* Writes the 64-character lowercase hex digest and a NUL into hex[65]. c is spent. */
void cks_sha256_final_hex(cks_sha256 *c, char hex[65]);

/* One-shot: the digest of len bytes at data. */
void cks_sha256_hex(const void *data, size_t len, char hex[65]);

/* The plain C compression of n 64-byte blocks into h, whatever the CPU: the other
 * implementation (SHA-NI, picked at run time when the CPU has it) is checked against it. */
void cks_sha256_blocks_portable(uint32_t h[8], const unsigned char *p, size_t n);

#endif
