/* Internals of the reports: the checkpoint's figures gathered once (report_data.c), then
 * written by report_text.c (text, Markdown), report_json.c, report_html.c and trends.c.
 * Not a public header. */
#ifndef CKS_REPORT_IMPL_H
#define CKS_REPORT_IMPL_H

#include "report.h"

#include <jansson.h>

/* Metric groups of the tensor table, in table order. */
enum {
    CKS_REPORT_NORMS = 0,
    CKS_REPORT_DRIFT_PREV,
    CKS_REPORT_DRIFT_REF,
    CKS_REPORT_SPECTRAL,
    CKS_REPORT_NGROUPS
};

/* Per-tensor flags. */
enum {
    CKS_REPORT_FLAG_DRIFT_PREV = 1 << 0, /* among the largest rel_fro against the previous */
    CKS_REPORT_FLAG_DRIFT_REF = 1 << 1,  /* among the largest rel_fro against the reference */
    CKS_REPORT_FLAG_NAN = 1 << 2,
    CKS_REPORT_FLAG_INF = 1 << 3,
    CKS_REPORT_FLAG_ALPHA_LOW = 1 << 4,
    CKS_REPORT_FLAG_ALPHA_HIGH = 1 << 5,
    CKS_REPORT_NFLAGS = 6
};

typedef struct {
    const char *path; /* "/norms" */
    const char *key;  /* JSON key: "norms", "drift_prev" */
    int present;
    char **names; /* metric datasets of the group holding one value per tensor */
    size_t n;
    double *vals; /* vals[k * nt + j]: metric k of tensor j at the checkpoint */
} cks_report_group;

/* An eval set (/eval/<set>) or a task (/evals/<task>): its series at the checkpoint. */
typedef struct {
    char *name;
    char **metric;
    double *value, *err; /* err: the <metric>_stderr series, NaN when absent */
    size_t n;
    double n_samples; /* tasks: documents evaluated (/evals/<task>/n_samples), or NaN */
} cks_report_series;

typedef struct {
    cks_runview *v;
    size_t at;
    const cks_store_ckpt *ck;
    char *source, *created_by, *metrics, *ref, *config_text;
    json_t *config; /* parsed config.json, or NULL */
    cks_report_group g[CKS_REPORT_NGROUPS];
    cks_report_series *eval, *evals, *memo;
    size_t neval, nevals, nmemo;
    int has_eval, has_evals, has_memo;
    unsigned *flags; /* per tensor column */
    size_t *order;   /* display order of the tensor columns */
    size_t top_prev[CKS_REPORT_TOP], ntop_prev, top_ref[CKS_REPORT_TOP], ntop_ref;
} cks_report_data;

int cks_report_collect(cks_report_data *r, cks_runview *v, size_t at);
void cks_report_release(cks_report_data *r);

/* Value of metric name of group g for tensor column j; NaN when absent. */
double cks_report_value(const cks_report_data *r, int g, const char *name, size_t j);
/* Flag names, in bit order ("largest_drift_prev", ...). */
const char *cks_report_flag_name(int bit);
/* Short spelling for tables ("drift!", "NaN", "a<2" ...). */
const char *cks_report_flag_short(int bit);

/* The table columns (text, Markdown, HTML): a header, a group and metric, a format. */
typedef struct {
    const char *head;
    int group;
    const char *metric;
    int integer; /* counts print as integers */
} cks_report_column;
/* The columns whose group the run file has. */
size_t cks_report_columns(const cks_report_data *r, cks_report_column *out, size_t cap);

/* A number for a table: %.4g, integers as such, "-" when missing. */
void cks_report_num(char *buf, size_t cap, double x, int integer);

/* The report of one checkpoint as a JSON document (new reference). */
json_t *cks_report_json(const cks_report_data *r);
/* The body of the HTML report (sections, no <html>): used alone and in the trends page.
 * id_prefix makes the element ids unique on a page. */
