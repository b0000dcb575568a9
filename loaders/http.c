/* libcurl, in one file (http.h says what it guarantees). Redirects are followed by hand so
 * that the token goes to the endpoint's origin only; each try restarts the redirect chain
 * (signed storage URLs expire) and a download resumes with Range where it stopped. */
#include "http.h"
#include "error.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define ERROR_BODY_MAX ((size_t)64 << 10) /* kept of a refusal's body */
#define FETCH_BUFFER   ((long)512 << 10)  /* bytes per libcurl read for downloads */

struct cks_http {
    CURL *curl;
    char *scheme, *host; /* the endpoint's origin, lower case */
    long port;
    long connect_timeout, stall_timeout;
    struct curl_slist *auth; /* "Authorization: Bearer ..." or NULL */
};

enum { MODE_GET, MODE_FETCH };

/* One try of one request chain: what the callbacks saw of the current response. */
typedef struct {
    cks_http *h;
    int mode;
    size_t limit;        /* MODE_GET */
    cks_http_sink *sink; /* MODE_FETCH */
    const char *url;     /* current hop, for messages */
    long status;
    int64_t content_length; /* -1 when absent */
    char content_range[128];
    uint64_t skip; /* a 200 to a Range request: body bytes already on disk */
    char *buf;     /* MODE_GET body, or the first ERROR_BODY_MAX bytes of a refusal */
    size_t len, cap;
    cks_http_result *res;
    int hop;
    int fail; /* a CKS_E* code set by a callback (message set) */
} xfer;

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc;

