/* Parsing the hub's refs and tree listings and the Link header (hub_api.h states the
 * format and the checks). Every name that later becomes a path is checked here. */
#include "hub_api.h"
#include "error.h"
#include "grow.h"
#include "json.h"
#include "lfs.h"
#include "path.h"
#include "source.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int is_hex(const char *s, size_t n)
{
    if (!s || strlen(s) != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

static int check_part(const char *p, size_t n)
{
    if (n == 0 || n > 96 || p[0] == '.' || p[0] == '-' || p[n - 1] == '.' || p[n - 1] == '-')
        return -1;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return -1;
        if (i > 0 && (c == '.' || c == '-') && p[i - 1] == c)
            return -1; /* ".." and "--" */
    }
    return 0;
}

int cks_hub_repo_check(const char *repo)
{
    char shown[256];
    const char *slash = strchr(repo, '/');
    if (!slash || check_part(repo, (size_t)(slash - repo)) != 0 ||
        check_part(slash + 1, strlen(slash + 1)) != 0)
        return cks_error_set(CKS_EINVAL,
                             "hf://%s: expected hf://ORG/NAME (letters, digits, '.', '_', '-')",
                             cks_printable(shown, sizeof shown, repo, strlen(repo)));
    return 0;
}

void cks_hub_refs_release(cks_hub_refs *r)
{
    for (size_t i = 0; i < r->count; i++)
        free(r->items[i].name);
    free(r->items);
    memset(r, 0, sizeof *r);
}

int cks_hub_refs_parse(const char *text, size_t len, const char *display, cks_hub_refs *out)
{
    json_t *doc = NULL;
    char shown[128];
    int err = cks_json_parse(text, len, display, 1, &doc);
    if (err)
        return err;
    json_t *br = json_object_get(doc, "branches");
    if (!json_is_array(br)) {
        err = cks_error_set(CKS_EFORMAT, "%s: refs listing has no \"branches\" array", display);
        goto done;
    }
    if (json_array_size(br) > CKS_MAX_CHECKPOINTS) {
        err = cks_error_set(CKS_ELIMIT, "%s: more than %d branches", display, CKS_MAX_CHECKPOINTS);
        goto done;
    }
    size_t i;
    json_t *b;
    json_array_foreach(br, i, b)
    {
        const char *name, *commit;
        if (!json_is_object(b)) {
            err = cks_error_set(CKS_EFORMAT, "%s: branch %zu is not an object", display, i);
            goto done;
        }
        if ((err = cks_json_get_string(b, "name", 0, display, &name)) != 0 ||
            (err = cks_json_get_string(b, "targetCommit", 0, display, &commit)) != 0)
            goto done;
        if (strlen(name) > CKS_HUB_MAX_REFNAME || cks_path_check_relative(name) != 0) {
            err = cks_error_set(CKS_EFORMAT, "%s: branch name '%s' is not a safe path", display,
                                cks_printable(shown, sizeof shown, name, strlen(name)));
            goto done;
        }
        if (!is_hex(commit, 40)) {
            err = cks_error_set(CKS_EFORMAT,
                                "%s: branch '%s': targetCommit '%s' is not 40 hex digits", display,
                                name, cks_printable(shown, sizeof shown, commit, strlen(commit)));
            goto done;
        }
        if ((err = cks_grow(&out->items, &out->cap, out->count, sizeof *out->items, 64)) != 0)
            goto done;
        cks_hub_ref *r = &out->items[out->count];
        if (!(r->name = strdup(name))) {
            err = cks_error_set(CKS_ENOMEM, "out of memory");
            goto done;
        }
        memcpy(r->commit, commit, 41);
        out->count++;
    }
done:
    json_decref(doc);
    return err;
}

void cks_hub_tree_release(cks_hub_tree *t)
{
    for (size_t i = 0; i < t->count; i++)
        free(t->items[i].path);
    free(t->items);
    memset(t, 0, sizeof *t);
}

/* One file entry: path, sizes and hashes checked. */
static int parse_file(const json_t *e, const char *display, cks_hub_entry *out)
{
    const char *path, *oid, *loid = NULL;
    int64_t size, lsize = -1;
    char shown[160];
    int err;
    if ((err = cks_json_get_string(e, "path", 0, display, &path)) != 0 ||
        (err = cks_json_get_string(e, "oid", 0, display, &oid)) != 0 ||
        (err = cks_json_get_int(e, "size", 0, (int64_t)CKS_LFS_MAX_SIZE, 0, 0, display, &size)) !=
            0)
        return err;
    cks_printable(shown, sizeof shown, path, strlen(path));
    if (strlen(path) > CKS_HUB_MAX_PATH || cks_path_check_relative(path) != 0)
        return cks_error_set(CKS_EFORMAT, "%s: listed path '%s' is not a safe relative path",
                             display, shown);
    json_t *lfs = json_object_get(e, "lfs");
    if (lfs && !json_is_null(lfs)) {
        if (!json_is_object(lfs))
            return cks_error_set(CKS_EFORMAT, "%s: '%s': \"lfs\" is not an object", display, shown);
        if ((err = cks_json_get_string(lfs, "oid", 0, display, &loid)) != 0 ||
            (err = cks_json_get_int(lfs, "size", 0, (int64_t)CKS_LFS_MAX_SIZE, 0, 0, display,
                                    &lsize)) != 0)
            return err;
        if (!is_hex(loid, 64))
            return cks_error_set(CKS_EFORMAT, "%s: '%s': LFS oid is not a sha256 (64 hex digits)",
                                 display, shown);
        if (lsize != size)
            return cks_error_set(CKS_EFORMAT, "%s: '%s': size %lld and LFS size %lld disagree",
                                 display, shown, (long long)size, (long long)lsize);
    } else if (!is_hex(oid, 40)) {
        return cks_error_set(CKS_EFORMAT, "%s: '%s': oid is not a git blob id (40 hex digits)",
                             display, shown);
    }
    if (!(out->path = strdup(path)))
        return cks_error_set(CKS_ENOMEM, "out of memory");
    out->size = (uint64_t)size;
    out->lfs = loid != NULL;
    snprintf(out->blob, sizeof out->blob, "%s", loid ? loid : oid);
    return 0;
}

int cks_hub_tree_parse(const char *text, size_t len, const char *display, cks_hub_tree *out)
{
    json_t *doc = NULL, *e;
    size_t i;
    int err = cks_json_parse(text, len, display, 0, &doc);
    if (err)
        return err;
    if (!json_is_array(doc)) {
        err = cks_error_set(CKS_EFORMAT, "%s: tree listing is not a JSON array", display);
        goto done;
    }
    json_array_foreach(doc, i, e)
    {
        const char *type;
        if (!json_is_object(e)) {
            err = cks_error_set(CKS_EFORMAT, "%s: tree entry %zu is not an object", display, i);
            goto done;
        }
        if ((err = cks_json_get_string(e, "type", 0, display, &type)) != 0)
            goto done;
        if (strcmp(type, "directory") == 0)
            continue;
        if (strcmp(type, "file") != 0) {
            char shown[64];
            err = cks_error_set(CKS_EFORMAT, "%s: tree entry %zu has type '%s'", display, i,
                                cks_printable(shown, sizeof shown, type, strlen(type)));
            goto done;
        }
        if (out->count >= CKS_MAX_FILES) {
            err = cks_error_set(CKS_ELIMIT, "%s: more than %d files", display, CKS_MAX_FILES);
            goto done;
        }
        if ((err = cks_grow(&out->items, &out->cap, out->count, sizeof *out->items, 16)) != 0 ||
            (err = parse_file(e, display, &out->items[out->count])) != 0)
            goto done;
        out->count++;
    }
done:
    json_decref(doc);
    return err;
}

static int cmp_entry(const void *a, const void *b)
{
    return strcmp(((const cks_hub_entry *)a)->path, ((const cks_hub_entry *)b)->path);
}

static int has_file(const cks_hub_tree *t, const char *path, size_t n)
{
    size_t lo = 0, hi = t->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const char *p = t->items[mid].path;
        int r = strncmp(p, path, n);
        if (r == 0 && p[n] != '\0')
            r = 1;
        if (r == 0)
            return 1;
        if (r < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

int cks_hub_tree_finish(cks_hub_tree *t, const char *display)
{
    char shown[160];
    if (t->count > 1)
        qsort(t->items, t->count, sizeof *t->items, cmp_entry);
    for (size_t i = 0; i < t->count; i++) {
        const char *p = t->items[i].path;
        if (i > 0 && strcmp(t->items[i - 1].path, p) == 0)
            return cks_error_set(CKS_EFORMAT, "%s: '%s' is listed twice", display,
                                 cks_printable(shown, sizeof shown, p, strlen(p)));
        /* every folder on the way must not also be a file */
        for (const char *s = strchr(p, '/'); s; s = strchr(s + 1, '/'))
            if (has_file(t, p, (size_t)(s - p)))
                return cks_error_set(CKS_EFORMAT, "%s: '%s' is listed as a file and as a folder",
                                     display,
                                     cks_printable(shown, sizeof shown, p, (size_t)(s - p)));
    }
    return 0;
}

/* RFC 8288: Link: <url>; rel="next", <url>; rel="prev" */
int cks_hub_link_next(const char *header, const char *display, char **out)
{
    const char *p = header;
    *out = NULL;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (!*p)
            break;
        if (*p != '<')
            return cks_error_set(CKS_EFORMAT, "%s: malformed Link header", display);
        const char *end = strchr(p, '>');
        if (!end)
            return cks_error_set(CKS_EFORMAT, "%s: malformed Link header", display);
        const char *url = p + 1;
        size_t ulen = (size_t)(end - url);
        p = end + 1;
        int next = 0;
        /* parameters up to the next ',' that is not inside quotes */
        while (*p && *p != ',') {
            while (*p == ' ' || *p == '\t' || *p == ';')
                p++;
            const char *name = p;
            while (*p && *p != '=' && *p != ';' && *p != ',')
                p++;
            size_t nlen = (size_t)(p - name);
            while (nlen > 0 && (name[nlen - 1] == ' ' || name[nlen - 1] == '\t'))
                nlen--;
            char val[64] = "";
            if (*p == '=') {
                p++;
                while (*p == ' ')
                    p++;
                const char *v = p;
                size_t vlen;
                if (*p == '"') {
                    v = ++p;
                    while (*p && *p != '"')
                        p++;
                    if (!*p)
                        return cks_error_set(CKS_EFORMAT, "%s: malformed Link header", display);
                    vlen = (size_t)(p - v);
                    p++;
                } else {
                    while (*p && *p != ';' && *p != ',')
                        p++;
                    vlen = (size_t)(p - v);
                }
                snprintf(val, sizeof val, "%.*s", (int)(vlen < 63 ? vlen : 63), v);
            }
            if (nlen == 3 && strncasecmp(name, "rel", 3) == 0) {
                /* rel may hold several space-separated relation types */
                char *save = NULL;
                for (char *tok = strtok_r(val, " ", &save); tok; tok = strtok_r(NULL, " ", &save))
                    if (strcasecmp(tok, "next") == 0)
                        next = 1;
            }
        }
        if (next) {
            if (ulen == 0)
                return cks_error_set(CKS_EFORMAT, "%s: empty next link", display);
            if (!(*out = strndup(url, ulen)))
                return cks_error_set(CKS_ENOMEM, "out of memory");
            return 0;
        }
    }
    return 0;
}
