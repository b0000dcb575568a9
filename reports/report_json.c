/* The checkpoint report as one JSON document (field names in report.h). Numbers that are
 * missing (NaN) are null (cks_json_number); counts are integers. */
#include "report_impl.h"
#include "json.h"

#include <math.h>
#include <string.h>

/* A string from the run file: as it is when it is UTF-8, else made printable (jansson
 * refuses invalid UTF-8, and one bad name must not lose the report). */
static json_t *jstr(const char *s)
{
    json_t *j = json_string(s);
    if (j)
        return j;
    cks_buf b;
    cks_buf_init(&b);
    cks_buf_put_text(&b, s, (size_t)-1, NULL);
    j = json_string(cks_buf_text(&b));
    cks_buf_release(&b);
    return j;
}

/* o[k] = v, with k made printable when it is not UTF-8 (a dataset name from the file). */
static void jset(json_t *o, const char *k, json_t *v)
{
    if (json_object_set(o, k, v) != 0) {
        json_t *key = jstr(k);
        if (key)
            json_object_set(o, json_string_value(key), v);
        json_decref(key);
    }
    json_decref(v);
}

/* A count as an integer, or null. */
static json_t *count(double x)
{
    return isfinite(x) && x >= 0 && x < 9e15 ? json_integer((json_int_t)x) : json_null();
}

static int is_count(int g, const char *name)
{
    return (g == CKS_REPORT_NORMS && (strcmp(name, "nan") == 0 || strcmp(name, "inf") == 0)) ||
           (g == CKS_REPORT_SPECTRAL &&
            (strcmp(name, "tail") == 0 || strcmp(name, "num_spikes") == 0));
}

static json_t *tensor_json(const cks_report_data *r, size_t j)
{
    const cks_store_tensor *t = &r->v->tensor[j];
    json_t *o =
        json_pack("{s:o, s:i, s:o, s:I, s:I}", "name", jstr(t->name), "layer", (int)t->layer,
                  "kind", jstr(t->kind), "rows", (json_int_t)t->rows, "cols", (json_int_t)t->cols);
    if (!o)
        return NULL;
    for (int g = 0; g < CKS_REPORT_NGROUPS; g++) {
        const cks_report_group *gr = &r->g[g];
        if (!gr->present)
            continue;
        json_t *m = json_object();
        for (size_t k = 0; k < gr->n; k++) {
            double x = gr->vals[k * r->v->nt + j];
            jset(m, gr->names[k], is_count(g, gr->names[k]) ? count(x) : cks_json_number(x));
        }
        json_object_set_new(o, gr->key, m);
    }
    json_t *flags = json_array();
    for (int bit = 0; bit < CKS_REPORT_NFLAGS; bit++)
        if (r->flags[j] & (1u << bit))
            json_array_append_new(flags, json_string(cks_report_flag_name(bit)));
    json_object_set_new(o, "flags", flags);
    return o;
}

static json_t *top_json(const cks_report_data *r, int g, const size_t *idx, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(
            a, json_pack("{s:o, s:o}", "name", jstr(r->v->tensor[idx[i]].name), "rel_fro",
                         cks_json_number(cks_report_value(r, g, "rel_fro", idx[i]))));
    return a;
}

static json_t *outliers_json(const cks_report_data *r)
{
    json_t *nonfinite = json_array(), *alpha = json_array();
    for (size_t i = 0; i < r->v->nt; i++) {
        size_t j = r->order[i];
        const char *name = r->v->tensor[j].name;
        if (r->flags[j] & (CKS_REPORT_FLAG_NAN | CKS_REPORT_FLAG_INF))
            json_array_append_new(
                nonfinite, json_pack("{s:o, s:o, s:o}", "name", jstr(name), "nan",
                                     count(cks_report_value(r, CKS_REPORT_NORMS, "nan", j)), "inf",
                                     count(cks_report_value(r, CKS_REPORT_NORMS, "inf", j))));
        if (r->flags[j] & (CKS_REPORT_FLAG_ALPHA_LOW | CKS_REPORT_FLAG_ALPHA_HIGH))
            json_array_append_new(
                alpha,
                json_pack("{s:o, s:o}", "name", jstr(name), "alpha",
                          cks_json_number(cks_report_value(r, CKS_REPORT_SPECTRAL, "alpha", j))));
    }
    return json_pack("{s:o, s:o, s:o, s:o}", "largest_drift_prev",
                     top_json(r, CKS_REPORT_DRIFT_PREV, r->top_prev, r->ntop_prev),
                     "largest_drift_ref",
                     top_json(r, CKS_REPORT_DRIFT_REF, r->top_ref, r->ntop_ref), "nonfinite",
                     nonfinite, "alpha_outside", alpha);
}

