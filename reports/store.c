/* The run file's lifecycle: create/open with format checks, the writer lock, and
 * crash-atomic write transactions (copy PATH to PATH.tmp, write, close, fsync, rename,
 * fsync the folder). HDF5 errors and string attributes are in store_attrs.c, the tables
 * in store_tables.c, the datasets in store_values.c. See store.h for the guarantees. */
#include "error.h"
#include "store_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOCK_RETRIES 8
#define COPY_BLOCK   (1u << 20)

static void h5_quiet(void)
{
    /* HDF5 1.10 cannot recover a file whose close failed on a write error (ENOSPC): the
     * file stays registered half-closed, and closing it again, or the library's atexit
     * cleanup, crashes. A failed transaction's copy is simply dropped (its handle is never
     * touched again), so the atexit cleanup must not run: every file we open is closed by
     * us. This only takes effect before the library's first use, which is why it comes
     * before anything else. */
    H5dont_atexit();
    /* the library never prints: errors come back through cks_store_h5err */
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

int cks_store_need_tx(const cks_store *s, const char *what)
{
    if (s->in_tx)
        return 0;
    return cks_error_set(CKS_EINVAL, "%s: %s needs a write transaction (cks_store_begin)", s->path,
                         what);
}

int cks_store_close_written(cks_store *s, hid_t d, const char *path, int err)
{
    if (H5Dclose(d) < 0 && !err)
        err = cks_store_h5err(CKS_EIO, "%s: writing %s failed", s->path, path);
    return err;
}

int cks_store_fail(cks_store *s, int err)
{
    if (err && s->in_tx)
        s->tx_failed = 1;
    return err;
}

static int attr_write_int(hid_t obj, const char *name, int64_t v, const char *display)
{
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    int err = 0;
    if (a < 0 || H5Awrite(a, H5T_NATIVE_INT64, &v) < 0)
        err = cks_store_h5err(CKS_EIO, "%s: cannot write attribute '%s'", display, name);
    if (a >= 0)
        H5Aclose(a);
    H5Sclose(sp);
    return err;
}

/* ---- files ---- */

static hid_t fapl_new(void)
{
    hid_t p = H5Pcreate(H5P_FILE_ACCESS);
    /* closing the file closes whatever is still open in it */
    H5Pset_fclose_degree(p, H5F_CLOSE_STRONG);
    /* 1.8 object formats: readable by every HDF5 >= 1.8, and large attributes (a long
     * config.json) go to dense storage instead of failing */
    H5Pset_libver_bounds(p, H5F_LIBVER_V18, H5F_LIBVER_V18);
    /* PATH is never written in place and writers hold PATH.lock, so HDF5's own flock
     * would add nothing, and it fails on file systems without flock */
    H5Pset_file_locking(p, 0, 1);
    return p;
}

/* The failure of H5Fopen/H5Fcreate is translated before their access list is closed:
 * every HDF5 call, H5Pclose included, clears the error stack that holds the reason. */
static int open_ro(cks_store *s)
{
    hid_t p = fapl_new();
    s->fid = H5Fopen(s->path, H5F_ACC_RDONLY, p);
    int err = s->fid < 0 ? cks_store_h5err(CKS_EIO, "%s: cannot open the run file", s->path) : 0;
    H5Pclose(p);
    return err;
}

static void close_fid(cks_store *s)
{
    if (s->fid >= 0)
        H5Fclose(s->fid);
    s->fid = H5I_INVALID_HID;
    H5Eclear2(H5E_DEFAULT);
}

static int fsync_path(const char *path, int dir)
{
    int fd = open(path, (dir ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int r = fsync(fd);
    int e = errno;
    close(fd);
    errno = e;
    return r;
}

/* Copies src to dst (created, mode of src): a reflink where the file system shares
 * extents (btrfs, xfs), else copy_file_range in the kernel, else read/write. */
static int copy_file(const char *src, const char *dst)
{
    int in = -1, out = -1, err = 0;
    struct stat st;
    char *buf = NULL;
    if ((in = open(src, O_RDONLY | O_CLOEXEC)) < 0 || fstat(in, &st) != 0) {
        err = cks_error_set(CKS_EIO, "%s: cannot read: %s", src, strerror(errno));
        goto done;
    }
    if ((out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, st.st_mode & 0777)) < 0) {
        err = cks_error_set(CKS_EIO, "%s: cannot create: %s", dst, strerror(errno));
        goto done;
    }
    if (ioctl(out, FICLONE, in) == 0)
        goto done;
    off_t left = st.st_size;
    int kernel_copy = 1;
    while (left > 0) {
        ssize_t n;
        if (kernel_copy) {
            n = copy_file_range(in, NULL, out, NULL, (size_t)left, 0);
            if (n < 0 &&
                (errno == EXDEV || errno == ENOSYS || errno == EOPNOTSUPP || errno == EINVAL)) {
                kernel_copy = 0;
                continue;
            }
        } else {
            if (!buf && !(buf = malloc(COPY_BLOCK))) {
                err = cks_error_set(CKS_ENOMEM, "out of memory");
                goto done;
            }
            n = read(in, buf, COPY_BLOCK);
            for (ssize_t w = 0, k; n > 0 && w < n; w += k) {
                if ((k = write(out, buf + w, (size_t)(n - w))) < 0) {
                    n = -1;
                    break;
                }
            }
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            err = cks_error_set(CKS_EIO, "%s: cannot copy to %s: %s", src, dst,
                                n < 0 ? strerror(errno) : "file shrank");
            goto done;
        }
        left -= n;
    }
done:
    free(buf);
    if (in >= 0)
        close(in);
    if (out >= 0 && close(out) != 0 && !err)
        err = cks_error_set(CKS_EIO, "%s: cannot write: %s", dst, strerror(errno));
    return err;
}

/* ---- the writer lock ---- */

static int lock_take(cks_store *s)
{
    for (int attempt = 0; attempt < LOCK_RETRIES; attempt++) {
        int fd = open(s->lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0)
            return cks_error_set(CKS_EIO, "%s: cannot create the lock file %s: %s", s->path,
                                 s->lock, strerror(errno));
        if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
            int e = errno;
            char pid[32] = "";
            ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
            pid[n > 0 ? n : 0] = '\0';
            pid[strcspn(pid, "\n")] = '\0';
            close(fd);
            if (e == EWOULDBLOCK)
                return cks_error_set(CKS_EEXISTS,
                                     "%s: another ckptscope%s%s is writing this run file (it "
                                     "holds %s)",
                                     s->path, *pid ? " process, pid " : "", pid, s->lock);
            return cks_error_set(CKS_EIO, "%s: cannot lock %s: %s", s->path, s->lock, strerror(e));
        }
        /* the previous holder removes the lock file when it closes: if that happened
         * between our open and flock, we hold a lock on a dead file; take the new one */
        struct stat a, b;
        if (fstat(fd, &a) == 0 && stat(s->lock, &b) == 0 && a.st_dev == b.st_dev &&
            a.st_ino == b.st_ino) {
            char pid[32];
            int len = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
            if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)len, 0) != len) {
                /* the pid is only for the message of a second writer */
            }
            s->lockfd = fd;
            return 0;
        }
        close(fd);
    }
    return cks_error_set(CKS_EIO, "%s: cannot take the lock %s (it keeps being replaced)", s->path,
                         s->lock);
}

