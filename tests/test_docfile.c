/* Documents of held-out files as corpora ship them (loaders/docfile.h, tokfile.h, and
 * metrics/evalset.h on top): JSONL told from plain text by content, "text" or "token_ids"
 * per line, the meta subset split, compressed token files, set naming, and every refusal
 * naming the file and the line. Text documents are checked against the committed test
 * tokenizer encoding the same text directly (a JSONL line is exactly the document its
 * string holds). */
#include "docfile.h"
#include "error.h"
#include "evalset.h"
#include "testutil.h"
#include "tokenizer.h"
#include "tokfile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static char *tmp;
static cks_tokenizer *tok;

static int setup(void **state)
{
    tmp = cks_tmpdir_new("docfile");
    char *p = cks_test_data("tok/small.model");
    int err = cks_tokenizer_load_file(&tok, p);
    free(p);
    return err;
}

static int teardown(void **state)
{
    cks_tokenizer_free(tok);
    cks_tmpdir_remove(tmp);
    return 0;
}

static char *put(const char *name, const void *data, size_t len)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", tmp, name);
    cks_write_file(path, data, len);
    return strdup(path);
}

static char *put_gz(const char *name, const char *text)
{
    size_t n = strlen(text);
    uLongf cap = compressBound((uLong)n) + 64;
    unsigned char *b = malloc(cap);
    z_stream z;
    memset(&z, 0, sizeof z);
    assert_int_equal(deflateInit2(&z, 6, Z_DEFLATED, 16 + 15, 8, Z_DEFAULT_STRATEGY), Z_OK);
    z.next_in = (unsigned char *)text;
    z.avail_in = (uInt)n;
    z.next_out = b;
    z.avail_out = (uInt)cap;
    assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
    char *p = put(name, b, cap - z.avail_out);
    deflateEnd(&z);
    free(b);
    return p;
}

static const char pile[] =
    "{\"text\": \"It is a truth universally acknowledged.\", \"meta\": {\"pile_set_name\": "
    "\"Books3\"}}\n"
    "{\"text\": \"int main(void) { return 0; }\\n\", \"meta\": {\"pile_set_name\": \"Github\"}}\n"
    "\n"
    "{\"text\": \"Call me Ishmael.\", \"meta\": {\"pile_set_name\": \"Books3\", \"x\": 1}}\n"
    "{\"text\": \"\", \"meta\": {\"redpajama_set_name\": \"RedPajamaC4\"}}\n";

static const char *const pile_texts[] = {"It is a truth universally acknowledged.",
                                         "int main(void) { return 0; }\n", "Call me Ishmael.", ""};

static void test_docfile__text_jsonl_and_plain_text(void **state)
{
    cks_docfile *f;
    cks_doc d;
    char *p = put("pile.jsonl", pile, sizeof pile - 1);
    assert_int_equal(cks_docfile_open(&f, p, NULL), 0);
    assert_true(cks_docfile_is_jsonl(f));
    assert_int_equal(cks_docfile_kind(f), CKS_DOC_TEXT);
    static const int64_t lines[] = {1, 2, 4, 5};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(cks_docfile_next(f, &d), 0);
        assert_int_equal(d.line, lines[i]);
        assert_int_equal(d.len, strlen(pile_texts[i]));
        assert_memory_equal(d.text, pile_texts[i], d.len);
        assert_null(d.subset);
    }
    assert_int_equal(cks_docfile_next(f, &d), CKS_ITEROVER);
    cks_docfile_free(f);
    /* plain text, even one that starts with a brace, is one document */
    static const char code[] = "{\n  int x;\n}\n";
    free(p);
    p = put("code.c.txt", code, sizeof code - 1);
    assert_int_equal(cks_docfile_open(&f, p, NULL), 0);
    assert_false(cks_docfile_is_jsonl(f));
    assert_int_equal(cks_docfile_next(f, &d), 0);
    assert_int_equal(d.line, 0);
    assert_int_equal(d.len, sizeof code - 1);
    assert_int_equal(cks_docfile_next(f, &d), CKS_ITEROVER);
    assert_int_equal(cks_docfile_rewind(f), 0); /* a second pass */
    assert_int_equal(cks_docfile_next(f, &d), 0);
    assert_int_equal(d.len, sizeof code - 1);
    cks_docfile_free(f);
    free(p);
    /* compressed: the same documents */
    p = put_gz("pile.jsonl.gz", pile);
    assert_int_equal(cks_docfile_open(&f, p, NULL), 0);
    assert_int_equal(cks_docfile_compression(f), CKS_COMP_GZIP);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(cks_docfile_next(f, &d), 0);
        assert_memory_equal(d.text, pile_texts[i], d.len);
    }
    cks_docfile_free(f);
    cks_doc_kind k;
    assert_int_equal(cks_docfile_sniff(p, &k), 0);
    assert_int_equal(k, CKS_DOC_TEXT);
    free(p);
}

