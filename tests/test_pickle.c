/* The restricted unpickler on pickles assembled in memory: what torch.save writes
 * (the opcode sequences of tools/make_torch_fixtures.py's assembler, which that script
 * checks against torch.load), and every way a hostile pickle is refused. */
#include "error.h"
#include "pickle.h"
#include "testutil.h"
#include "torchfx.h"

#include <stdlib.h>
#include <string.h>

/* Appends a string literal (which may hold NUL bytes) without its terminator. */
#define PUT(b, s) cks_fx_put((b), (s), sizeof(s) - 1)

static const int64_t S23[2] = {2, 3}, T31[2] = {3, 1}, S4[1] = {4}, T1[1] = {1};

static int parse(const cks_fx_buf *b, cks_pk_state_dict *sd)
{
    return cks_pickle_state_dict(b->p, b->n, "t.bin", sd);
}

/* Parses b, expects code and a message holding want (and the file name); frees b. */
static void expect_error(cks_fx_buf *b, int code, const char *want)
{
    cks_pk_state_dict sd = {0};
    int rc = parse(b, &sd);
    if (rc != code || !strstr(cks_error_last(), want) || !strstr(cks_error_last(), "t.bin"))
        fail_msg("got %d '%s', expected %d with '%s'", rc, cks_error_last(), code, want);
    assert_null(sd.items);
    cks_fx_buf_free(b);
}

static void begin(cks_fx_buf *b)
{
    PUT(b, "\x80\x02");
    cks_fx_pk_odict(b);
    cks_fx_putc(b, '(');
}

static void end(cks_fx_buf *b)
{
    PUT(b, "u.");
}

/* A state dict with one tensor w (12 floats as 3x4), as torch writes it. */
static void one_tensor(cks_fx_buf *b)
{
    static const int64_t s[2] = {3, 4}, t[2] = {4, 1};
    begin(b);
    cks_fx_pk_str(b, "w");
    cks_fx_pk_tensor(b, "0", "FloatStorage", 12, 0, 2, s, t);
    end(b);
}

static void test_pickle__reads_torch_state_dict(void **state)
{
    cks_fx_buf b = {0};
    cks_pk_state_dict sd;
    begin(&b);
    cks_fx_pk_str(&b, "model.a");
    cks_fx_pk_tensor(&b, "0", "FloatStorage", 12, 2, 2, S23, T31);
    cks_fx_pk_str(&b, "b");
    cks_fx_pk_tensor(&b, "17", "HalfStorage", 4, 0, 1, S4, T1);
    end(&b);
    assert_int_equal(parse(&b, &sd), 0);
    assert_int_equal(sd.count, 2);
    const cks_pk_tensor *a = &sd.items[0], *t = &sd.items[1];
    assert_string_equal(a->name, "model.a");
    assert_string_equal(a->key, "0");
    assert_int_equal(a->dtype, CKS_DT_F32);
    assert_int_equal(a->storage_dtype, CKS_DT_F32);
    assert_int_equal(a->storage_numel, 12);
    assert_int_equal(a->offset, 2);
    assert_int_equal(a->ndim, 2);
    assert_int_equal(a->shape[0], 2);
    assert_int_equal(a->shape[1], 3);
    assert_int_equal(a->stride[0], 3);
    assert_int_equal(a->stride[1], 1);
    assert_string_equal(t->name, "b");
    assert_string_equal(t->key, "17");
    assert_int_equal(t->dtype, CKS_DT_F16);
    assert_int_equal(t->ndim, 1);
    cks_pk_state_dict_release(&sd);
    cks_fx_buf_free(&b);
}

/* torch memoizes the storage tuple's parts and re-uses them for a tied tensor with
 * BINGET; sharing must survive. */
