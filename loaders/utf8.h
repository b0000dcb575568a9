/* The one strict UTF-8 check (RFC 3629): no overlong forms, no surrogates, nothing past
 * U+10FFFF, no stray continuation bytes. For text, pickle strings and names read from
 * untrusted files. */
#ifndef CKS_UTF8_H
#define CKS_UTF8_H

#include <stddef.h>

/* Byte length of the valid character at s[0..n) (1 for ASCII), or 0 when the bytes there
 * do not form one (or n == 0). */
size_t cks_utf8_char(const unsigned char *s, size_t n);

/* Offset of the first byte that is not part of valid UTF-8; len when all is valid. */
size_t cks_utf8_check(const char *s, size_t len);

#endif
