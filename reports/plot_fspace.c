/* Function-space plots against step (plots.h families kl and memorization): how far the
 * next-token distributions moved (KL to the previous checkpoint and to the reference),
 * top-1 agreement, forgetting and learning events and top-1 accuracy per eval set
 * (/eval/<set>/…, DESIGN §3), and memorisation of training data per set (/memo/<set>/…).
 * A plot is drawn only when one of its datasets holds a value; else it is listed as
 * skipped with the scan family that writes it. */
#include "plots_impl.h"
#include "error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One plot: up to two metrics of every set of a group, one line per (set, metric). */
typedef struct {
    const char *metric[2]; /* second NULL: one metric, lines named by set */
    const char *label[2];  /* key suffix per metric when there are two */
    const char *what;      /* y axis */
    const char *stem;
    const char *title;
    int unit_range;   /* a fraction: y from 0 to 1 */
    double log_ratio; /* log y when the values span this ratio (0: never) */
} fs_plot;

static const fs_plot kl_plots[] = {
    {{"kl_prev", NULL},
     {NULL, NULL},
     "KL(previous || this)",
     "kl_prev",
     "KL divergence of the next-token distributions from the previous checkpoint's, per eval set",
     0,
     10},
    {{"kl_ref", NULL},
     {NULL, NULL},
     "KL(reference || this)",
     "kl_ref",
     "KL divergence of the next-token distributions from the reference's, per eval set",
     0,
     10},
    {{"top1_agree_prev", NULL},
     {NULL, NULL},
     "top-1 agreement",
     "top1_agree_prev",
     "top-1 agreement with the previous checkpoint, per eval set",
     0,
     0},
    {{"forgot_prev", "learned_prev"},
     {"forgot", "learned"},
     "fraction of scored tokens",
     "forgetting_prev",
     "forgetting and learning events against the previous checkpoint, per eval set",
     0,
     0},
    {{"top1_acc", NULL},
     {NULL, NULL},
     "top-1 accuracy",
     "top1_acc",
     "top-1 accuracy of the next-token prediction, per eval set",
     0,
     0},
};

static const fs_plot memo_plots[] = {
    {{"token_match", NULL},
     {NULL, NULL},
     "token_match",
     "memo_token_match",
     "memorisation: fraction of continuation tokens reproduced, per training data set",
     1,
     0},
    {{"full_match", NULL},
     {NULL, NULL},
     "full_match",
     "memo_full_match",
     "memorisation: fraction of sequences reproduced in full, per training data set",
     1,
     0},
    {{"prefix_match", NULL},
     {NULL, NULL},
     "prefix_match",
     "memo_prefix_match",
     "memorisation: longest reproduced prefix / continuation, per training data set",
     1,
     0},
};

/* Reads metric of set under group as a series into s[*n] when it holds a value. */
static int add_series(cks_plot_ctx *c, const char *group, const char *set, const char *metric,
                      const char *suffix, cks_plot_series *s, size_t *n, size_t *more, char **first)
{
    char *path = cks_plot_path3(group, set, metric);
    double *y = NULL;
    size_t cols;
    int err = 0;
    if (!path)
        return cks_error_set(CKS_ENOMEM, "out of memory");
    if (cks_plot_is_series(c, path) && (err = cks_runview_read(c->v, path, 1, &y, &cols)) == 0 &&
        cks_plot_any_finite(y, c->v->n)) {
        if (*n == CKS_PLOT_MAX_LINES) {
            (*more)++;
        } else {
            size_t len = strlen(set) + (suffix ? strlen(suffix) + 2 : 1);
            char *name = malloc(len);
            if (!name) {
                err = cks_error_set(CKS_ENOMEM, "out of memory");
            } else {
                snprintf(name, len, "%s%s%s", set, suffix ? " " : "", suffix ? suffix : "");
                s[(*n)++] = (cks_plot_series){name, y, NULL};
                y = NULL;
                if (!*first)
                    *first = path, path = NULL;
            }
        }
    }
    free(y);
    free(path);
    return err;
}

static int fs_draw(cks_plot_ctx *c, const char *group, char **sets, size_t nsets, const fs_plot *p,
                   const char *family, const char *scan_family)
{
    cks_plot_series s[CKS_PLOT_MAX_LINES];
    size_t n = 0, more = 0;
    char *first = NULL;
    int err = 0;
    for (size_t i = 0; i < nsets && !err; i++)
        for (int k = 0; k < 2 && p->metric[k] && !err; k++)
            err = add_series(c, group, sets[i], p->metric[k], p->metric[1] ? p->label[k] : NULL, s,
                             &n, &more, &first);
    if (!err && n == 0)
        err = cks_plot_skip(c, family, p->title,
                            "no /%s/<set>/%s dataset holds a value (scan "
                            "--metrics %s)",
                            group, p->metric[0], scan_family);
    else if (!err) {
        cks_plot_begin(c, p->stem, 960, 560, p->title);
        cks_plot_axis_label(c, "y", first, p->what);
        cks_plot_description(c, first);
        if (p->unit_range)
            cks_buf_puts(&c->s, "set yrange [-0.02:1.02]\n");
        if (more)
            cks_buf_printf(&c->s,
                           "set label 1 '%zu more lines not drawn' at graph 0.01, "
                           "graph 0.97 tc rgb '#777777'\n",
                           more);
        int ylog = p->log_ratio > 0 && cks_plot_series_want_log(s, n, c->v->n, p->log_ratio);
        err = cks_plot_draw_lines(c, s, n, ylog, family, p->title);
    }
    cks_plot_series_release(s, n);
    free(first);
    return err;
}

static int fs_family(cks_plot_ctx *c, const char *group, const fs_plot *plots, size_t nplots,
                     const char *family, const char *scan_family, const char *absent)
{
    char **sets = NULL, gpath[64];
    size_t nsets = 0;
    int err = 0;
    snprintf(gpath, sizeof gpath, "/%s", group);
    if (!cks_store_exists(c->v->store, gpath)) {
        for (size_t i = 0; i < nplots && !err; i++)
            err = cks_plot_skip(c, family, plots[i].title, "%s", absent);
        return err;
    }
    if ((err = cks_store_list(c->v->store, gpath, &sets, &nsets)))
        return err;
    for (size_t i = 0; i < nplots && !err; i++)
        err = fs_draw(c, group, sets, nsets, &plots[i], family, scan_family);
    cks_store_names_free(sets, nsets);
    return err;
}

int cks_plot_kl(cks_plot_ctx *c)
{
    return fs_family(c, "eval", kl_plots, sizeof kl_plots / sizeof kl_plots[0], "kl", "ppl,kl",
                     "the run file has no /eval group (KL and agreement come from the forward "
                     "pass: scan --metrics ppl,kl)");
}

int cks_plot_memo(cks_plot_ctx *c)
{
    return fs_family(c, "memo", memo_plots, sizeof memo_plots / sizeof memo_plots[0],
                     "memorization", "memorization --train-data FILE",
                     "the run file has no /memo group (scan --metrics memorization "
                     "--train-data FILE)");
}
