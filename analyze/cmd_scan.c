/* ckptscope scan: walks the checkpoints of a source in step order, computes the enabled
 * metric families (scan_metrics.h) for every tensor, and appends one row per checkpoint
 * to the run file, each in its own crash-atomic transaction (reports/store.h). At most
 * three checkpoints are mapped at a time: the current one, the previous complete one
 * and the drift reference. One checkpoint's analysis and row are scan_ckpt.c's; --shard
 * (scan_shard.c) and MPI (scan_mpi.c) reuse them and this file's setup (scan.h). */
#include "cmd.h"
#include "error.h"
#include "scan.h"
#include "scan_mpi.h"
#include "scan_ppl.h"
#include "scan_shard.h"

#include <fnmatch.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char usage_text[] =
    "usage: ckptscope scan SOURCE -o RUN.h5 [--metrics LIST] [--branches GLOB]\n"
    "                      [--every K] [--ref REF] [--resume] [--threads N] [--quiet]\n"
    "                      [--shard I/N [--extend RUN.h5]] [--eval FILE]...\n"
    "                      [--ctx N] [--stride N] [--bos | --no-bos]\n"
    "\n"
    "Analyse the checkpoints of SOURCE in step order and write their time series to the\n"
    "HDF5 run file RUN.h5: one row per checkpoint, one column per tensor.\n"
    "\n"
    "  -o, --output RUN.h5  the run file (required); it must not exist, unless --resume\n"
    "  --metrics LIST       comma-separated metric families (default: every one built\n"
    "                       in, here '%s', and ppl when --eval is\n"
    "                       given); a resumed scan keeps the file's families\n"
    "  --eval FILE          a held-out set for the ppl family (repeat for more): a UTF-8\n"
    "                       text file, tokenised by each checkpoint's own tokenizer, or\n"
    "                       token ids (.jsonl, .u16, .u32); written to /eval/<set>/ (nll,\n"
    "                       ppl, bpb, tokens, token_nll), <set> being the file's stem\n"
    "  --ctx N, --stride N  ppl windows (default: max_position_embeddings and ctx/2)\n"
    "  --bos, --no-bos      start documents with BOS (default: add_bos_token of\n"
    "                       tokenizer_config.json, else on); see 'ckptscope ppl --help'\n"
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

volatile sig_atomic_t scan_interrupted;

static void on_signal(int sig)
{
    scan_interrupted = sig;
}

/* ---- the kill hook for the crash tests ---- */

void scan_test_point(const char *point, void *ctx)
{
    scan *sc = ctx;
    if (sc->kill_count > 0 && strcmp(point, sc->kill_point) == 0 && --sc->kill_count == 0)
        raise(SIGKILL);
    if (sc->tensor_delay_ms > 0 && strcmp(point, "tensor") == 0) {
        struct timespec d = {sc->tensor_delay_ms / 1000, sc->tensor_delay_ms % 1000 * 1000000L};
        nanosleep(&d, NULL);
    }
}

static void test_hook_init(scan *sc)
{
    const char *v = getenv("CKS_TEST_KILL_AT");
    const char *colon = v ? strchr(v, ':') : NULL;
    if (!colon || (size_t)(colon - v) >= sizeof sc->kill_point)
        return;
    memcpy(sc->kill_point, v, (size_t)(colon - v));
    sc->kill_point[colon - v] = '\0';
    sc->kill_count = strtol(colon + 1, NULL, 10);
}

/* CKS_TEST_TENSOR_DELAY_MS=n: each tensor takes n ms longer, so that tests can interrupt
 * a scan of a tiny fixture in the middle. */
static void test_delay_init(scan *sc)
{
    const char *v = getenv("CKS_TEST_TENSOR_DELAY_MS");
    long ms = v ? strtol(v, NULL, 10) : 0;
    sc->tensor_delay_ms = ms > 0 && ms < 10000 ? ms : 0;
}

/* ---- mapped checkpoints ---- */

void scan_slot_release(scan_slot *s)
{
    cks_weights_free(s->w);
    cks_ckpt_free(s->c);
    s->w = NULL;
    s->c = NULL;
    s->idx = SIZE_MAX;
}

