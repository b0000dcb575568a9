/* Row store in anonymous memory or an unlinked scratch file (see rowstore.h). */
#include "rowstore.h"
#include "checked.h"
#include "error.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

struct cks_rowstore {
    float *data;
    size_t bytes;
    int64_t rows, cols;
    int fd; /* -1 in memory */
};

static int map_file(cks_rowstore *s, const char *tmpdir)
{
    char path[4096];
    int n = snprintf(path, sizeof path, "%s/ckptscope-rows-XXXXXX", tmpdir);
    if (n < 0 || (size_t)n >= sizeof path)
        return cks_error_set(CKS_EINVAL, "scratch folder path too long: %s", tmpdir);
    if ((s->fd = mkostemp(path, O_CLOEXEC)) < 0)
        return cks_error_set(CKS_EIO, "cannot create a scratch file in %s: %s", tmpdir,
                             strerror(errno));
    unlink(path);
    int r = posix_fallocate(s->fd, 0, (off_t)s->bytes);
    if (r != 0)
        return cks_error_set(CKS_EIO, "cannot reserve %zu bytes of scratch space in %s: %s",
                             s->bytes, tmpdir, strerror(r));
    void *p = mmap(NULL, s->bytes, PROT_READ | PROT_WRITE, MAP_SHARED, s->fd, 0);
    if (p == MAP_FAILED)
        return cks_error_set(CKS_EIO, "cannot map %zu bytes of scratch file in %s: %s", s->bytes,
                             tmpdir, strerror(errno));
    s->data = p;
    return 0;
}

int cks_rowstore_new(cks_rowstore **out, int64_t rows, int64_t cols, size_t mem_max,
                     const char *tmpdir)
{
    cks_rowstore *s = calloc(1, sizeof *s);
    size_t n;
    int err = 0;
    if (!s)
        return cks_error_set(CKS_ENOMEM, "out of memory");
    s->fd = -1;
    s->rows = rows;
    s->cols = cols;
    if (rows < 0 || cols < 1 || cks_mul_size((size_t)rows, (size_t)cols, &n) ||
        cks_mul_size(n, sizeof(float), &s->bytes)) {
        err = cks_error_set(CKS_ELIMIT, "activation store of %lld x %lld floats is too large",
                            (long long)rows, (long long)cols);
        goto done;
    }
    if (s->bytes == 0)
        s->bytes = sizeof(float); /* a valid mapping even for zero rows */
    if (mem_max == 0)
        mem_max = CKS_ROWSTORE_MEM_MAX;
    if (s->bytes > mem_max) {
        if (!tmpdir)
            tmpdir = getenv("TMPDIR");
        if (!tmpdir || !*tmpdir)
            tmpdir = "/tmp";
        err = map_file(s, tmpdir);
    } else {
        void *p = mmap(NULL, s->bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            err = cks_error_set(CKS_ENOMEM, "cannot allocate %zu bytes of activations", s->bytes);
        else
            s->data = p;
    }
done:
    if (err) {
        cks_rowstore_free(s);
        return err;
    }
    *out = s;
    return 0;
}

void cks_rowstore_free(cks_rowstore *s)
{
    if (!s)
        return;
    if (s->data)
        munmap(s->data, s->bytes);
    if (s->fd >= 0)
        close(s->fd);
    free(s);
}

float *cks_rowstore_row(const cks_rowstore *s, int64_t r)
{
    return s->data + (size_t)r * (size_t)s->cols;
}

void cks_rowstore_release(cks_rowstore *s, int64_t r, int64_t n)
{
    if (s->fd < 0 || n <= 0)
        return;
    size_t lo = (size_t)r * (size_t)s->cols * sizeof(float);
    size_t hi = lo + (size_t)n * (size_t)s->cols * sizeof(float);
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    /* start write-back so the pages become clean and reclaimable, then unmap them from
     * this process; MADV_DONTNEED on a shared file mapping keeps the data */
    sync_file_range(s->fd, (off_t)lo, (off_t)(hi - lo), SYNC_FILE_RANGE_WRITE);
    lo = (lo + pg - 1) / pg * pg;
    hi = hi / pg * pg;
    if (hi > lo)
        madvise((char *)s->data + lo, hi - lo, MADV_DONTNEED);
}

int cks_rowstore_is_file(const cks_rowstore *s)
{
    return s->fd >= 0;
}
