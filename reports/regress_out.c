/* The gate's reports: a Markdown summary (GitHub-flavoured tables, regressions first, fit
 * to append to a CI job summary) and JUnit XML (one test case per score and comparison).
 * Names come from run files and baselines, so every one is escaped for its format; bytes
 * that are not valid UTF-8 or not allowed in XML 1.0 become '?'. */
#include "error.h"
#include "regress.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at s (1..4), or 0. */
static size_t utf8_len(const unsigned char *s)
{
    if (s[0] < 0x80)
        return 1;
    size_t n = s[0] >= 0xF0 && s[0] <= 0xF4 ? 4 : s[0] >= 0xE0 ? 3 : s[0] >= 0xC2 ? 2 : 0;
    if (s[0] >= 0xF8)
        return 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    if (n == 3 && s[0] == 0xED && s[1] >= 0xA0) /* UTF-16 surrogates */
        return 0;
    if (n == 3 && s[0] == 0xE0 && s[1] < 0xA0) /* overlong */
        return 0;
    if (n == 4 && ((s[0] == 0xF0 && s[1] < 0x90) || (s[0] == 0xF4 && s[1] >= 0x90)))
        return 0;
    return n;
}

/* Markdown text in a table cell: characters with a Markdown meaning are backslashed. */
static void md_text(FILE *f, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        size_t n = utf8_len(p);
        if (n == 0 || *p < 0x20 || *p == 0x7F) {
            fputc(n == 0 ? '?' : ' ', f);
            p++;
            continue;
        }
        if (n == 1 && strchr("\\`*_[]<>|#!~&", *p))
            fputc('\\', f);
        fwrite(p, 1, n, f);
        p += n;
    }
}

/* XML character data or attribute value. */
static void xml_text(FILE *f, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        size_t n = utf8_len(p);
        if (n == 0 || (*p < 0x20 && *p != '\t' && *p != '\n')) {
            fputc('?', f);
            p++;
            continue;
        }
        switch (*p) {
        case '&':
            fputs("&amp;", f);
            break;
        case '<':
            fputs("&lt;", f);
            break;
        case '>':
            fputs("&gt;", f);
            break;
        case '"':
            fputs("&quot;", f);
            break;
        case '\'':
            fputs("&apos;", f);
            break;
        default:
            fwrite(p, 1, n, f);
        }
        p += n;
    }
}

static const char *fmt_num(double v, char *buf, size_t cap)
{
    if (isnan(v))
        snprintf(buf, cap, "NaN");
    else
        snprintf(buf, cap, "%.6g", v);
    return buf;
}

/* "0.2340 ± 0.0277" (the ± part when the stderr is known). */
static const char *fmt_point(const cks_gate_point *p, char *buf, size_t cap)
{
    char v[32];
    if (isfinite(p->stderr_))
        snprintf(buf, cap, "%s ± %.3g", fmt_num(p->value, v, sizeof v), p->stderr_);
    else
        snprintf(buf, cap, "%s", fmt_num(p->value, v, sizeof v));
    return buf;
}

/* "+0.0123 (+0.41%)", and " [95%: +0.004, +0.021]" when an interval decided. */
static const char *fmt_change(const cks_gate_result *g, double ref, char *buf, size_t cap)
{
    int k;
    if (isnan(g->delta))
        k = snprintf(buf, cap, "—");
    else if (ref != 0 && isfinite(ref))
        k = snprintf(buf, cap, "%+.4g (%+.2f%%)", g->delta, 100 * g->delta / fabs(ref));
    else
        k = snprintf(buf, cap, "%+.4g", g->delta);
    if (g->interval && k > 0 && (size_t)k < cap)
        snprintf(buf + k, cap - (size_t)k, " [95%%: %+.4g, %+.4g]", g->lo, g->hi);
    return buf;
}

static const char *fmt_tol(const cks_gate_result *g, char *buf, size_t cap)
{
    if (!g->rule[0] || isnan(g->worse_tol))
        snprintf(buf, cap, "—");
    else
        snprintf(buf, cap, "%s: %.4g", g->rule, g->worse_tol);
    return buf;
}

typedef struct {
    const cks_gate_metric *m;
    int base; /* 0: against the previous checkpoint, 1: against the baseline */
} row_ref;

static const cks_gate_result *row_result(row_ref r)
{
    return r.base ? &r.m->base_r : &r.m->prev_r;
}