static void lock_release(cks_store *s)
{
    if (s->lockfd < 0)
        return;
    unlink(s->lock); /* while still holding it: see lock_take */
    close(s->lockfd);
    s->lockfd = -1;
}

/* ---- handles ---- */

static int store_new(cks_store **out, const char *path)
{
    cks_store *s = calloc(1, sizeof *s);
    char *copy = strdup(path);
    if (!s || !copy)
        goto oom;
    s->lockfd = -1;
    s->fid = H5I_INVALID_HID;
    if (!(s->path = strdup(path)) || asprintf(&s->tmp, "%s.tmp", path) < 0 ||
        asprintf(&s->lock, "%s.lock", path) < 0 || !(s->dir = strdup(dirname(copy))))
        goto oom;
    free(copy);
    *out = s;
    return 0;
oom:
    free(copy);
    cks_store_free(s);
    return cks_error_set(CKS_ENOMEM, "out of memory");
}

void cks_store_free(cks_store *s)
{
    if (!s)
        return;
    if (s->in_tx)
        cks_store_abort(s);
    close_fid(s);
    lock_release(s);
    free(s->path);
    free(s->tmp);
    free(s->lock);
    free(s->dir);
    free(s);
}

const char *cks_store_path(const cks_store *s)
{
    return s->path;
}