static void test_pickle__memo_shares_objects(void **state)
{
    cks_fx_buf b = {0};
    cks_pk_state_dict sd;
    /* memo: 0 OrderedDict, 1 _rebuild_tensor_v2, 2 'storage', 3 BFloat16Storage, 4 '0'
     * (LONG_BINPUT), 5 'cpu' */
    PUT(&b, "\x80\x02");
    cks_fx_pk_global(&b, "collections", "OrderedDict");
    PUT(&b, "q\x00)R(");
    cks_fx_pk_str(&b, "a");
    cks_fx_pk_global(&b, "torch._utils", "_rebuild_tensor_v2");
    PUT(&b, "q\x01((");
    cks_fx_pk_str(&b, "storage");
    PUT(&b, "q\x02");
    cks_fx_pk_global(&b, "torch", "BFloat16Storage");
    PUT(&b, "q\x03");
    cks_fx_pk_str(&b, "0");
    PUT(&b, "r\x04\x00\x00\x00");
    cks_fx_pk_str(&b, "cpu");
    PUT(&b, "q\x05K\x04tQK\x00K\x04\x85K\x01\x85\x89h\x00)RtR");
    cks_fx_pk_str(&b, "b");
    PUT(&b, "h\x01((h\x02h\x03j\x04\x00\x00\x00h\x05K\x04tQK\x01K\x03\x85K\x01\x85\x89h\x00)RtR");
    end(&b);
    assert_int_equal(parse(&b, &sd), 0);
    assert_int_equal(sd.count, 2);
    assert_string_equal(sd.items[1].name, "b");
    assert_string_equal(sd.items[1].key, "0");
    assert_int_equal(sd.items[1].dtype, CKS_DT_BF16);
    assert_int_equal(sd.items[1].storage_numel, 4);
    assert_int_equal(sd.items[1].offset, 1);
    assert_int_equal(sd.items[1].shape[0], 3);
    cks_pk_state_dict_release(&sd);
    cks_fx_buf_free(&b);
}

/* Protocol 4 as torch.save(..., pickle_protocol=4) writes it: FRAME, MEMOIZE,
 * SHORT_BINUNICODE, STACK_GLOBAL; plus BINUNICODE8. */
static void test_pickle__protocol4_opcodes(void **state)
{
    cks_fx_buf b = {0};
    cks_pk_state_dict sd;
    static const char p[] = "\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00"
                            "\x8c\x0b"
                            "collections\x94\x8c\x0bOrderedDict\x94\x93\x94)R\x94("
                            "\x8d\x03\x00\x00\x00\x00\x00\x00\x00key"
                            "\x8c\x0ctorch._utils\x8c\x12_rebuild_tensor_v2\x93((\x8c\x07storage"
                            "\x8c\x05torch\x8c\x0c"
                            "FloatStorage\x93\x8c\x01"
                            "0\x8c\x03"
                            "cpuK\x04t\x94Q"
                            "K\x00K\x04\x85K\x01\x85\x89h\x02)RtR\x94u.";
    cks_fx_put(&b, p, sizeof p - 1);
    assert_int_equal(parse(&b, &sd), 0);
    assert_int_equal(sd.count, 1);
    assert_string_equal(sd.items[0].name, "key");
    assert_int_equal(sd.items[0].shape[0], 4);
    cks_pk_state_dict_release(&sd);
    cks_fx_buf_free(&b);
}

/* module.state_dict() pickles an OrderedDict whose _metadata arrives through BUILD. */
static void test_pickle__build_of_state_dict_metadata(void **state)
{
    cks_fx_buf b = {0};
    cks_pk_state_dict sd;
    one_tensor(&b);
    b.n--; /* drop STOP: BUILD with {'_metadata': OrderedDict({'': {'version': 1}})} */
    cks_fx_putc(&b, '}');
    cks_fx_pk_str(&b, "_metadata");
    cks_fx_pk_odict(&b);
    cks_fx_pk_str(&b, "");
    cks_fx_putc(&b, '}');
    cks_fx_pk_str(&b, "version");
    cks_fx_pk_int(&b, 1);
    PUT(&b, "sssb.");
    assert_int_equal(parse(&b, &sd), 0);
    assert_int_equal(sd.count, 1);
    cks_pk_state_dict_release(&sd);
    cks_fx_buf_free(&b);
    one_tensor(&b); /* BUILD with a None state */
    b.n--;
    PUT(&b, "Nb.");
    assert_int_equal(parse(&b, &sd), 0);
    cks_pk_state_dict_release(&sd);
    cks_fx_buf_free(&b);
}

/* _rebuild_tensor (4 arguments), _rebuild_tensor_v3 (untyped storage, dtype global,
 * numel in bytes) and _rebuild_parameter around a v2 tensor. */