int scan_slot_get(scan *sc, size_t idx, const size_t keep[3], const cks_weights **out)
{
    for (int i = 0; i < SCAN_SLOTS; i++) {
        if (sc->slots[i].idx == idx) {
            *out = sc->slots[i].w;
            return 0;
        }
    }
    for (int i = 0; i < SCAN_SLOTS; i++) {
        size_t k = sc->slots[i].idx;
        if (k != SIZE_MAX && k != keep[0] && k != keep[1] && k != keep[2])
            scan_slot_release(&sc->slots[i]);
    }
    for (int i = 0; i < SCAN_SLOTS; i++) {
        scan_slot *s = &sc->slots[i];
        if (s->idx != SIZE_MAX)
            continue;
        int err = cks_ckpt_open(&s->c, sc->src, idx);
        if (!err && !cks_ckpt_complete(s->c))
            err = cks_error_set(CKS_EINCOMPLETE, "%s@%s: incomplete (Git LFS objects missing)",
                                cks_source_path(sc->src), cks_source_ckpt(sc->src, idx)->name);
        if (!err)
            err = cks_weights_open(&s->w, s->c);
        if (err) {
            scan_slot_release(s);
            return err;
        }
        s->idx = idx;
        *out = s->w;
        return 0;
    }
    return cks_error_set(CKS_ERROR, "internal: no free checkpoint slot");
}

/* ---- the run file ---- */

void scan_read_config(const scan *sc, char **out)
{
    cks_ckpt *c;
    size_t len;
    *out = NULL;
    if (cks_ckpt_open(&c, sc->src, sc->sel[0]) != 0) {
        cks_error_clear();
        return; /* reported when the checkpoint is scanned */
    }
    /* the config.json limit: a larger one cannot be a valid config, and the run file's
     * readers refuse root attributes past CKS_STORE_MAX_STRING */
    cks_ckpt_read(c, "config.json", CKS_MAX_CONFIG_BYTES, out, &len);
    cks_ckpt_free(c);
    cks_error_clear();
}

int scan_adopt_metrics(scan *sc, cks_store *st)
{
    const char *path = cks_store_path(st);
    char *have = NULL;
    int err = cks_store_get_attr(st, "/", "metrics", &have);
    if (err == 0 && strcmp(have, sc->canon) != 0 && sc->o.metrics) {
        err = cks_error_set(CKS_EINVAL,
                            "%s holds the metric families '%s'; --metrics '%s' would leave "
                            "rows without them: resume with the same --metrics or write a new "
                            "file",
                            path, have, sc->o.metrics);
    } else if (err == 0 && strcmp(have, sc->canon) != 0) {
        /* the file's families, not the default */
        err = scan_groups_parse(have, sc->groups, &sc->ngroups, sc->canon, sizeof sc->canon);
        if (err)
            cks_error_prefix(err, "%s", path);
    } else if (err == CKS_ENOTFOUND) {
        err = cks_error_set(CKS_EFORMAT, "%s: run file without a 'metrics' attribute", path);
    }
    free(have);
    have = NULL;
    sc->ppl = 0;
    for (size_t g = 0; !err && g < sc->ngroups; g++)
        sc->ppl |= strcmp(sc->groups[g]->option, "ppl") == 0;
    if (!err && !sc->ppl && sc->o.neval)
        err = cks_error_set(CKS_EINVAL,
                            "%s was written without the ppl family; --eval cannot join it "
                            "(write a new file)",
                            path);
    /* the held-out sets and their protocol must be the ones the file was written with */
    if (!err && sc->ppl) {
        int e2 = cks_store_get_attr(st, "/", "eval", &have);
        if (e2 == 0 && strcmp(have, sc->eval) != 0)
            err = cks_error_set(CKS_EINVAL,
                                "%s evaluates %s; this scan's --eval/--ctx/--stride/--bos give "
                                "%s: give the same ones or write a new file",
                                path, have, sc->eval[0] ? sc->eval : "none");
        else if (e2 == CKS_ENOTFOUND)
            err =
                cks_error_set(CKS_EFORMAT, "%s: the ppl family without an 'eval' attribute", path);
        else
            err = e2;
    }
    free(have);
    return err;
}

