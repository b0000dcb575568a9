/* Internals of the reports: the checkpoint's figures gathered once (report_data.c), then
 * written by report_text.c (text, Markdown), report_json.c, report_html.c and trends.c.
 * Not a public header. */
#ifndef CKS_REPORT_IMPL_H
#define CKS_REPORT_IMPL_H

#include "report.h"

#include <jansson.h>

/* Metric groups of the tensor table, in table order. */
enum { REP_NORMS = 0, REP_DRIFT_PREV, REP_DRIFT_REF, REP_SPECTRAL, REP_NGROUPS };

/* Per-tensor flags. */
enum {
    REP_FLAG_DRIFT_PREV = 1 << 0, /* among the largest rel_fro against the previous */
    REP_FLAG_DRIFT_REF = 1 << 1,  /* among the largest rel_fro against the reference */
    REP_FLAG_NAN = 1 << 2,
    REP_FLAG_INF = 1 << 3,
    REP_FLAG_ALPHA_LOW = 1 << 4,
    REP_FLAG_ALPHA_HIGH = 1 << 5,
    REP_NFLAGS = 6
};

typedef struct {
    const char *path; /* "/norms" */
    const char *key;  /* JSON key: "norms", "drift_prev" */
    int present;
    char **names; /* metric datasets of the group holding one value per tensor */
    size_t n;
    double *vals; /* vals[k * nt + j]: metric k of tensor j at the checkpoint */
} rep_group;

/* An eval set (/eval/<set>) or a task (/evals/<task>): its series at the checkpoint. */
typedef struct {
    char *name;
    char **metric;
    double *value, *err; /* err: the <metric>_stderr series, NaN when absent */
    size_t n;
    double n_samples; /* tasks: documents evaluated (/evals/<task>/n_samples), or NaN */
} rep_series;

typedef struct {
    cks_runview *v;
    size_t at;
    const cks_store_ckpt *ck;
    char *source, *created_by, *metrics, *ref, *config_text;
    json_t *config; /* parsed config.json, or NULL */
    rep_group g[REP_NGROUPS];
    rep_series *eval, *evals;
    size_t neval, nevals;
    int has_eval, has_evals;
    unsigned *flags; /* per tensor column */
    size_t *order;   /* display order of the tensor columns */
    size_t top_prev[CKS_REPORT_TOP], ntop_prev, top_ref[CKS_REPORT_TOP], ntop_ref;
} rep;

int rep_collect(rep *r, cks_runview *v, size_t at);
void rep_release(rep *r);

/* Value of metric name of group g for tensor column j; NaN when absent. */
double rep_value(const rep *r, int g, const char *name, size_t j);
/* Flag names, in bit order ("largest_drift_prev", ...). */
const char *rep_flag_name(int bit);
/* Short spelling for tables ("drift!", "NaN", "a<2" ...). */
const char *rep_flag_short(int bit);

/* The table columns (text, Markdown, HTML): a header, a group and metric, a format. */
typedef struct {
    const char *head;
    int group;
    const char *metric;
    int integer; /* counts print as integers */
} rep_column;
/* The columns whose group the run file has. */
size_t rep_columns(const rep *r, rep_column *out, size_t cap);

/* A number for a table: %.4g, integers as such, "-" when missing. */
void rep_num(char *buf, size_t cap, double x, int integer);

/* The report of one checkpoint as a JSON document (new reference). */
json_t *rep_json(const rep *r);
/* The body of the HTML report (sections, no <html>): used alone and in the trends page.
 * id_prefix makes the element ids unique on a page. */
int rep_html_body(const rep *r, cks_buf *b, const char *id_prefix);
/* The page head (title, inline style sheet) and its end. */
void rep_html_begin(cks_buf *b, const char *title);
void rep_html_end(cks_buf *b);
/* Appends untrusted text HTML-escaped. */
void rep_html_text(cks_buf *b, const char *s);

/* A table of strings (report_table.c), row 0 the header where there is one. */
#define REP_MAX_COLS 20
typedef struct {
    size_t ncols, nrows, cap;
    size_t maxcell;    /* characters kept per cell (0: 120) */
    const char *align; /* 'l' or 'r' per column */
    char **cell;       /* nrows * ncols, printable */
    int err;           /* sticky: the first failed add */
} rep_table;
void rep_table_init(rep_table *t, size_t ncols, const char *align);
void rep_table_release(rep_table *t);
void rep_table_add(rep_table *t, const char *const *cells);
const char *rep_table_cell(const rep_table *t, size_t row, size_t col);
/* Label/value rows: checkpoint, step, position, status, commit, ... config. */
void rep_table_header(const rep *r, rep_table *t);
/* SET NLL PPL BPB TOKENS (5 columns). */
void rep_table_eval(const rep *r, rep_table *t);
/* TASK METRIC VALUE STDERR N (5 columns). */
void rep_table_evals(const rep *r, rep_table *t);
/* LAYER KIND SHAPE <cols...> FLAGS (ncols + 4 columns); row i + 1 is tensor r->order[i]. */
void rep_table_tensors(const rep *r, rep_table *t, const rep_column *cols, size_t ncols);
/* The alignment string of the tensor table into buf (REP_MAX_COLS + 1 bytes). */
const char *rep_tensor_align(size_t ncols, char *buf);
/* The short flag names of f, space-separated. */
void rep_flags_text(unsigned f, char *buf, size_t cap);
/* The outlier lists: largest drift against the previous checkpoint and the reference,
 * NaN/Inf, alpha outside 2..6; each names tensor columns with a value to show. */
#define REP_NOUTLIERS 4
typedef struct {
    const char *label;
    int present; /* the run file has the group the list comes from */
    size_t n;
    size_t *tensor;
    char (*value)[48];
} rep_outliers;
int rep_outliers_collect(const rep *r, rep_outliers out[REP_NOUTLIERS]);
void rep_outliers_release(rep_outliers out[REP_NOUTLIERS]);

/* config.json's headline fields on one line. */
void rep_config_line(const rep *r, cks_buf *b);

int rep_text(const rep *r, cks_buf *b);
int rep_markdown(const rep *r, cks_buf *b);

#endif