static void test_pickle__rebuild_variants(void **state)
{
    cks_fx_buf b = {0};
    cks_pk_state_dict sd;
    begin(&b);
    cks_fx_pk_str(&b, "v1");
    cks_fx_pk_global(&b, "torch._utils", "_rebuild_tensor");
    PUT(&b, "((");
    cks_fx_pk_str(&b, "storage");
    cks_fx_pk_global(&b, "torch", "DoubleStorage");
    cks_fx_pk_str(&b, "0");
    cks_fx_pk_str(&b, "cuda:0");
    PUT(&b, "K\x04tQK\x01K\x03\x85K\x01\x85tR");
    cks_fx_pk_str(&b, "v3");
    cks_fx_pk_global(&b, "torch._utils", "_rebuild_tensor_v3");
    PUT(&b, "((");
    cks_fx_pk_str(&b, "storage");
    cks_fx_pk_global(&b, "torch.storage", "UntypedStorage");
    cks_fx_pk_str(&b, "1");
    cks_fx_pk_str(&b, "cpu");
    PUT(&b, "K\x08tQK\x00K\x04\x85K\x01\x85\x89");
    cks_fx_pk_odict(&b);
    cks_fx_pk_global(&b, "torch", "bfloat16");
    PUT(&b, "}tR"); /* with an empty metadata dict */
    cks_fx_pk_str(&b, "param");
    cks_fx_pk_global(&b, "torch._utils", "_rebuild_parameter");
    cks_fx_putc(&b, '(');
    cks_fx_pk_tensor(&b, "2", "LongStorage", 4, 0, 1, S4, T1);
    cks_fx_putc(&b, 0x88);
    cks_fx_pk_odict(&b);
    PUT(&b, "tR");
    end(&b);
    assert_int_equal(parse(&b, &sd), 0);
    assert_int_equal(sd.count, 3);
    assert_int_equal(sd.items[0].dtype, CKS_DT_F64);
    assert_int_equal(sd.items[0].offset, 1);
    assert_int_equal(sd.items[1].dtype, CKS_DT_BF16);
    assert_int_equal(sd.items[1].storage_dtype, CKS_DT_U8);
    assert_int_equal(sd.items[1].storage_numel, 8);
    assert_string_equal(sd.items[2].name, "param");
    assert_int_equal(sd.items[2].dtype, CKS_DT_I64);
    cks_pk_state_dict_release(&sd);
    cks_fx_buf_free(&b);
}

/* Integer opcodes: BININT2, BININT, LONG1 of 5 bytes, and negative values refused as
 * sizes. */
static void test_pickle__integer_opcodes(void **state)
{
    cks_fx_buf b = {0};
    cks_pk_state_dict sd;
    static const int64_t big[1] = {1099511627776LL}, one[1] = {1};
    begin(&b);
    cks_fx_pk_str(&b, "w");
    cks_fx_pk_tensor(&b, "0", "ByteStorage", 70000, 66000, 1, big, one);
    end(&b);
    assert_int_equal(parse(&b, &sd), 0);
    assert_int_equal(sd.items[0].shape[0], 1099511627776LL); /* LONG1 of 8 bytes */
    assert_int_equal(sd.items[0].storage_numel, 70000);      /* BININT */
    assert_int_equal(sd.items[0].offset, 66000);
    cks_pk_state_dict_release(&sd);
    cks_fx_buf_free(&b);
    /* LONG1 of 5 bytes (2^32) and, as a size, LONG1 of 2 bytes sign-extended (-256) */
    for (int neg = 0; neg < 2; neg++) {
        begin(&b);
        cks_fx_pk_str(&b, "w");
        cks_fx_pk_global(&b, "torch._utils", "_rebuild_tensor");
        PUT(&b, "((");
        cks_fx_pk_str(&b, "storage");
        cks_fx_pk_global(&b, "torch", "ByteStorage");
        cks_fx_pk_str(&b, "0");
        cks_fx_pk_str(&b, "cpu");
        PUT(&b, "\x8a\x05\x00\x00\x00\x00\x01tQK\x00");
        if (neg)
            PUT(&b, "\x8a\x02\x00\xff\x85K\x01\x85tR");
        else
            PUT(&b, "M\x00\x01\x85K\x01\x85tR");
        end(&b);
        if (neg) {
            expect_error(&b, CKS_EFORMAT, "non-negative ints");
            continue;
        }
        assert_int_equal(parse(&b, &sd), 0);
        assert_int_equal(sd.items[0].storage_numel, 4294967296LL);
        assert_int_equal(sd.items[0].shape[0], 256); /* BININT2 */
        cks_pk_state_dict_release(&sd);
        cks_fx_buf_free(&b);
    }
}

