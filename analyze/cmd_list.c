/* ckptscope list: the checkpoints of a source, their status, format and size. */
#include "cli.h"
#include "cmd.h"
#include "error.h"
#include "source.h"
#include "weights.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static const char usage_text[] =
    "usage: ckptscope list SOURCE [--branches GLOB] [--json]\n"
    "\n"
    "List the checkpoints of SOURCE in step order: name, step, commit, status\n"
    "(complete, or incomplete when Git LFS objects are missing), weight format,\n"
    "number of files and their total size. Nothing in SOURCE is modified.\n"
    "\n"
    "SOURCE is a git repository, a Hugging Face hub cache folder (models--ORG--NAME),\n"
    "a folder of checkpoint folders, or hf://ORG/NAME: the hub itself (branches and\n"
    "file lists from its API; no weights are downloaded; HF_ENDPOINT, HF_TOKEN,\n"
    "HF_HOME, HF_HUB_CACHE and HF_HUB_OFFLINE as huggingface_hub reads them).\n"
    "\n"
    "  --branches GLOB  checkpoints to list (default 'ckpt_*')\n"
    "  --json           one JSON document on stdout\n"
    "  -h, --help       this help\n";

typedef struct {
    const cks_ckpt_info *info;
    int complete;
    cks_format format;
    size_t files;
    uint64_t bytes;
    char **missing;
    size_t nmissing;
    char hint[1024];
} row;

static void row_release(row *r)
{
    for (size_t i = 0; i < r->nmissing; i++)
        free(r->missing[i]);
    free(r->missing);
}

static int row_fill(row *r, const cks_source *s, size_t i)
{
    cks_ckpt *c;
    int err = cks_ckpt_open(&c, s, i);
    if (err)
        return err;
    memset(r, 0, sizeof *r);
    r->info = cks_source_ckpt(s, i);
    r->complete = cks_ckpt_complete(c);
    r->format = cks_weight_format_detect(c);
    r->files = cks_ckpt_nfiles(c);
    r->missing = calloc(r->files ? r->files : 1, sizeof *r->missing);
    if (!r->missing) {
        cks_ckpt_free(c);
        return cks_error_set(CKS_ENOMEM, "out of memory");
    }
    for (size_t k = 0; k < r->files; k++) {
        const cks_file_info *f = cks_ckpt_file(c, k);
        r->bytes += f->size;
        if (!f->present) {
            if (!(r->missing[r->nmissing] = strdup(f->path))) {
                cks_ckpt_free(c);
                return cks_error_set(CKS_ENOMEM, "out of memory");
            }
            if (r->nmissing++ == 0)
                cks_ckpt_fetch_hint(c, f->path, r->hint, sizeof r->hint);
        }
    }
    cks_ckpt_free(c);
    return 0;
}

static json_t *row_json(const row *r)
{
    json_t *missing = json_array();
    for (size_t k = 0; k < r->nmissing; k++)
        json_array_append_new(missing, json_string(r->missing[k]));
    const char *fmt = cks_format_name(r->format);
    return json_pack("{s:s, s:I, s:o, s:s, s:o, s:I, s:I, s:o}", "name", r->info->name, "step",
                     (json_int_t)r->info->step, "commit",
                     r->info->commit ? json_string(r->info->commit) : json_null(), "status",
                     r->complete ? "complete" : "incomplete", "format",
                     fmt ? json_string(fmt) : json_null(), "files", (json_int_t)r->files, "bytes",
                     (json_int_t)r->bytes, "missing", missing);
}

static void row_print(const row *r)
{
    char size[32], commit[16] = "-";
    const char *fmt = cks_format_name(r->format);
    if (r->info->commit)
        snprintf(commit, sizeof commit, "%.10s", r->info->commit);
    printf("%-24s %8lld  %-10s  %-10s  %-11s  %5zu  %10s", r->info->name, (long long)r->info->step,
           commit, r->complete ? "complete" : "incomplete", fmt ? fmt : "-", r->files,
           cli_human_bytes(r->bytes, size, sizeof size));
    if (r->nmissing)
        printf("  missing %zu file%s: %s", r->nmissing, r->nmissing > 1 ? "s" : "", r->hint);
    printf("\n");
}

int cmd_list(int argc, char **argv)
{
    static const struct option opts[] = {{"branches", required_argument, NULL, 'b'},
                                         {"json", no_argument, NULL, 'j'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *glob = NULL;
    int json = 0, c, err, status = 0;
    optind = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'b':
            glob = optarg;
            break;
        case 'j':
            json = 1;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return cli_finish("list", 0);
        default:
            return cli_usage_error("list", "unknown option");
        }
    }
    if (optind != argc - 1)
        return cli_usage_error("list", "expected one SOURCE");
    cks_source *s;
    if ((err = cks_source_open(&s, argv[optind], glob)) != 0)
        return cli_fail("list", err);
    size_t n = cks_source_count(s);
    json_t *arr = json ? json_array() : NULL;
    if (!json)
        printf(
            "%s: %s, %zu checkpoint%s matching '%s'\n%-24s %8s  %-10s  %-10s  %-11s  %5s  %10s\n",
            argv[optind], cks_source_kind_name(cks_source_kind_of(s)), n, n == 1 ? "" : "s",
            glob ? glob : CKS_DEFAULT_GLOB, "NAME", "STEP", "COMMIT", "STATUS", "FORMAT", "FILES",
            "SIZE");
    for (size_t i = 0; i < n; i++) {
        row r;
        if ((err = row_fill(&r, s, i)) != 0) {
            status = cli_fail("list", err);
            break;
        }
        if (json)
            json_array_append_new(arr, row_json(&r));
        else
            row_print(&r);
        row_release(&r);
    }
    if (json && status == 0) {
        json_t *doc = json_pack("{s:s, s:s, s:o}", "source", argv[optind], "kind",
                                cks_source_kind_name(cks_source_kind_of(s)), "checkpoints", arr);
        arr = NULL;
        if (cli_json_print(doc) != 0)
            status = CLI_USAGE;
    }
    json_decref(arr);
    cks_source_free(s);
    return cli_finish("list", status);
}
