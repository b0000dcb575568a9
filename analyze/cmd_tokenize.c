/* ckptscope tokenize: the built-in tokenizer's ids and pieces for a text, from a
 * checkpoint's tokenizer.model / tokenizer.json or a tokenizer file. */
#include "cli.h"
#include "cmd.h"
#include "error.h"
#include "map.h"
#include "spec.h"
#include "tokenizer.h"
#include "utf8.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage_text[] =
    "usage: ckptscope tokenize (SOURCE@REF | --tokenizer FILE) [--text FILE | -] [--bos]\n"
    "                          [--json]\n"
    "\n"
    "Tokenize a UTF-8 text with the built-in tokenizer and print the token ids, pieces and\n"
    "the text each token stands for. The tokenizer is the checkpoint's tokenizer.model\n"
    "(SentencePiece BPE) or, when it has none, its tokenizer.json (Hugging Face BPE: LLaMA's\n"
    "with byte fallback, or byte-level BPE as GPT-2, GPT-NeoX, OLMo 2 and Qwen2 use);\n"
    "--tokenizer FILE takes either format.\n"
    "The text is read whole, byte for byte (a final newline is a token too); text that is\n"
    "not valid UTF-8 is refused, naming the byte offset.\n"
    "\n"
    "  --tokenizer FILE  a tokenizer.model or tokenizer.json file\n"
    "  --text FILE       the text (default, or '-': standard input)\n"
    "  --bos             prepend the tokenizer's BOS id\n"
    "  --json            one JSON document: {\"ids\": [...], \"pieces\": [...],\n"
    "                    \"text\": the ids decoded (invalid UTF-8 as U+FFFD)}\n"
    "  -h, --help        this help\n";

typedef struct {
    const char *spec, *tokenizer, *text;
    int bos, json;
} options;

static int parse_args(int argc, char **argv, options *o)
{
    static const struct option opts[] = {{"tokenizer", required_argument, NULL, 'k'},
                                         {"text", required_argument, NULL, 't'},
                                         {"bos", no_argument, NULL, 'b'},
                                         {"json", no_argument, NULL, 'j'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'k':
            o->tokenizer = optarg;
            break;
        case 't':
            o->text = optarg;
            break;
        case 'b':
            o->bos = 1;
            break;
        case 'j':
            o->json = 1;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return -1;
        default:
            return cli_usage_error("tokenize", "unknown option");
        }
    }
    for (int i = optind; i < argc; i++) {
        if (strcmp(argv[i], "-") == 0 && !o->text)
            o->text = "-";
        else if (!o->spec && strcmp(argv[i], "-") != 0)
            o->spec = argv[i];
        else
            return cli_usage_error("tokenize", "unexpected argument '%s'", argv[i]);
    }
    if (!o->spec == !o->tokenizer)
        return cli_usage_error("tokenize", "give either SOURCE@REF or --tokenizer FILE");
    return 0;
}

static int read_stdin(char **out, size_t *len)
{
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap + 1);
    if (!buf)
        return cks_error_set(CKS_ENOMEM, "out of memory");
    for (;;) {
        if (n == cap) {
            if (cap >= CKS_TOK_MAX_TEXT_BYTES) {
                free(buf);
                return cks_error_set(CKS_ELIMIT, "standard input: more than %zu bytes",
                                     (size_t)CKS_TOK_MAX_TEXT_BYTES);
            }
            cap *= 2;
            char *b = realloc(buf, cap + 1);
            if (!b) {
                free(buf);
                return cks_error_set(CKS_ENOMEM, "out of memory");
            }
            buf = b;
        }
        size_t got = fread(buf + n, 1, cap - n, stdin);
        n += got;
        if (got == 0)
            break;
    }
    if (ferror(stdin)) {
        free(buf);
        return cks_error_set(CKS_EIO, "standard input: read error");
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

static int load_tokenizer(const options *o, cks_tokenizer **tok)
{
    if (o->tokenizer)
        return cks_tokenizer_load_file(tok, o->tokenizer);
    cks_source *s = NULL;
    cks_ckpt *c = NULL;
    int err = spec_open(o->spec, &s, &c);
    if (!err)
        err = cks_tokenizer_load_ckpt(tok, c);
    cks_ckpt_free(c);
    cks_source_free(s);
    return err;
}

/* Bytes for the terminal: control bytes and bytes that are not whole UTF-8 characters as
 * \xNN, the rest as is. */
static void print_bytes(const char *p, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned char ch = (unsigned char)p[i];
        size_t l = cks_utf8_char((const unsigned char *)p + i, n - i);
        if (l == 0 || ch < 0x20 || ch == 0x7f) {
            printf("\\x%02X", ch);
            i++;
        } else {
            fwrite(p + i, 1, l, stdout);
            i += l;
        }
    }
}