/* ---- refusals: code execution and unknown globals ---- */

static void test_pickle__refuses_os_system(void **state)
{
    cks_fx_buf b = {0};
    PUT(&b, "\x80\x02");
    cks_fx_pk_global(&b, "os", "system");
    cks_fx_pk_str(&b, "touch /tmp/ckptscope-pwned");
    PUT(&b, "\x85R.");
    expect_error(&b, CKS_EUNSUPPORTED, "global 'os.system' is not allowed");
}

static void test_pickle__refuses_posix_system(void **state)
{
    cks_fx_buf b = {0};
    begin(&b);
    cks_fx_pk_str(&b, "w");
    cks_fx_pk_global(&b, "posix", "system");
    expect_error(&b, CKS_EUNSUPPORTED, "global 'posix.system' is not allowed");
}

static void test_pickle__refuses_builtins_eval_by_stack_global(void **state)
{
    cks_fx_buf b = {0};
    static const char p[] = "\x80\x04\x8c\x08"
                            "builtins\x8c\x04"
                            "eval\x93\x8c\x01x\x85R.";
    cks_fx_put(&b, p, sizeof p - 1);
    expect_error(&b, CKS_EUNSUPPORTED, "global 'builtins.eval' is not allowed");
}

static void test_pickle__refuses_unknown_global(void **state)
{
    cks_fx_buf b = {0};
    begin(&b);
    cks_fx_pk_str(&b, "w");
    cks_fx_pk_global(&b, "torch.nn.modules.linear", "Linear");
    expect_error(&b, CKS_EUNSUPPORTED, "global 'torch.nn.modules.linear.Linear' is not allowed");
    /* a name with control characters is shown made printable */
    PUT(&b, "\x80\x02");
    cks_fx_pk_global(&b, "os\x1b[31m", "system");
    expect_error(&b, CKS_EUNSUPPORTED, "global 'os?[31m.system'");
    /* a GLOBAL with no newline */
    PUT(&b, "\x80\x02"
            "cos");
    expect_error(&b, CKS_EFORMAT, "GLOBAL without a newline");
    /* STACK_GLOBAL on non-strings */
    PUT(&b, "\x80\x04K\x01K\x02\x93.");
    expect_error(&b, CKS_EFORMAT, "STACK_GLOBAL on a int and a int");
}

static void test_pickle__refuses_reduce_on_non_callables(void **state)
{
    cks_fx_buf b = {0};
    PUT(&b, "\x80\x02");
    cks_fx_pk_global(&b, "torch", "FloatStorage");
    PUT(&b, ")R.");
    expect_error(&b, CKS_EUNSUPPORTED, "REDUCE on torch.FloatStorage is not allowed");
    PUT(&b, "\x80\x02");
    cks_fx_pk_global(&b, "torch", "float16");
    PUT(&b, ")R.");
    expect_error(&b, CKS_EUNSUPPORTED, "REDUCE on torch.float16 is not allowed");
    PUT(&b, "\x80\x02K\x05)R.");
    expect_error(&b, CKS_EUNSUPPORTED, "REDUCE on a int, which is not an allowed callable");
    PUT(&b, "\x80\x02");
    cks_fx_pk_global(&b, "collections", "OrderedDict");
    PUT(&b, "K\x01R.");
    expect_error(&b, CKS_EFORMAT, "with a int for arguments");
    PUT(&b, "\x80\x02");
    cks_fx_pk_global(&b, "collections", "OrderedDict");
    PUT(&b, "]\x85R.");
    expect_error(&b, CKS_EUNSUPPORTED, "collections.OrderedDict called with arguments");
    PUT(&b, "\x80\x02");
    cks_fx_pk_global(&b, "torch._utils", "_rebuild_parameter");
    PUT(&b, "K\x01\x88}\x87R.");
    expect_error(&b, CKS_EUNSUPPORTED, "_rebuild_parameter with arguments other than");
}

