/* HDF5 error translation and the run file's string attributes: reading and writing them
 * on an open object, by object path through a store, and listing them; the names that
 * collect those listings; a tensor name escaped for use as an HDF5 link name. */
#include "error.h"
#include "grow.h"
#include "store_impl.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- HDF5 errors ---- */

typedef struct {
    char text[600];
    int have;
} h5_detail;

static herr_t innermost(unsigned n, const H5E_error2_t *e, void *ctx)
{
    h5_detail *d = ctx;
    if (d->have || !e->desc || !*e->desc)
        return 0;
    /* a failed write(2) reads "file write failed: time = ..., errno = 28, error message =
     * 'No space left on device', ...": keep the part a user can act on */
    const char *m = strstr(e->desc, "error message = '");
    if (m) {
        m += strlen("error message = '");
        const char *q = strchr(m, '\'');
        snprintf(d->text, sizeof d->text, "%.*s", q ? (int)(q - m) : 200, m);
    } else {
        snprintf(d->text, sizeof d->text, "%s", e->desc);
    }
    d->have = 1;
    return 0;
}

int cks_store_h5err(int code, const char *fmt, ...)
{
    char msg[1024];
    h5_detail d = {.have = 0};
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, innermost, &d);
    H5Eclear2(H5E_DEFAULT);
    return cks_error_set(code, "%s%s%s", msg, d.have ? ": " : "", d.have ? d.text : "");
}

hid_t cks_store_str_type(void)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    return t;
}

/* ---- string attributes ---- */

int cks_store_attr_read(hid_t obj, const char *name, size_t limit, const char *display, char **out)
{
    hid_t a = H5I_INVALID_HID, ft = H5I_INVALID_HID, mt = H5I_INVALID_HID;
    hid_t sp = H5I_INVALID_HID;
    char *buf = NULL;
    int err = 0;
    htri_t ex = H5Aexists(obj, name);
    if (ex < 0)
        return cks_store_h5err(CKS_EFORMAT, "%s: cannot read attribute '%s'", display, name);
    if (ex == 0)
        return CKS_ENOTFOUND;
    if ((a = H5Aopen(obj, name, H5P_DEFAULT)) < 0 || (ft = H5Aget_type(a)) < 0 ||
        (sp = H5Aget_space(a)) < 0) {
        err = cks_store_h5err(CKS_EFORMAT, "%s: cannot read attribute '%s'", display, name);
        goto done;
    }
    if (H5Tget_class(ft) != H5T_STRING || H5Sget_simple_extent_npoints(sp) != 1) {
        err = cks_error_set(CKS_EFORMAT, "%s: attribute '%s' is not a string", display, name);
        goto done;
    }
    if (H5Tis_variable_str(ft) > 0) {
        char *p = NULL;
        mt = cks_store_str_type();
        if (H5Aread(a, mt, &p) < 0) {
            err = cks_store_h5err(CKS_EFORMAT, "%s: cannot read attribute '%s'", display, name);
            goto done;
        }
        size_t len = p ? strnlen(p, limit + 1) : 0;
        if (len > limit)
            err = cks_error_set(CKS_ELIMIT, "%s: attribute '%s' longer than %zu bytes", display,
                                name, limit);
        else if (!(buf = strndup(p ? p : "", len)))
            err = cks_error_set(CKS_ENOMEM, "out of memory");
        H5free_memory(p);
    } else {
        size_t size = H5Tget_size(ft);
        if (size > limit) {
            err = cks_error_set(CKS_ELIMIT, "%s: attribute '%s' longer than %zu bytes", display,
                                name, limit);
            goto done;
        }
        mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, size ? size : 1);
        if (!(buf = calloc(size + 2, 1))) {
            err = cks_error_set(CKS_ENOMEM, "out of memory");
            goto done;
        }
        if (H5Aread(a, mt, buf) < 0)
            err = cks_store_h5err(CKS_EFORMAT, "%s: cannot read attribute '%s'", display, name);
    }
done:
    if (err) {
        free(buf);
    } else {
        *out = buf;
    }
    if (mt >= 0)
        H5Tclose(mt);
    if (sp >= 0)
        H5Sclose(sp);
    if (ft >= 0)
        H5Tclose(ft);
    if (a >= 0)
        H5Aclose(a);
    return err;
}