static json_t *eval_json(const cks_report_data *r)
{
    json_t *a = json_array();
    for (size_t i = 0; i < r->neval; i++) {
        json_t *o = json_pack("{s:o}", "set", jstr(r->eval[i].name));
        for (size_t m = 0; m < r->eval[i].n; m++) {
            const char *name = r->eval[i].metric[m];
            if (strcmp(name, "set") == 0) /* the key is taken by the set's name */
                continue;
            double x = r->eval[i].value[m];
            jset(o, name, strcmp(name, "tokens") == 0 ? count(x) : cks_json_number(x));
        }
        json_array_append_new(a, o);
    }
    return a;
}

/* Memorisation sets: {"set", "sequences" (integer), "token_match", ...}. */
static json_t *memo_json(const cks_report_data *r)
{
    json_t *a = json_array();
    for (size_t i = 0; i < r->nmemo; i++) {
        json_t *o = json_pack("{s:o}", "set", jstr(r->memo[i].name));
        for (size_t m = 0; m < r->memo[i].n; m++) {
            const char *name = r->memo[i].metric[m];
            if (strcmp(name, "set") == 0)
                continue;
            double x = r->memo[i].value[m];
            jset(o, name, strcmp(name, "sequences") == 0 ? count(x) : cks_json_number(x));
        }
        json_array_append_new(a, o);
    }
    return a;
}

static json_t *evals_json(const cks_report_data *r)
{
    json_t *a = json_array();
    for (size_t i = 0; i < r->nevals; i++) {
        json_t *ms = json_array();
        for (size_t m = 0; m < r->evals[i].n; m++)
            json_array_append_new(ms,
                                  json_pack("{s:o, s:o, s:o}", "name", jstr(r->evals[i].metric[m]),
                                            "value", cks_json_number(r->evals[i].value[m]),
                                            "stderr", cks_json_number(r->evals[i].err[m])));
        json_array_append_new(a,
                              json_pack("{s:o, s:o, s:o}", "task", jstr(r->evals[i].name),
                                        "n_samples", count(r->evals[i].n_samples), "metrics", ms));
    }
    return a;
}

static json_t *nonempty(const char *s)
{
    return s && s[0] ? jstr(s) : json_null();
}

json_t *cks_report_json(const cks_report_data *r)
{
    const cks_store_ckpt *c = r->ck;
    json_t *tensors = json_array(), *missing = json_array();
    for (size_t i = 0; i < r->v->nt; i++)
        json_array_append_new(tensors, tensor_json(r, r->order[i]));
    for (int g = 0; g < CKS_REPORT_NGROUPS; g++)
        if (!r->g[g].present)
            json_array_append_new(missing, json_string(r->g[g].key));
    if (!r->has_eval)
        json_array_append_new(missing, json_string("eval"));
    if (!r->has_evals)
        json_array_append_new(missing, json_string("evals"));
    if (!r->has_memo)
        json_array_append_new(missing, json_string("memo"));
    json_t *run = json_pack("{s:o, s:o, s:o, s:o, s:I, s:o}", "path", jstr(r->v->path), "source",
                            nonempty(r->source), "created_by", nonempty(r->created_by), "metrics",
                            nonempty(r->metrics), "checkpoints", (json_int_t)r->v->n, "ref",
                            nonempty(r->ref));
    json_t *ck =
        json_pack("{s:o, s:I, s:o, s:o, s:o, s:I}", "name", jstr(c->name), "step",
                  (json_int_t)c->step, "commit", nonempty(c->commit), "status", jstr(c->status),
                  "analysed_at", jstr(c->analysed_at), "index", (json_int_t)r->at);
    return json_pack("{s:o, s:o, s:O, s:o, s:o, s:o, s:o, s:o, s:o}", "run", run, "checkpoint", ck,
                     "config", r->config ? r->config : json_null(), "eval", eval_json(r), "evals",
                     evals_json(r), "memo", memo_json(r), "tensors", tensors, "outliers",
                     outliers_json(r), "missing", missing);
}