static void md_row(FILE *f, row_ref r)
{
    const cks_gate_result *g = row_result(r);
    const cks_gate_point *ref = r.base ? &r.m->base : &r.m->prev;
    char a[64], b[64], c[112], z[32], t[96];
    fputc('|', f);
    fputc(' ', f);
    md_text(f, r.m->id);
    fprintf(f, " | %s | %s | %s | %s | %s | %s | %s | ", cks_direction_name(r.m->dir),
            r.base ? "baseline" : "previous", fmt_point(&r.m->at, a, sizeof a),
            fmt_point(ref, b, sizeof b), fmt_change(g, ref->value, c, sizeof c),
            isfinite(g->z) ? (snprintf(z, sizeof z, "%+.2f", g->z), z) : "—",
            fmt_tol(g, t, sizeof t));
    md_text(f, g->note);
    fputs(" |\n", f);
}

/* The table of every (score, comparison) with the given severity; returns the count. */
static size_t md_section(FILE *f, const cks_gate_report *r, cks_severity sev, const char *title,
                         int folded)
{
    size_t n = (size_t)r->count[0][sev] + r->count[1][sev];
    if (n == 0)
        return 0;
    if (folded)
        fprintf(f, "<details><summary>%s (%zu)</summary>\n\n", title, n);
    else
        fprintf(f, "### %s (%zu)\n\n", title, n);
    fputs("| score | better | against | value | reference | change | z | tolerance | why |\n"
          "| --- | --- | --- | ---: | ---: | ---: | ---: | --- | --- |\n",
          f);
    for (size_t i = 0; i < r->n; i++) {
        const cks_gate_metric *m = &r->m[i];
        if (m->vs_prev && m->prev_r.severity == sev)
            md_row(f, (row_ref){m, 0});
        if (m->vs_base && m->base_r.severity == sev)
            md_row(f, (row_ref){m, 1});
    }
    fputs(folded ? "\n</details>\n\n" : "\n", f);
    return n;
}

static void md_counts(FILE *f, const size_t c[4])
{
    fprintf(f, " | %zu | %zu | %zu | %zu |\n", c[CKS_SEV_REGRESSION], c[CKS_SEV_WARNING],
            c[CKS_SEV_IMPROVEMENT], c[CKS_SEV_UNCHANGED]);
}

static void md_header(const cks_gate_report *r, cks_severity fail_on, FILE *f)
{
    cks_severity worst = cks_gate_worst(r);
    size_t reg = r->count[0][CKS_SEV_REGRESSION] + r->count[1][CKS_SEV_REGRESSION];
    size_t warn = r->count[0][CKS_SEV_WARNING] + r->count[1][CKS_SEV_WARNING];
    fprintf(f, "## ckptscope regress: %s — %zu regression%s, %zu warning%s\n\n",
            worst >= fail_on ? "FAIL" : "PASS", reg, reg == 1 ? "" : "s", warn,
            warn == 1 ? "" : "s");
    fputs("Checkpoint **", f);
    md_text(f, r->at.name);
    fprintf(f, "** (step %lld) of ", (long long)r->at.step);
    md_text(f, r->run_path);
    if (r->model) {
        fputs(", model ", f);
        md_text(f, r->model);
    }
    fprintf(f, ": %zu scores; fails on %s%s.\n\n", r->n, cks_severity_name(fail_on),
            fail_on == CKS_SEV_WARNING ? "s and regressions" : "s");
    fputs("| compared with | regressions | warnings | improvements | unchanged |\n"
          "| --- | ---: | ---: | ---: | ---: |\n",
          f);
    if (r->prev.name) {
        fputs("| previous checkpoint ", f);
        md_text(f, r->prev.name);
        fprintf(f, " (step %lld)", (long long)r->prev.step);
        md_counts(f, r->count[0]);
    }
    if (r->baseline) {
        fputs("| baseline ", f);
        md_text(f, r->baseline->path);
        fputs(" (", f);
        md_text(f, r->baseline->ckpt);
        fprintf(f, ", step %lld)", (long long)r->baseline->step);
        md_counts(f, r->count[1]);
    }
    fputc('\n', f);
    if (r->no_previous)
        fputs("Compared with the baseline only (--no-previous).\n\n", f);
    else if (!r->prev.name)
        fputs("No previous complete checkpoint: compared with the baseline only.\n\n", f);
    if (r->prev_skipped)
        fprintf(f,
                "%zu scores have no value at either checkpoint and were not compared with "
                "the previous one.\n\n",
                r->prev_skipped);
    if (r->base_ignored)
        fprintf(f,
                "%zu scores of the baseline are not selected by --include and were not "
                "compared.\n\n",
                r->base_ignored);
    if (r->base_missing)
        fprintf(f,
                "%zu scores of the run file are not in the baseline and were not compared "
                "with it.\n\n",
                r->base_missing);
}

