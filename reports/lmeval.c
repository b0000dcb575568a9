/* lm-evaluation-harness result parsing, v0.3 and v0.4 layouts (see lmeval.h). */
#include "lmeval.h"
#include "error.h"
#include "grow.h"
#include "json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cks_lmeval_release(cks_eval_result *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->count; i++) {
        free(r->items[i].task);
        free(r->items[i].metric);
    }
    free(r->items);
    free(r->model_args);
    memset(r, 0, sizeof *r);
}

/* Copies text, turning the bare tokens NaN, Infinity and -Infinity that Python's json
 * module writes (outside strings) into null, which jansson accepts. */
static char *sanitize(const char *text, size_t len, size_t *outlen)
{
    /* "NaN" becomes the longer "null": the text grows by at most a third */
    char *out = malloc(len + len / 3 + 2);
    size_t o = 0;
    int in_str = 0;
    if (!out)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        char ch = text[i];
        if (in_str) {
            out[o++] = ch;
            if (ch == '\\' && i + 1 < len)
                out[o++] = text[++i];
            else if (ch == '"')
                in_str = 0;
            continue;
        }
        if (ch == '"')
            in_str = 1;
        static const char *const tokens[] = {"-Infinity", "Infinity", "NaN"};
        int matched = 0;
        for (int k = 0; k < 3 && !matched; k++) {
            size_t n = strlen(tokens[k]);
            if (len - i >= n && memcmp(text + i, tokens[k], n) == 0) {
                memcpy(out + o, "null", 4);
                o += 4;
                i += n - 1;
                matched = 1;
            }
        }
        if (!matched)
            out[o++] = ch;
    }
    out[o] = '\0';
    *outlen = o;
    return out;
}

static int check_name(const char *s, const char *what, const char *display)
{
    size_t n = strlen(s);
    if (n == 0 || n > CKS_MAX_EVAL_NAME || strchr(s, '/') || strcmp(s, ".") == 0 ||
        strcmp(s, "..") == 0)
        return cks_error_set(CKS_EFORMAT, "%s: %s name '%.60s' is empty, too long or holds '/'",
                             display, what, s);
    return 0;
}

/* A metric value: number -> itself; null or "N/A" -> NaN; other strings -> skip (1). */
static int value_of(const json_t *v, double *out)
{
    if (json_is_number(v)) {
        *out = json_number_value(v);
        return 0;
    }
    if (json_is_null(v) || (json_is_string(v) && strcmp(json_string_value(v), "N/A") == 0)) {
        *out = NAN;
        return 0;
    }
    return 1;
}

/* One metric value as read, before duplicates are merged: the same metric can be written
 * twice ("acc" and "acc,none"), and a task can be in both "results" and "groups". */
typedef struct {
    const char *task; /* borrowed from the parsed JSON */
    char *metric;
    double x;
    int is_stderr;
    size_t seq; /* reading order: a later value wins */
} raw_value;

typedef struct {
    raw_value *items;
    size_t count, cap;
} raw_vec;

static void raw_release(raw_vec *r)
{
    for (size_t i = 0; i < r->count; i++)
        free(r->items[i].metric);
    free(r->items);
    memset(r, 0, sizeof *r);
}

static int raw_add(raw_vec *r, const char *task, const char *metric, double x, int is_stderr)
{
    int err = cks_grow(&r->items, &r->cap, r->count, sizeof *r->items, 64);
    if (err)
        return err;
    char *m = strdup(metric);
    if (!m)
        return cks_error_set(CKS_ENOMEM, "out of memory");
    r->items[r->count] = (raw_value){task, m, x, is_stderr, r->count};
    r->count++;
    return 0;
}

static int parse_task(raw_vec *v, const char *task, const json_t *metrics, int *v4,
                      const char *display)
{
    const char *key;
    json_t *val;
    int err;
    char shown[64];
    if (!json_is_object(metrics))
        return cks_error_set(CKS_EFORMAT, "%s: results of task '%s' are not an object", display,
                             task);
    if ((err = check_name(task, "task", display)) != 0)
        return err;
    /* each metric and its stderr, plus labels such as "alias" (counted exactly below) */
    if (json_object_size(metrics) > 2 * CKS_MAX_EVAL_METRICS + 16)
        return cks_error_set(CKS_ELIMIT, "%s: task '%s' has more than %d metrics", display,
                             cks_printable(shown, sizeof shown, task, strlen(task)),
                             CKS_MAX_EVAL_METRICS);
    json_object_foreach((json_t *)metrics, key, val)
    {
        double x;
        char name[CKS_MAX_EVAL_NAME + 16];
        if (value_of(val, &x) != 0)
            continue; /* "alias" and other labels */
        snprintf(name, sizeof name, "%s", key);
        char *comma = strchr(name, ',');
        if (comma) {
            *v4 = 1;
            if (strcmp(comma, ",none") == 0)
                *comma = '\0';
        }
        /* "acc_stderr,none" -> stderr of "acc"; "acc_stderr" (v0.3) likewise */
        char *se = strstr(name, "_stderr");
        int is_stderr = se && (se[7] == '\0' || se[7] == ',');
        if (is_stderr)
            memmove(se, se + 7, strlen(se + 7) + 1);
        if ((err = check_name(name, "metric", display)) != 0 ||
            (err = raw_add(v, task, name, x, is_stderr)) != 0)
            return err;
    }
    return 0;
}

