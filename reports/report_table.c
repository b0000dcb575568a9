/* The tables of the checkpoint report, built once and rendered by report_text.c (text,
 * Markdown) and report_html.c: the header, the eval sets, the eval tasks and the tensors.
 * Cells are stored printable (names from the run file are untrusted: control characters
 * and broken UTF-8 replaced), so widths are measured on what is shown. */
#include "report_impl.h"
#include "error.h"
#include "tensor.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cks_report_table_init(cks_report_table *t, size_t ncols, const char *align)
{
    memset(t, 0, sizeof *t);
    t->ncols = ncols;
    t->align = align;
}

void cks_report_table_release(cks_report_table *t)
{
    for (size_t i = 0; i < t->nrows * t->ncols; i++)
        free(t->cell[i]);
    free(t->cell);
}

static char *printable(const char *s, size_t max)
{
    cks_buf b;
    cks_buf_init(&b);
    cks_buf_put_text(&b, s, max, NULL);
    if (cks_buf_error(&b)) {
        cks_buf_release(&b);
        return NULL;
    }
    return b.data ? b.data : strdup("");
}

void cks_report_table_add(cks_report_table *t, const char *const *cells)
{
    if (t->err)
        return;
    if (t->nrows == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 16;
        char **p = realloc(t->cell, cap * t->ncols * sizeof *p);
        if (!p) {
            t->err = cks_error_set(CKS_ENOMEM, "out of memory");
            return;
        }
        t->cell = p;
        t->cap = cap;
    }
    for (size_t c = 0; c < t->ncols; c++)
        if (!(t->cell[t->nrows * t->ncols + c] =
                  printable(cells[c] ? cells[c] : "", t->maxcell ? t->maxcell : 120))) {
            for (size_t k = 0; k < c; k++)
                free(t->cell[t->nrows * t->ncols + k]);
            t->err = cks_error_set(CKS_ENOMEM, "out of memory");
            return;
        }
    t->nrows++;
}

void cks_report_config_line(const cks_report_data *r, cks_buf *b)
{
    static const struct {
        const char *key, *label;
    } fields[] = {{"hidden_size", "hidden"},
                  {"intermediate_size", "intermediate"},
                  {"num_hidden_layers", "layers"},
                  {"num_attention_heads", "heads"},
                  {"num_key_value_heads", "kv heads"},
                  {"vocab_size", "vocab"},
                  {"max_position_embeddings", "context"},
                  {"rope_theta", "rope_theta"},
                  {"rms_norm_eps", "rms_norm_eps"},
                  {"tie_word_embeddings", "tied"},
                  {"torch_dtype", "dtype"}};
    if (!r->config) {
        cks_buf_puts(b, r->config_text[0] ? "(config.json not readable)" : "(none stored)");
        return;
    }
    int first = 1;
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        const json_t *v = json_object_get(r->config, fields[i].key);
        char val[64];
        if (json_is_integer(v))
            snprintf(val, sizeof val, "%lld", (long long)json_integer_value(v));
        else if (json_is_real(v))
            snprintf(val, sizeof val, "%g", json_real_value(v));
        else if (json_is_boolean(v))
            snprintf(val, sizeof val, "%s", json_is_true(v) ? "yes" : "no");
        else if (json_is_string(v))
            cks_printable(val, sizeof val, json_string_value(v), strlen(json_string_value(v)));
        else
            continue;
        cks_buf_printf(b, "%s%s %s", first ? "" : ", ", fields[i].label, val);
        first = 0;
    }
}