static void test_pickle__refuses_build_except_on_ordered_dict(void **state)
{
    cks_fx_buf b = {0};
    PUT(&b, "\x80\x02]}b.");
    expect_error(&b, CKS_EUNSUPPORTED, "BUILD on a list");
    PUT(&b, "\x80\x02}}b.");
    expect_error(&b, CKS_EUNSUPPORTED, "BUILD on a dict");
    PUT(&b, "\x80\x02");
    cks_fx_pk_odict(&b);
    PUT(&b, "]b.");
    expect_error(&b, CKS_EUNSUPPORTED, "BUILD of an OrderedDict with a list state");
}

/* ---- refusals: memo, nesting and size limits ---- */

static void test_pickle__refuses_bad_memo_references(void **state)
{
    cks_fx_buf b = {0};
    PUT(&b, "\x80\x02}q\x00h\x05.");
    expect_error(&b, CKS_EFORMAT, "memo reference 5 out of range (1 slots defined)");
    PUT(&b, "\x80\x02}q\x03h\x01.");
    expect_error(&b, CKS_EFORMAT, "memo reference 1 out of range");
    PUT(&b, "\x80\x02}j\xff\xff\xff\xff.");
    expect_error(&b, CKS_EFORMAT, "memo reference 4294967295 out of range");
    PUT(&b, "\x80\x02}r\xff\xff\xff\x7f.");
    expect_error(&b, CKS_ELIMIT, "memo index 2147483647 (limit");
    PUT(&b, "\x80\x02q\x00.");
    expect_error(&b, CKS_EFORMAT, "stack underflow");
}

static void test_pickle__refuses_deep_nesting(void **state)
{
    cks_fx_buf b = {0};
    PUT(&b, "\x80\x02");
    for (int i = 0; i < 100000; i++)
        cks_fx_putc(&b, '(');
    PUT(&b, "}.");
    expect_error(&b, CKS_ELIMIT, "MARKs nested deeper than 64");
    PUT(&b, "\x80\x02");
    for (int i = 0; i < 100000; i++)
        cks_fx_putc(&b, ']');
    cks_fx_putc(&b, '.');
    expect_error(&b, CKS_ELIMIT, "more than 65536 values on the stack");
    /* 100k lists each appended to the one below: nesting that costs no stack. It is
     * accepted up to STOP (nothing walks it recursively) and refused as not a dict. */
    PUT(&b, "\x80\x02");
    for (int i = 0; i < 60000; i++)
        cks_fx_putc(&b, ']');
    for (int i = 0; i < 59999; i++)
        cks_fx_putc(&b, 'a');
    cks_fx_putc(&b, '.');
    expect_error(&b, CKS_EFORMAT, "holds a list, not a state dict");
}

static void test_pickle__refuses_object_and_item_floods(void **state)
{
    cks_fx_buf b = {0};
    PUT(&b, "\x80\x02]");
    for (int k = 0; k < 80; k++) { /* 80 x 60000 Nones appended: past 4M objects */
        cks_fx_putc(&b, '(');
        cks_fx_put(&b, NULL, 60000);
        memset(b.p + b.n - 60000, 'N', 60000);
        cks_fx_putc(&b, 'e');
    }
    cks_fx_putc(&b, '.');
    expect_error(&b, CKS_ELIMIT, "more than 4194304 objects");
    PUT(&b, "\x80\x02]Nq\x00"
            "a"); /* one None, then 9M references to it */
    for (int k = 0; k < 150; k++) {
        cks_fx_putc(&b, '(');
        for (int i = 0; i < 60000; i++)
            PUT(&b, "h\x00");
        cks_fx_putc(&b, 'e');
    }
    cks_fx_putc(&b, '.');
    expect_error(&b, CKS_ELIMIT, "container items (limit)");
}

