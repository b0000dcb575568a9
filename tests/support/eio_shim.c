/* Fault injection for the CLI fault tests, loaded with LD_PRELOAD.
 *
 * System calls: reads, writes and syncs on files whose path holds $CKS_EIO_MATCH fail with
 * EIO (as a dying disk makes them fail) once $CKS_EIO_AFTER of them have succeeded.
 * $CKS_EIO_OPS chooses which calls count: "write" (write, pwrite, pwrite64,
 * copy_file_range into the file), "fsync" (fsync, fdatasync), "read" (read, pread,
 * pread64), or several.
 *
 * Mappings: a file whose path holds $CKS_SIGBUS_MATCH is mapped as asked, except the
 * whole pages inside its byte range $CKS_SIGBUS_RANGE ("offset:length"), which are
 * replaced by a mapping past the end of an empty file: reading them raises SIGBUS, as a
 * read error (or a truncation) of a mapped file does. The fault is the same in every
 * process that maps the file and on every read, so a test can name the tensor whose read
 * fails, mid-way through its checkpoint, whichever process reads it and in which role.
 *
 * Every other call goes to the C library unchanged. This is simulated, not a failing
 * device: the kernel is never asked; what is tested is how ckptscope handles the error
 * the system call or the page fault would give. */
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/mman.h>
#include <unistd.h>

static long done;

/* 1 when fd is a file whose path holds match. */
static int matches_path(int fd, const char *match)
{
    char link[64], path[4096];
    if (!match || !*match)
        return 0;
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n <= 0)
        return 0;
    path[n] = '\0';
    return strstr(path, match) != NULL;
}

static int matches(int fd, const char *op)
{
    const char *ops = getenv("CKS_EIO_OPS");
    if (ops && !strstr(ops, op))
        return 0;
    return matches_path(fd, getenv("CKS_EIO_MATCH"));
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

/* ---- mappings ---- */

typedef void *(*mmap_fn)(void *, size_t, int, int, int, off_t);
static mmap_fn real_mmap, real_mmap64;

/* Looked up at the first mapping (a library's own initialisation may map memory before
 * this one's constructor runs), and at load time at the latest: the SIGBUS guard of the
 * program under test calls mmap from its signal handler, where dlsym must not run. */
__attribute__((constructor)) static void find_mmap(void)
{
    if (!real_mmap)
        real_mmap = REAL("mmap", mmap_fn);
    if (!real_mmap64)
        real_mmap64 = REAL("mmap64", mmap_fn);
}

/* Replaces the whole pages of the faulting range that the mapping p (file bytes off ..
 * off + len) covers. */
static void poison(char *p, size_t len, int fd, off_t off)
{
    const char *range = getenv("CKS_SIGBUS_RANGE"), *colon = range ? strchr(range, ':') : NULL;
    long page = sysconf(_SC_PAGESIZE);
    if (!colon || !matches_path(fd, getenv("CKS_SIGBUS_MATCH")))
        return;
    long long r0 = strtoll(range, NULL, 10), r1 = r0 + strtoll(colon + 1, NULL, 10);
    long long a = (r0 + page - 1) / page * page, b = r1 / page * page;
    if (a < off)
        a = (off + page - 1) / page * page;
    if (b > off + (long long)len)
        b = (off + (long long)len) / page * page;
    if (b <= a)
        return;
    int empty = memfd_create("cks-sigbus", 0);
    if (empty < 0)
        return;
    real_mmap(p + (a - off), (size_t)(b - a), PROT_READ, MAP_SHARED | MAP_FIXED, empty, 0);
    close(empty);
}

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    find_mmap();
    void *p = real_mmap(addr, len, prot, flags, fd, off);
    if (p != MAP_FAILED && fd >= 0)
        poison(p, len, fd, off);
    return p;
}

void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    find_mmap();
    void *p = real_mmap64(addr, len, prot, flags, fd, off);
    if (p != MAP_FAILED && fd >= 0)
        poison(p, len, fd, off);
    return p;
}