static int cmp_raw(const void *pa, const void *pb)
{
    const raw_value *a = pa, *b = pb;
    int r = strcmp(a->task, b->task);
    if (!r)
        r = strcmp(a->metric, b->metric);
    return r ? r : (a->seq > b->seq) - (a->seq < b->seq);
}

/* One entry per (task, metric), in that order: the last value read and the last stderr
 * read win. Sorting first keeps this O(n log n) whatever the file holds. Checks the
 * number of tasks and of metrics per task. */
static int merge_values(raw_vec *r, const char *display, cks_eval_entry **out, size_t *n)
{
    cks_eval_entry *e = calloc(r->count ? r->count : 1, sizeof *e);
    size_t k = 0, tasks = 0, per_task = 0;
    char shown[64];
    int err = 0;
    if (!e)
        return cks_error_set(CKS_ENOMEM, "out of memory");
    if (r->count > 1)
        qsort(r->items, r->count, sizeof *r->items, cmp_raw);
    for (size_t i = 0; i < r->count && !err; i++) {
        raw_value *x = &r->items[i];
        int same_task = k > 0 && strcmp(e[k - 1].task, x->task) == 0;
        if (!same_task || strcmp(e[k - 1].metric, x->metric) != 0) {
            per_task = same_task ? per_task + 1 : 1;
            tasks += !same_task;
            if (tasks > CKS_MAX_EVAL_TASKS)
                err = cks_error_set(CKS_ELIMIT, "%s: more than %d tasks", display,
                                    CKS_MAX_EVAL_TASKS);
            else if (per_task > CKS_MAX_EVAL_METRICS)
                err = cks_error_set(CKS_ELIMIT, "%s: task '%s' has more than %d metrics", display,
                                    cks_printable(shown, sizeof shown, x->task, strlen(x->task)),
                                    CKS_MAX_EVAL_METRICS);
            else if (!(e[k].task = strdup(x->task)))
                err = cks_error_set(CKS_ENOMEM, "out of memory");
            if (err)
                break;
            e[k].metric = x->metric;
            x->metric = NULL;
            e[k].value = e[k].stderr_ = NAN;
            e[k].n = -1;
            e[k].higher_is_better = -1;
            k++;
        }
        if (x->is_stderr)
            e[k - 1].stderr_ = x->x;
        else
            e[k - 1].value = x->x;
    }
    if (err) {
        cks_eval_result tmp = {e, k, 0, NULL};
        cks_lmeval_release(&tmp);
        return err;
    }
    *out = e;
    *n = k;
    return 0;
}

/* v0.4 side tables: higher_is_better and n-samples. */
static void apply_side_tables(cks_eval_result *v, const json_t *root)
{
    const json_t *hib = json_object_get(root, "higher_is_better");
    const json_t *ns = json_object_get(root, "n-samples");
    for (size_t i = 0; i < v->count; i++) {
        cks_eval_entry *e = &v->items[i];
        const json_t *t = json_object_get(hib, e->task), *h = NULL;
        if (json_is_object(t)) {
            char base[CKS_MAX_EVAL_NAME + 1];
            snprintf(base, sizeof base, "%s", e->metric);
            char *comma = strchr(base, ',');
            if (comma)
                *comma = '\0';
            h = json_object_get(t, base);
        }
        if (json_is_boolean(h))
            e->higher_is_better = json_is_true(h);
        const json_t *n = json_object_get(json_object_get(ns, e->task), "effective");
        if (json_is_integer(n) && json_integer_value(n) > 0)
            e->n = json_integer_value(n);
    }
}