static int emit(const cks_tokenizer *tok, const int32_t *ids, size_t n, size_t bytes, int json)
{
    if (json) {
        char *text = NULL;
        size_t len = 0;
        int err = cks_tokenizer_decode_utf8(tok, ids, n, &text, &len);
        if (err)
            return cli_fail("tokenize", err);
        json_t *a = json_array(), *p = json_array();
        for (size_t i = 0; i < n; i++) {
            json_array_append_new(a, json_integer(ids[i]));
            json_array_append_new(p, json_string(cks_tokenizer_piece(tok, ids[i])));
        }
        json_t *doc = json_pack("{s:o, s:o, s:s%}", "ids", a, "pieces", p, "text", text, len);
        free(text);
        return cli_json_print(doc) == 0 ? 0 : CLI_USAGE;
    }
    printf("tokenizer: %s%s, %lld pieces, bos %d, eos %d\n", cks_tokenizer_kind(tok),
           cks_tokenizer_byte_level(tok) ? " (byte-level BPE)" : "",
           (long long)cks_tokenizer_vocab_size(tok), cks_tokenizer_bos_id(tok),
           cks_tokenizer_eos_id(tok));
    printf("text: %zu bytes, %zu tokens\n\n%8s %8s  %-24s %s\n", bytes, n, "POS", "ID", "PIECE",
           "TEXT");
    for (size_t i = 0; i < n; i++) {
        const char *piece = cks_tokenizer_piece(tok, ids[i]);
        size_t blen = 0;
        const char *b = cks_tokenizer_token_bytes(tok, ids[i], &blen);
        printf("%8zu %8d  ", i, ids[i]);
        print_bytes(piece, strlen(piece));
        size_t width = 0; /* characters, for the column */
        for (const char *q = piece; *q; q++)
            width += ((unsigned char)*q & 0xC0) != 0x80;
        printf("%*s \"", (int)(width < 24 ? 24 - width : 0), "");
        print_bytes(b, blen);
        printf("\"\n");
    }
    return 0;
}

int cmd_tokenize(int argc, char **argv)
{
    options o = {0};
    cks_tokenizer *tok = NULL;
    char *text = NULL;
    size_t len = 0, n = 0;
    int32_t *ids = NULL, *all = NULL;
    int err, status = parse_args(argc, argv, &o);
    if (status)
        return status < 0 ? cli_finish("tokenize", 0) : status;
    if ((err = load_tokenizer(&o, &tok)) != 0) {
        status = cli_fail("tokenize", err);
        goto done;
    }
    if (!o.text || strcmp(o.text, "-") == 0)
        err = read_stdin(&text, &len);
    else
        err = cks_read_file(o.text, CKS_TOK_MAX_TEXT_BYTES, &text, &len);
    if (!err && (err = cks_tokenizer_encode(tok, text, len, &ids, &n)) != 0)
        cks_error_prefix(err, "%s",
                         !o.text || strcmp(o.text, "-") == 0 ? "standard input" : o.text);
    if (!err && o.bos && cks_tokenizer_bos_id(tok) < 0)
        err = cks_error_set(CKS_EINVAL, "--bos: the tokenizer has no BOS piece");
    if (err) {
        status = cli_fail("tokenize", err);
        goto done;
    }
    all = malloc((n + 1) * sizeof *all);
    if (!all) {
        status = cli_fail("tokenize", cks_error_set(CKS_ENOMEM, "out of memory"));
        goto done;
    }
    size_t k = 0;
    if (o.bos)
        all[k++] = cks_tokenizer_bos_id(tok);
    if (n)
        memcpy(all + k, ids, n * sizeof *ids);
    status = emit(tok, all, k + n, len, o.json);
done:
    free(all);
    free(ids);
    free(text);
    cks_tokenizer_free(tok);
    return cli_finish("tokenize", status);
}