void cks_store_set_hook(cks_store *s, cks_store_hook fn, void *ctx)
{
    s->hook = fn;
    s->hook_ctx = ctx;
}

static void hook(cks_store *s, const char *point)
{
    if (s->hook)
        s->hook(point, s->hook_ctx);
}

static int check_format(cks_store *s)
{
    char *fmt = NULL;
    int err = cks_store_attr_read(s->fid, "format", 256, s->path, &fmt);
    if (err == CKS_ENOTFOUND)
        return cks_error_set(CKS_EFORMAT,
                             "%s: not a ckptscope run file (HDF5 without a 'format' attribute: "
                             "written by another tool?)",
                             s->path);
    if (err)
        return err;
    if (strcmp(fmt, CKS_STORE_FORMAT) != 0) {
        err = cks_error_set(CKS_EFORMAT,
                            "%s: not a ckptscope run file (format is '%.100s', not '%s')", s->path,
                            fmt, CKS_STORE_FORMAT);
        free(fmt);
        return err;
    }
    free(fmt);
    int64_t version = 0;
    hid_t a = H5Aexists(s->fid, "format_version") > 0
                  ? H5Aopen(s->fid, "format_version", H5P_DEFAULT)
                  : H5I_INVALID_HID;
    hid_t t = a >= 0 ? H5Aget_type(a) : H5I_INVALID_HID;
    int ok = a >= 0 && t >= 0 && H5Tget_class(t) == H5T_INTEGER &&
             H5Aread(a, H5T_NATIVE_INT64, &version) >= 0;
    if (t >= 0)
        H5Tclose(t);
    if (a >= 0)
        H5Aclose(a);
    H5Eclear2(H5E_DEFAULT);
    if (!ok)
        return cks_error_set(CKS_EFORMAT, "%s: run file without an integer format_version",
                             s->path);
    if (version != CKS_STORE_FORMAT_VERSION)
        return cks_error_set(CKS_EFORMAT,
                             "%s: run file format_version %lld; this ckptscope reads version %d",
                             s->path, (long long)version, CKS_STORE_FORMAT_VERSION);
    const char *tables[] = {"/checkpoints", "/tensors"};
    for (int i = 0; i < 2; i++) {
        H5O_info_t info;
        if (H5Lexists(s->fid, tables[i], H5P_DEFAULT) <= 0 ||
            H5Oget_info_by_name2(s->fid, tables[i], &info, H5O_INFO_BASIC, H5P_DEFAULT) < 0 ||
            info.type != H5O_TYPE_DATASET) {
            H5Eclear2(H5E_DEFAULT);
            return cks_error_set(CKS_EFORMAT, "%s: damaged run file: %s is missing", s->path,
                                 tables[i]);
        }
    }
    return 0;
}

int cks_store_open(cks_store **out, const char *path, cks_store_mode mode)
{
    cks_store *s = NULL;
    struct stat st;
    int err;
    h5_quiet();
    if (stat(path, &st) != 0)
        return cks_error_set(errno == ENOENT ? CKS_ENOTFOUND : CKS_EIO, "%s: %s", path,
                             strerror(errno));
    if (!S_ISREG(st.st_mode))
        return cks_error_set(CKS_EFORMAT, "%s: not a regular file", path);
    if ((err = store_new(&s, path)) != 0)
        return err;
    if (mode == CKS_STORE_WRITE) {
        if ((err = lock_take(s)) != 0)
            goto fail;
        unlink(s->tmp); /* left by a writer that was killed mid-transaction */
    }
    htri_t h5 = H5Fis_hdf5(path);
    H5Eclear2(H5E_DEFAULT);
    if (h5 <= 0) {
        err = cks_error_set(CKS_EFORMAT, "%s: not a ckptscope run file (not HDF5)", path);
        goto fail;
    }
    if ((err = open_ro(s)) != 0 || (err = check_format(s)) != 0)
        goto fail;
    *out = s;
    return 0;
fail:
    cks_store_free(s);
    return err;
}