int cks_store_attr_write(hid_t obj, const char *name, const char *value, const char *display)
{
    hid_t t = cks_store_str_type(), sp = H5Screate(H5S_SCALAR), a = H5I_INVALID_HID;
    int err = 0;
    if (H5Aexists(obj, name) > 0 && H5Adelete(obj, name) < 0) {
        err = cks_store_h5err(CKS_EIO, "%s: cannot replace attribute '%s'", display, name);
        goto done;
    }
    if ((a = H5Acreate2(obj, name, t, sp, H5P_DEFAULT, H5P_DEFAULT)) < 0 ||
        H5Awrite(a, t, &value) < 0)
        err = cks_store_h5err(CKS_EIO, "%s: cannot write attribute '%s'", display, name);
done:
    if (a >= 0)
        H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
    return err;
}

int cks_store_get_attr(cks_store *s, const char *obj, const char *name, char **out)
{
    hid_t o = H5Oopen(s->fid, obj, H5P_DEFAULT);
    if (o < 0) {
        H5Eclear2(H5E_DEFAULT);
        return CKS_ENOTFOUND;
    }
    char display[4200];
    snprintf(display, sizeof display, "%s:%s", s->path, obj);
    int err = cks_store_attr_read(o, name, CKS_STORE_MAX_STRING, display, out);
    H5Oclose(o);
    return err;
}

int cks_store_set_attr(cks_store *s, const char *obj, const char *name, const char *value)
{
    int err = cks_store_need_tx(s, "setting an attribute");
    if (err)
        return err;
    hid_t o = H5Oopen(s->fid, obj, H5P_DEFAULT);
    if (o < 0)
        return cks_store_h5err(CKS_ENOTFOUND, "%s: no object %s", s->path, obj);
    char display[4200];
    snprintf(display, sizeof display, "%s:%s", s->path, obj);
    err = cks_store_attr_write(o, name, value, display);
    if (H5Oclose(o) < 0 && !err)
        err = cks_store_h5err(CKS_EIO, "%s: writing %s failed", s->path, obj);
    return cks_store_fail(s, err);
}

herr_t cks_store_names_push(cks_store_names *l, const char *name)
{
    if ((l->err = cks_grow(&l->names, &l->cap, l->n, sizeof *l->names, 16)) != 0)
        return -1;
    if (!(l->names[l->n] = strdup(name))) {
        l->err = cks_error_set(CKS_ENOMEM, "out of memory");
        return -1;
    }
    l->n++;
    return 0;
}

static herr_t attr_one(hid_t obj, const char *name, const H5A_info_t *info, void *op)
{
    return cks_store_names_push(op, name);
}

int cks_store_attr_names(cks_store *s, const char *obj, char ***names, size_t *n)
{
    cks_store_names l = {NULL, 0, 0, 0};
    hsize_t idx = 0;
    hid_t o = H5Oopen(s->fid, obj, H5P_DEFAULT);
    if (o < 0) {
        H5Eclear2(H5E_DEFAULT);
        return cks_error_set(CKS_ENOTFOUND, "%s: no object %s", s->path, obj);
    }
    herr_t r = H5Aiterate2(o, H5_INDEX_NAME, H5_ITER_INC, &idx, attr_one, &l);
    H5Oclose(o);
    if (r < 0) {
        int err = l.err ? l.err
                        : cks_store_h5err(CKS_EFORMAT, "%s: cannot list the attributes of %s",
                                          s->path, obj);
        H5Eclear2(H5E_DEFAULT);
        cks_store_names_free(l.names, l.n);
        return err;
    }
    *names = l.names;
    *n = l.n;
    return 0;
}

char *cks_store_escape_name(const char *name)
{
    size_t n = strlen(name);
    char *out = malloc(3 * n + 7), *p = out;
    if (!out)
        return NULL;
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0 || n == 0) {
        strcpy(out, n == 0 ? "%00" : n == 1 ? "%2E" : "%2E%2E");
        return out;
    }
    for (const char *q = name; *q; q++) {
        if (*q == '%' || *q == '/')
            p += sprintf(p, "%%%02X", (unsigned char)*q);
        else
            *p++ = *q;
    }
    *p = '\0';
    return out;
}