static void test_pickle__refuses_bad_strings_and_integers(void **state)
{
    cks_fx_buf b = {0};
    PUT(&b, "\x80\x02X\xff\xff\xff\x7f");
    expect_error(&b, CKS_ELIMIT, "a string of 2147483647 bytes (limit");
    PUT(&b, "\x80\x02X\x64\x00\x00\x00"
            "abc");
    expect_error(&b, CKS_EFORMAT, "truncated: needs 100 more bytes, 3 left");
    PUT(&b, "\x80\x02\x8d\x00\x00\x00\x00\x00\x00\x00\x80");
    expect_error(&b, CKS_ELIMIT, "a string of 9223372036854775808 bytes");
    static const char *const bad[] = {"\xff", "\xed\xa0\x80", "\xc0\xaf", "\xf4\x90\x80\x80",
                                      "a\xe2\x82"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        PUT(&b, "\x80\x02");
        cks_fx_pk_str(&b, bad[i]);
        cks_fx_putc(&b, '.');
        expect_error(&b, CKS_EFORMAT, "not valid UTF-8");
    }
    PUT(&b, "\x80\x02\x8a\x09"
            "123456789.");
    expect_error(&b, CKS_ELIMIT, "an integer of 9 bytes (at most 8)");
    PUT(&b, "\x80\x02\x8b\x00\x00\x00\x80.");
    expect_error(&b, CKS_ELIMIT, "an integer of 2147483648 bytes");
    PUT(&b, "\x80\x02G\x3f\xf0\x00\x00\x00\x00\x00\x00.");
    expect_error(&b, CKS_EFORMAT, "holds a float, not a state dict");
    PUT(&b, "\x80\x06}.");
    expect_error(&b, CKS_EUNSUPPORTED, "pickle protocol 6");
    PUT(&b, "\x80\x04\x95\xff\x00\x00\x00\x00\x00\x00\x00}.");
    expect_error(&b, CKS_EFORMAT, "a frame past the end");
}

/* ---- refusals: structure ---- */

static void test_pickle__refuses_bad_structure(void **state)
{
    cks_fx_buf b = {0};
    expect_error(&b, CKS_EFORMAT, "ends without STOP");
    PUT(&b, "\x80\x02.");
    expect_error(&b, CKS_EFORMAT, "STOP with 0 values on the stack");
    PUT(&b, "\x80\x02}}.");
    expect_error(&b, CKS_EFORMAT, "STOP with 2 values");
    PUT(&b, "\x80\x02(}.");
    expect_error(&b, CKS_EFORMAT, "1 open MARKs");
    PUT(&b, "\x80\x02}.X");
    expect_error(&b, CKS_EFORMAT, "1 bytes after STOP");
    PUT(&b, "\x80\x02R.");
    expect_error(&b, CKS_EFORMAT, "stack underflow");
    PUT(&b, "\x80\x02K\x01(\x86.");
    expect_error(&b, CKS_EFORMAT, "stack underflow"); /* TUPLE2 may not reach below MARK */
    PUT(&b, "\x80\x02t.");
    expect_error(&b, CKS_EFORMAT, "no MARK to end");
    PUT(&b, "\x80\x02}(K\x01u.");
    expect_error(&b, CKS_EFORMAT, "SETITEMS with an odd number of items");
    PUT(&b, "\x80\x02]K\x01K\x02s.");
    expect_error(&b, CKS_EFORMAT, "SETITEM on a list");
    PUT(&b, "\x80\x02}(K\x01"
            "e.");
    expect_error(&b, CKS_EFORMAT, "APPEND on a dict");
    PUT(&b, "\x80\x02(K\x01u.");
    expect_error(&b, CKS_EFORMAT, "stack underflow");
    PUT(&b, "\x80\x02}K\x01K\x02s.");
    expect_error(&b, CKS_EFORMAT, "has a key that is a int, not a non-empty name");
    PUT(&b, "\x80\x02}X\x00\x00\x00\x00K\x02s.");
    expect_error(&b, CKS_EFORMAT, "not a non-empty name");
    PUT(&b, "\x80\x02}X\x01\x00\x00\x00\x00K\x02s.");
    expect_error(&b, CKS_EFORMAT, "not a non-empty name"); /* a NUL in a name */
    PUT(&b, "\x80\x02}X\x01\x00\x00\x00wNs.");
    expect_error(&b, CKS_EUNSUPPORTED, "state dict entry 'w' is a None, not a tensor");
}