static int open_store(scan *sc)
{
    scan_options *o = &sc->o;
    int err = cks_store_open(&sc->store, o->output, CKS_STORE_WRITE);
    if (err == 0 && !o->resume) {
        cks_store_free(sc->store);
        sc->store = NULL;
        return cks_error_set(CKS_EEXISTS,
                             "%s exists: pass --resume to continue it, or choose another -o",
                             o->output);
    }
    if (err == CKS_ENOTFOUND) {
        char *config = NULL, *abs = realpath(o->source, NULL);
        scan_read_config(sc, &config);
        /* the families are a root attribute from the start: a file killed before its
         * first checkpoint must still say what a resumed scan has to compute; a part
         * file's marks (scan_shard.h) likewise */
        const char *attrs[16] = {"metrics", sc->canon, NULL};
        size_t k = 2;
        if (sc->ppl) {
            attrs[k++] = "eval";
            attrs[k++] = sc->eval;
            attrs[k] = NULL;
        }
        if (sc->shard)
            scan_shard_attrs(sc, attrs + k, sizeof attrs / sizeof attrs[0] - k);
        cks_store_meta meta = {abs ? abs : o->source, config, NULL, attrs};
        err = cks_store_create(&sc->store, o->output, &meta);
        free(config);
        free(abs);
        return err;
    }
    if (err)
        return err;
    return scan_adopt_metrics(sc, sc->store);
}

/* ---- choosing checkpoints ---- */

static int select_checkpoints(scan *sc)
{
    size_t n = cks_source_count(sc->src), k = 0;
    if (!(sc->sel = calloc(n, sizeof *sc->sel)) || !(sc->state = calloc(n, sizeof *sc->state)))
        return cks_error_set(CKS_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i += (size_t)sc->o.every)
        sc->sel[k++] = i;
    sc->nsel = k;
    return 0;
}

/* Marks which selected checkpoints the file holds as complete with their commit. */
static int load_state(scan *sc)
{
    cks_store_ckpt *c;
    size_t n;
    int err = cks_store_checkpoints(sc->store, &c, &n);
    if (err)
        return err;
    for (size_t i = 0; i < sc->nsel; i++) {
        const cks_ckpt_info *ci = cks_source_ckpt(sc->src, sc->sel[i]);
        for (size_t r = 0; r < n; r++) {
            if (strcmp(c[r].name, ci->name) != 0 || strcmp(c[r].status, "complete") != 0)
                continue;
            sc->state[i].any = 1;
            sc->state[i].same = strcmp(c[r].commit, ci->commit ? ci->commit : "") == 0;
        }
    }
    cks_store_ckpts_free(c, n);
    return 0;
}

/* The drift reference of the run file (NULL when it has none yet). */
static int stored_ref(scan *sc, char **out)
{
    *out = NULL;
    if (sc->shard)
        return scan_shard_stored_ref(sc, out);
    int err = cks_store_get_attr(sc->store, "/drift/ref", "ref", out);
    return err == CKS_ENOTFOUND ? 0 : err;
}

int scan_choose_ref(scan *sc, const char *stored, const char *holder)
{
    int drift = 0, err = 0;
    for (size_t g = 0; g < sc->ngroups; g++)
        drift |= strcmp(sc->groups[g]->option, "drift") == 0;
    sc->ref_idx = SIZE_MAX;
    if (!drift)
        return 0;
    const char *name = stored ? stored : sc->o.ref;
    if (stored && sc->o.ref && strcmp(stored, sc->o.ref) != 0) {
        err = cks_error_set(CKS_EINVAL,
                            "%s measures drift against '%s'; --ref %s would mix references: "
                            "write a new file",
                            holder, stored, sc->o.ref);
    } else if (name) {
        size_t idx;
        const size_t keep[3] = {SIZE_MAX, SIZE_MAX, SIZE_MAX};
        const cks_weights *w;
        if ((err = cks_source_find(sc->src, name, &idx)) != 0)
            cks_error_prefix(err, "--ref");
        else if ((err = scan_slot_get(sc, idx, keep, &w)) != 0)
            cks_error_prefix(err, "reference %s", name);
        else
            sc->ref_idx = idx;
    } else {
        for (size_t i = 0; i < sc->nsel && sc->ref_idx == SIZE_MAX && !scan_interrupted; i++) {
            const size_t keep[3] = {SIZE_MAX, SIZE_MAX, SIZE_MAX};
            const cks_weights *w;
            if (scan_slot_get(sc, sc->sel[i], keep, &w) == 0)
                sc->ref_idx = sc->sel[i];
        }
        cks_error_clear();
    }
    return err;
}

static int choose_ref(scan *sc)
{
    char *stored = NULL;
    int err = stored_ref(sc, &stored);
    if (err == 0)
        err = scan_choose_ref(sc, stored, sc->o.output);
    free(stored);
    return err;
}

/* Walks the selected checkpoints. A checkpoint the file holds as complete with the same
 * commit is skipped unless something before it changed since it was written (a checkpoint
 * analysed now that was missing, incomplete, failed or of another commit), which makes its
 * drift against the previous checkpoint stale; then it is analysed again, once. */