/* Makes PATH.tmp durable and moves it to PATH; with noreplace an existing PATH is kept
 * and the call fails. The transaction's HDF5 file must be closed. */
static int publish(cks_store *s, int noreplace)
{
    if (fsync_path(s->tmp, 0) != 0)
        return cks_error_set(CKS_EIO, "%s: cannot sync %s: %s", s->path, s->tmp, strerror(errno));
    hook(s, "closed");
    int r = noreplace ? renameat2(AT_FDCWD, s->tmp, AT_FDCWD, s->path, RENAME_NOREPLACE)
                      : rename(s->tmp, s->path);
    if (r != 0 && noreplace && (errno == EINVAL || errno == ENOSYS)) {
        /* a file system without RENAME_NOREPLACE: link(2) also refuses to replace */
        r = link(s->tmp, s->path);
        if (r == 0)
            unlink(s->tmp);
    }
    if (r != 0)
        return cks_error_set(errno == EEXIST ? CKS_EEXISTS : CKS_EIO,
                             "%s: cannot replace it with %s: %s", s->path, s->tmp, strerror(errno));
    hook(s, "renamed");
    if (fsync_path(s->dir, 1) != 0)
        return cks_error_set(CKS_EIO, "%s: cannot sync the folder %s: %s", s->path, s->dir,
                             strerror(errno));
    return 0;
}

static int write_root(cks_store *s, const cks_store_meta *meta)
{
    char by[64];
    snprintf(by, sizeof by, "ckptscope %s", CKS_VERSION);
    int err;
    if ((err = cks_store_attr_write(s->fid, "format", CKS_STORE_FORMAT, s->path)) ||
        (err = attr_write_int(s->fid, "format_version", CKS_STORE_FORMAT_VERSION, s->path)) ||
        (err = cks_store_attr_write(s->fid, "source", meta && meta->source ? meta->source : "",
                                    s->path)) ||
        (err = cks_store_attr_write(s->fid, "config", meta && meta->config ? meta->config : "",
                                    s->path)) ||
        (err = cks_store_attr_write(s->fid, "created_by",
                                    meta && meta->created_by ? meta->created_by : by, s->path)))
        return err;
    for (const char *const *a = meta ? meta->attrs : NULL; a && a[0] && a[1]; a += 2)
        if ((err = cks_store_attr_write(s->fid, a[0], a[1], s->path)) != 0)
            return err;
    return cks_store_init_tables(s);
}

/* Creates PATH.tmp with the root attributes and empty tables, left open in a
 * transaction; nothing is at path yet. */
static int create_tmp(cks_store **out, const char *path, const cks_store_meta *meta)
{
    cks_store *s = NULL;
    int err;
    h5_quiet();
    if (access(path, F_OK) == 0)
        return cks_error_set(CKS_EEXISTS, "%s already exists", path);
    if ((err = store_new(&s, path)) != 0)
        return err;
    if ((err = lock_take(s)) != 0)
        goto fail;
    if (access(path, F_OK) == 0) { /* created by a writer that just released the lock */
        err = cks_error_set(CKS_EEXISTS, "%s already exists", path);
        goto fail;
    }
    unlink(s->tmp);
    hid_t p = fapl_new();
    s->fid = H5Fcreate(s->tmp, H5F_ACC_TRUNC, H5P_DEFAULT, p);
    if (s->fid < 0)
        err = cks_store_h5err(CKS_EIO, "%s: cannot create %s", path, s->tmp);
    H5Pclose(p);
    if (err)
        goto fail_tmp;
    s->in_tx = 1; /* writes below go through the transaction checks */
    s->fresh = 1;
    if ((err = write_root(s, meta)) != 0)
        goto fail_tmp;
    *out = s;
    return 0;
fail_tmp:
    s->in_tx = 0;
    close_fid(s);
    unlink(s->tmp);
fail:
    cks_store_free(s);
    return err;
}