static int finish(FILE *f)
{
    if (fflush(f) != 0 || ferror(f))
        return cks_error_set(CKS_EIO, "writing the report failed: %s", strerror(errno));
    return 0;
}

int cks_gate_write_markdown(const cks_gate_report *r, cks_severity fail_on, FILE *f)
{
    md_header(r, fail_on, f);
    md_section(f, r, CKS_SEV_REGRESSION, "Regressions", 0);
    md_section(f, r, CKS_SEV_WARNING, "Warnings", 0);
    md_section(f, r, CKS_SEV_IMPROVEMENT, "Improvements", 0);
    md_section(f, r, CKS_SEV_UNCHANGED, "Unchanged", 1);
    return finish(f);
}

/* ---- JUnit XML ---- */

static void junit_case(FILE *f, row_ref r, cks_severity fail_on)
{
    const cks_gate_result *g = row_result(r);
    const cks_gate_point *ref = r.base ? &r.m->base : &r.m->prev;
    char a[64], b[64], c[112], t[96], detail[576];
    snprintf(detail, sizeof detail, "%s: value %s, reference %s, change %s, z %.3g, tolerance %s",
             cks_severity_name(g->severity), fmt_point(&r.m->at, a, sizeof a),
             fmt_point(ref, b, sizeof b), fmt_change(g, ref->value, c, sizeof c), g->z,
             fmt_tol(g, t, sizeof t));
    fprintf(f, "    <testcase classname=\"ckptscope.regress.%s\" name=\"",
            r.base ? "baseline" : "previous");
    xml_text(f, r.m->id);
    fputs("\" time=\"0\">\n", f);
    if (g->severity >= fail_on && g->severity >= CKS_SEV_WARNING) {
        fprintf(f, "      <failure type=\"%s\" message=\"", cks_severity_name(g->severity));
        xml_text(f, g->note[0] ? g->note : cks_severity_name(g->severity));
        fputs("\">", f);
        xml_text(f, detail);
        fputs("</failure>\n", f);
    }
    fputs("      <system-out>", f);
    xml_text(f, detail);
    if (g->note[0]) {
        fputs("; ", f);
        xml_text(f, g->note);
    }
    fputs("</system-out>\n    </testcase>\n", f);
}

static size_t failures(const size_t c[4], cks_severity fail_on)
{
    size_t n = 0;
    for (int s = CKS_SEV_WARNING; s <= CKS_SEV_REGRESSION; s++)
        if ((cks_severity)s >= fail_on)
            n += c[s];
    return n;
}

static void junit_suite(FILE *f, const cks_gate_report *r, int base, cks_severity fail_on)
{
    const size_t *c = r->count[base];
    size_t tests = c[0] + c[1] + c[2] + c[3];
    fputs("  <testsuite name=\"", f);
    xml_text(f, r->at.name);
    fputs(base ? " vs baseline " : " vs previous ", f);
    xml_text(f, base ? r->baseline->ckpt : r->prev.name);
    fprintf(f, "\" tests=\"%zu\" failures=\"%zu\" errors=\"0\" skipped=\"0\">\n", tests,
            failures(c, fail_on));
    for (size_t i = 0; i < r->n; i++)
        if (base ? r->m[i].vs_base : r->m[i].vs_prev)
            junit_case(f, (row_ref){&r->m[i], base}, fail_on);
    fputs("  </testsuite>\n", f);
}

int cks_gate_write_junit(const cks_gate_report *r, cks_severity fail_on, FILE *f)
{
    size_t tests = 0, fails = 0;
    for (int b = 0; b < 2; b++) {
        for (int s = 0; s < 4; s++)
            tests += r->count[b][s];
        fails += failures(r->count[b], fail_on);
    }
    fprintf(f,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<testsuites name=\"ckptscope regress\" tests=\"%zu\" failures=\"%zu\">\n",
            tests, fails);
    if (r->prev.name)
        junit_suite(f, r, 0, fail_on);
    if (r->baseline)
        junit_suite(f, r, 1, fail_on);
    fputs("</testsuites>\n", f);
    return finish(f);
}
