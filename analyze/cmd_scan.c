/* ckptscope scan: the command's side of a scan. It reads the options, picks the driver
 * (serial, --shard I/N, or MPI when started by mpirun/srun: analyze/engine/
 * scan.h), and talks to the user: the progress line, a line per checkpoint, warnings,
 * the summary and the exit status (DESIGN §8: 0 when every selected checkpoint ends
 * complete or incomplete, 2 when one failed, after the others are done). Downloads of an
 * hf:// source share the progress line ("analysis | fetching ..."); their reports come
 * from download threads, so everything printed during the scan goes through one mutex.
 * It also holds the test hooks of the crash tests (CKS_TEST_KILL_AT,
 * CKS_TEST_TENSOR_DELAY_MS) and of the benchmark of prefetch (CKS_TEST_NO_PREFETCH). */
#include "bf16.h"
#include "cli.h"
#include "cmd.h"
#include "error.h"
#include "scan.h"
#include "source.h"

#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char usage_text[] =
    "usage: ckptscope scan SOURCE -o RUN.h5 [--metrics LIST] [--branches GLOB]\n"
    "                      [--every K] [--ref REF] [--resume] [--threads N] [--quiet]\n"
    "                      [--evict]\n"
    "                      [--shard I/N [--extend RUN.h5]] [--eval FILE]...\n"
    "                      [--ctx N] [--stride N] [--bos | --no-bos]\n"
    "                      [--precision f32|bf16]\n"
    "                      [--train-data FILE]... [--samples N] [--seed S]\n"
    "\n"
    "Analyse the checkpoints of SOURCE in step order and write their time series to the\n"
    "HDF5 run file RUN.h5: one row per checkpoint, one column per tensor. SOURCE may be\n"
    "hf://ORG/NAME: checkpoints are fetched into the hub cache, the next one while the\n"
    "current one is analysed.\n"
    "\n"
    "  -o, --output RUN.h5  the run file (required); it must not exist, unless --resume\n"
    "  --metrics LIST       comma-separated metric families (default: every one built\n"
    "                       in, here '%s', ppl when --eval is given,\n"
    "                       memorization when --train-data is); a resumed scan keeps\n"
    "                       the file's families. 'kl' (with ppl, never by default)\n"
    "                       adds per set the change of the\n"
    "                       next-token distributions against the previous checkpoint\n"
    "                       and the reference: kl_B, kl_B_p50/p90/p99/max, top1_agree_B,\n"
    "                       forgot_B, learned_B, dnll_B, dnll_B_lo/hi (B = prev, ref)\n"
    "                       and token_kl_prev; each checkpoint's logits are kept for the\n"
    "                       next (4 x vocab bytes per scored token, two stores, in\n"
    "                       $TMPDIR past 2 GiB each)\n"
    "  --eval FILE          a held-out set for the ppl family (repeat for more): a UTF-8\n"
    "                       text file, tokenised by each checkpoint's own tokenizer, or\n"
    "                       token ids (.jsonl, .u16, .u32); written to /eval/<set>/ (nll,\n"
    "                       ppl, bpb, tokens, top1_acc, token_nll), <set> being the\n"
    "                       file's stem\n"
    "  --ctx N, --stride N  ppl windows (default: max_position_embeddings and ctx/2)\n"
    "  --bos, --no-bos      start documents with BOS (default: add_bos_token of\n"
    "                       tokenizer_config.json, else the family's: on for llama and\n"
    "                       mistral, off for the others); see 'ckptscope ppl --help'\n"
    "  --precision P        the ppl and memorization arithmetic: f32 (default) or bf16, the "
    "weight\n"
    "                       products' operands rounded to bfloat16 (see 'ckptscope ppl\n"
    "                       --help'); recorded in the run file, which a resumed scan must\n"
    "                       match\n"
    "  --train-data FILE    training sequences for the memorization family (repeat for\n"
    "                       more): JSONL with a \"token_ids\" array per line, plain, gzip\n"
    "                       or zstd; each checkpoint continues the first 32 ids of each\n"
    "                       greedily for 32 tokens (see 'ckptscope memorize --help');\n"
    "                       written to /memo/<set>/ (token_match, full_match,\n"
    "                       prefix_match, sequences, full)\n"
    "  --samples N, --seed S  score N sequences of each --train-data file, the same ones\n"
    "                       for every checkpoint (gsl_ran_choose seeded S, default 1;\n"
    "                       default: all)\n"
    "  --branches GLOB      checkpoints to scan (default 'ckpt_*')\n"
    "  --every K            only every K-th checkpoint in step order, from the first\n"
    "  --ref REF            drift reference (default: the first complete checkpoint); a\n"
    "                       resumed scan keeps the file's reference\n"
    "  --resume             continue RUN.h5 (or start it when missing): checkpoints it\n"
    "                       holds as complete with the same commit are skipped, those\n"
    "                       whose commit changed are analysed again in their row\n"
    "  --threads N          threads for the metrics (default: all CPUs; under MPI the\n"
    "                       CPUs a rank may use, shared by the ranks of its node)\n"
    "  --shard I/N          analyse only the checkpoints whose position in step order\n"
    "                       (among those selected) is I modulo N, into a part file that\n"
    "                       'ckptscope merge' joins with the other N-1 parts\n"
    "  --extend RUN.h5      with --shard: leave out the checkpoints the finished run\n"
    "                       RUN.h5 already holds (complete, same commit, same previous\n"
    "                       checkpoint); merge RUN.h5 with the new parts afterwards\n"
    "  --evict              hf:// sources: delete each blob this scan downloaded once no\n"
    "                       checkpoint still to analyse, the previous one or the\n"
    "                       reference needs it, so the disk holds four checkpoints'\n"
    "                       weights (reference, previous, current, next; a shard's next\n"
    "                       task may add its previous one too: five);\n"
    "                       what was in the cache before is never deleted. Shards and MPI\n"
    "                       ranks that evict need a hub cache each (HF_HUB_CACHE)\n"
    "  --quiet              no progress line and no line per checkpoint\n"
    "  -h, --help           this help\n"
    "\n"
    "/drift/prev compares each checkpoint with the last complete one before it among the\n"
    "checkpoints scanned; /drift/ref with the reference (attribute 'ref').\n"
    "Checkpoints with missing Git LFS objects are recorded as 'incomplete' (NaN values),\n"
    "ones that cannot be read as 'failed' (the error on stderr); the scan goes on. Each\n"
    "checkpoint is saved atomically when it is reported finished: after a crash or kill,\n"
    "RUN.h5 holds every finished checkpoint and --resume completes the rest.\n"
    "lm-eval result files eval_*.json at the top of a checkpoint are imported into\n"
    "/evals with its row (see 'ckptscope evals --help'); unreadable ones are warnings.\n"
    "Started by mpirun or srun (a build with -DCKPTSCOPE_MPI=ON), rank 0 writes RUN.h5\n"
    "and hands checkpoints to the other ranks as they become free.\n"
    "\n"
    "Exit status: 0 when every checkpoint was analysed or skipped, incomplete ones\n"
    "included; 2 when a checkpoint failed (after the others are done), on bad usage or\n"
    "input, or when interrupted (the finished checkpoints are kept).\n";

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    interrupted = sig;
}

