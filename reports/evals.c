/* Importing lm-eval-harness results into the run file (see evals.h): every file is read
 * and parsed first, then all of them are written in one store transaction, so an import
 * either lands whole or leaves the run file as it was. */
#include "evals.h"
#include "error.h"
#include "eval_metrics.h"
#include "map.h"
#include "source.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PATH_CAP (2 * CKS_MAX_EVAL_NAME + 64)

static int write_value(cks_store *s, const char *path, size_t row, double v, const char *task,
                       const char *metric, int is_stderr)
{
    const cks_eval_metric_info *info = cks_eval_metric_lookup(metric);
    char desc[PATH_CAP + 200];
    snprintf(desc, sizeof desc, "%slm-eval-harness %s: %s%s%s%s",
             is_stderr ? "standard error of " : "", task, metric, info ? " (" : "",
             info ? info->what : "", info ? ")" : "");
    return cks_store_write_series(s, path, row, v, desc, info ? info->unit : NULL);
}

int cks_evals_check(const cks_eval_result *r, const char *display)
{
    for (size_t i = 0; i < r->count; i++)
        if (strcmp(r->items[i].metric, CKS_EVALS_NSAMPLES) == 0)
            return cks_error_set(CKS_EFORMAT,
                                 "%s: task '%s' has a metric named '%s', a name the run file "
                                 "keeps for the sample count",
                                 display, r->items[i].task, CKS_EVALS_NSAMPLES);
    return 0;
}

int cks_evals_write(cks_store *s, size_t row, const cks_eval_result *r, const char *display,
                    size_t *nvalues)
{
    const char *n_task = NULL; /* the task whose n_samples is written (items sorted by task) */
    size_t count = 0;
    /* checked before anything is written, so a refused file leaves no partial row */
    int err = cks_evals_check(r, display);
    for (size_t i = 0; i < r->count && !err; i++) {
        const cks_eval_entry *e = &r->items[i];
        char path[PATH_CAP], se_path[PATH_CAP + 8];
        snprintf(path, sizeof path, "%s/%s/%s", CKS_EVALS_GROUP, e->task, e->metric);
        snprintf(se_path, sizeof se_path, "%s_stderr", path);
        if ((err = write_value(s, path, row, e->value, e->task, e->metric, 0)) != 0)
            break;
        count++;
        /* a stderr series exists once some checkpoint had one; later rows keep it aligned */
        if ((isfinite(e->stderr_) || cks_store_exists(s, se_path)) &&
            (err = write_value(s, se_path, row, e->stderr_, e->task, e->metric, 1)) != 0)
            break;
        if (e->higher_is_better >= 0 &&
            (err = cks_store_set_attr(s, path, "higher_is_better",
                                      e->higher_is_better ? "true" : "false")) != 0)
            break;
        if (e->n > 0 && (!n_task || strcmp(n_task, e->task) != 0)) {
            snprintf(path, sizeof path, "%s/%s/%s", CKS_EVALS_GROUP, e->task, CKS_EVALS_NSAMPLES);
            err = cks_store_write_series(s, path, row, (double)e->n,
                                         "documents evaluated (lm-eval-harness n-samples, "
                                         "effective)",
                                         "documents");
            n_task = e->task;
        }
    }
    if (!err && nvalues)
        *nvalues = count;
    return err;
}

/* ---- importing files ---- */

typedef struct {
    cks_eval_result r;
    char ckpt[CKS_MAX_EVAL_NAME + 1];
    char model[1024]; /* "" when the file does not name one */
} parsed_file;

static int check_ckpt_name(const char *name, const char *what)
{
    size_t n = strlen(name);
    if (n == 0 || n > CKS_MAX_EVAL_NAME)
        return cks_error_set(CKS_EINVAL, "%s: checkpoint name is empty or longer than %d bytes",
                             what, CKS_MAX_EVAL_NAME);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)name[i] < 0x20)
            return cks_error_set(CKS_EINVAL, "%s: checkpoint name holds a control character", what);
    return 0;
}

static int parse_file(const char *file, const char *ckpt, parsed_file *p)
{
    char *text = NULL;
    size_t len;
    int err = cks_read_file(file, CKS_MAX_EVAL_BYTES, &text, &len);
    if (err)
        return err;
    err = cks_lmeval_parse(text, len, file, &p->r);
    free(text);
    if (err)
        return err;
    if (ckpt)
        snprintf(p->ckpt, sizeof p->ckpt, "%s", ckpt);
    else if ((err = cks_lmeval_checkpoint(&p->r, file, p->ckpt, sizeof p->ckpt)) != 0)
        return err;
    if ((err = check_ckpt_name(p->ckpt, file)) != 0)
        return err;
    if (cks_lmeval_model(&p->r, p->model, sizeof p->model) != 0)
        p->model[0] = '\0';
    return 0;
}

/* "a, b, c, ... (N checkpoints)" for messages. */
static void ckpt_list(cks_store *s, char *buf, size_t cap)
{
    cks_store_ckpt *c;
    size_t n, k = 0;
    buf[0] = '\0';
    if (cks_store_checkpoints(s, &c, &n) != 0) {
        cks_error_clear();
        return;
    }
    for (size_t i = 0; i < n && i < 5; i++)
        k += (size_t)snprintf(buf + k, k < cap ? cap - k : 0, "%s%s", i ? ", " : "", c[i].name);
    if (n > 5)
        snprintf(buf + k, k < cap ? cap - k : 0, ", ... (%zu checkpoints)", n);
    if (n == 0)
        snprintf(buf, cap, "no checkpoint");
    cks_store_ckpts_free(c, n);
}

