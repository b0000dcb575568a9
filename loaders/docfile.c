/* Documents of a data file: JSONL lines ("text", "token_ids", the meta subset) or one
 * plain text, through the line reader (see docfile.h). */
#include "docfile.h"
#include "error.h"
#include "json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cks_docfile {
    cks_lines *lines;
    cks_docfile_options o;
    cks_doc_kind kind;
    int jsonl;
    json_t *cur; /* the current line's JSON: owns the text handed out */
    int32_t *ids;
    size_t idcap;
    unsigned char *heap; /* plain text decompressed */
    int text_done;
};

static int is_blank(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r')
            return 0;
    return 1;
}

static const char *where(const cks_docfile *f, int64_t line, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s: line %lld", cks_lines_display(f->lines), (long long)line);
    return buf;
}

/* The next non-blank line, or CKS_ITEROVER. */
static int next_line(cks_docfile *f, const char **p, size_t *n, int64_t *line)
{
    int err;
    while ((err = cks_lines_next(f->lines, p, n, line)) == 0)
        if (!is_blank(*p, *n))
            return 0;
    return err;
}

static int token_ids(cks_docfile *f, const json_t *a, const char *w, cks_doc *doc)
{
    size_t n = json_array_size(a);
    if (n > f->idcap) {
        int32_t *q = realloc(f->ids, n * sizeof *q);
        if (!q)
            return cks_error_set(CKS_ENOMEM, "%s: out of memory for %zu token ids", w, n);
        f->ids = q;
        f->idcap = n;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(a, i);
        json_int_t x = json_is_integer(v) ? json_integer_value(v) : -1;
        if (x < 0 || x > INT32_MAX)
            return cks_error_set(CKS_EFORMAT,
                                 "%s: token_ids[%zu] is not an integer in [0, 2147483647]", w, i);
        f->ids[i] = (int32_t)x;
    }
    doc->ids = f->ids;
    doc->n = (int64_t)n;
    return 0;
}

static int subset_of(const json_t *j, const char *w, cks_doc *doc)
{
    json_t *meta = json_object_get(j, "meta");
    json_t *s = json_object_get(meta, "pile_set_name");
    if (!json_is_string(s))
        s = json_object_get(meta, "redpajama_set_name");
    if (!json_is_string(s))
        return cks_error_set(CKS_EFORMAT,
                             "%s: no \"meta\".\"pile_set_name\" (or \"redpajama_set_name\") "
                             "string, which --split-by-meta needs",
                             w);
    const char *v = json_string_value(s);
    size_t n = json_string_length(s);
    int bad = n == 0 || n > CKS_MAX_SUBSET_NAME;
    for (size_t i = 0; i < n && !bad; i++)
        bad = (unsigned char)v[i] < 0x20 || v[i] == 0x7f;
    if (bad)
        return cks_error_set(CKS_EFORMAT,
                             "%s: the subset name is empty, longer than %d bytes or holds control "
                             "characters",
                             w, CKS_MAX_SUBSET_NAME);
    doc->subset = v;
    return 0;
}

/* Fills doc from one parsed JSONL line. */
static int jsonl_doc(cks_docfile *f, const json_t *j, const char *w, cks_doc *doc)
{
    int err;
    if (f->kind == CKS_DOC_TOKENS) {
        json_t *a = json_object_get(j, "token_ids");
        if (!json_is_array(a))
            return cks_error_set(CKS_EFORMAT, "%s: no \"token_ids\" array", w);
        if ((err = token_ids(f, a, w, doc)) != 0)
            return err;
    } else {
        json_t *t = json_object_get(j, "text");
        if (!json_is_string(t))
            return cks_error_set(CKS_EFORMAT, "%s: no \"text\" string", w);
        doc->text = json_string_value(t);
        doc->len = json_string_length(t);
    }
    return f->o.split_by_meta ? subset_of(j, w, doc) : 0;
}

static int next_jsonl(cks_docfile *f, cks_doc *doc)
{
    const char *p;
    size_t n;
    int64_t line;
    char w[600];
    int err = next_line(f, &p, &n, &line);
    if (err)
        return err;
    json_decref(f->cur);
    f->cur = NULL;
    memset(doc, 0, sizeof *doc);
    doc->line = line;
    if ((err = cks_json_parse(p, n, where(f, line, w, sizeof w), 1, &f->cur)) != 0)
        return err;
    return jsonl_doc(f, f->cur, w, doc);
}

static int next_text(cks_docfile *f, cks_doc *doc)
{
    const unsigned char *data;
    size_t len;
    if (f->text_done)
        return CKS_ITEROVER;
    free(f->heap);
    f->heap = NULL;
    int err = cks_lines_whole(f->lines, f->o.max_text, &data, &len, &f->heap);
    if (err)
        return err;
    memset(doc, 0, sizeof *doc);
    doc->text = (const char *)data;
    doc->len = len;
    f->text_done = 1;
    return 0;
}

int cks_docfile_next(cks_docfile *f, cks_doc *doc)
{
    return f->jsonl ? next_jsonl(f, doc) : next_text(f, doc);
}

int cks_docfile_rewind(cks_docfile *f)
{
    f->text_done = 0;
    return cks_lines_rewind(f->lines);
}