int cks_report_html_body(const cks_report_data *r, cks_buf *b, const char *id_prefix);
/* The page head (title, inline style sheet) and its end. */
void cks_report_html_begin(cks_buf *b, const char *title);
void cks_report_html_end(cks_buf *b);
/* Appends untrusted text HTML-escaped. */
void cks_report_html_text(cks_buf *b, const char *s);

/* A table of strings (report_table.c), row 0 the header where there is one. */
#define CKS_REPORT_MAX_COLS 20
typedef struct {
    size_t ncols, nrows, cap;
    size_t maxcell;    /* characters kept per cell (0: 120) */
    const char *align; /* 'l' or 'r' per column */
    char **cell;       /* nrows * ncols, printable */
    int err;           /* sticky: the first failed add */
} cks_report_table;
void cks_report_table_init(cks_report_table *t, size_t ncols, const char *align);
void cks_report_table_release(cks_report_table *t);
void cks_report_table_add(cks_report_table *t, const char *const *cells);
const char *cks_report_table_cell(const cks_report_table *t, size_t row, size_t col);
/* Label/value rows: checkpoint, step, position, status, commit, ... config. */
void cks_report_table_header(const cks_report_data *r, cks_report_table *t);
/* SET NLL PPL BPB TOKENS, and TOP1_ACC when a set has it: cks_report_eval_ncols columns,
 * aligned CKS_REPORT_EVAL_ALIGN. */
#define CKS_REPORT_EVAL_ALIGN "lrrrrr"
size_t cks_report_eval_ncols(const cks_report_data *r);
void cks_report_table_eval(const cks_report_data *r, cks_report_table *t);
/* Function space (DESIGN §3, scan family kl): one row per set and base (prev, ref) whose
 * KL series exists: SET BASE KL KL_P50 KL_P90 KL_P99 KL_MAX TOP1_AGREE FORGOT LEARNED
 * DNLL DNLL_95% (the bootstrap interval "[lo, hi]"). cks_report_has_kl says whether any
 * row would be written. */
#define CKS_REPORT_KL_NCOLS 12
#define CKS_REPORT_KL_ALIGN "llrrrrrrrrrr"
int cks_report_has_kl(const cks_report_data *r);
void cks_report_table_kl(const cks_report_data *r, cks_report_table *t);
/* Memorisation (/memo/<set>): SET SEQUENCES TOKEN_MATCH FULL_MATCH PREFIX_MATCH. */
#define CKS_REPORT_MEMO_NCOLS 5
#define CKS_REPORT_MEMO_ALIGN "lrrrr"
void cks_report_table_memo(const cks_report_data *r, cks_report_table *t);
/* TASK METRIC VALUE STDERR N (5 columns). */
void cks_report_table_evals(const cks_report_data *r, cks_report_table *t);
/* LAYER KIND SHAPE <cols...> FLAGS (ncols + 4 columns); row i + 1 is tensor r->order[i]. */
void cks_report_table_tensors(const cks_report_data *r, cks_report_table *t,
                              const cks_report_column *cols, size_t ncols);
/* The alignment string of the tensor table into buf (CKS_REPORT_MAX_COLS + 1 bytes). */
const char *cks_report_tensor_align(size_t ncols, char *buf);
/* The outlier lists: largest drift against the previous checkpoint and the reference,
 * NaN/Inf, alpha outside 2..6; each names tensor columns with a value to show. */
#define CKS_REPORT_NOUTLIERS 4
typedef struct {
    const char *label;
    int present; /* the run file has the group the list comes from */
    size_t n;
    size_t *tensor;
    char (*value)[48];
} cks_report_outliers;
int cks_report_outliers_collect(const cks_report_data *r,
                                cks_report_outliers out[CKS_REPORT_NOUTLIERS]);
void cks_report_outliers_release(cks_report_outliers out[CKS_REPORT_NOUTLIERS]);

/* config.json's headline fields on one line. */
void cks_report_config_line(const cks_report_data *r, cks_buf *b);

int cks_report_text(const cks_report_data *r, cks_buf *b);
int cks_report_markdown(const cks_report_data *r, cks_buf *b);

#endif
