/* mmap-backed and adopted byte regions (see map.h). */
#include "map.h"
#include "error.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static int map_new(cks_map **out, const char *display)
{
    cks_map *m = calloc(1, sizeof *m + strlen(display) + 1);
    if (!m)
        return cks_error_set(CKS_ENOMEM, "out of memory mapping %s", display);
    char *d = (char *)(m + 1);
    strcpy(d, display);
    m->display = d;
    *out = m;
    return 0;
}

int cks_map_file(cks_map **out, const char *path, const char *display)
{
    int fd = -1, err = 0;
    cks_map *m = NULL;
    struct stat st;
    if (!display)
        display = path;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return cks_error_set(errno == ENOENT ? CKS_ENOTFOUND : CKS_EIO, "%s: cannot open: %s",
                             display, strerror(errno));
    if (fstat(fd, &st) != 0) {
        err = cks_error_set(CKS_EIO, "%s: cannot stat: %s", display, strerror(errno));
        goto done;
    }
    if (!S_ISREG(st.st_mode)) {
        err = cks_error_set(CKS_EFORMAT, "%s: not a regular file", display);
        goto done;
    }
    if ((err = map_new(&m, display)) != 0)
        goto done;
    if (st.st_size > 0) {
        if ((uint64_t)st.st_size > SIZE_MAX) {
            err = cks_error_set(CKS_ELIMIT, "%s: too large to map", display);
            goto done;
        }
        void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            err = cks_error_set(CKS_EIO, "%s: cannot map %lld bytes: %s", display,
                                (long long)st.st_size, strerror(errno));
            goto done;
        }
        m->base = p;
        m->maplen = (size_t)st.st_size;
        m->data = p;
        m->size = (size_t)st.st_size;
    }
    *out = m;
    m = NULL;
done:
    free(m);
    close(fd);
    return err;
}

int cks_map_adopt(cks_map **out, const void *data, size_t size, void (*release)(void *ctx),
                  void *ctx, const char *display)
{
    cks_map *m = NULL;
    int err = map_new(&m, display ? display : "(buffer)");
    if (err) {
        if (release)
            release(ctx);
        return err;
    }
    m->data = data;
    m->size = size;
    m->release = release;
    m->ctx = ctx;
    *out = m;
    return 0;
}

void cks_map_free(cks_map *m)
{
    if (!m)
        return;
    if (m->base)
        munmap(m->base, m->maplen);
    if (m->release)
        m->release(m->ctx);
    free(m);
}

void cks_map_dontneed(const cks_map *m, const void *p, size_t len)
{
    if (!m || !m->base || len == 0)
        return;
    long pg = sysconf(_SC_PAGESIZE);
    uintptr_t lo = (uintptr_t)p, hi = lo + len;
    uintptr_t base = (uintptr_t)m->base, end = base + m->maplen;
    if (lo < base || hi > end)
        return;
    lo = (lo + (uintptr_t)pg - 1) & ~((uintptr_t)pg - 1); /* whole pages inside the range */
    hi &= ~((uintptr_t)pg - 1);
    if (hi > lo)
        madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

int cks_read_file(const char *path, size_t limit, char **out, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC), err = 0;
    char *buf = NULL;
    struct stat st;
    if (fd < 0)
        return cks_error_set(errno == ENOENT ? CKS_ENOTFOUND : CKS_EIO, "%s: cannot open: %s", path,
                             strerror(errno));
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        err = cks_error_set(CKS_EIO, "%s: not a readable regular file", path);
        goto done;
    }
    if ((uint64_t)st.st_size > limit) {
        err = cks_error_set(CKS_ELIMIT, "%s: %lld bytes, more than the %zu allowed", path,
                            (long long)st.st_size, limit);
        goto done;
    }
    size_t n = (size_t)st.st_size, got = 0;
    if (!(buf = malloc(n + 1))) {
        err = cks_error_set(CKS_ENOMEM, "%s: out of memory", path);
        goto done;
    }
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            err = cks_error_set(CKS_EIO, "%s: read failed: %s", path,
                                r < 0 ? strerror(errno) : "file shrank");
            goto done;
        }
        got += (size_t)r;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    buf = NULL;
done:
    free(buf);
    close(fd);
    return err;
}