static void global_init(void)
{
    global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* The URL without query and fragment, for messages: signed URLs carry credentials. */
static const char *msg_url(const char *url, char *buf, size_t cap)
{
    size_t n = strcspn(url, "?#");
    snprintf(buf, cap, "%.*s", (int)n, url);
    return buf;
}

static int parse_origin(const char *url, char **scheme, char **host, long *port)
{
    CURLU *u = curl_url();
    char *s = NULL, *h = NULL, *p = NULL;
    int ok = u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
             curl_url_get(u, CURLUPART_SCHEME, &s, 0) == CURLUE_OK &&
             curl_url_get(u, CURLUPART_HOST, &h, 0) == CURLUE_OK &&
             curl_url_get(u, CURLUPART_PORT, &p, CURLU_DEFAULT_PORT) == CURLUE_OK;
    if (ok) {
        for (char *c = s; *c; c++)
            *c = (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
        for (char *c = h; *c; c++)
            *c = (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
        *port = strtol(p, NULL, 10);
        *scheme = strdup(s);
        *host = strdup(h);
        ok = *scheme && *host;
    }
    curl_free(s);
    curl_free(h);
    curl_free(p);
    curl_url_cleanup(u);
    return ok ? 0 : -1;
}

static int http_scheme(const char *url)
{
    return strncasecmp(url, "http://", 7) == 0 || strncasecmp(url, "https://", 8) == 0;
}

int cks_http_same_origin(const cks_http *h, const char *url)
{
    char *s = NULL, *host = NULL;
    long port = 0;
    if (parse_origin(url, &s, &host, &port) != 0)
        return 0;
    int same = strcmp(s, h->scheme) == 0 && strcmp(host, h->host) == 0 && port == h->port;
    free(s);
    free(host);
    return same;
}

void cks_http_free(cks_http *h)
{
    if (!h)
        return;
    if (h->curl)
        curl_easy_cleanup(h->curl);
    curl_slist_free_all(h->auth);
    free(h->scheme);
    free(h->host);
    free(h);
}

int cks_http_new(cks_http **out, const cks_http_opts *o)
{
    pthread_once(&global_once, global_init);
    if (global_rc != CURLE_OK)
        return cks_error_set(CKS_ERROR, "libcurl: %s", curl_easy_strerror(global_rc));
    if (!http_scheme(o->endpoint))
        return cks_error_set(CKS_EINVAL, "%s: the hub endpoint must be an http:// or https:// URL",
                             o->endpoint);
    cks_http *h = calloc(1, sizeof *h);
    if (!h)
        return cks_error_set(CKS_ENOMEM, "out of memory");
    h->connect_timeout = o->connect_timeout > 0 ? o->connect_timeout : 10;
    h->stall_timeout = o->stall_timeout > 0 ? o->stall_timeout : 10;
    if (parse_origin(o->endpoint, &h->scheme, &h->host, &h->port) != 0) {
        cks_http_free(h);
        return cks_error_set(CKS_EINVAL, "%s: not a URL", o->endpoint);
    }
    if (o->token && *o->token) {
        char *line = NULL;
        if (asprintf(&line, "Authorization: Bearer %s", o->token) < 0 ||
            !(h->auth = curl_slist_append(NULL, line))) {
            free(line);
            cks_http_free(h);
            return cks_error_set(CKS_ENOMEM, "out of memory");
        }
        free(line);
    }
    if (!(h->curl = curl_easy_init())) {
        cks_http_free(h);
        return cks_error_set(CKS_ERROR, "libcurl: cannot create a handle");
    }
    *out = h;
    return 0;
}

void cks_http_result_release(cks_http_result *r)
{
    free(r->body);
    free(r->link);
    free(r->url);
    memset(r, 0, sizeof *r);
    r->linked_size = -1;
}

/* ---- callbacks ---- */

static int buf_append(xfer *x, const char *p, size_t n, size_t limit)
{
    if (x->len + n > limit)
        return -1;
    if (x->len + n + 1 > x->cap) {
        size_t cap = x->cap ? x->cap : 4096;
        while (cap < x->len + n + 1)
            cap *= 2;
        char *b = realloc(x->buf, cap);
        if (!b)
            return -1;
        x->buf = b;
        x->cap = cap;
    }
    memcpy(x->buf + x->len, p, n);
    x->len += n;
    x->buf[x->len] = '\0';
    return 0;
}

static void copy_value(char *dst, size_t cap, const char *v, size_t n)
{
    if (n >= 2 && v[0] == '"' && v[n - 1] == '"') /* ETags are quoted */
        v++, n -= 2;
    snprintf(dst, cap, "%.*s", (int)n, v);
}

/* A 2xx response's headers are complete: is it the body we asked for? */
static int check_body_headers(xfer *x)
{
    char u[1024];
    cks_http_sink *s = x->sink;
    if (x->mode == MODE_GET) {
        if (x->content_length > (int64_t)x->limit)
            return cks_error_set(
                CKS_ELIMIT, "GET %s: Content-Length %lld, more than the %zu allowed",
                msg_url(x->url, u, sizeof u), (long long)x->content_length, x->limit);
        return 0;
    }
    uint64_t want = s->size - s->offset;
    if (x->status == 206) {
        unsigned long long a, b;
        char total[32];
        if (sscanf(x->content_range, "bytes %llu-%llu/%31s", &a, &b, total) != 3 ||
            a != s->offset || b + 1 != s->size)
            return cks_error_set(CKS_EFORMAT,
                                 "GET %s: Content-Range '%s' is not the bytes %llu-%llu asked for",
                                 msg_url(x->url, u, sizeof u), x->content_range,
                                 (unsigned long long)s->offset, (unsigned long long)s->size - 1);
    } else {
        want = s->size; /* the whole file: skip what is already on disk */
        x->skip = s->offset;
    }
    if (x->content_length >= 0 && (uint64_t)x->content_length != want)
        return cks_error_set(CKS_EFORMAT,
                             "GET %s: Content-Length %lld, but the file has %llu bytes%s (the "
                             "listing's size)",
                             msg_url(x->url, u, sizeof u), (long long)x->content_length,
                             (unsigned long long)want, x->status == 206 ? " left" : "");
    return 0;
}

static size_t on_header(char *p, size_t size, size_t n, void *ctx)
{
    xfer *x = ctx;
    size_t len = size * n, k = len;
    while (k > 0 && (p[k - 1] == '\n' || p[k - 1] == '\r'))
        k--;
    if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) { /* a new response (after 1xx too) */
        const char *sp = memchr(p, ' ', len);
        x->status = sp ? strtol(sp + 1, NULL, 10) : 0;
        x->content_length = -1;
        x->content_range[0] = '\0';
        return len;
    }
    if (k == 0) { /* end of the header block */
        if (x->status >= 200 && x->status < 300 && (x->fail = check_body_headers(x)) != 0)
            return 0;
        return len;
    }
    const char *colon = memchr(p, ':', k);
    if (!colon)
        return len;
    size_t nl = (size_t)(colon - p);
    const char *v = colon + 1;
    while (v < p + k && (*v == ' ' || *v == '\t'))
        v++;
    size_t vl = (size_t)(p + k - v);
    cks_http_result *r = x->res;
#define IS(name) (nl == sizeof name - 1 && strncasecmp(p, name, nl) == 0)
    if (IS("Content-Length")) {
        char num[32];
        char *end;
        snprintf(num, sizeof num, "%.*s", (int)(vl < 31 ? vl : 31), v);
        unsigned long long cl = strtoull(num, &end, 10);
        x->content_length = (*num >= '0' && *num <= '9' && !*end && cl <= INT64_MAX)
                                ? (int64_t)cl
                                : INT64_MAX; /* unreadable: never matches what we want */
    } else if (IS("Content-Range")) {
        copy_value(x->content_range, sizeof x->content_range, v, vl);
    } else if (IS("Link")) {
        free(r->link);
        r->link = strndup(v, vl);
    } else if (IS("X-Error-Code")) {
        copy_value(r->error_code, sizeof r->error_code, v, vl);
    } else if (x->hop == 0 && IS("X-Linked-Etag")) {
        copy_value(r->linked_etag, sizeof r->linked_etag, v, vl);
    } else if (x->hop == 0 && IS("ETag")) {
        copy_value(r->etag, sizeof r->etag, v, vl);
    } else if (x->hop == 0 && IS("X-Linked-Size")) {
        char num[32];
        char *end;
        snprintf(num, sizeof num, "%.*s", (int)(vl < 31 ? vl : 31), v);
        long long s = strtoll(num, &end, 10);
        r->linked_size = (*num >= '0' && *num <= '9' && !*end) ? s : INT64_MAX;
    }
#undef IS
    return len;
}

static int write_all(int fd, const char *p, size_t n, uint64_t off)
{
    while (n > 0) {
        ssize_t w = pwrite(fd, p, n, (off_t)off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w, n -= (size_t)w, off += (uint64_t)w;
    }
    return 0;
}

static size_t on_body(char *p, size_t size, size_t n, void *ctx)
{
    xfer *x = ctx;
    size_t len = size * n;
    char u[1024];
    if (x->status < 200 || x->status >= 300) { /* a refusal or redirect: keep a little */
        size_t room = x->len < ERROR_BODY_MAX ? ERROR_BODY_MAX - x->len : 0;
        (void)buf_append(x, p, len < room ? len : room, ERROR_BODY_MAX);
        return len;
    }
    if (x->mode == MODE_GET) {
        if (buf_append(x, p, len, x->limit) != 0) {
            x->fail = x->len + len > x->limit
                          ? cks_error_set(CKS_ELIMIT, "GET %s: more than the %zu bytes allowed",
                                          msg_url(x->url, u, sizeof u), x->limit)
                          : cks_error_set(CKS_ENOMEM, "out of memory");
            return 0;
        }
        return len;
    }
    cks_http_sink *s = x->sink;
    const char *d = p;
    size_t m = len;
    if (x->skip) {
        size_t drop = x->skip < m ? (size_t)x->skip : m;
        x->skip -= drop, d += drop, m -= drop;
    }
    if (m > s->size - s->offset) {
        x->fail = cks_error_set(CKS_EFORMAT, "GET %s: more than the %llu bytes the listing gives",
                                msg_url(x->url, u, sizeof u), (unsigned long long)s->size);
        return 0;
    }
    if (m && write_all(s->fd, d, m, s->offset) != 0) {
        x->fail = cks_error_set(CKS_EIO, "writing the download of %s: %s",
                                msg_url(x->url, u, sizeof u), strerror(errno));
        return 0;
    }
    if (m && s->on_data)
        s->on_data(s->ctx, d, m);
    s->offset += m;
    return len;
}

static int on_progress(void *ctx, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    xfer *x = ctx;
    const int *cancel = x->sink ? x->sink->cancel : NULL;
    return cancel && __atomic_load_n(cancel, __ATOMIC_RELAXED) ? 1 : 0;
}

/* ---- one hop, one chain, the tries ---- */

static CURLcode one_hop(xfer *x, const char *url)
{
    cks_http *h = x->h;
    CURL *c = h->curl;
    char range[48];
    x->url = url;
    x->status = 0;
    x->len = 0;
    x->skip = 0;
    x->content_length = -1;
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, h->connect_timeout);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, h->stall_timeout);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "ckptscope/" CKS_VERSION);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, x);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    if (h->auth && cks_http_same_origin(h, url))
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h->auth);
    if (x->mode == MODE_GET) {
        curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
    } else {
        curl_easy_setopt(c, CURLOPT_BUFFERSIZE, FETCH_BUFFER);
        if (x->sink->offset > 0) {
            snprintf(range, sizeof range, "%llu-", (unsigned long long)x->sink->offset);
            curl_easy_setopt(c, CURLOPT_RANGE, range);
        }
    }
    return curl_easy_perform(c);
}

