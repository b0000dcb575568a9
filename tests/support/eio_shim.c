/* Fault injection for tests/cli/test_faults.py, loaded with LD_PRELOAD: reads, writes and
 * syncs on files whose path holds $CKS_EIO_MATCH fail with EIO (as a dying disk makes them
 * fail) once $CKS_EIO_AFTER of them have succeeded. $CKS_EIO_OPS chooses which calls
 * count: "write" (write, pwrite, pwrite64, copy_file_range into the file), "fsync" (fsync,
 * fdatasync), "read" (read, pread, pread64; not reads through a mapping, which fault as
 * SIGBUS like a truncated file), or several. Every other call goes to the C library unchanged. This
 * is simulated EIO, not a failing device: the kernel is never asked; what is tested is how
 * ckptscope handles the error the system call would return. */
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

static long done;

static int matches(int fd, const char *op)
{
    const char *match = getenv("CKS_EIO_MATCH"), *ops = getenv("CKS_EIO_OPS");
    char link[64], path[4096];
    if (!match || !*match || (ops && !strstr(ops, op)))
        return 0;
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n <= 0)
        return 0;
    path[n] = '\0';
    return strstr(path, match) != NULL;
}

/* 1 when this call must fail (errno set to EIO). */
static int inject(int fd, const char *op)
{
    if (!matches(fd, op))
        return 0;
    const char *a = getenv("CKS_EIO_AFTER");
    long after = a ? strtol(a, NULL, 10) : 0;
    if (done++ < after)
        return 0;
    errno = EIO;
    return 1;
}

#define REAL(name, type) ((type)dlsym(RTLD_NEXT, name))

ssize_t read(int fd, void *buf, size_t n)
{
    if (inject(fd, "read"))
        return -1;
    return REAL("read", ssize_t(*)(int, void *, size_t))(fd, buf, n);
}

ssize_t pread(int fd, void *buf, size_t n, off_t off)
{
    if (inject(fd, "read"))
        return -1;
    return REAL("pread", ssize_t(*)(int, void *, size_t, off_t))(fd, buf, n, off);
}

ssize_t pread64(int fd, void *buf, size_t n, off_t off)
{
    if (inject(fd, "read"))
        return -1;
    return REAL("pread64", ssize_t(*)(int, void *, size_t, off_t))(fd, buf, n, off);
}

ssize_t write(int fd, const void *buf, size_t n)
{
    if (inject(fd, "write"))
        return -1;
    return REAL("write", ssize_t(*)(int, const void *, size_t))(fd, buf, n);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
    if (inject(fd, "write"))
        return -1;
    return REAL("pwrite", ssize_t(*)(int, const void *, size_t, off_t))(fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off)
{
    if (inject(fd, "write"))
        return -1;
    return REAL("pwrite64", ssize_t(*)(int, const void *, size_t, off_t))(fd, buf, n, off);
}

ssize_t copy_file_range(int in, off_t *inoff, int out, off_t *outoff, size_t n, unsigned flags)
{
    if (inject(out, "write"))
        return -1;
    return REAL("copy_file_range", ssize_t(*)(int, off_t *, int, off_t *, size_t, unsigned))(
        in, inoff, out, outoff, n, flags);
}

int fsync(int fd)
{
    if (inject(fd, "fsync"))
        return -1;
    return REAL("fsync", int (*)(int))(fd);
}

int fdatasync(int fd)
{
    if (inject(fd, "fsync"))
        return -1;
    return REAL("fdatasync", int (*)(int))(fd);
}
