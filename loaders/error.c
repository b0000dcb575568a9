/* Thread-local error message buffer (see error.h). */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define CKS_ERRBUF 1024

static _Thread_local char errbuf[CKS_ERRBUF];

int cks_error_set(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errbuf, sizeof errbuf, fmt, ap);
    va_end(ap);
    return code;
}

int cks_error_prefix(int code, const char *fmt, ...)
{
    char prefix[CKS_ERRBUF], old[CKS_ERRBUF];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, errbuf, sizeof old);
    snprintf(errbuf, sizeof errbuf, "%s: %s", prefix, old);
    return code;
}

const char *cks_error_last(void)
{
    return errbuf;
}

void cks_error_clear(void)
{
    errbuf[0] = '\0';
}

const char *cks_printable(char *buf, size_t cap, const void *text, size_t n)
{
    const unsigned char *s = text;
    size_t k = 0;
    if (cap == 0)
        return buf;
    for (size_t i = 0; i < n && k + 1 < cap; i++)
        buf[k++] = s[i] >= 0x20 && s[i] < 0x7f ? (char)s[i] : '?';
    buf[k] = '\0';
    if (k < n && cap > 4)
        memcpy(buf + cap - 4, "...", 4);
    return buf;
}

const char *cks_error_name(int code)
{
    switch (code) {
    case CKS_OK:
        return "ok";
    case CKS_ENOTFOUND:
        return "not found";
    case CKS_EFORMAT:
        return "format error";
    case CKS_EIO:
        return "I/O error";
    case CKS_ENOMEM:
        return "out of memory";
    case CKS_EINVAL:
        return "invalid argument";
    case CKS_ELIMIT:
        return "limit exceeded";
    case CKS_EUNSUPPORTED:
        return "unsupported";
    case CKS_EINCOMPLETE:
        return "incomplete";
    case CKS_EEXISTS:
        return "exists";
    case CKS_EINTR:
        return "interrupted";
    case CKS_EFAILCHECK:
        return "check failed";
    case CKS_ITEROVER:
        return "end of iteration";
    default:
        return "error";
    }
}
