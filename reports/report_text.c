/* The checkpoint report as aligned text (for a terminal) and as Markdown (to paste into a
 * paper, an issue or a chat): the tables of report_table.c, aligned or as pipe tables
 * (cells escaped). */
#include "report_impl.h"
#include "error.h"
#include "tensor.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Display width: UTF-8 characters (continuation bytes do not count). */
static size_t width(const char *s)
{
    size_t w = 0;
    for (; *s; s++)
        w += ((unsigned char)*s & 0xC0) != 0x80;
    return w;
}

static void table_text(const cks_report_table *t, cks_buf *b, const char *indent)
{
    size_t w[CKS_REPORT_MAX_COLS] = {0};
    for (size_t i = 0; i < t->nrows; i++)
        for (size_t c = 0; c < t->ncols; c++)
            if (width(t->cell[i * t->ncols + c]) > w[c])
                w[c] = width(t->cell[i * t->ncols + c]);
    for (size_t i = 0; i < t->nrows; i++) {
        cks_buf_puts(b, indent);
        for (size_t c = 0; c < t->ncols; c++) {
            const char *s = t->cell[i * t->ncols + c];
            size_t pad = w[c] - width(s);
            int last = c + 1 == t->ncols;
            if (t->align[c] == 'r')
                cks_buf_printf(b, "%*s", (int)pad, "");
            cks_buf_puts(b, s);
            if (t->align[c] != 'r' && !last)
                cks_buf_printf(b, "%*s", (int)pad, "");
            if (!last)
                cks_buf_puts(b, "  ");
        }
        /* no trailing blanks */
        while (b->len > 0 && b->data[b->len - 1] == ' ')
            b->data[--b->len] = '\0';
        cks_buf_puts(b, "\n");
    }
}

static const char *md_esc(char c)
{
    static const char *const esc[] = {"\\\\", "\\`",  "\\*", "\\_", "\\[",  "\\]",
                                      "&lt;", "&gt;", "\\|", "\\#", "&amp;"};
    const char *set = "\\`*_[]<>|#&";
    const char *p = strchr(set, c);
    return c && p ? esc[p - set] : NULL;
}

static void md_text(cks_buf *b, const char *s)
{
    cks_buf_put_text(b, s, 200, md_esc);
}

/* Row 0 is the header. */
static void table_md(const cks_report_table *t, cks_buf *b)
{
    for (size_t i = 0; i < t->nrows; i++) {
        cks_buf_puts(b, "|");
        for (size_t c = 0; c < t->ncols; c++) {
            cks_buf_puts(b, " ");
            md_text(b, t->cell[i * t->ncols + c]);
            cks_buf_puts(b, " |");
        }
        cks_buf_puts(b, "\n");
        if (i == 0) {
            cks_buf_puts(b, "|");
            for (size_t c = 0; c < t->ncols; c++)
                cks_buf_puts(b, t->align[c] == 'r' ? " ---: |" : " --- |");
            cks_buf_puts(b, "\n");
        }
    }
}

/* The outlier lists: in text each entry on its own line, aligned; in Markdown a bullet
 * per list. */
static int outlier_items(const cks_report_data *r, cks_buf *b, int markdown)
{
    cks_report_outliers o[CKS_REPORT_NOUTLIERS];
    int err = cks_report_outliers_collect(r, o);
    for (int k = 0; k < CKS_REPORT_NOUTLIERS && !err; k++) {
        if (!o[k].present)
            continue;
        if (markdown) {
            cks_buf_printf(b, "- **%s:**%s", o[k].label, o[k].n ? "" : " none");
            for (size_t i = 0; i < o[k].n; i++) {
                cks_buf_puts(b, i ? ", " : " ");
                md_text(b, r->v->tensor[o[k].tensor[i]].name);
                cks_buf_printf(b, " (%s)", o[k].value[i]);
            }
            cks_buf_puts(b, "\n");
            continue;
        }
        cks_buf_printf(b, "  %s:%s\n", o[k].label, o[k].n ? "" : " none");
        cks_report_table t;
        cks_report_table_init(&t, 2, "lr");
        for (size_t i = 0; i < o[k].n; i++) {
            const char *row[] = {r->v->tensor[o[k].tensor[i]].name, o[k].value[i]};
            cks_report_table_add(&t, row);
        }
        table_text(&t, b, "    ");
        err = t.err;
        cks_report_table_release(&t);
    }
    cks_report_outliers_release(o);
    return err;
}

static void missing_line(const cks_report_data *r, cks_buf *b, const char *prefix)
{
    static const char *hint[CKS_REPORT_NGROUPS] = {"norms", "drift", "drift", "spectral"};
    int any = 0;
    for (int g = 0; g < CKS_REPORT_NGROUPS; g++)
        if (!r->g[g].present) {
            cks_buf_printf(b, "%s%s %s (scan --metrics %s)", any ? ", " : prefix, r->g[g].path,
                           "is not in the run file", hint[g]);
            any = 1;
        }
    if (any)
        cks_buf_puts(b, "\n");
}

