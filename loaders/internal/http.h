/* HTTP for the hub source: the one place that owns libcurl.
 *
 * Every request has a connect timeout and a stall timeout (abandoned when no byte arrives
 * for that long). Redirects are followed here, not by libcurl: at most
 * CKS_HTTP_MAX_REDIRECTS hops, only to http:// and https:// URLs, and the bearer token is
 * sent only to the origin (scheme, host, port) of the endpoint given at creation, never
 * to a host a redirect points to (the hub sends LFS downloads to a storage host with a
 * signed URL). A request that fails with 429, a 5xx status or a dropped / timed-out
 * connection is tried again, from the start of its redirect chain, at most CKS_HTTP_TRIES
 * times in all, after Retry-After seconds when the server gave one (at most
 * CKS_HTTP_MAX_RETRY_AFTER) or 1, 2, 4, 8 s otherwise. A download that broke off resumes
 * with a Range request from the last byte written. Messages name URLs without their query
 * (signed URLs carry credentials there).
 *
 * A cks_http is one libcurl easy handle: use one per thread. */
#ifndef CKS_HTTP_H
#define CKS_HTTP_H

#include <stddef.h>
#include <stdint.h>

#define CKS_HTTP_TRIES           5
#define CKS_HTTP_MAX_REDIRECTS   10
#define CKS_HTTP_MAX_RETRY_AFTER 120 /* seconds */

typedef struct cks_http cks_http;

typedef struct {
    const char *endpoint; /* "scheme://host[:port]", the only origin that gets the token */
    const char *token;    /* bearer token, or NULL */
    long connect_timeout; /* seconds, per connection */
    long stall_timeout;   /* seconds without a byte before a transfer is abandoned */
} cks_http_opts;

/* What came back. Header values are those of the final response, except the X-Linked-*
 * and ETag values, which are those of the first response (the endpoint's own: the hub
 * names an LFS file's sha256 and size there, on the redirect). */
typedef struct {
    long status; /* final HTTP status */
    char *body;  /* cks_http_get: the body, NUL-terminated; else an error body */
    size_t len;
    char *link;          /* Link header, or NULL */
    char *url;           /* the final URL (after redirects) */
    char error_code[64]; /* X-Error-Code ("RepoNotFound", "RevisionNotFound", ...) or "" */
    char linked_etag[80];
    int64_t linked_size; /* X-Linked-Size, -1 when absent */
    char etag[80];
} cks_http_result;

void cks_http_result_release(cks_http_result *r);

/* opts' strings are copied. */
int cks_http_new(cks_http **out, const cks_http_opts *opts);
void cks_http_free(cks_http *h);

/* GETs url into memory. A body (or a Content-Length) past limit bytes is CKS_ELIMIT.
 * Returns 0 with out->status set for any final status that is not retried (2xx, 4xx);
 * CKS_EIO when the tries ran out; CKS_EFORMAT for a bad redirect. out is the caller's
 * to release (also on failure). */
int cks_http_get(cks_http *h, const char *url, size_t limit, cks_http_result *out);

/* Where a download goes. Bytes [offset, size) are fetched and written to fd at their
 * position; on_data sees every byte written, in order, exactly once (hashing, progress).
 * offset advances as bytes are written, so after a failure it tells how far it came. */
typedef struct {
    int fd;
    uint64_t offset;
    uint64_t size;
    void (*on_data)(void *ctx, const void *p, size_t n);
    void *ctx;
    const int *cancel; /* read atomically; nonzero abandons the transfer (CKS_EINTR) */
} cks_http_sink;

/* Downloads url into sink. 0 with a 2xx out->status means offset == size. 0 with a 4xx
 * status: the server refused (the caller names what). A Content-Length or
 * Content-Range that disagrees with the bytes wanted, or more bytes than size, is
 * CKS_EFORMAT at once (not retried). */
int cks_http_fetch(cks_http *h, const char *url, cks_http_sink *sink, cks_http_result *out);

/* Percent-encodes text for a URL path; '/' is kept when keep_slash. *out is a new string. */
int cks_http_escape(const char *text, int keep_slash, char **out);

/* 1 when url has the endpoint's origin (the token would be sent to it). */
int cks_http_same_origin(const cks_http *h, const char *url);

#endif
