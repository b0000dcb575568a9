/* Git LFS pointer parsing (see lfs.h). Strict: a pointer-looking blob that fails any
 * check is an error, never guessed at, because its oid becomes a filesystem path. */
#include "lfs.h"
#include "error.h"

#include <stdio.h>
#include <string.h>

static const char v1[] = "version https://git-lfs.github.com/spec/v1";
static const char v0[] = "version https://hawser.github.com/spec/v1";

int cks_lfs_is_pointer(const char *buf, size_t len)
{
    if (len > CKS_LFS_POINTER_MAX)
        return 0;
    return (len >= sizeof v1 - 1 && memcmp(buf, v1, sizeof v1 - 1) == 0) ||
           (len >= sizeof v0 - 1 && memcmp(buf, v0, sizeof v0 - 1) == 0);
}

int cks_lfs_pointer_parse(const char *buf, size_t len, const char *display, cks_lfs_pointer *out)
{
    cks_lfs_pointer p;
    int have_oid = 0, have_size = 0, lineno = 0;
    size_t i = 0;
    memset(&p, 0, sizeof p);
    if (!cks_lfs_is_pointer(buf, len))
        return cks_error_set(CKS_EFORMAT, "%s: not a Git LFS pointer", display);
    while (i < len) {
        const char *line = buf + i;
        const char *nl = memchr(line, '\n', len - i);
        size_t n = nl ? (size_t)(nl - line) : len - i;
        i += n + (nl ? 1 : 0);
        lineno++;
        if (!nl)
            return cks_error_set(CKS_EFORMAT, "%s: LFS pointer line %d does not end in a newline",
                                 display, lineno);
        if (lineno == 1)
            continue; /* the version line, checked above */
        if (n == 0)
            return cks_error_set(CKS_EFORMAT, "%s: LFS pointer has an empty line %d", display,
                                 lineno);
        if (n >= 4 && memcmp(line, "oid ", 4) == 0) {
            if (have_oid)
                return cks_error_set(CKS_EFORMAT, "%s: LFS pointer has two oid lines", display);
            if (n != 4 + 7 + 64 || memcmp(line + 4, "sha256:", 7) != 0)
                return cks_error_set(
                    CKS_EFORMAT, "%s: LFS pointer oid is not 'sha256:' and 64 hex digits", display);
            for (int k = 0; k < 64; k++) {
                char ch = line[11 + k];
                if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')))
                    return cks_error_set(
                        CKS_EFORMAT, "%s: LFS pointer oid is not 64 lowercase hex digits", display);
                p.oid[k] = ch;
            }
            p.oid[64] = '\0';
            have_oid = 1;
        } else if (n >= 5 && memcmp(line, "size ", 5) == 0) {
            uint64_t v = 0;
            if (have_size || n == 5 || n > 5 + 17)
                return cks_error_set(CKS_EFORMAT, "%s: LFS pointer size line is malformed",
                                     display);
            for (size_t k = 5; k < n; k++) {
                if (line[k] < '0' || line[k] > '9')
                    return cks_error_set(CKS_EFORMAT, "%s: LFS pointer size is not a number",
                                         display);
                v = v * 10 + (uint64_t)(line[k] - '0');
            }
            if (v > CKS_LFS_MAX_SIZE)
                return cks_error_set(CKS_ELIMIT, "%s: LFS pointer size %llu is too large", display,
                                     (unsigned long long)v);
            p.size = v;
            have_size = 1;
        } else {
            /* other keys (ext-0-..., ...) are allowed but must be "key value" */
            const char *sp = memchr(line, ' ', n);
            if (!sp || sp == line)
                return cks_error_set(CKS_EFORMAT, "%s: LFS pointer line %d is not 'key value'",
                                     display, lineno);
        }
    }
    if (!have_oid || !have_size)
        return cks_error_set(CKS_EFORMAT, "%s: LFS pointer lacks %s", display,
                             have_oid ? "a size" : "an oid");
    *out = p;
    return 0;
}

int cks_lfs_object_path(const char *lfs_dir, const cks_lfs_pointer *p, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "%s/objects/%.2s/%.2s/%s", lfs_dir, p->oid, p->oid + 2, p->oid);
    if (n < 0 || (size_t)n >= cap)
        return cks_error_set(CKS_ELIMIT, "LFS object path is too long");
    return 0;
}