/* What the command keeps while the engine works: its reporting and its test hooks. */
typedef struct {
    const cks_scan_options *o;
    int quiet;
    cli_progress prog;
    pthread_mutex_t mu; /* everything printed while the scan runs (download threads too) */
    char work[256];     /* the progress line's part for the checkpoint being analysed */
    char fetch[160];    /* ... and for the downloads in flight ("" when none) */
    double t_start;
    size_t finished; /* rows recorded so far, for the ETA */
    /* CKS_TEST_KILL_AT=point:n kills the process at the n-th point;
     * CKS_TEST_TENSOR_DELAY_MS=n makes each tensor take n ms longer, so that tests can
     * interrupt a scan of a tiny fixture in the middle */
    char kill_point[32];
    long kill_count, tensor_delay_ms;
} ui;

static void test_hooks_init(ui *u)
{
    const char *v = getenv("CKS_TEST_KILL_AT"), *colon = v ? strchr(v, ':') : NULL;
    if (colon && (size_t)(colon - v) < sizeof u->kill_point) {
        memcpy(u->kill_point, v, (size_t)(colon - v));
        u->kill_point[colon - v] = '\0';
        u->kill_count = strtol(colon + 1, NULL, 10);
    }
    v = getenv("CKS_TEST_TENSOR_DELAY_MS");
    long ms = v ? strtol(v, NULL, 10) : 0;
    u->tensor_delay_ms = ms > 0 && ms < 10000 ? ms : 0;
}

static void on_point(void *ctx, const char *point)
{
    ui *u = ctx;
    if (u->kill_count > 0 && strcmp(point, u->kill_point) == 0 && --u->kill_count == 0)
        raise(SIGKILL);
    if (u->tensor_delay_ms > 0 && strcmp(point, "tensor") == 0) {
        struct timespec d = {u->tensor_delay_ms / 1000, u->tensor_delay_ms % 1000 * 1000000L};
        nanosleep(&d, NULL);
    }
}