static void test_docfile__split_by_meta(void **state)
{
    cks_docfile_options o = {.want = CKS_DOC_TEXT, .split_by_meta = 1};
    cks_docfile *f;
    cks_doc d;
    char *p = put("pile.jsonl", pile, sizeof pile - 1);
    assert_int_equal(cks_docfile_open(&f, p, &o), 0);
    static const char *const subset[] = {"Books3", "Github", "Books3", "RedPajamaC4"};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(cks_docfile_next(f, &d), 0);
        assert_string_equal(d.subset, subset[i]);
    }
    cks_docfile_free(f);
    /* through evalset: sets "pile:Books3", "pile:Github", "pile:RedPajamaC4" in order of
       first appearance, each document tokenised as the text alone would be */
    cks_docsets l = {0};
    cks_evalset_options eo = {.kind = CKS_EVAL_TEXT, .split_by_meta = 1};
    const char *files[] = {p};
    assert_int_equal(cks_evalset_load_sets(&l, files, 1, &eo, tok), 0);
    assert_int_equal(l.n, 3);
    assert_string_equal(l.v[0].name, "pile:Books3");
    assert_string_equal(l.v[1].name, "pile:Github");
    assert_string_equal(l.v[2].name, "pile:RedPajamaC4");
    assert_int_equal(l.v[0].ndocs, 2);
    assert_int_equal(l.v[0].line[1], 4);
    assert_int_equal(l.v[0].bytes, (int64_t)(strlen(pile_texts[0]) + strlen(pile_texts[2])));
    assert_int_equal(l.v[2].ndocs, 1); /* an empty text is an empty document */
    assert_int_equal(l.v[2].bytes, 0);
    int32_t *ids;
    size_t n;
    assert_int_equal(cks_tokenizer_encode(tok, pile_texts[2], strlen(pile_texts[2]), &ids, &n), 0);
    int64_t got;
    const int32_t *g = cks_docset_doc(&l.v[0], 1, &got);
    assert_int_equal(got, n);
    assert_memory_equal(g, ids, n * sizeof *ids);
    free(ids);
    cks_docsets_release(&l);
    free(p);
}

static void test_docfile__tokens_jsonl_compressed_and_split(void **state)
{
    static const char text[] = "{\"token_ids\": [5, 6, 7], \"meta\": {\"pile_set_name\": \"A\"}}\n"
                               "{\"token_ids\": [], \"meta\": {\"pile_set_name\": \"B\"}}\n"
                               "{\"token_ids\": [8], \"meta\": {\"pile_set_name\": \"A\"}}\n";
    char *p = put_gz("ids.jsonl.gz", text);
    cks_docset d;
    assert_int_equal(cks_tokfile_read(&d, p, "ids", CKS_TOKFILE_AUTO), 0);
    assert_int_equal(d.ndocs, 3);
    assert_int_equal(d.nids, 4);
    cks_docset_release(&d);
    cks_docsets l = {0};
    assert_int_equal(cks_tokfile_read_sets(&l, p, "ids", CKS_TOKFILE_AUTO, 1, 10), 0);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.v[0].name, "ids:A");
    assert_int_equal(l.v[0].ndocs, 2);
    assert_int_equal(l.v[0].line[1], 3);
    assert_string_equal(l.v[1].name, "ids:B");
    cks_docsets_release(&l);
    /* a file the name does not type, holding text: not token ids */
    static const char words[] = "{\"text\": \"a\"}\n";
    char *pw = put("words.data", words, sizeof words - 1);
    cks_expect_error(cks_tokfile_read(&d, pw, "w", CKS_TOKFILE_AUTO), CKS_EFORMAT, pw,
                     "hold \"text\", not \"token_ids\"");
    free(pw);
    /* one set name from two files, as "a:b" + "c" and "a" + "b:c" would make */
    cks_docset *s1, *s2;
    assert_int_equal(cks_docsets_get(&l, "a:b:c", "one.jsonl", 10, &s1), 0);
    assert_int_equal(cks_docsets_get(&l, "a:b:c", "one.jsonl", 10, &s2), 0);
    assert_ptr_equal(s1, s2);
    cks_expect_error(cks_docsets_get(&l, "a:b:c", "two.jsonl", 10, &s2), CKS_EINVAL, "one.jsonl",
                     "two.jsonl");
    cks_docsets_release(&l);
    /* at most max sets */
    cks_expect_error(cks_tokfile_read_sets(&l, p, "ids", CKS_TOKFILE_AUTO, 1, 1), CKS_ELIMIT, p,
                     "more than 1");
    cks_docsets_release(&l);
    /* by content when the name says nothing; raw by the name under a .gz */
    free(p);
    p = put_gz("ids.data", text);
    assert_int_equal(cks_tokfile_read(&d, p, "x", CKS_TOKFILE_AUTO), 0);
    assert_int_equal(d.ndocs, 3);
    cks_docset_release(&d);
    free(p);
    static const unsigned char raw[] = {1, 0, 2, 0, 3, 1};
    z_stream z;
    unsigned char gzb[128];
    memset(&z, 0, sizeof z);
    assert_int_equal(deflateInit2(&z, 6, Z_DEFLATED, 16 + 15, 8, Z_DEFAULT_STRATEGY), Z_OK);
    z.next_in = (unsigned char *)raw;
    z.avail_in = sizeof raw;
    z.next_out = gzb;
    z.avail_out = sizeof gzb;
    assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
    p = put("r.u16.gz", gzb, sizeof gzb - z.avail_out);
    deflateEnd(&z);
    assert_int_equal(cks_tokfile_format_of_name(p), CKS_TOKFILE_U16);
    assert_int_equal(cks_tokfile_read(&d, p, "r", CKS_TOKFILE_AUTO), 0);
    assert_int_equal(d.nids, 3);
    assert_int_equal(d.ids[2], 259);
    cks_docset_release(&d);
    cks_expect_error(cks_tokfile_read_sets(&l, p, "r", CKS_TOKFILE_AUTO, 1, 10), CKS_EINVAL, p,
                     "raw token file");
    cks_docsets_release(&l);
    free(p);
}

