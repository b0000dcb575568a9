/* The checkpoint report as HTML: a page head with an inline style sheet (and a content
 * security policy that forbids every network request), and the report's sections with
 * links from the outliers to their rows in the tensor table. Also used by trends.c. All
 * text from the run file is escaped. */
#include "report_impl.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const char style[] =
    "body{font:14px/1.45 system-ui,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;margin:0 auto;"
    "max-width:1240px;padding:0 18px 60px;color:#222;background:#fff}"
    "h1{font-size:22px;margin:18px 0 6px}"
    "h2{font-size:18px;margin:30px 0 8px;padding-bottom:4px;border-bottom:1px solid #ddd}"
    "h3{font-size:15px;margin:18px 0 6px}"
    "table{border-collapse:collapse;margin:6px 0 14px;font-variant-numeric:tabular-nums}"
    "th,td{padding:2px 9px;border-bottom:1px solid #eee;text-align:left;vertical-align:top}"
    "th{background:#f6f6f6;font-weight:600}"
    "td.r,th.r{text-align:right}"
    "tr.flag td{background:#fff3e0}"
    "table.kv th{background:none;color:#555;font-weight:600}"
    "nav{position:sticky;top:0;z-index:1;background:#fafafa;border-bottom:1px solid #ddd;"
    "padding:6px 4px;font-size:13px}"
    "nav a{margin-right:14px;white-space:nowrap}"
    "a{color:#1a5fa8;text-decoration:none}a:hover{text-decoration:underline}"
    "figure{display:inline-block;margin:6px 8px 12px 0;vertical-align:top}"
    "figure img{max-width:100%;height:auto;border:1px solid #e4e4e4}"
    "figcaption{font-size:12px;color:#555;max-width:600px}"
    ".grid figure{width:calc(50% - 12px)}"
    ".note{color:#8a5a00}.muted{color:#777}"
    ".wide{overflow-x:auto}"
    "code{font:12px ui-monospace,'DejaVu Sans Mono',monospace}"
    ".top{font-size:12px;margin-left:10px;font-weight:normal}";

static const char *html_esc(char c)
{
    switch (c) {
    case '&':
        return "&amp;";
    case '<':
        return "&lt;";
    case '>':
        return "&gt;";
    case '"':
        return "&quot;";
    case '\'':
        return "&#39;";
    default:
        return NULL;
    }
}

void cks_report_html_text(cks_buf *b, const char *s)
{
    cks_buf_put_text(b, s, 400, html_esc);
}

void cks_report_html_begin(cks_buf *b, const char *title)
{
    cks_buf_puts(b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
                    "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
                    "img-src data:; style-src 'unsafe-inline'\">\n<title>");
    cks_report_html_text(b, title);
    cks_buf_printf(b, "</title>\n<style>%s</style>\n</head>\n<body>\n", style);
}

void cks_report_html_end(cks_buf *b)
{
    cks_buf_puts(b, "</body>\n</html>\n");
}

/* A cks_report_table as HTML. header: row 0 is the header. For the tensor table, order and flags
 * give each row an id (prefix + "t" + column) and mark flagged rows. */
static void html_table(cks_buf *b, const cks_report_table *t, int header, const char *cls,
                       const char *prefix, const cks_report_data *r)
{
    cks_buf_printf(b, "<div class=\"wide\"><table%s%s%s>\n", cls ? " class=\"" : "", cls ? cls : "",
                   cls ? "\"" : "");
    for (size_t i = 0; i < t->nrows; i++) {
        int head = header && i == 0;
        if (r && !head) {
            size_t j = r->order[i - 1];
            cks_buf_printf(b, "<tr id=\"%st%zu\"%s>", prefix, j,
                           r->flags[j] ? " class=\"flag\"" : "");
        } else {
            cks_buf_puts(b, "<tr>");
        }
        for (size_t c = 0; c < t->ncols; c++) {
            const char *tag = head || (!header && c == 0) ? "th" : "td";
            cks_buf_printf(b, "<%s%s>", tag, t->align[c] == 'r' ? " class=\"r\"" : "");
            cks_report_html_text(b, cks_report_table_cell(t, i, c));
            cks_buf_printf(b, "</%s>", tag);
        }
        cks_buf_puts(b, "</tr>\n");
    }
    cks_buf_puts(b, "</table></div>\n");
}

static void tensor_link(cks_buf *b, const cks_report_data *r, size_t j, const char *prefix)
{
    cks_buf_printf(b, "<a href=\"#%st%zu\"><code>", prefix, j);
    cks_report_html_text(b, r->v->tensor[j].name);
    cks_buf_puts(b, "</code></a>");
}