static void test_pickle__refuses_opcodes_outside_the_set(void **state)
{
    static const char accepted[] = "\x80\x95.(}])t\x85\x86\x87X\x8c\x8dJKM\x8a\x8bG\x88\x89Nqr"
                                   "\x94hjc\x93RbsuaeQ";
    cks_fx_buf b = {0};
    for (int op = 0; op < 256; op++) {
        if (memchr(accepted, op, sizeof accepted - 1))
            continue;
        PUT(&b, "\x80\x02");
        cks_fx_putc(&b, op);
        PUT(&b, "\x00\x00\x00\x00\x00\x00\x00\x00.");
        expect_error(&b, CKS_EUNSUPPORTED, "is not accepted in a state dict");
    }
}

static void append_pid(cks_fx_buf *b, const char *tag, const char *cls, const char *key,
                       int64_t numel, int n)
{
    cks_fx_pk_global(b, "torch._utils", "_rebuild_tensor_v2");
    PUT(b, "((");
    cks_fx_pk_str(b, tag);
    if (cls)
        cks_fx_pk_global(b, "torch", cls);
    else
        cks_fx_pk_int(b, 3);
    cks_fx_pk_str(b, key);
    if (n == 5)
        cks_fx_pk_str(b, "cpu");
    cks_fx_pk_int(b, numel);
    PUT(b, "tQ");
}

static void test_pickle__refuses_bad_persistent_ids(void **state)
{
    cks_fx_buf b = {0};
    begin(&b);
    append_pid(&b, "weights", "FloatStorage", "0", 4, 5);
    expect_error(&b, CKS_EUNSUPPORTED, "not ('storage', type, key, location, numel)");
    begin(&b);
    append_pid(&b, "storage", "FloatStorage", "0", 4, 4);
    expect_error(&b, CKS_EUNSUPPORTED, "not ('storage', type, key, location, numel)");
    begin(&b);
    append_pid(&b, "storage", "float32", "0", 4, 5);
    expect_error(&b, CKS_EUNSUPPORTED, "whose type is a global, not a torch storage type");
    begin(&b);
    append_pid(&b, "storage", NULL, "0", 4, 5);
    expect_error(&b, CKS_EUNSUPPORTED, "whose type is a int");
    begin(&b);
    append_pid(&b, "storage", "FloatStorage", "../../etc/passwd", 4, 5);
    expect_error(&b, CKS_EFORMAT, "a storage key that is not");
    begin(&b);
    append_pid(&b, "storage", "FloatStorage", "", 4, 5);
    expect_error(&b, CKS_EFORMAT, "a storage key that is not");
    begin(&b);
    append_pid(&b, "storage", "FloatStorage", "0", -1, 5);
    expect_error(&b, CKS_EFORMAT, "bad location or element count");
    PUT(&b, "\x80\x02K\x01Q.");
    expect_error(&b, CKS_EUNSUPPORTED, "persistent id that is not");
}

/* Arguments of _rebuild_tensor_v2 (shape, stride, hooks, metadata). */
static void rebuild_with(cks_fx_buf *b, const char *size, const char *stride, const char *tail)
{
    begin(b);
    cks_fx_pk_str(b, "w");
    append_pid(b, "storage", "FloatStorage", "0", 12, 5);
    PUT(b, "K\x00");
    cks_fx_put(b, size, strlen(size));
    cks_fx_put(b, stride, strlen(stride));
    cks_fx_put(b, tail, strlen(tail));
    PUT(b, "tRu.");
}