/* What a file holds, as scan --eval decides it (no --text/--tokens there). */
static void test_docfile__evalset_by_content(void **state)
{
    static const char ids[] = "{\"token_ids\": [1, 2], \"text\": \"ignored\"}\n";
    char *a = put("a.jsonl", pile, sizeof pile - 1), *b = put("b.jsonl", ids, sizeof ids - 1);
    char *c = put("c.txt", "plain words", 11), *u = put("d.u16", "\1\0", 2);
    char *z = put_gz("e.jsonl.zst.gz", ids);
    assert_false(cks_evalset_is_tokens(a));
    assert_true(cks_evalset_is_tokens(b));
    assert_false(cks_evalset_is_tokens(c));
    assert_true(cks_evalset_is_tokens(u));
    assert_true(cks_evalset_is_tokens(z));
    char none[4200];
    snprintf(none, sizeof none, "%s/none.jsonl", tmp);
    assert_false(cks_evalset_is_tokens(none));
    assert_string_equal(cks_error_last(), "");
    char name[64];
    cks_evalset_name("/x/y/val.jsonl.zst", name, sizeof name);
    assert_string_equal(name, "val");
    cks_evalset_name("val.u16.gz", name, sizeof name);
    assert_string_equal(name, "val");
    cks_evalset_name("notes.gz", name, sizeof name);
    assert_string_equal(name, "notes");
    cks_docset sets[4];
    const char *files[] = {a, b, c, u};
    assert_int_equal(cks_evalset_load(sets, files, 4, 0, 0, tok), 0);
    assert_int_equal(sets[0].ndocs, 4);
    assert_true(sets[0].bytes > 0); /* text: bytes counted */
    assert_int_equal(sets[1].nids, 2);
    assert_int_equal(sets[1].bytes, -1); /* token_ids wins over text */
    assert_int_equal(sets[2].ndocs, 1);
    assert_int_equal(sets[2].bytes, 11);
    assert_int_equal(sets[3].nids, 1);
    for (int i = 0; i < 4; i++)
        cks_docset_release(&sets[i]);
    /* --text refuses token JSONL; --tokens refuses text JSONL and plain text */
    cks_docsets l = {0};
    cks_evalset_options text = {.kind = CKS_EVAL_TEXT}, toks = {.kind = CKS_EVAL_TOKENS};
    char *b2 = put("b2.jsonl", "{\"token_ids\": [1, 2]}\n", 22);
    const char *fb[] = {b2}, *fa[] = {a}, *fc[] = {c};
    cks_expect_error(cks_evalset_load_sets(&l, fb, 1, &text, tok), CKS_EFORMAT,
                     "line 1: no \"text\" string", "give it as token ids");
    cks_docsets_release(&l);
    free(b2);
    cks_expect_error(cks_evalset_load_sets(&l, fa, 1, &toks, tok), CKS_EFORMAT,
                     "line 1: no \"token_ids\"", "give it as text");
    cks_docsets_release(&l);
    cks_expect_error(cks_evalset_load_sets(&l, fc, 1, &toks, tok), CKS_EINVAL, c, ".jsonl");
    cks_docsets_release(&l);
    /* text without a tokenizer */
    cks_expect_error(cks_evalset_load_sets(&l, fa, 1, &text, NULL), CKS_EINVAL, a, "tokenizer");
    cks_docsets_release(&l);
    /* two files, one set name */
    char *a2 = put_gz("a.jsonl.gz", pile);
    const char *dup[] = {a, a2};
    cks_expect_error(cks_evalset_load_sets(&l, dup, 2, &text, tok), CKS_EINVAL, "rename one",
                     "'a'");
    cks_docsets_release(&l);
    free(a);
    free(a2);
    free(b);
    free(c);
    free(u);
    free(z);
}