static int parse_section(raw_vec *v, const json_t *sec, int *v4, const char *display)
{
    const char *task;
    json_t *metrics;
    int err;
    if (!sec)
        return 0;
    if (!json_is_object(sec))
        return cks_error_set(CKS_EFORMAT, "%s: \"results\" is not an object", display);
    if (json_object_size(sec) > CKS_MAX_EVAL_TASKS)
        return cks_error_set(CKS_ELIMIT, "%s: more than %d tasks", display, CKS_MAX_EVAL_TASKS);
    json_object_foreach((json_t *)sec, task, metrics)
    {
        if ((err = parse_task(v, task, metrics, v4, display)) != 0)
            return err;
    }
    return 0;
}

int cks_lmeval_parse(const char *text, size_t len, const char *display, cks_eval_result *out)
{
    raw_vec v = {0};
    cks_eval_result r = {0};
    json_t *root = NULL;
    size_t clen;
    int err, v4 = 0;
    if (len > CKS_MAX_EVAL_BYTES)
        return cks_error_set(CKS_ELIMIT, "%s: %zu bytes, more than the %u allowed", display, len,
                             CKS_MAX_EVAL_BYTES);
    char *clean = sanitize(text, len, &clen);
    if (!clean)
        return cks_error_set(CKS_ENOMEM, "out of memory");
    err = cks_json_parse(clean, clen, display, 1, &root);
    free(clean);
    if (err)
        return err;
    const json_t *results = json_object_get(root, "results");
    if (!results) {
        err = cks_error_set(CKS_EFORMAT, "%s: no \"results\" object: not an lm-eval result file",
                            display);
        goto done;
    }
    if ((err = parse_section(&v, results, &v4, display)) != 0 ||
        (err = parse_section(&v, json_object_get(root, "groups"), &v4, display)) != 0 ||
        (err = merge_values(&v, display, &r.items, &r.count)) != 0)
        goto done;
    if (json_object_get(root, "higher_is_better") || json_object_get(root, "n-samples"))
        v4 = 1;
    apply_side_tables(&r, root);
    const char *ma =
        json_string_value(json_object_get(json_object_get(root, "config"), "model_args"));
    if (ma && !(r.model_args = strdup(ma))) {
        err = cks_error_set(CKS_ENOMEM, "out of memory");
        goto done;
    }
    r.version = v4 ? 4 : 3;
    *out = r;
    memset(&r, 0, sizeof r);
done:
    cks_lmeval_release(&r);
    raw_release(&v);
    json_decref(root);
    return err;
}

/* Value of key=... in a comma-separated model_args string. */
static int arg_value(const char *args, const char *key, char *out, size_t cap)
{
    size_t kl = strlen(key);
    for (const char *p = args; p && *p;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n > kl && strncmp(p, key, kl) == 0 && p[kl] == '=') {
            snprintf(out, cap, "%.*s", (int)(n - kl - 1), p + kl + 1);
            return out[0] ? 0 : -1;
        }
        p = end ? end + 1 : NULL;
    }
    return -1;
}

static int has_digit(const char *s)
{
    return strpbrk(s, "0123456789") != NULL;
}

int cks_lmeval_checkpoint(const cks_eval_result *r, const char *filename, char *out, size_t cap)
{
    char buf[1024];
    if (r->model_args && arg_value(r->model_args, "revision", buf, sizeof buf) == 0) {
        snprintf(out, cap, "%s", buf);
        return 0;
    }
    if (r->model_args && arg_value(r->model_args, "pretrained", buf, sizeof buf) == 0) {
        size_t n = strlen(buf);
        while (n > 1 && buf[n - 1] == '/')
            buf[--n] = '\0';
        const char *base = strrchr(buf, '/');
        base = base ? base + 1 : buf;
        if (has_digit(base) && check_name(base, "checkpoint", "") == 0) {
            snprintf(out, cap, "%s", base);
            return 0;
        }
    }
    if (filename) {
        const char *base = strrchr(filename, '/');
        base = base ? base + 1 : filename;
        snprintf(buf, sizeof buf, "%s", base);
        char *dot = strstr(buf, ".json");
        if (dot)
            *dot = '\0';
        if (buf[0] && has_digit(buf)) {
            snprintf(out, cap, "%s", buf);
            return 0;
        }
    }
    return cks_error_set(CKS_ENOTFOUND,
                         "%s: cannot tell which checkpoint it belongs to (no revision= or "
                         "pretrained=<path> in model_args); name it with --ckpt",
                         filename ? filename : "eval result");
}

int cks_lmeval_model(const cks_eval_result *r, char *out, size_t cap)
{
    char rev[1024];
    if (!r->model_args || arg_value(r->model_args, "revision", rev, sizeof rev) != 0 ||
        arg_value(r->model_args, "pretrained", out, cap) != 0)
        return CKS_ENOTFOUND;
    return 0;
}