static void test_pickle__refuses_bad_tensor_arguments(void **state)
{
    cks_fx_buf b = {0};
    rebuild_with(&b, "(K\x03K\x04t", "(K\x04t", "\x89}");
    expect_error(&b, CKS_EFORMAT, "size and stride that are not equal-length tuples");
    rebuild_with(&b, "(K\x01K\x01K\x01K\x01K\x01K\x01K\x01K\x01K\x01t",
                 "(K\x01K\x01K\x01K\x01K\x01K\x01K\x01K\x01K\x01t", "\x89}");
    expect_error(&b, CKS_ELIMIT, "at most 8 non-negative ints");
    rebuild_with(&b, "K\x0c\x85", "J\xff\xff\xff\xff\x85", "\x89}");
    expect_error(&b, CKS_EFORMAT, "non-negative ints");
    rebuild_with(&b, "K\x0c\x85", "K\x01\x85", "K\x01}");
    expect_error(&b, CKS_EUNSUPPORTED, "requires_grad that is not a bool");
    rebuild_with(&b, "K\x0c\x85", "K\x01\x85", "\x89}K\x01K\x02s");
    expect_error(&b, CKS_EUNSUPPORTED, "non-empty backward hooks");
    rebuild_with(&b, "K\x0c\x85", "K\x01\x85",
                 "\x89}}\x8c\x04"
                 "conj\x88s");
    expect_error(&b, CKS_EUNSUPPORTED, "with tensor metadata");
    rebuild_with(&b, "K\x0c\x85", "K\x01\x85", "\x89}NN");
    expect_error(&b, CKS_EFORMAT, "_rebuild_tensor_v2 called with 8 arguments");
    begin(&b);
    cks_fx_pk_str(&b, "w");
    cks_fx_pk_global(&b, "torch._utils", "_rebuild_tensor");
    PUT(&b, "(K\x01K\x00)\x29tRu.");
    expect_error(&b, CKS_EFORMAT, "without a storage and a non-negative offset");
}

/* Every prefix of a valid pickle is refused; no byte change crashes (ASan/UBSan build). */
static void test_pickle__every_truncation_and_byte_change_is_safe(void **state)
{
    cks_fx_buf b = {0};
    cks_pk_state_dict sd;
    begin(&b);
    cks_fx_pk_str(&b, "a");
    cks_fx_pk_tensor(&b, "0", "FloatStorage", 12, 2, 2, S23, T31);
    cks_fx_pk_str(&b, "b");
    cks_fx_pk_tensor(&b, "1", "HalfStorage", 4, 0, 1, S4, T1);
    end(&b);
    for (size_t n = 0; n < b.n; n++) {
        cks_error_clear();
        assert_int_not_equal(cks_pickle_state_dict(b.p, n, "t.bin", &sd), 0);
        assert_true(strlen(cks_error_last()) > 0);
    }
    static const unsigned char vals[] = {0x00, 0x01, 0x7f, 0x80, 0xff, '(', 't', 'R', 'h', 'q'};
    unsigned char *copy = malloc(b.n);
    for (size_t i = 0; i < b.n; i++) {
        for (size_t k = 0; k < sizeof vals; k++) {
            memcpy(copy, b.p, b.n);
            copy[i] = vals[k];
            if (cks_pickle_state_dict(copy, b.n, "t.bin", &sd) == 0) {
                for (size_t t = 0; t < sd.count; t++)
                    assert_true(sd.items[t].ndim >= 0 && sd.items[t].ndim <= CKS_MAX_DIMS);
                cks_pk_state_dict_release(&sd);
            }
        }
    }
    free(copy);
    cks_fx_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pickle__reads_torch_state_dict),
        cmocka_unit_test(test_pickle__memo_shares_objects),
        cmocka_unit_test(test_pickle__protocol4_opcodes),
        cmocka_unit_test(test_pickle__build_of_state_dict_metadata),
        cmocka_unit_test(test_pickle__rebuild_variants),
        cmocka_unit_test(test_pickle__integer_opcodes),
        cmocka_unit_test(test_pickle__refuses_os_system),
        cmocka_unit_test(test_pickle__refuses_posix_system),
        cmocka_unit_test(test_pickle__refuses_builtins_eval_by_stack_global),
        cmocka_unit_test(test_pickle__refuses_unknown_global),
        cmocka_unit_test(test_pickle__refuses_reduce_on_non_callables),
        cmocka_unit_test(test_pickle__refuses_build_except_on_ordered_dict),
        cmocka_unit_test(test_pickle__refuses_bad_memo_references),
        cmocka_unit_test(test_pickle__refuses_deep_nesting),
        cmocka_unit_test(test_pickle__refuses_object_and_item_floods),
        cmocka_unit_test(test_pickle__refuses_bad_strings_and_integers),
        cmocka_unit_test(test_pickle__refuses_bad_structure),
        cmocka_unit_test(test_pickle__refuses_opcodes_outside_the_set),
        cmocka_unit_test(test_pickle__refuses_bad_persistent_ids),
        cmocka_unit_test(test_pickle__refuses_bad_tensor_arguments),
        cmocka_unit_test(test_pickle__every_truncation_and_byte_change_is_safe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