static void expect_refused(const char *name, const char *content, cks_doc_kind want, int split,
                           int code, const char *needle)
{
    cks_docfile_options o = {.want = want, .split_by_meta = split};
    cks_docfile *f = NULL;
    cks_doc d;
    char *p = put(name, content, strlen(content));
    int err = cks_docfile_open(&f, p, &o);
    while (!err && (err = cks_docfile_next(f, &d)) == 0)
        ;
    cks_docfile_free(f);
    if (err != code || !strstr(cks_error_last(), p) || !strstr(cks_error_last(), needle)) {
        print_error("%s: got %d '%s', want %d with '%s'\n", name, err, cks_error_last(), code,
                    needle);
        fail();
    }
    cks_error_clear();
    free(p);
}

static void test_docfile__refusals_name_file_and_line(void **state)
{
    const int T = CKS_DOC_TEXT, K = CKS_DOC_TOKENS, A = CKS_DOC_AUTO, E = CKS_EFORMAT;
    expect_refused("nometa.jsonl",
                   "{\"text\": \"a\", \"meta\": {\"pile_set_name\": \"X\"}}\n{\"text\": \"b\"}\n",
                   T, 1, E, "line 2: no \"meta\".\"pile_set_name\"");
    expect_refused("metastr.jsonl", "{\"text\": \"a\", \"meta\": \"X\"}\n", T, 1, E,
                   "line 1: no \"meta\"");
    expect_refused("metanum.jsonl", "{\"text\": \"a\", \"meta\": {\"pile_set_name\": 3}}\n", T, 1,
                   E, "line 1: no \"meta\"");
    expect_refused("metaempty.jsonl", "{\"text\": \"a\", \"meta\": {\"pile_set_name\": \"\"}}\n", T,
                   1, E, "line 1: the subset name is empty");
    expect_refused("metactl.jsonl", "{\"text\": \"a\", \"meta\": {\"pile_set_name\": \"a\\nb\"}}\n",
                   T, 1, E, "control characters");
    char longname[400];
    snprintf(longname, sizeof longname,
             "{\"text\": \"a\", \"meta\": {\"pile_set_name\": \"%0129d\"}}\n", 7);
    expect_refused("metalong.jsonl", longname, T, 1, E, "longer than 128 bytes");
    expect_refused("plain.txt", "no json here\n", T, 1, E, "--split-by-meta needs JSONL");
    expect_refused("notext.jsonl", "{\"text\": \"a\"}\n\n{\"txt\": \"b\"}\n", T, 0, E,
                   "line 3: no \"text\" string");
    expect_refused("textnum.jsonl", "{\"text\": 5}\n", T, 0, E, "line 1: no \"text\" string");
    expect_refused("bad.jsonl", "{\"text\": \"a\"}\n{\"text\": \"b\"\n", A, 0, E, "line 2");
    expect_refused("dup.jsonl", "{\"text\": \"a\", \"text\": \"b\"}\n", T, 0, E, "line 1");
    expect_refused("broken.jsonl", "{\"text\": \"a\",, }\n", T, 0, E, "line 1: not valid JSON");
    expect_refused("nonobj.jsonl", "{\"text\": \"a\"}\n[1]\n", T, 0, E, "line 2: JSON top level");
    expect_refused("neither.jsonl", "{\"words\": \"a\"}\n", A, 0, E,
                   "line 1: neither \"text\" nor \"token_ids\"");
    expect_refused("later.jsonl", "{\"token_ids\": [1]}\n{\"text\": \"x\"}\n", A, 0, E,
                   "line 2: no \"token_ids\" array");
    expect_refused("toks.txt", "words\n", K, 0, E, "line 1: not JSONL");
    expect_refused("big.jsonl", "{\"token_ids\": [1, 99999999999]}\n", K, 0, E,
                   "line 1: token_ids[1]");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_docfile__text_jsonl_and_plain_text),
        cmocka_unit_test(test_docfile__split_by_meta),
        cmocka_unit_test(test_docfile__tokens_jsonl_compressed_and_split),
        cmocka_unit_test(test_docfile__evalset_by_content),
        cmocka_unit_test(test_docfile__refusals_name_file_and_line),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