int scan_run(scan *sc)
{
    size_t prev_pos = SIZE_MAX;
    int dirty = 0, err = 0;
    /* a reference whose commit changed makes every drift/ref value stale */
    for (size_t i = 0; i < sc->nsel; i++)
        if (sc->sel[i] == sc->ref_idx && sc->state[i].any && !sc->state[i].same)
            dirty = 2;
    for (size_t pos = 0; pos < sc->nsel && !err; pos++) {
        const scan_state *st = &sc->state[pos];
        if (scan_interrupted) {
            err = cks_error_set(CKS_EINTR, "interrupted");
            break;
        }
        if (st->same && !dirty) {
            sc->skipped++;
            prev_pos = pos;
            scan_report(sc, pos, "already complete in %s: skipped", sc->o.output);
            continue;
        }
        int complete;
        if ((err = scan_analyse(sc, pos, prev_pos, &complete)) != 0)
            break;
        sc->analysed++;
        int changed = !(st->same && complete) && (complete || st->any);
        if (dirty != 2)
            dirty = changed ? 1 : complete ? 0 : dirty;
        if (complete)
            prev_pos = pos;
    }
    cli_progress_done(&sc->prog);
    return err;
}

/* ---- the command ---- */

static int parse_args(int argc, char **argv, scan_options *o)
{
    static const struct option opts[] = {{"output", required_argument, NULL, 'o'},
                                         {"metrics", required_argument, NULL, 'm'},
                                         {"branches", required_argument, NULL, 'b'},
                                         {"every", required_argument, NULL, 'e'},
                                         {"ref", required_argument, NULL, 'r'},
                                         {"resume", no_argument, NULL, 'R'},
                                         {"threads", required_argument, NULL, 'T'},
                                         {"quiet", no_argument, NULL, 'q'},
                                         {"shard", required_argument, NULL, 's'},
                                         {"extend", required_argument, NULL, 'x'},
                                         {"eval", required_argument, NULL, 'E'},
                                         {"ctx", required_argument, NULL, 'C'},
                                         {"stride", required_argument, NULL, 'S'},
                                         {"bos", no_argument, NULL, 'B'},
                                         {"no-bos", no_argument, NULL, 'N'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int c;
    o->every = 1;
    o->bos = -1;
    o->threads = cli_default_threads();
    optind = 0;
    while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'o':
            o->output = optarg;
            break;
        case 'm':
            o->metrics = optarg;
            break;
        case 'b':
            o->branches = optarg;
            break;
        case 'e':
            if (cli_parse_int("scan", "--every", optarg, 1, CKS_MAX_CHECKPOINTS, &o->every) != 0)
                return CLI_USAGE;
            break;
        case 'r':
            o->ref = optarg;
            break;
        case 'R':
            o->resume = 1;
            break;
        case 'T':
            if (cli_parse_threads("scan", optarg, &o->threads) != 0)
                return CLI_USAGE;
            o->threads_given = 1;
            break;
        case 's':
            if (scan_shard_parse(optarg, &o->shard, &o->nshards) != 0)
                return CLI_USAGE;
            break;
        case 'x':
            o->extend = optarg;
            break;
        case 'E':
            if (o->neval == sizeof o->evals / sizeof o->evals[0])
                return cli_usage_error("scan", "more than %zu --eval files",
                                       sizeof o->evals / sizeof o->evals[0]);
            o->evals[o->neval++] = optarg;
            break;
        case 'C':
        case 'S':
            if (cli_parse_int("scan", c == 'C' ? "--ctx" : "--stride", optarg, 1, CKS_MAX_POSITIONS,
                              c == 'C' ? &o->ctx : &o->stride) != 0)
                return CLI_USAGE;
            break;
        case 'B':
        case 'N':
            o->bos = c == 'B';
            break;
        case 'q':
            o->quiet = 1;
            break;
        case 'h':
            printf(usage_text, scan_default_metrics());
            return -1;
        default:
            return cli_usage_error("scan", "unknown option");
        }
    }
    if (optind != argc - 1)
        return cli_usage_error("scan", "expected one SOURCE");
    if (!o->output)
        return cli_usage_error("scan", "the run file is required: -o RUN.h5");
    if (o->extend && !o->nshards)
        return cli_usage_error("scan", "--extend goes with --shard I/N (alone, --resume extends a "
                                       "run)");
    if (o->ctx && o->stride && o->stride > o->ctx)
        return cli_usage_error("scan", "--stride %lld is larger than --ctx %lld",
                               (long long)o->stride, (long long)o->ctx);
    o->source = argv[optind];
    return 0;
}

