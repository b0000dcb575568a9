/* mmap-backed and adopted byte regions, and the SIGBUS guard for mapped files that
 * shrink while being read (see map.h). */
#include "map.h"
#include "error.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* The guard's registry of mapped ranges. A signal handler can only reach global state;
 * the slots are written under a mutex by mappers and read lock-free by the handler. */
typedef struct {
    _Atomic uintptr_t base; /* 0: free */
    _Atomic size_t len;
    _Atomic int faulted;
} guard_slot;

static guard_slot guard_slots[CKS_MAX_GUARDED_MAPS];
static pthread_mutex_t guard_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic int guard_on;
static size_t guard_page;

static void on_sigbus(int sig, siginfo_t *si, void *uctx)
{
    uintptr_t a = (uintptr_t)si->si_addr;
    for (int i = 0; i < CKS_MAX_GUARDED_MAPS; i++) {
        uintptr_t b = atomic_load(&guard_slots[i].base);
        if (b && a >= b && a - b < atomic_load(&guard_slots[i].len)) {
            void *page = (void *)(a & ~(uintptr_t)(guard_page - 1));
            /* mmap is a plain system call here; a zero page lets the access complete */
            if (mmap(page, guard_page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) !=
                MAP_FAILED) {
                atomic_store(&guard_slots[i].faulted, 1);
                return;
            }
        }
    }
    /* not one of ours: the default action (the faulting access repeats and kills) */
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigaction(SIGBUS, &dfl, NULL);
}

int cks_map_guard_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    guard_page = (size_t)sysconf(_SC_PAGESIZE);
    if (sigaction(SIGBUS, &sa, NULL) != 0)
        return cks_error_set(CKS_EIO, "cannot install the SIGBUS handler: %s", strerror(errno));
    atomic_store(&guard_on, 1);
    return 0;
}

static int guard_add(void *base, size_t len)
{
    int slot = -1;
    if (!atomic_load(&guard_on))
        return -1;
    pthread_mutex_lock(&guard_lock);
    for (int i = 0; i < CKS_MAX_GUARDED_MAPS; i++) {
        if (atomic_load(&guard_slots[i].base) == 0) {
            atomic_store(&guard_slots[i].faulted, 0);
            atomic_store(&guard_slots[i].len, len);
            atomic_store(&guard_slots[i].base, (uintptr_t)base);
            slot = i;
            break;
        }
    }
    pthread_mutex_unlock(&guard_lock);
    return slot;
}

static void guard_remove(int slot)
{
    if (slot >= 0)
        atomic_store(&guard_slots[slot].base, 0);
}

int cks_map_check(const cks_map *m)
{
    if (m && m->guard >= 0 && atomic_load(&guard_slots[m->guard].faulted))
        return cks_error_set(CKS_EIO,
                             "%s: the file changed or could not be read while it was being "
                             "analysed (truncated or an I/O error); its results were discarded",
                             m->display);
    return 0;
}

static int map_new(cks_map **out, const char *display)
{
    cks_map *m = calloc(1, sizeof *m + strlen(display) + 1);
    if (!m)
        return cks_error_set(CKS_ENOMEM, "out of memory mapping %s", display);
    char *d = (char *)(m + 1);
    strcpy(d, display);
    m->display = d;
    m->guard = -1;
    *out = m;
    return 0;
}

/* Opens a regular file for reading. Anything else is refused before it is opened: a
 * FIFO in a hostile repository would block open(2) forever, and opening a device can have
 * effects (a tape rewinds). O_NONBLOCK covers a file swapped for a FIFO in between, and
 * fstat checks what was opened. */
static int open_regular(const char *path, const char *display, int *fd, struct stat *st)
{
    if (stat(path, st) != 0)
        return cks_error_set(errno == ENOENT ? CKS_ENOTFOUND : CKS_EIO, "%s: cannot open: %s",
                             display, strerror(errno));
    if (!S_ISREG(st->st_mode))
        return cks_error_set(CKS_EFORMAT, "%s: not a regular file (%s)", display,
                             S_ISDIR(st->st_mode)    ? "a folder"
                             : S_ISFIFO(st->st_mode) ? "a FIFO"
                                                     : "a device or socket");
    *fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (*fd < 0)
        return cks_error_set(errno == ENOENT ? CKS_ENOTFOUND : CKS_EIO, "%s: cannot open: %s",
                             display, strerror(errno));
    if (fstat(*fd, st) != 0 || !S_ISREG(st->st_mode)) {
        int err = cks_error_set(CKS_EIO, "%s: not a readable regular file", display);
        close(*fd);
        *fd = -1;
        return err;
    }
    return 0;
}

int cks_map_file(cks_map **out, const char *path, const char *display)
{
    int fd = -1, err = 0;
    cks_map *m = NULL;
    struct stat st;
    if (!display)
        display = path;
    if ((err = open_regular(path, display, &fd, &st)) != 0)
        return err;
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
        m->guard = guard_add(p, m->maplen);
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
    guard_remove(m->guard);
    if (m->base)
        munmap(m->base, m->maplen);
    if (m->release)
        m->release(m->ctx);
    free(m);
}

/* The range [p, p + len) as addresses with the page size, when it is non-empty and lies
 * inside m's mapping; 0 otherwise (a hint for anything else is ignored). */
static int hint_range(const cks_map *m, const void *p, size_t len, uintptr_t *lo, uintptr_t *hi,
                      uintptr_t *pg)
{
    if (!m || !m->base || len == 0)
        return 0;
    *pg = (uintptr_t)sysconf(_SC_PAGESIZE);
    *lo = (uintptr_t)p, *hi = *lo + len;
    uintptr_t base = (uintptr_t)m->base, end = base + m->maplen;
    return *lo >= base && *hi <= end;
}

void cks_map_dontneed(const cks_map *m, const void *p, size_t len)
{
    uintptr_t lo, hi, pg;
    if (!hint_range(m, p, len, &lo, &hi, &pg))
        return;
    lo = (lo + pg - 1) & ~(pg - 1); /* whole pages inside the range */
    hi &= ~(pg - 1);
    if (hi > lo)
        madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

void cks_map_willneed(const cks_map *m, const void *p, size_t len, int wait)
{
    uintptr_t lo, hi, pg;
    if (!hint_range(m, p, len, &lo, &hi, &pg))
        return;
    lo &= ~(pg - 1); /* every page the range touches */
#ifdef MADV_POPULATE_READ
    if (wait) {
        madvise((void *)lo, hi - lo, MADV_POPULATE_READ); /* EINVAL before 5.14: harmless */
        return;
    }
#endif
    madvise((void *)lo, hi - lo, MADV_WILLNEED);
}

int cks_read_file(const char *path, size_t limit, char **out, size_t *len)
{
    int fd = -1, err = 0;
    char *buf = NULL;
    struct stat st;
    if ((err = open_regular(path, path, &fd, &st)) != 0)
        return err;
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