/* The header lines as (label, value) pairs. */
void cks_report_table_header(const cks_report_data *r, cks_report_table *t)
{
    char pos[64], step[32];
    cks_buf cfg;
    cks_buf_init(&cfg);
    cks_report_config_line(r, &cfg);
    snprintf(step, sizeof step, "%lld", (long long)r->ck->step);
    snprintf(pos, sizeof pos, "%zu of %zu by step", r->at + 1, r->v->n);
    t->maxcell = 600;
    const char *rows[][2] = {
        {"checkpoint", r->ck->name},
        {"step", step},
        {"position", pos},
        {"status", r->ck->status},
        {"commit", r->ck->commit[0] ? r->ck->commit : "-"},
        {"analysed at", r->ck->analysed_at},
        {"run file", r->v->path},
        {"source", r->source[0] ? r->source : "-"},
        {"metrics", r->metrics[0] ? r->metrics : "-"},
        {"drift reference", r->ref[0] ? r->ref : "-"},
        {"config", cks_buf_text(&cfg)},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        cks_report_table_add(t, rows[i]);
    cks_buf_release(&cfg);
}

/* Index of metric name in s, or -1. */
static int series_find(const cks_report_series *s, const char *name)
{
    for (size_t m = 0; m < s->n; m++)
        if (strcmp(s->metric[m], name) == 0)
            return (int)m;
    return -1;
}

static double series_get(const cks_report_series *s, const char *name)
{
    int m = series_find(s, name);
    return m < 0 ? NAN : s->value[m];
}

size_t cks_report_eval_ncols(const cks_report_data *r)
{
    for (size_t i = 0; i < r->neval; i++)
        if (series_find(&r->eval[i], "top1_acc") >= 0)
            return 6;
    return 5;
}

void cks_report_table_eval(const cks_report_data *r, cks_report_table *t)
{
    static const char *cols[] = {"nll", "ppl", "bpb", "tokens", "top1_acc"};
    const char *head[] = {"SET", "NLL", "PPL", "BPB", "TOKENS", "TOP1_ACC"};
    size_t nc = t->ncols - 1;
    cks_report_table_add(t, head);
    for (size_t i = 0; i < r->neval; i++) {
        char v[5][32];
        const char *row[6] = {r->eval[i].name, v[0], v[1], v[2], v[3], v[4]};
        for (size_t c = 0; c < nc; c++)
            cks_report_num(v[c], sizeof v[c], series_get(&r->eval[i], cols[c]), c == 3);
        cks_report_table_add(t, row);
    }
}

static const char *const kl_bases[] = {"prev", "ref"};

int cks_report_has_kl(const cks_report_data *r)
{
    for (size_t i = 0; i < r->neval; i++)
        for (int b = 0; b < 2; b++) {
            char name[16];
            snprintf(name, sizeof name, "kl_%s", kl_bases[b]);
            if (series_find(&r->eval[i], name) >= 0)
                return 1;
        }
    return 0;
}

/* Value of <prefix><base><suffix> in s. */
static double kl_get(const cks_report_series *s, const char *prefix, const char *base,
                     const char *suffix)
{
    char name[64];
    snprintf(name, sizeof name, "%s%s%s", prefix, base, suffix);
    return series_get(s, name);
}

void cks_report_table_kl(const cks_report_data *r, cks_report_table *t)
{
    static const char *const cols[][2] = {{"kl_", ""},     {"kl_", "_p50"},  {"kl_", "_p90"},
                                          {"kl_", "_p99"}, {"kl_", "_max"},  {"top1_agree_", ""},
                                          {"forgot_", ""}, {"learned_", ""}, {"dnll_", ""}};
    const char *head[CKS_REPORT_KL_NCOLS] = {"SET",    "BASE",    "KL",     "KL_P50",
                                             "KL_P90", "KL_P99",  "KL_MAX", "TOP1_AGREE",
                                             "FORGOT", "LEARNED", "DNLL",   "DNLL_95%"};
    cks_report_table_add(t, head);
    for (size_t i = 0; i < r->neval; i++)
        for (int b = 0; b < 2; b++) {
            const cks_report_series *s = &r->eval[i];
            const char *base = kl_bases[b];
            char name[16], v[10][48], lo[32], hi[32];
            const char *row[CKS_REPORT_KL_NCOLS] = {s->name, base};
            snprintf(name, sizeof name, "kl_%s", base);
            if (series_find(s, name) < 0)
                continue;
            for (int c = 0; c < 9; c++) {
                cks_report_num(v[c], sizeof v[c], kl_get(s, cols[c][0], base, cols[c][1]), 0);
                row[2 + c] = v[c];
            }
            double l = kl_get(s, "dnll_", base, "_lo"), h = kl_get(s, "dnll_", base, "_hi");
            cks_report_num(lo, sizeof lo, l, 0);
            cks_report_num(hi, sizeof hi, h, 0);
            if (isnan(l) && isnan(h))
                snprintf(v[9], sizeof v[9], "-");
            else
                snprintf(v[9], sizeof v[9], "[%s, %s]", lo, hi);
            row[11] = v[9];
            cks_report_table_add(t, row);
        }
}

void cks_report_table_memo(const cks_report_data *r, cks_report_table *t)
{
    static const char *cols[] = {"sequences", "token_match", "full_match", "prefix_match"};
    const char *head[] = {"SET", "SEQUENCES", "TOKEN_MATCH", "FULL_MATCH", "PREFIX_MATCH"};
    cks_report_table_add(t, head);
    for (size_t i = 0; i < r->nmemo; i++) {
        char v[4][32];
        const char *row[5] = {r->memo[i].name, v[0], v[1], v[2], v[3]};
        for (int c = 0; c < 4; c++)
            cks_report_num(v[c], sizeof v[c], series_get(&r->memo[i], cols[c]), c == 0);
        cks_report_table_add(t, row);
    }
}

void cks_report_table_evals(const cks_report_data *r, cks_report_table *t)
{
    const char *head[] = {"TASK", "METRIC", "VALUE", "STDERR", "N"};
    cks_report_table_add(t, head);
    for (size_t i = 0; i < r->nevals; i++)
        for (size_t m = 0; m < r->evals[i].n; m++) {
            char v[32], e[32], n[32];
            cks_report_num(v, sizeof v, r->evals[i].value[m], 0);
            cks_report_num(e, sizeof e, r->evals[i].err[m], 0);
            cks_report_num(n, sizeof n, r->evals[i].n_samples, 1);
            const char *row[] = {r->evals[i].name, r->evals[i].metric[m], v, e, n};
            cks_report_table_add(t, row);
        }
}

/* The short flag names of f, space-separated. */
static void flags_text(unsigned f, char *buf, size_t cap)
{
    size_t k = 0;
    buf[0] = '\0';
    for (int bit = 0; bit < CKS_REPORT_NFLAGS; bit++)
        if (f & (1u << bit))
            k += (size_t)snprintf(buf + k, k < cap ? cap - k : 0, "%s%s", k ? " " : "",
                                  cks_report_flag_short(bit));
}

void cks_report_table_tensors(const cks_report_data *r, cks_report_table *t,
                              const cks_report_column *cols, size_t ncols)
{
    const char *head[CKS_REPORT_MAX_COLS] = {"LAYER", "KIND", "SHAPE"};
    for (size_t c = 0; c < ncols; c++)
        head[3 + c] = cols[c].head;
    head[3 + ncols] = "FLAGS";
    cks_report_table_add(t, head);
    for (size_t i = 0; i < r->v->nt; i++) {
        size_t j = r->order[i];
        const cks_store_tensor *ts = &r->v->tensor[j];
        char cells[CKS_REPORT_MAX_COLS][48];
        const char *row[CKS_REPORT_MAX_COLS];
        cks_kind k;
        int other = cks_kind_from_name(ts->kind, &k) != 0 || k == CKS_KIND_OTHER;
        if (ts->layer >= 0)
            snprintf(cells[0], sizeof cells[0], "%d", ts->layer);
        else
            snprintf(cells[0], sizeof cells[0], "-");
        row[0] = cells[0];
        row[1] = other ? ts->name : ts->kind; /* "other" tensors are named in full */
        if (ts->cols > 0)
            snprintf(cells[2], sizeof cells[2], "%lldx%lld", (long long)ts->rows,
                     (long long)ts->cols);
        else
            snprintf(cells[2], sizeof cells[2], "%lld", (long long)ts->rows);
        row[2] = cells[2];
        for (size_t c = 0; c < ncols; c++) {
            cks_report_num(cells[3 + c], sizeof cells[3 + c],
                           cks_report_value(r, cols[c].group, cols[c].metric, j), cols[c].integer);
            row[3 + c] = cells[3 + c];
        }
        flags_text(r->flags[j], cells[3 + ncols], sizeof cells[3 + ncols]);
        row[3 + ncols] = cells[3 + ncols];
        cks_report_table_add(t, row);
    }
}

const char *cks_report_tensor_align(size_t ncols, char *buf)
{
    buf[0] = 'r', buf[1] = 'l', buf[2] = 'r';
    for (size_t c = 0; c < ncols; c++)
        buf[3 + c] = 'r';
    buf[3 + ncols] = 'l';
    buf[4 + ncols] = '\0';
    return buf;
}

const char *cks_report_table_cell(const cks_report_table *t, size_t row, size_t col)
{
    return t->cell[row * t->ncols + col];
}

void cks_report_outliers_release(cks_report_outliers out[CKS_REPORT_NOUTLIERS])
{
    for (int k = 0; k < CKS_REPORT_NOUTLIERS; k++) {
        free(out[k].tensor);
        free(out[k].value);
    }
}

/* Adds tensor j with its value text to list o (room for v->nt entries). */
static void outlier_add(cks_report_outliers *o, size_t j, const char *value)
{
    o->tensor[o->n] = j;
    snprintf(o->value[o->n], sizeof o->value[o->n], "%s", value);
    o->n++;
}

int cks_report_outliers_collect(const cks_report_data *r,
                                cks_report_outliers out[CKS_REPORT_NOUTLIERS])
{
    static const char *labels[CKS_REPORT_NOUTLIERS] = {
        "largest drift against the previous checkpoint (rel_fro)",
        "largest drift against the reference (rel_fro)", "NaN or Inf elements",
        "alpha outside 2..6"};
    static const int groups[CKS_REPORT_NOUTLIERS] = {CKS_REPORT_DRIFT_PREV, CKS_REPORT_DRIFT_REF,
                                                     CKS_REPORT_NORMS, CKS_REPORT_SPECTRAL};
    size_t nt = r->v->nt ? r->v->nt : 1;
    memset(out, 0, CKS_REPORT_NOUTLIERS * sizeof *out);
    for (int k = 0; k < CKS_REPORT_NOUTLIERS; k++) {
        out[k].label = labels[k];
        out[k].present = r->g[groups[k]].present;
        out[k].tensor = malloc(nt * sizeof *out[k].tensor);
        out[k].value = malloc(nt * sizeof *out[k].value);
        if (!out[k].tensor || !out[k].value) {
            cks_report_outliers_release(out);
            return cks_error_set(CKS_ENOMEM, "out of memory");
        }
    }
    char v[32], w[32], both[48];
    for (size_t i = 0; i < r->ntop_prev; i++) {
        cks_report_num(v, sizeof v,
                       cks_report_value(r, CKS_REPORT_DRIFT_PREV, "rel_fro", r->top_prev[i]), 0);
        outlier_add(&out[0], r->top_prev[i], v);
    }
    for (size_t i = 0; i < r->ntop_ref; i++) {
        cks_report_num(v, sizeof v,
                       cks_report_value(r, CKS_REPORT_DRIFT_REF, "rel_fro", r->top_ref[i]), 0);
        outlier_add(&out[1], r->top_ref[i], v);
    }
    for (size_t i = 0; i < r->v->nt; i++) {
        size_t j = r->order[i];
        if (r->flags[j] & (CKS_REPORT_FLAG_NAN | CKS_REPORT_FLAG_INF)) {
            cks_report_num(v, sizeof v, cks_report_value(r, CKS_REPORT_NORMS, "nan", j), 1);
            cks_report_num(w, sizeof w, cks_report_value(r, CKS_REPORT_NORMS, "inf", j), 1);
            snprintf(both, sizeof both, "%s NaN, %s Inf", v, w);
            outlier_add(&out[2], j, both);
        }
        if (r->flags[j] & (CKS_REPORT_FLAG_ALPHA_LOW | CKS_REPORT_FLAG_ALPHA_HIGH)) {
            cks_report_num(v, sizeof v, cks_report_value(r, CKS_REPORT_SPECTRAL, "alpha", j), 0);
            outlier_add(&out[3], j, v);
        }
    }
    return 0;
}