/* The function-space tables (kl family, memorisation) when the run file has them. */
static int fspace_tables(const cks_report_data *r, cks_buf *b, int markdown)
{
    cks_report_table t;
    int err = 0;
    if (cks_report_has_kl(r)) {
        cks_buf_puts(b, markdown ? "\n## Function space\n\nNext-token distributions against "
                                   "the previous checkpoint (prev) and the reference (ref): KL "
                                   "in nats, the base first; DNLL with its 95 % block-bootstrap "
                                   "interval.\n\n"
                                 : "\nfunction space against the previous checkpoint and the "
                                   "reference (/eval; KL in nats, DNLL with its 95% bootstrap "
                                   "interval):\n");
        cks_report_table_init(&t, CKS_REPORT_KL_NCOLS, CKS_REPORT_KL_ALIGN);
        cks_report_table_kl(r, &t);
        if (markdown)
            table_md(&t, b);
        else
            table_text(&t, b, "  ");
        err = t.err;
        cks_report_table_release(&t);
    }
    if (!err && r->has_memo) {
        cks_buf_puts(b, markdown ? "\n## Memorisation\n\n"
                                 : "\nmemorisation of training data (/memo):\n");
        cks_report_table_init(&t, CKS_REPORT_MEMO_NCOLS, CKS_REPORT_MEMO_ALIGN);
        cks_report_table_memo(r, &t);
        if (markdown)
            table_md(&t, b);
        else
            table_text(&t, b, "  ");
        err = t.err;
        cks_report_table_release(&t);
    }
    return err;
}

int cks_report_text(const cks_report_data *r, cks_buf *b)
{
    cks_report_table t;
    cks_report_column cols[CKS_REPORT_MAX_COLS - 4];
    size_t ncols = cks_report_columns(r, cols, CKS_REPORT_MAX_COLS - 4);
    char align[CKS_REPORT_MAX_COLS + 1];
    int err = 0;

    cks_buf_puts(b, "ckptscope report: ");
    cks_buf_put_text(b, r->ck->name, 120, NULL);
    cks_buf_printf(b, " (step %lld)\n\n", (long long)r->ck->step);
    cks_report_table_init(&t, 2, "ll");
    cks_report_table_header(r, &t);
    table_text(&t, b, "");
    err = t.err;
    cks_report_table_release(&t);
    if (strcmp(r->ck->status, "complete") != 0)
        cks_buf_puts(b, "note: this checkpoint is not complete; its values are missing (-)\n");
    if (!err && r->has_eval) {
        cks_buf_puts(b, "\nheld-out evaluation (/eval):\n");
        cks_report_table_init(&t, cks_report_eval_ncols(r), CKS_REPORT_EVAL_ALIGN);
        cks_report_table_eval(r, &t);
        table_text(&t, b, "  ");
        err = t.err;
        cks_report_table_release(&t);
    }
    if (!err)
        err = fspace_tables(r, b, 0);
    if (!err && r->has_evals) {
        cks_buf_puts(b, "\neval scores (/evals):\n");
        cks_report_table_init(&t, 5, "llrrr");
        cks_report_table_evals(r, &t);
        table_text(&t, b, "  ");
        err = t.err;
        cks_report_table_release(&t);
    }
    cks_buf_puts(b, "\noutliers:\n");
    if (!err)
        err = outlier_items(r, b, 0);
    cks_buf_printf(b, "\ntensors (%zu):\n", r->v->nt);
    missing_line(r, b, "note: ");
    if (!err) {
        cks_report_table_init(&t, ncols + 4, cks_report_tensor_align(ncols, align));
        cks_report_table_tensors(r, &t, cols, ncols);
        table_text(&t, b, "");
        err = t.err;
        cks_report_table_release(&t);
    }
    return err ? err : cks_buf_error(b);
}

int cks_report_markdown(const cks_report_data *r, cks_buf *b)
{
    cks_report_table t;
    cks_report_column cols[CKS_REPORT_MAX_COLS - 4];
    size_t ncols = cks_report_columns(r, cols, CKS_REPORT_MAX_COLS - 4);
    char align[CKS_REPORT_MAX_COLS + 1];
    int err = 0;

    cks_buf_puts(b, "# ckptscope report: ");
    md_text(b, r->ck->name);
    cks_buf_printf(b, " (step %lld)\n\n", (long long)r->ck->step);
    cks_report_table_init(&t, 2, "ll");
    const char *head[] = {"", ""};
    cks_report_table_add(&t, head);
    cks_report_table_header(r, &t);
    table_md(&t, b);
    err = t.err;
    cks_report_table_release(&t);
    if (strcmp(r->ck->status, "complete") != 0)
        cks_buf_puts(b, "\n**This checkpoint is not complete; its values are missing (-).**\n");
    if (!err && r->has_eval) {
        cks_buf_puts(b, "\n## Held-out evaluation\n\n");
        cks_report_table_init(&t, cks_report_eval_ncols(r), CKS_REPORT_EVAL_ALIGN);
        cks_report_table_eval(r, &t);
        table_md(&t, b);
        err = t.err;
        cks_report_table_release(&t);
    }
    if (!err)
        err = fspace_tables(r, b, 1);
    if (!err && r->has_evals) {
        cks_buf_puts(b, "\n## Eval scores\n\n");
        cks_report_table_init(&t, 5, "llrrr");
        cks_report_table_evals(r, &t);
        table_md(&t, b);
        err = t.err;
        cks_report_table_release(&t);
    }
    cks_buf_puts(b, "\n## Outliers\n\n");
    if (!err)
        err = outlier_items(r, b, 1);
    cks_buf_printf(b, "\n## Tensors (%zu)\n\n", r->v->nt);
    missing_line(r, b, "Note: ");
    cks_buf_puts(b, "\n");
    if (!err) {
        cks_report_table_init(&t, ncols + 4, cks_report_tensor_align(ncols, align));
        cks_report_table_tensors(r, &t, cols, ncols);
        table_md(&t, b);
        err = t.err;
        cks_report_table_release(&t);
    }
    return err ? err : cks_buf_error(b);
}
