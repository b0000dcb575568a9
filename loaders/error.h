/* Errors, libgit2-style: functions return 0 on success or a negative CKS_E* code; the
 * message is set once, where the failure is found, in a thread-local buffer that stays
 * valid until the next cks_error_set/cks_error_clear on the same thread. */
#ifndef CKS_ERROR_H
#define CKS_ERROR_H

#include <stddef.h>

enum {
    CKS_OK = 0,
    CKS_ERROR = -1,        /* generic failure */
    CKS_ENOTFOUND = -2,    /* file, branch, tensor or key does not exist */
    CKS_EFORMAT = -3,      /* input is malformed or inconsistent */
    CKS_EIO = -4,          /* the operating system refused a read or write */
    CKS_ENOMEM = -5,       /* allocation failed */
    CKS_EINVAL = -6,       /* bad argument or usage */
    CKS_ELIMIT = -7,       /* input exceeds a resource limit (see the CKS_MAX_* constants) */
    CKS_EUNSUPPORTED = -8, /* well-formed but not supported (a dtype, a layout) */
    CKS_EINCOMPLETE = -9,  /* a checkpoint whose data is not all present (missing LFS) */
    CKS_EEXISTS = -10,     /* output already exists or is locked */
    CKS_EINTR = -11,       /* interrupted by a signal; work so far is saved */
    CKS_EFAILCHECK = -12,  /* a check failed (a regression): exit status 1 */
    CKS_ITEROVER = -31     /* iteration finished; not an error */
};

/* Sets the thread's message from a printf format and returns code, so a failure reads
 * `return cks_error_set(CKS_EFORMAT, "%s: ...", path);`. Whatever the arguments hold
 * (names from hostile files), the message is one printable line: control characters and
 * bytes that are not UTF-8 become '?'. */
int cks_error_set(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prepends "<context>: " to the current message (adding the file or branch a callee did
 * not know) and returns code. */
int cks_error_prefix(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The thread's last message, or "" when none was set. Never NULL. */
const char *cks_error_last(void);

void cks_error_clear(void);

/* Copies n bytes of untrusted text (a name read from a file) into buf for a message:
 * bytes outside printable ASCII become '?', and text longer than cap - 1 is cut and
 * ends in "...". Returns buf. */
const char *cks_printable(char *buf, size_t cap, const void *text, size_t n);

/* Short name of a code ("format error", "not found", ...). */
const char *cks_error_name(int code);

#endif
