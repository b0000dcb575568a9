/* Source detection, checkpoint ordering by step, lookup by name, SOURCE@REF parsing. */
#include "source_impl.h"
#include "error.h"

#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* The value of the digits [p, end), or -1 when it overflows int64. */
static int64_t digits_value(const char *p, const char *end)
{
    int64_t v = 0;
    for (; p < end; p++) {
        if (v > (INT64_MAX - (*p - '0')) / 10)
            return -1;
        v = v * 10 + (*p - '0');
    }
    return v;
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

int64_t cks_name_step(const char *name)
{
    const char *start = NULL, *end;
    /* the digits right after the last lower-case "step" followed by digits:
       stage1-step140000-tokens294B is step 140000, not 294 */
    for (const char *p = strstr(name, "step"); p; p = strstr(p + 1, "step"))
        if (is_digit(p[4]))
            start = p + 4;
    if (start) {
        for (end = start; is_digit(*end); end++)
            ;
        return digits_value(start, end);
    }
    /* else the last run of digits: ckpt_9 < ckpt_10 */
    for (end = name + strlen(name); end > name && !is_digit(end[-1]); end--)
        ;
    if (end == name)
        return -1;
    for (start = end; start > name && is_digit(start[-1]); start--)
        ;
    return digits_value(start, end);
}

/* Names are collected first and deduplicated once at the end (dedup_by_name): checking
 * each new name against all the others made opening a source of 100k branches take a
 * minute. Until then a name may be listed twice (a local branch and a remote-tracking
 * one), hence the cap on raw entries. */
#define RAW_CHECKPOINTS_MAX (4 * CKS_MAX_CHECKPOINTS)

static int too_many(const cks_source *s)
{
    return cks_error_set(CKS_ELIMIT, "%s: more than %d checkpoints", s->path, CKS_MAX_CHECKPOINTS);
}

int cks_source_add(cks_source *s, const char *name, const char *commit, const char *remote)
{
    if (fnmatch(s->glob, name, 0) != 0)
        return 0;
    if (s->count >= RAW_CHECKPOINTS_MAX)
        return too_many(s);
    if (s->count == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        cks_ckpt_info *v = realloc(s->ckpts, cap * sizeof *v);
        if (!v)
            return cks_error_set(CKS_ENOMEM, "out of memory");
        s->ckpts = v;
        s->cap = cap;
    }
    cks_ckpt_info *c = &s->ckpts[s->count];
    c->name = strdup(name);
    c->commit = commit ? strdup(commit) : NULL;
    c->remote = remote ? strdup(remote) : NULL;
    c->step = (int64_t)s->count; /* the order of arrival, until dedup_by_name sets the step */
    if (!c->name || (commit && !c->commit) || (remote && !c->remote)) {
        free((char *)c->name);
        free((char *)c->commit);
        free((char *)c->remote);
        return cks_error_set(CKS_ENOMEM, "out of memory");
    }
    s->count++;
    return 0;
}

/* By name; for one name a local branch first, then remote-tracking ones in the order they
 * were listed. */
static int cmp_arrival(const void *pa, const void *pb)
{
    const cks_ckpt_info *a = pa, *b = pb;
    int c = strcmp(a->name, b->name);
    if (c)
        return c;
    if (!a->remote != !b->remote)
        return a->remote ? 1 : -1;
    return (a->step > b->step) - (a->step < b->step);
}

/* One checkpoint per name: a local branch wins over remote-tracking ones, else the first
 * remote-tracking one listed. Sets each step from the name. */
static int dedup_by_name(cks_source *s)
{
    size_t k = 0;
    if (s->count > 1)
        qsort(s->ckpts, s->count, sizeof *s->ckpts, cmp_arrival);
    for (size_t i = 0; i < s->count; i++) {
        cks_ckpt_info *c = &s->ckpts[i];
        if (k > 0 && strcmp(s->ckpts[k - 1].name, c->name) == 0) {
            free((char *)c->name);
            free((char *)c->commit);
            free((char *)c->remote);
            continue;
        }
        c->step = cks_name_step(c->name);
        s->ckpts[k++] = *c;
    }
    s->count = k;
    return k > CKS_MAX_CHECKPOINTS ? too_many(s) : 0;
}

static int cmp_ckpt(const void *pa, const void *pb)
{
    const cks_ckpt_info *a = pa, *b = pb;
    if ((a->step < 0) != (b->step < 0))
        return a->step < 0 ? 1 : -1;
    if (a->step != b->step)
        return a->step < b->step ? -1 : 1;
    return strcmp(a->name, b->name);
}

static const char *kind_names[] = {"git", "hf-cache", "folder", "hf-hub"};

const char *cks_source_kind_name(cks_source_kind k)
{
    return (unsigned)k < sizeof kind_names / sizeof *kind_names ? kind_names[k] : "?";
}

void cks_source_free(cks_source *s)
{
    if (!s)
        return;
    if (s->ops && s->ops->free_impl)
        s->ops->free_impl(s->impl);
    for (size_t i = 0; i < s->count; i++) {
        free((char *)s->ckpts[i].name);
        free((char *)s->ckpts[i].commit);
        free((char *)s->ckpts[i].remote);
    }
    free(s->ckpts);
    free(s->path);
    free(s->glob);
    free(s);
}

int cks_source_open(cks_source **out, const char *path, const char *glob)
{
    struct stat st;
    cks_source *s = NULL;
    int err, rec = 0;
    if (!glob)
        glob = CKS_DEFAULT_GLOB;
    if (strncmp(path, "hf://", 5) == 0)
        st.st_mode = S_IFDIR; /* not a file system path: the hub backend takes it */
    else if (stat(path, &st) != 0)
        return cks_error_set(errno == ENOENT ? CKS_ENOTFOUND : CKS_EIO, "%s: %s", path,
                             strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return cks_error_set(CKS_EINVAL,
                             "%s: not a checkpoint source (expected a git repository, a Hugging "
                             "Face cache folder or a folder of checkpoints)",
                             path);
    if (!(s = calloc(1, sizeof *s)) || !(s->path = strdup(path)) || !(s->glob = strdup(glob))) {
        cks_source_free(s);
        return cks_error_set(CKS_ENOMEM, "out of memory");
    }
    if ((err = cks_source_hub_open(s, &rec)) != 0 || rec)
        goto detected;
    if ((err = cks_source_git_open(s, &rec)) != 0 || rec)
        goto detected;
    if ((err = cks_source_hf_open(s, &rec)) != 0 || rec)
        goto detected;
    err = cks_source_folder_open(s, &rec);
detected:
    if (err || (err = dedup_by_name(s)) != 0)
        goto fail;
    if (s->count == 0) {
        err = cks_error_set(CKS_ENOTFOUND, "%s (%s): no checkpoint matches '%s'", path,
                            kind_names[s->kind], glob);
        goto fail;
    }
    qsort(s->ckpts, s->count, sizeof *s->ckpts, cmp_ckpt);
    *out = s;
    return 0;
fail:
    cks_source_free(s);
    return err;
}

cks_source_kind cks_source_kind_of(const cks_source *s)
{
    return s->kind;
}

const char *cks_source_path(const cks_source *s)
{
    return s->path;
}

size_t cks_source_count(const cks_source *s)
{
    return s->count;
}

const cks_ckpt_info *cks_source_ckpt(const cks_source *s, size_t i)
{
    return i < s->count ? &s->ckpts[i] : NULL;
}

int cks_source_find(const cks_source *s, const char *name, size_t *out)
{
    for (size_t i = 0; i < s->count; i++) {
        if (strcmp(s->ckpts[i].name, name) == 0) {
            *out = i;
            return 0;
        }
    }
    return cks_error_set(CKS_ENOTFOUND, "%s: no checkpoint named '%s' (%zu match '%s': %s ... %s)",
                         s->path, name, s->count, s->glob, s->ckpts[0].name,
                         s->ckpts[s->count - 1].name);
}

int cks_source_spec_split(const char *spec, char **path, char **ref)
{
    struct stat st;
    const char *at = strrchr(spec, '@');
    *path = *ref = NULL;
    if (!at || stat(spec, &st) == 0) {
        if (!(*path = strdup(spec)))
            return cks_error_set(CKS_ENOMEM, "out of memory");
        return 0;
    }
    if (at == spec || at[1] == '\0')
        return cks_error_set(CKS_EINVAL, "'%s': expected SOURCE@REF with both parts non-empty",
                             spec);
    *path = strndup(spec, (size_t)(at - spec));
    *ref = strdup(at + 1);
    if (!*path || !*ref) {
        free(*path);
        free(*ref);
        *path = *ref = NULL;
        return cks_error_set(CKS_ENOMEM, "out of memory");
    }
    return 0;
}

/* ---- shared folder walk ---- */

typedef struct {
    int (*fn)(void *ctx, const char *rel, const char *abs);
    void *ctx;
    size_t files;
    const char *root;
} walk_state;

static int walk(walk_state *w, const char *rel, int depth)
{
    char abs[4096];
    int n = snprintf(abs, sizeof abs, "%s%s%s", w->root, *rel ? "/" : "", rel);
    if (n < 0 || (size_t)n >= sizeof abs)
        return cks_error_set(CKS_ELIMIT, "%s/%s: path too long", w->root, rel);
    if (depth > CKS_MAX_TREE_DEPTH)
        return cks_error_set(CKS_ELIMIT, "%s: folders nested deeper than %d", abs,
                             CKS_MAX_TREE_DEPTH);
    DIR *d = opendir(abs);
    if (!d)
        return cks_error_set(CKS_EIO, "%s: cannot read folder: %s", abs, strerror(errno));
    int err = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue; /* ., .., and hidden files (.git, .cache) */
        char sub[4096], subabs[4096];
        n = snprintf(sub, sizeof sub, "%s%s%s", rel, *rel ? "/" : "", e->d_name);
        if (n < 0 || (size_t)n >= sizeof sub)
            continue;
        snprintf(subabs, sizeof subabs, "%s/%s", w->root, sub);
        struct stat st;
        if (lstat(subabs, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            if ((err = walk(w, sub, depth + 1)) != 0)
                break;
            continue;
        }
        if (++w->files > CKS_MAX_FILES) {
            err = cks_error_set(CKS_ELIMIT, "%s: more than %d files", w->root, CKS_MAX_FILES);
            break;
        }
        if ((err = w->fn(w->ctx, sub, subabs)) != 0)
            break;
    }
    closedir(d);
    return err;
}

int cks_walk_dir(const char *root, int (*fn)(void *ctx, const char *rel, const char *abs),
                 void *ctx)
{
    walk_state w = {fn, ctx, 0, root};
    return walk(&w, "", 0);
}