/* Rewrites the progress line from its two parts (u->mu held). */
static void redraw(ui *u)
{
    if (*u->work && *u->fetch)
        cli_progress_update(&u->prog, "%s | %s", u->work, u->fetch);
    else if (*u->work || *u->fetch)
        cli_progress_update(&u->prog, "%s", *u->work ? u->work : u->fetch);
    else
        cli_progress_done(&u->prog);
}

/* "ckptscope scan: [pos/nsel] name (step s): ..." unless --quiet (u->mu held). */
static void line(ui *u, const cks_scan_row *r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void line(ui *u, const cks_scan_row *r, const char *fmt, ...)
{
    va_list ap;
    if (u->quiet)
        return;
    cli_progress_done(&u->prog);
    fprintf(stderr, "ckptscope scan: [%zu/%zu] %s (step %lld): ", r->pos + 1, r->nsel, r->name,
            (long long)r->step);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static void row_lines(ui *u, const cks_scan_row *r)
{
    char where[32] = "", size[32];
    if (r->kind == CKS_ROW_SKIPPED) {
        line(u, r, "already complete in %s: skipped", u->o->output);
        return;
    }
    if (r->kind == CKS_ROW_LEFT_OUT) {
        line(u, r, "already in %s: left out of this part", u->o->extend);
        return;
    }
    u->finished++;
    if (r->rank >= 0)
        snprintf(where, sizeof where, " on rank %d", r->rank);
    if (r->status == CKS_SCAN_FAILED) {
        cli_progress_done(&u->prog);
        fprintf(stderr, "ckptscope scan: error: %s failed%s: %s\n", r->name, where, r->message);
    } else if (r->status == CKS_SCAN_INCOMPLETE) {
        line(u, r, "incomplete: %s", r->message);
    } else {
        line(u, r, "complete, %zu tensors, %s in %.2f s%s", r->ntensors,
             cli_human_bytes((uint64_t)r->bytes, size, sizeof size), r->seconds, where);
    }
}

static void on_row(void *ctx, const cks_scan_row *r)
{
    ui *u = ctx;
    pthread_mutex_lock(&u->mu);
    row_lines(u, r);
    u->work[0] = '\0'; /* that checkpoint is done */
    redraw(u);
    pthread_mutex_unlock(&u->mu);
}

static void on_progress(void *ctx, const cks_scan_progress *p)
{
    ui *u = ctx;
    double now = cli_now(), done = (double)u->finished + p->frac;
    pthread_mutex_lock(&u->mu);
    if (p->frac < 0) { /* not reading tensors: a per-checkpoint family's work */
        snprintf(u->work, sizeof u->work, "[%zu/%zu] %s %s", p->pos + 1, p->nsel, p->name, p->what);
    } else {
        char eta[32] = "--:--:--";
        if (done > 0.02) {
            long left = (long)((now - u->t_start) / done * ((double)(p->nsel - p->pos) - p->frac));
            snprintf(eta, sizeof eta, "%ld:%02ld:%02ld", left / 3600, left / 60 % 60, left % 60);
        }
        snprintf(u->work, sizeof u->work, "[%zu/%zu] %s %s  %.0f MB/s  ETA %s", p->pos + 1, p->nsel,
                 p->name, p->what, p->rate / 1e6, eta);
    }
    redraw(u);
    pthread_mutex_unlock(&u->mu);
}

/* Called on a download thread. */
static void on_fetch(void *ctx, const cks_scan_fetch *f)
{
    ui *u = ctx;
    cks_fetch_progress p = {f->name, f->done, f->total, f->seconds, f->files_done, f->files_total};
    pthread_mutex_lock(&u->mu);
    if (f->files_done >= f->files_total) /* nothing in flight any more */
        u->fetch[0] = '\0';
    else
        cli_fetch_text(&p, u->fetch, sizeof u->fetch);
    redraw(u);
    pthread_mutex_unlock(&u->mu);
}

static void on_warning(void *ctx, const char *ckpt, const char *what, const char *msg)
{
    ui *u = ctx;
    pthread_mutex_lock(&u->mu);
    cli_progress_done(&u->prog);
    fprintf(stderr, "ckptscope scan: warning: %s: %s: %s\n", ckpt, what, msg);
    redraw(u);
    pthread_mutex_unlock(&u->mu);
}

/* ---- options ---- */

static int parse_shard(const char *arg, int64_t *i, int64_t *n)
{
    const char *slash = strchr(arg, '/');
    char first[32];
    if (!slash || (size_t)(slash - arg) >= sizeof first)
        return cli_usage_error("scan", "--shard must be I/N with 0 <= I < N, not '%s'", arg);
    memcpy(first, arg, (size_t)(slash - arg));
    first[slash - arg] = '\0';
    if (cli_parse_int("scan", "the N of --shard I/N", slash + 1, 1, CKS_MAX_CHECKPOINTS, n) != 0 ||
        cli_parse_int("scan", "the I of --shard I/N", first, 0, *n - 1, i) != 0)
        return CLI_USAGE;
    return 0;
}

/* One option (getopt's c and optarg) into o; evals holds the --eval files. */
static const char *trains[CKS_SCAN_MAX_EVAL]; /* --train-data files */

static int parse_one(int c, const char *arg, cks_scan_options *o, const char **evals, int *quiet)
{
    cks_precision prec;
    switch (c) {
    case 'o':
        o->output = arg;
        return 0;
    case 'm':
        o->metrics = arg;
        return 0;
    case 'b':
        o->branches = arg;
        return 0;
    case 'e':
        return cli_parse_int("scan", "--every", arg, 1, CKS_MAX_CHECKPOINTS, &o->every) ? CLI_USAGE
                                                                                        : 0;
    case 'r':
        o->ref = arg;
        return 0;
    case 'R':
        o->resume = 1;
        return 0;
    case 'T':
        o->threads_given = 1;
        return cli_parse_threads("scan", arg, &o->threads) ? CLI_USAGE : 0;
    case 's':
        return parse_shard(arg, &o->shard, &o->nshards);
    case 'x':
        o->extend = arg;
        return 0;
    case 'E':
        if (o->neval == CKS_SCAN_MAX_EVAL)
            return cli_usage_error("scan", "more than %d --eval files", CKS_SCAN_MAX_EVAL);
        evals[o->neval++] = arg;
        return 0;
    case 'D':
        if (o->ntrain == CKS_SCAN_MAX_EVAL)
            return cli_usage_error("scan", "more than %d --train-data files", CKS_SCAN_MAX_EVAL);
        trains[o->ntrain++] = arg;
        return 0;
    case 'n':
        return cli_parse_int("scan", "--samples", arg, 1, (int64_t)1 << 40, &o->samples) ? CLI_USAGE
                                                                                         : 0;
    case 'd':
        return cli_parse_int("scan", "--seed", arg, 0, (int64_t)UINT32_MAX, &o->seed) ? CLI_USAGE
                                                                                      : 0;
    case 'C':
    case 'S':
        return cli_parse_int("scan", c == 'C' ? "--ctx" : "--stride", arg, 1, CKS_MAX_POSITIONS,
                             c == 'C' ? &o->ctx : &o->stride)
                   ? CLI_USAGE
                   : 0;
    case 'B':
    case 'N':
        o->bos = c == 'B';
        return 0;
    case 'P':
        if (cks_precision_from_name(arg, &prec) != 0)
            return cli_usage_error("scan", "--precision must be f32 or bf16");
        o->precision = (int)prec;
        return 0;
    case 'q':
        *quiet = 1;
        return 0;
    case 'v':
        o->evict = 1;
        return 0;
    case 'h':
        printf(usage_text, cks_scan_default_metrics());
        return -1;
    default:
        return cli_usage_error("scan", "unknown option");
    }
}

static int parse_args(int argc, char **argv, cks_scan_options *o, const char **evals, int *quiet)
{
    static const struct option opts[] = {{"output", required_argument, NULL, 'o'},
                                         {"metrics", required_argument, NULL, 'm'},
                                         {"branches", required_argument, NULL, 'b'},
                                         {"every", required_argument, NULL, 'e'},
                                         {"ref", required_argument, NULL, 'r'},
                                         {"resume", no_argument, NULL, 'R'},
                                         {"threads", required_argument, NULL, 'T'},
                                         {"quiet", no_argument, NULL, 'q'},
                                         {"evict", no_argument, NULL, 'v'},
                                         {"shard", required_argument, NULL, 's'},
                                         {"extend", required_argument, NULL, 'x'},
                                         {"eval", required_argument, NULL, 'E'},
                                         {"ctx", required_argument, NULL, 'C'},
                                         {"stride", required_argument, NULL, 'S'},
                                         {"bos", no_argument, NULL, 'B'},
                                         {"no-bos", no_argument, NULL, 'N'},
                                         {"precision", required_argument, NULL, 'P'},
                                         {"train-data", required_argument, NULL, 'D'},
                                         {"samples", required_argument, NULL, 'n'},
                                         {"seed", required_argument, NULL, 'd'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int c, err;
    o->every = 1;
    o->bos = -1;
    o->threads = cli_default_threads();
    o->evals = evals;
    o->trains = trains;
    o->seed = 1;
    optind = 0;
    while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1)
        if ((err = parse_one(c, optarg, o, evals, quiet)) != 0)
            return err;
    if (optind != argc - 1)
        return cli_usage_error("scan", "expected one SOURCE");
    if (!o->output)
        return cli_usage_error("scan", "the run file is required: -o RUN.h5");
    if (o->extend && !o->nshards)
        return cli_usage_error("scan", "--extend goes with --shard I/N (alone, --resume extends a "
                                       "run)");
    if (o->precision != CKS_PRECISION_F32 && !o->neval && !o->ntrain)
        return cli_usage_error("scan", "--precision is the ppl and memorization arithmetic: it "
                                       "needs --eval FILE or --train-data FILE");
    if ((o->samples || o->seed != 1) && !o->ntrain)
        return cli_usage_error("scan", "--samples and --seed choose --train-data sequences: give "
                                       "--train-data FILE");
    if (o->ctx && o->stride && o->stride > o->ctx)
        return cli_usage_error("scan", "--stride %lld is larger than --ctx %lld",
                               (long long)o->stride, (long long)o->ctx);
    o->source = argv[optind];
    return 0;
}

/* ---- the end ---- */

static int finish(ui *u, const cks_scan_summary *s, int err)
{
    if (err && s->rank > 0) { /* an MPI worker: rank 0 reports, unless it is this rank's own */
        if (!s->error_reported)
            fprintf(stderr, "ckptscope scan: rank %d: error: %s\n", s->rank, cks_error_last());
        return CLI_USAGE;
    }
    if (s->rank > 0)
        return 0;
    if (err == CKS_EINTR)
        cks_error_set(err,
                      "interrupted; %s keeps its %zu finished checkpoints: run again with "
                      "--resume to finish",
                      u->o->output, s->rows);
    if (err)
        return s->error_reported ? CLI_USAGE : cli_fail("scan", err);
    if (!u->quiet) {
        char what[128];
        if (u->o->nshards)
            snprintf(what, sizeof what, "shard %lld/%lld: %zu of %zu checkpoints",
                     (long long)u->o->shard, (long long)u->o->nshards, s->own, s->nsel);
        else
            snprintf(what, sizeof what, "%zu checkpoints", s->nsel);
        cli_progress_done(&u->prog);
        fprintf(stderr,
                "ckptscope scan: %s: %s: %zu analysed (%zu complete, %zu incomplete, %zu "
                "failed), %zu skipped, %.1f s\n",
                u->o->output, what, s->analysed, s->complete, s->incomplete, s->failed, s->skipped,
                cli_now() - u->t_start);
    }
    return s->failed ? CLI_USAGE : 0;
}

int cmd_scan(int argc, char **argv)
{
    static const char *evals[CKS_SCAN_MAX_EVAL];
    cks_scan_options o;
    cks_scan_summary sum;
    ui u;
    memset(&o, 0, sizeof o);
    memset(&sum, 0, sizeof sum);
    memset(&u, 0, sizeof u);
    int err, status = parse_args(argc, argv, &o, evals, &u.quiet);
    if (status)
        return status < 0 ? cli_finish("scan", 0) : status;
    u.o = &o;
    test_hooks_init(&u);
    o.no_prefetch = getenv("CKS_TEST_NO_PREFETCH") != NULL; /* bench/bench_hub.py's baseline */
    cli_progress_init(&u.prog, u.quiet);
    pthread_mutex_init(&u.mu, NULL);
    u.t_start = cli_now();
    cks_scan_hooks h = {.ctx = &u,
                        .row = on_row,
                        .progress = on_progress,
                        .warning = on_warning,
                        .point = on_point,
                        .interrupted = &interrupted,
                        .fetch = on_fetch};
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    interrupted = 0;
#ifdef CKS_HAVE_MPI
    if (cks_scan_mpi_launched())
        err = cks_scan_mpi(&o, &h, &sum);
    else
#endif
        err = o.nshards ? cks_scan_shard(&o, &h, &sum) : cks_scan_serial(&o, &h, &sum);
    cli_progress_done(&u.prog); /* the scan is over: no download thread reports any more */
    status = finish(&u, &sum, err);
    pthread_mutex_destroy(&u.mu);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    return cli_finish("scan", status);
}