/* The model the files name (all the same), or "" when none does; *which: a file naming
 * it. */
static int files_model(const char *const *files, const parsed_file *p, size_t n, const char **out,
                       size_t *which)
{
    const char *model = "";
    size_t first = 0;
    for (size_t i = 0; i < n; i++) {
        if (!p[i].model[0])
            continue;
        if (model[0] && strcmp(model, p[i].model) != 0)
            return cks_error_set(CKS_EINVAL,
                                 "%s is a result of model '%s' but %s of '%s': import each "
                                 "model into its own run file",
                                 files[first], model, files[i], p[i].model);
        model = p[i].model;
        first = i;
    }
    *out = model;
    *which = first;
    return 0;
}

static int create_store(cks_store **out, const char *path, const char *first_file,
                        const char *model)
{
    char *abs = realpath(first_file, NULL);
    if (!abs)
        return cks_error_set(CKS_EIO, "%s: cannot resolve its folder", first_file);
    char *slash = strrchr(abs, '/');
    if (slash)
        *(slash == abs ? slash + 1 : slash) = '\0';
    const char *attrs[] = {"evals_only", "true", model[0] ? "model" : NULL, model, NULL};
    cks_store_meta meta = {abs, "", NULL, attrs};
    int err = cks_store_create(out, path, &meta);
    free(abs);
    return err;
}

/* Checks an existing run file's kind and model against the files'. */
static int check_existing(cks_store *s, const char *model, const char *model_file, int *evals_only)
{
    char *v = NULL;
    int err = cks_store_get_attr(s, "/", "evals_only", &v);
    *evals_only = err == 0 && strcmp(v, "true") == 0;
    free(v);
    v = NULL;
    if (err && err != CKS_ENOTFOUND)
        return err;
    if (!*evals_only || !model[0])
        return 0;
    err = cks_store_get_attr(s, "/", "model", &v);
    if (err == CKS_ENOTFOUND)
        return 0;
    if (!err && strcmp(v, model) != 0)
        err = cks_error_set(CKS_EINVAL,
                            "%s is a result of model '%s' but %s holds the evals of '%s': "
                            "import it into another run file",
                            model_file, model, cks_store_path(s), v);
    free(v);
    return err;
}

static int import_all(cks_store *s, const char *const *files, const parsed_file *p, size_t n,
                      int evals_only, cks_evals_imported *out)
{
    int err = 0;
    for (size_t i = 0; i < n && !err; i++) {
        size_t row;
        memset(&out[i], 0, sizeof out[i]);
        snprintf(out[i].ckpt, sizeof out[i].ckpt, "%s", p[i].ckpt);
        out[i].version = p[i].r.version;
        err = cks_store_find_checkpoint(s, p[i].ckpt, &row);
        if (err == CKS_ENOTFOUND && evals_only) {
            err = cks_store_put_checkpoint(s, p[i].ckpt, cks_name_step(p[i].ckpt), "", "complete",
                                           &row);
            out[i].new_row = 1;
        } else if (err == CKS_ENOTFOUND) {
            char have[1200];
            ckpt_list(s, have, sizeof have);
            return cks_error_set(CKS_ENOTFOUND,
                                 "%s belongs to checkpoint '%s', which %s does not hold (it holds "
                                 "%s): scan that checkpoint first, or name the row with --ckpt",
                                 files[i], p[i].ckpt, cks_store_path(s), have);
        }
        if (!err)
            err = cks_evals_write(s, row, &p[i].r, files[i], &out[i].nvalues);
        out[i].row = row;
    }
    return err;
}

int cks_evals_import(const char *path, const char *const *files, size_t nfiles, const char *ckpt,
                     cks_evals_imported *out, int *created)
{
    parsed_file *p = NULL;
    cks_store *s = NULL;
    const char *model = "";
    size_t model_file = 0;
    int err = 0, made = 0, evals_only = 1;
    if (nfiles == 0 || nfiles > CKS_EVALS_MAX_FILES)
        return cks_error_set(CKS_EINVAL, "between 1 and %d result files, not %zu",
                             CKS_EVALS_MAX_FILES, nfiles);
    if (ckpt && (err = check_ckpt_name(ckpt, "--ckpt")) != 0)
        return err;
    if (!(p = calloc(nfiles, sizeof *p)))
        return cks_error_set(CKS_ENOMEM, "out of memory");
    for (size_t i = 0; i < nfiles && !err; i++)
        err = parse_file(files[i], ckpt, &p[i]);
    if (err || (err = files_model(files, p, nfiles, &model, &model_file)) != 0)
        goto done;
    err = cks_store_open(&s, path, CKS_STORE_WRITE);
    if (err == CKS_ENOTFOUND) {
        cks_error_clear();
        if ((err = create_store(&s, path, files[0], model)) != 0)
            goto done;
        made = 1;
    } else if (err || (err = check_existing(s, model, files[model_file], &evals_only)) != 0) {
        goto done;
    }
    if ((err = cks_store_begin(s)) != 0)
        goto done;
    if ((err = import_all(s, files, p, nfiles, evals_only, out)) != 0) {
        cks_store_abort(s);
        goto done;
    }
    err = cks_store_commit(s);
done:
    cks_store_free(s);
    if (err && made)
        unlink(path); /* the file this import created holds nothing */
    else if (!err && created)
        *created = made;
    for (size_t i = 0; p && i < nfiles; i++)
        cks_lmeval_release(&p[i].r);
    free(p);
    return err;
}