/* JSONL or plain text, and which field, from the first non-blank line. */
static int decide(cks_docfile *f)
{
    const char *p;
    size_t n;
    int64_t line = 0;
    char w[600];
    json_t *j = NULL;
    int err = next_line(f, &p, &n, &line);
    if (err && err != CKS_ITEROVER)
        return err;
    if (err && f->o.want == CKS_DOC_TOKENS) { /* nothing but blank lines: no documents */
        f->jsonl = 1;
        f->kind = CKS_DOC_TOKENS;
        return cks_lines_rewind(f->lines);
    }
    size_t lead = 0, end = err ? 0 : n;
    while (!err && lead < n && (p[lead] == ' ' || p[lead] == '\t'))
        lead++;
    while (end > lead && (p[end - 1] == ' ' || p[end - 1] == '\t' || p[end - 1] == '\r'))
        end--;
    if (err || p[lead] != '{' || p[end - 1] != '}') { /* not one JSON object on the line */
        f->jsonl = 0;
        f->kind = CKS_DOC_TEXT;
        if (f->o.want == CKS_DOC_TOKENS)
            return cks_error_set(CKS_EFORMAT, "%s: not JSONL: the line is not a JSON object",
                                 where(f, line, w, sizeof w));
        if (f->o.split_by_meta)
            return cks_error_set(CKS_EFORMAT,
                                 "%s: --split-by-meta needs JSONL with a \"meta\" object per line; "
                                 "this is plain text",
                                 cks_lines_display(f->lines));
        return cks_lines_rewind(f->lines);
    }
    if ((err = cks_json_parse(p, n, where(f, line, w, sizeof w), 1, &j)) != 0)
        return err; /* it looks like JSONL: its errors are reported, not read as text */
    f->jsonl = 1;
    f->kind = f->o.want;
    if (f->kind == CKS_DOC_AUTO)
        f->kind = json_object_get(j, "token_ids") ? CKS_DOC_TOKENS : CKS_DOC_TEXT;
    if (f->o.want == CKS_DOC_AUTO && !json_object_get(j, "token_ids") &&
        !json_object_get(j, "text"))
        err = cks_error_set(CKS_EFORMAT, "%s: neither \"text\" nor \"token_ids\"", w);
    else if (f->kind == CKS_DOC_TOKENS && !json_is_array(json_object_get(j, "token_ids")))
        err = cks_error_set(CKS_EFORMAT, "%s: no \"token_ids\" array%s", w,
                            json_object_get(j, "text") ? " (it holds \"text\": give it as text)"
                                                       : "");
    else if (f->kind == CKS_DOC_TEXT && !json_is_string(json_object_get(j, "text")))
        err = cks_error_set(CKS_EFORMAT, "%s: no \"text\" string%s", w,
                            json_object_get(j, "token_ids")
                                ? " (it holds \"token_ids\": give it as token ids)"
                                : "");
    json_decref(j);
    return err ? err : cks_lines_rewind(f->lines);
}

static int finish_open(cks_docfile **out, cks_docfile *f)
{
    int err = decide(f);
    if (err) {
        cks_docfile_free(f);
        return err;
    }
    *out = f;
    return 0;
}

static cks_docfile *docfile_new(const cks_docfile_options *o)
{
    cks_docfile *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    if (o)
        f->o = *o;
    if (!f->o.max_text)
        f->o.max_text = CKS_MAX_LINE;
    return f;
}

int cks_docfile_open(cks_docfile **out, const char *path, const cks_docfile_options *o)
{
    cks_docfile *f = docfile_new(o);
    if (!f)
        return cks_error_set(CKS_ENOMEM, "%s: out of memory", path);
    int err = cks_lines_open(&f->lines, path, &f->o.lim);
    if (err) {
        cks_docfile_free(f);
        return err;
    }
    return finish_open(out, f);
}

int cks_docfile_open_mem(cks_docfile **out, const void *data, size_t size, const char *display,
                         const cks_docfile_options *o)
{
    cks_docfile *f = docfile_new(o);
    if (!f)
        return cks_error_set(CKS_ENOMEM, "%s: out of memory", display);
    int err = cks_lines_open_mem(&f->lines, data, size, display, &f->o.lim);
    if (err) {
        cks_docfile_free(f);
        return err;
    }
    return finish_open(out, f);
}

void cks_docfile_free(cks_docfile *f)
{
    if (!f)
        return;
    json_decref(f->cur);
    cks_lines_free(f->lines);
    free(f->ids);
    free(f->heap);
    free(f);
}

cks_doc_kind cks_docfile_kind(const cks_docfile *f)
{
    return f->kind;
}

int cks_docfile_is_jsonl(const cks_docfile *f)
{
    return f->jsonl;
}

cks_compression cks_docfile_compression(const cks_docfile *f)
{
    return cks_lines_compression(f->lines);
}

const char *cks_docfile_display(const cks_docfile *f)
{
    return cks_lines_display(f->lines);
}

int cks_docfile_sniff(const char *path, cks_doc_kind *kind)
{
    cks_docfile *f = NULL;
    int err = cks_docfile_open(&f, path, NULL);
    if (err)
        return err;
    *kind = f->kind;
    cks_docfile_free(f);
    return 0;
}
