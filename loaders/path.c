/* Path checks for names read from untrusted files. */
#include "path.h"
#include "error.h"

#include <string.h>

int cks_path_check_relative(const char *p)
{
    if (!p || !*p || p[0] == '/')
        return CKS_EFORMAT;
    const char *seg = p;
    for (const char *q = p;; q++) {
        unsigned char ch = (unsigned char)*q;
        if (ch == '/' || ch == '\0') {
            size_t n = (size_t)(q - seg);
            if (n == 0 || (n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.'))
                return CKS_EFORMAT;
            if (ch == '\0')
                return 0;
            seg = q + 1;
        } else if (ch < 0x20 || ch == 0x7f || ch == '\\') {
            return CKS_EFORMAT;
        }
    }
}

int cks_path_is_inside(const char *dir, const char *child)
{
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        n--;
    return strncmp(dir, child, n) == 0 && (child[n] == '/' || (n == 1 && dir[0] == '/'));
}
