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

void rep_table_init(rep_table *t, size_t ncols, const char *align)
{
    memset(t, 0, sizeof *t);
    t->ncols = ncols;
    t->align = align;
}

void rep_table_release(rep_table *t)
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

void rep_table_add(rep_table *t, const char *const *cells)
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

void rep_config_line(const rep *r, cks_buf *b)
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
void rep_table_header(const rep *r, rep_table *t)
{
    char pos[64], step[32];
    cks_buf cfg;
    cks_buf_init(&cfg);
    rep_config_line(r, &cfg);
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
        rep_table_add(t, rows[i]);
    cks_buf_release(&cfg);
}

void rep_table_eval(const rep *r, rep_table *t)
{
    static const char *cols[] = {"nll", "ppl", "bpb", "tokens"};
    const char *head[] = {"SET", "NLL", "PPL", "BPB", "TOKENS"};
    rep_table_add(t, head);
    for (size_t i = 0; i < r->neval; i++) {
        char v[4][32];
        const char *row[5] = {r->eval[i].name, v[0], v[1], v[2], v[3]};
        for (int c = 0; c < 4; c++) {
            double x = NAN;
            for (size_t m = 0; m < r->eval[i].n; m++)
                if (strcmp(r->eval[i].metric[m], cols[c]) == 0)
                    x = r->eval[i].value[m];
            rep_num(v[c], sizeof v[c], x, c == 3);
        }
        rep_table_add(t, row);
    }
}

void rep_table_evals(const rep *r, rep_table *t)
{
    const char *head[] = {"TASK", "METRIC", "VALUE", "STDERR", "N"};
    rep_table_add(t, head);
    for (size_t i = 0; i < r->nevals; i++)
        for (size_t m = 0; m < r->evals[i].n; m++) {
            char v[32], e[32], n[32];
            rep_num(v, sizeof v, r->evals[i].value[m], 0);
            rep_num(e, sizeof e, r->evals[i].err[m], 0);
            rep_num(n, sizeof n, r->evals[i].n_samples, 1);
            const char *row[] = {r->evals[i].name, r->evals[i].metric[m], v, e, n};
            rep_table_add(t, row);
        }
}

void rep_flags_text(unsigned f, char *buf, size_t cap)
{
    size_t k = 0;
    buf[0] = '\0';
    for (int bit = 0; bit < REP_NFLAGS; bit++)
        if (f & (1u << bit))
            k += (size_t)snprintf(buf + k, k < cap ? cap - k : 0, "%s%s", k ? " " : "",
                                  rep_flag_short(bit));
}

void rep_table_tensors(const rep *r, rep_table *t, const rep_column *cols, size_t ncols)
{
    const char *head[REP_MAX_COLS] = {"LAYER", "KIND", "SHAPE"};
    for (size_t c = 0; c < ncols; c++)
        head[3 + c] = cols[c].head;
    head[3 + ncols] = "FLAGS";
    rep_table_add(t, head);
    for (size_t i = 0; i < r->v->nt; i++) {
        size_t j = r->order[i];
        const cks_store_tensor *ts = &r->v->tensor[j];
        char cells[REP_MAX_COLS][48];
        const char *row[REP_MAX_COLS];
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
            rep_num(cells[3 + c], sizeof cells[3 + c],
                    rep_value(r, cols[c].group, cols[c].metric, j), cols[c].integer);
            row[3 + c] = cells[3 + c];
        }
        rep_flags_text(r->flags[j], cells[3 + ncols], sizeof cells[3 + ncols]);
        row[3 + ncols] = cells[3 + ncols];
        rep_table_add(t, row);
    }
}

const char *rep_tensor_align(size_t ncols, char *buf)
{
    buf[0] = 'r', buf[1] = 'l', buf[2] = 'r';
    for (size_t c = 0; c < ncols; c++)
        buf[3 + c] = 'r';
    buf[3 + ncols] = 'l';
    buf[4 + ncols] = '\0';
    return buf;
}

const char *rep_table_cell(const rep_table *t, size_t row, size_t col)
{
    return t->cell[row * t->ncols + col];
}

void rep_outliers_release(rep_outliers out[REP_NOUTLIERS])
{
    for (int k = 0; k < REP_NOUTLIERS; k++) {
        free(out[k].tensor);
        free(out[k].value);
    }
}

/* Adds tensor j with its value text to list o (room for v->nt entries). */
static void outlier_add(rep_outliers *o, size_t j, const char *value)
{
    o->tensor[o->n] = j;
    snprintf(o->value[o->n], sizeof o->value[o->n], "%s", value);
    o->n++;
}

int rep_outliers_collect(const rep *r, rep_outliers out[REP_NOUTLIERS])
{
    static const char *labels[REP_NOUTLIERS] = {
        "largest drift against the previous checkpoint (rel_fro)",
        "largest drift against the reference (rel_fro)", "NaN or Inf elements",
        "alpha outside 2..6"};
    static const int groups[REP_NOUTLIERS] = {REP_DRIFT_PREV, REP_DRIFT_REF, REP_NORMS,
                                              REP_SPECTRAL};
    size_t nt = r->v->nt ? r->v->nt : 1;
    memset(out, 0, REP_NOUTLIERS * sizeof *out);
    for (int k = 0; k < REP_NOUTLIERS; k++) {
        out[k].label = labels[k];
        out[k].present = r->g[groups[k]].present;
        out[k].tensor = malloc(nt * sizeof *out[k].tensor);
        out[k].value = malloc(nt * sizeof *out[k].value);
        if (!out[k].tensor || !out[k].value) {
            rep_outliers_release(out);
            return cks_error_set(CKS_ENOMEM, "out of memory");
        }
    }
    char v[32], w[32], both[48];
    for (size_t i = 0; i < r->ntop_prev; i++) {
        rep_num(v, sizeof v, rep_value(r, REP_DRIFT_PREV, "rel_fro", r->top_prev[i]), 0);
        outlier_add(&out[0], r->top_prev[i], v);
    }
    for (size_t i = 0; i < r->ntop_ref; i++) {
        rep_num(v, sizeof v, rep_value(r, REP_DRIFT_REF, "rel_fro", r->top_ref[i]), 0);
        outlier_add(&out[1], r->top_ref[i], v);
    }
    for (size_t i = 0; i < r->v->nt; i++) {
        size_t j = r->order[i];
        if (r->flags[j] & (REP_FLAG_NAN | REP_FLAG_INF)) {
            rep_num(v, sizeof v, rep_value(r, REP_NORMS, "nan", j), 1);
            rep_num(w, sizeof w, rep_value(r, REP_NORMS, "inf", j), 1);
            snprintf(both, sizeof both, "%s NaN, %s Inf", v, w);
            outlier_add(&out[2], j, both);
        }
        if (r->flags[j] & (REP_FLAG_ALPHA_LOW | REP_FLAG_ALPHA_HIGH)) {
            rep_num(v, sizeof v, rep_value(r, REP_SPECTRAL, "alpha", j), 0);
            outlier_add(&out[3], j, v);
        }
    }
    return 0;
}