int cks_store_create_tx(cks_store **out, const char *path, const cks_store_meta *meta)
{
    return create_tmp(out, path, meta);
}

int cks_store_create(cks_store **out, const char *path, const cks_store_meta *meta)
{
    cks_store *s = NULL;
    int err = create_tmp(&s, path, meta);
    if (err)
        return err;
    s->in_tx = 0;
    s->fresh = 0;
    herr_t closed = H5Fclose(s->fid);
    s->fid = H5I_INVALID_HID;
    if (closed < 0) {
        err = cks_store_h5err(CKS_EIO, "%s: cannot write %s", path, s->tmp);
        goto fail;
    }
    if ((err = publish(s, 1)) != 0)
        goto fail;
    if ((err = open_ro(s)) != 0)
        goto fail;
    *out = s;
    return 0;
fail:
    unlink(s->tmp);
    cks_store_free(s);
    return err;
}

/* ---- transactions ---- */

/* Appends "; PATH is unchanged" to the current message: the user's first question. */
static int unchanged(cks_store *s, int err)
{
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", cks_error_last());
    return cks_error_set(err, "%s; %s is unchanged", msg, s->path);
}

int cks_store_begin(cks_store *s)
{
    int err;
    if (s->lockfd < 0)
        return cks_error_set(CKS_EINVAL, "%s: opened for reading only", s->path);
    if (s->in_tx)
        return cks_error_set(CKS_EINVAL, "%s: a transaction is already open", s->path);
    hook(s, "begin");
    close_fid(s);
    if ((err = copy_file(s->path, s->tmp)) != 0) {
        unlink(s->tmp);
        unchanged(s, err);
        open_ro(s);
        return err;
    }
    hook(s, "copied");
    hid_t p = fapl_new();
    s->fid = H5Fopen(s->tmp, H5F_ACC_RDWR, p);
    if (s->fid < 0)
        err = cks_store_h5err(CKS_EIO, "%s: cannot open the copy %s", s->path, s->tmp);
    H5Pclose(p);
    if (s->fid < 0) {
        unlink(s->tmp);
        open_ro(s);
        return err;
    }
    s->in_tx = 1;
    s->tx_failed = 0;
    return 0;
}

void cks_store_abort(cks_store *s)
{
    if (!s->in_tx)
        return;
    close_fid(s);
    unlink(s->tmp);
    s->in_tx = 0;
    s->tx_failed = 0;
    if (s->fresh) /* a cks_store_create_tx file: nothing was ever at PATH */
        return;
    if (open_ro(s) != 0)
        H5Eclear2(H5E_DEFAULT);
}

int cks_store_commit(cks_store *s)
{
    int err = cks_store_need_tx(s, "commit");
    if (err)
        return err;
    if (s->tx_failed) {
        err = cks_error_set(CKS_EIO, "%s: a write of this transaction failed; it was dropped",
                            s->path);
        goto fail;
    }
    if ((err = cks_store_extend_all(s)) != 0)
        goto fail;
    herr_t closed = H5Fclose(s->fid);
    s->fid = H5I_INVALID_HID;
    if (closed < 0) {
        err = cks_store_h5err(CKS_EIO, "%s: writing %s failed", s->path, s->tmp);
        goto fail;
    }
    s->in_tx = 0;
    if ((err = publish(s, s->fresh)) != 0) {
        unlink(s->tmp);
        if (s->fresh)
            return err; /* nothing to reopen; the handle can only be freed */
        unchanged(s, err);
        open_ro(s);
        return err;
    }
    s->fresh = 0;
    if ((err = open_ro(s)) != 0)
        return err;
    hook(s, "committed");
    return 0;
fail:
    unchanged(s, err);
    s->in_tx = 1;
    cks_store_abort(s);
    return err;
}