enum { CHAIN_DONE = 0, CHAIN_RETRY = 1 };

static int transient(CURLcode rc)
{
    switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SSL_CONNECT_ERROR:
        return 1;
    default:
        return 0;
    }
}

/* Follows the redirects of one try. Returns CHAIN_DONE (res->status final), CHAIN_RETRY
 * (*why says what went wrong) or a negative CKS_E* code. */
static int run_chain(xfer *x, const char *url0, char *why, size_t whycap, long *retry_after)
{
    char *url = strdup(url0), u[1024];
    int err = CHAIN_DONE;
    if (!url)
        return cks_error_set(CKS_ENOMEM, "out of memory");
    for (x->hop = 0;; x->hop++) {
        CURLcode rc = one_hop(x, url);
        if (x->fail) {
            err = x->fail;
            break;
        }
        if (rc != CURLE_OK) {
            if (rc == CURLE_ABORTED_BY_CALLBACK) {
                err = cks_error_set(CKS_EINTR, "GET %s: cancelled", msg_url(url, u, sizeof u));
                break;
            }
            snprintf(why, whycap, "%s", curl_easy_strerror(rc));
            err = transient(rc) ? CHAIN_RETRY
                                : cks_error_set(CKS_EIO, "GET %s: %s", msg_url(url, u, sizeof u),
                                                curl_easy_strerror(rc));
            break;
        }
        long st = x->status;
        if (st == 301 || st == 302 || st == 303 || st == 307 || st == 308) {
            char *next = NULL;
            curl_easy_getinfo(x->h->curl, CURLINFO_REDIRECT_URL, &next);
            if (!next || !http_scheme(next)) {
                err = cks_error_set(
                    CKS_EFORMAT, "GET %s: redirect (HTTP %ld) to %s, not an http(s) URL",
                    msg_url(url, u, sizeof u), st, next ? "another scheme" : "no usable Location");
                break;
            }
            if (x->hop + 1 > CKS_HTTP_MAX_REDIRECTS) {
                err = cks_error_set(CKS_EFORMAT, "GET %s: more than %d redirects",
                                    msg_url(url0, u, sizeof u), CKS_HTTP_MAX_REDIRECTS);
                break;
            }
            char *copy = strdup(next);
            free(url);
            if (!(url = copy))
                return cks_error_set(CKS_ENOMEM, "out of memory");
            continue;
        }
        x->res->status = st;
        if (st == 429 || (st >= 500 && st <= 599)) {
            curl_off_t ra = -1;
            if (curl_easy_getinfo(x->h->curl, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK && ra >= 0)
                *retry_after = ra > CKS_HTTP_MAX_RETRY_AFTER ? CKS_HTTP_MAX_RETRY_AFTER : (long)ra;
            snprintf(why, whycap, "HTTP %ld", st);
            err = CHAIN_RETRY;
        }
        break;
    }
    free(x->res->url);
    x->res->url = url;
    return err;
}

static void pause_for(long seconds, const int *cancel)
{
    for (long ms = 0; ms < seconds * 1000; ms += 50) {
        if (cancel && __atomic_load_n(cancel, __ATOMIC_RELAXED))
            return;
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

static int run(cks_http *h, int mode, const char *url, size_t limit, cks_http_sink *sink,
               cks_http_result *out)
{
    char why[256] = "", u[1024];
    xfer x = {.h = h, .mode = mode, .limit = limit, .sink = sink, .res = out};
    int err = 0;
    memset(out, 0, sizeof *out);
    out->linked_size = -1;
    for (int attempt = 1;; attempt++) {
        long retry_after = -1;
        out->error_code[0] = out->linked_etag[0] = out->etag[0] = '\0';
        out->linked_size = -1;
        free(out->link);
        out->link = NULL;
        err = run_chain(&x, url, why, sizeof why, &retry_after);
        if (err != CHAIN_RETRY)
            break;
        if (sink && sink->offset == sink->size && sink->size > 0 && x.status >= 200 &&
            x.status < 300) { /* every byte arrived; only the end of the exchange broke */
            err = 0;
            break;
        }
        if (attempt >= CKS_HTTP_TRIES) {
            err = cks_error_set(CKS_EIO, "GET %s: %s (%d tries)", msg_url(url, u, sizeof u), why,
                                CKS_HTTP_TRIES);
            break;
        }
        pause_for(retry_after >= 0 ? retry_after : 1L << (attempt - 1), sink ? sink->cancel : NULL);
        if (sink && sink->cancel && __atomic_load_n(sink->cancel, __ATOMIC_RELAXED)) {
            err = cks_error_set(CKS_EINTR, "GET %s: cancelled", msg_url(url, u, sizeof u));
            break;
        }
    }
    if (err == 0 && out->status >= 200 && out->status < 300 && mode == MODE_FETCH &&
        sink->offset != sink->size)
        err = cks_error_set(CKS_EFORMAT, "GET %s: served %llu bytes, the listing gives %llu",
                            msg_url(url, u, sizeof u), (unsigned long long)sink->offset,
                            (unsigned long long)sink->size);
    out->body = x.buf;
    out->len = x.len;
    return err;
}

int cks_http_get(cks_http *h, const char *url, size_t limit, cks_http_result *out)
{
    return run(h, MODE_GET, url, limit, NULL, out);
}

int cks_http_fetch(cks_http *h, const char *url, cks_http_sink *sink, cks_http_result *out)
{
    return run(h, MODE_FETCH, url, 0, sink, out);
}

int cks_http_escape(const char *text, int keep_slash, char **out)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(text);
    char *o = malloc(3 * n + 1), *w = o;
    if (!o)
        return cks_error_set(CKS_ENOMEM, "out of memory");
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        int keep = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                   (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_' || *p == '~' ||
                   (keep_slash && *p == '/');
        if (keep) {
            *w++ = (char)*p;
        } else {
            *w++ = '%';
            *w++ = hex[*p >> 4];
            *w++ = hex[*p & 15];
        }
    }
    *w = '\0';
    *out = o;
    return 0;
}