static int outliers_html(const cks_report_data *r, cks_buf *b, const char *p)
{
    cks_report_outliers o[CKS_REPORT_NOUTLIERS];
    int err = cks_report_outliers_collect(r, o);
    if (err)
        return err;
    cks_buf_puts(b, "<ul>\n");
    for (int k = 0; k < CKS_REPORT_NOUTLIERS; k++) {
        if (!o[k].present)
            continue;
        cks_buf_printf(b, "<li><b>%s:</b>%s", o[k].label, o[k].n ? "" : " none");
        for (size_t i = 0; i < o[k].n; i++) {
            cks_buf_puts(b, i ? ", " : " ");
            tensor_link(b, r, o[k].tensor[i], p);
            cks_buf_printf(b, " (%s)", o[k].value[i]);
        }
        cks_buf_puts(b, "</li>\n");
    }
    cks_buf_puts(b, "</ul>\n");
    cks_report_outliers_release(o);
    return 0;
}

int cks_report_html_body(const cks_report_data *r, cks_buf *b, const char *p)
{
    cks_report_table t;
    int err = 0;
    cks_report_column cols[CKS_REPORT_MAX_COLS - 4];
    size_t ncols = cks_report_columns(r, cols, CKS_REPORT_MAX_COLS - 4);
    char align[CKS_REPORT_MAX_COLS + 1];

    cks_buf_printf(b, "<h2 id=\"%sckpt\">Checkpoint ", p);
    cks_report_html_text(b, r->ck->name);
    cks_buf_printf(b, " (step %lld)</h2>\n", (long long)r->ck->step);
    cks_buf_printf(b,
                   "<p class=\"muted\">Sections: <a href=\"#%seval\">evaluation</a> &middot; "
                   "<a href=\"#%soutliers\">outliers</a> &middot; "
                   "<a href=\"#%stensors\">tensors</a></p>\n",
                   p, p, p);
    cks_report_table_init(&t, 2, "ll");
    cks_report_table_header(r, &t);
    html_table(b, &t, 0, "kv", p, NULL);
    err = err ? err : t.err;
    cks_report_table_release(&t);
    if (strcmp(r->ck->status, "complete") != 0)
        cks_buf_puts(b, "<p class=\"note\">This checkpoint is not complete: its values are "
                        "missing (-).</p>\n");
    cks_buf_printf(b, "<h3 id=\"%seval\">Evaluation</h3>\n", p);
    if (r->has_eval) {
        cks_report_table_init(&t, cks_report_eval_ncols(r), CKS_REPORT_EVAL_ALIGN);
        cks_report_table_eval(r, &t);
        html_table(b, &t, 1, NULL, p, NULL);
        err = err ? err : t.err;
        cks_report_table_release(&t);
    } else {
        cks_buf_puts(b, "<p class=\"muted\">No held-out perplexity in the run file (/eval).</p>\n");
    }
    if (cks_report_has_kl(r)) {
        cks_buf_puts(b, "<p>Function space against the previous checkpoint (prev) and the "
                        "reference (ref): KL of the next-token distributions in nats, the base "
                        "first; DNLL with its 95 % block-bootstrap interval.</p>\n");
        cks_report_table_init(&t, CKS_REPORT_KL_NCOLS, CKS_REPORT_KL_ALIGN);
        cks_report_table_kl(r, &t);
        html_table(b, &t, 1, NULL, p, NULL);
        err = err ? err : t.err;
        cks_report_table_release(&t);
    }
    if (r->has_memo) {
        cks_buf_puts(b, "<p>Memorisation of training data (/memo).</p>\n");
        cks_report_table_init(&t, CKS_REPORT_MEMO_NCOLS, CKS_REPORT_MEMO_ALIGN);
        cks_report_table_memo(r, &t);
        html_table(b, &t, 1, NULL, p, NULL);
        err = err ? err : t.err;
        cks_report_table_release(&t);
    }
    if (r->has_evals) {
        cks_report_table_init(&t, 5, "llrrr");
        cks_report_table_evals(r, &t);
        html_table(b, &t, 1, NULL, p, NULL);
        err = err ? err : t.err;
        cks_report_table_release(&t);
    } else {
        cks_buf_puts(b, "<p class=\"muted\">No imported eval scores in the run file "
                        "(/evals).</p>\n");
    }
    cks_buf_printf(b, "<h3 id=\"%soutliers\">Outliers</h3>\n", p);
    if (!err)
        err = outliers_html(r, b, p);
    cks_buf_printf(b, "<h3 id=\"%stensors\">Tensors (%zu)</h3>\n", p, r->v->nt);
    for (int g = 0; g < CKS_REPORT_NGROUPS; g++)
        if (!r->g[g].present)
            cks_buf_printf(b, "<p class=\"muted\">%s is not in the run file.</p>\n", r->g[g].path);
    cks_report_table_init(&t, ncols + 4, cks_report_tensor_align(ncols, align));
    cks_report_table_tensors(r, &t, cols, ncols);
    html_table(b, &t, 1, NULL, p, r);
    err = err ? err : t.err;
    cks_report_table_release(&t);
    return err;
}