/* The families: --metrics, else the defaults plus ppl when --eval is given; ppl and
 * --eval go together. */
static int choose_groups(scan *sc)
{
    char list[512];
    const char *m = sc->o.metrics;
    if (!m) {
        snprintf(list, sizeof list, "%s%s", scan_default_metrics(), sc->o.neval ? ",ppl" : "");
        m = list;
    }
    int err = scan_groups_parse(m, sc->groups, &sc->ngroups, sc->canon, sizeof sc->canon);
    if (err)
        return err;
    for (size_t g = 0; g < sc->ngroups; g++)
        sc->ppl |= strcmp(sc->groups[g]->option, "ppl") == 0;
    if (sc->ppl && !sc->o.neval)
        return cks_error_set(CKS_EINVAL, "the ppl family needs held-out text: --eval FILE");
    if (!sc->ppl && sc->o.neval)
        return cks_error_set(CKS_EINVAL, "--eval feeds the ppl family: add ppl to --metrics");
    return sc->ppl ? scan_ppl_prepare(sc, sc->eval, sizeof sc->eval) : 0;
}

int scan_setup(scan *sc)
{
    size_t ref;
    int err;
    if ((err = choose_groups(sc)) ||
        (err = cks_source_open(&sc->src, sc->o.source, sc->o.branches)) ||
        (err = select_checkpoints(sc)))
        return err;
    /* a bad --ref is refused before a new run file is created */
    if (sc->o.ref && (err = cks_source_find(sc->src, sc->o.ref, &ref)) != 0)
        return cks_error_prefix(err, "--ref");
    if (sc->o.nshards && (err = scan_shard_setup(sc)) != 0)
        return err;
    if ((err = open_store(sc)) != 0 || (err = scan_shard_check_file(sc)) != 0)
        return err;
    scan_test_point("opened", sc);
    if ((err = load_state(sc)) != 0)
        return err;
    return choose_ref(sc);
}

int scan_finish(scan *sc, int err)
{
    if (err) {
        size_t rows = 0;
        if (sc->store)
            cks_store_nrows(sc->store, &rows);
        if (err == CKS_EINTR)
            cks_error_set(err,
                          "interrupted; %s keeps its %zu finished checkpoints: run again "
                          "with --resume to finish",
                          sc->o.output, rows);
        return cli_fail("scan", err);
    }
    if (!sc->o.quiet) {
        char what[128];
        if (sc->shard)
            scan_shard_describe(sc, what, sizeof what);
        else
            snprintf(what, sizeof what, "%zu checkpoints", sc->nsel);
        fprintf(stderr,
                "ckptscope scan: %s: %s: %zu analysed (%zu complete, %zu incomplete, %zu "
                "failed), %zu skipped, %.1f s\n",
                sc->o.output, what, sc->analysed, sc->complete, sc->incomplete, sc->failed,
                sc->skipped, cli_now() - sc->t_start);
    }
    return sc->failed ? CLI_USAGE : 0;
}

void scan_release(scan *sc)
{
    for (int i = 0; i < SCAN_SLOTS; i++)
        scan_slot_release(&sc->slots[i]);
    cks_store_free(sc->store);
    free(sc->sel);
    free(sc->state);
    scan_shard_free(sc->shard);
    cks_source_free(sc->src);
}

int cmd_scan(int argc, char **argv)
{
    scan sc;
    memset(&sc, 0, sizeof sc);
    for (int i = 0; i < SCAN_SLOTS; i++)
        sc.slots[i].idx = SIZE_MAX;
    int err, status = parse_args(argc, argv, &sc.o);
    if (status)
        return status < 0 ? cli_finish("scan", 0) : status;
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    scan_interrupted = 0;
    test_hook_init(&sc);
    test_delay_init(&sc);
    cli_progress_init(&sc.prog, sc.o.quiet);
    sc.t_start = cli_now();
    if (scan_mpi_launched()) {
        status = scan_mpi_main(&sc);
        goto done;
    }
    if ((err = scan_setup(&sc)) != 0) {
        status = cli_fail("scan", err);
        goto done;
    }
    cks_store_set_hook(sc.store, scan_test_point, &sc);
    status = scan_finish(&sc, sc.shard ? scan_shard_run(&sc) : scan_run(&sc));
done:
    scan_release(&sc);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    return cli_finish("scan", status);
}
