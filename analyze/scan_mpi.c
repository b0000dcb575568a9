/* scan under MPI (see scan_mpi.h). Rank 0 is the coordinator and the only writer: it
 * opens the source and the run file, plans the checkpoints exactly as the serial loop
 * walks them (same skips on --resume, same previous checkpoint for each), hands them to
 * the other ranks as each one asks for work, and writes the results in step order, one
 * crash-atomic store transaction per checkpoint. Workers open the source themselves,
 * compute a checkpoint's rows with scan_compute() (no run file) and send them back; a
 * checkpoint a worker cannot read comes back as "failed" with its error, is recorded so,
 * and the run goes on. A killed job leaves a run file that `--resume` (under MPI or
 * alone) completes.
 *
 * Why serial HDF5 on rank 0, not parallel HDF5: the rows are small (a K2 checkpoint is
 * ~170 KiB of values after reading ~130 GB of weights), so writing is never the
 * bottleneck; the store's guarantee (a kill at any moment leaves the previous or the next
 * complete file) comes from copy + fsync + rename, which parallel HDF5 cannot give (MPI-IO
 * writes in place, with no journal in HDF5 1.10); and parallel HDF5 makes every dataset
 * creation and extension collective, which would force all ranks to step together and
 * defeat the dynamic hand-out that balances uneven checkpoints. It also keeps one HDF5
 * flavour (Debian's serial libhdf5, the one h5py uses) for both builds.
 *
 * Messages (MPI_COMM_WORLD, bytes): worker -> 0: TAG_READY (empty, once), TAG_RESULT (a
 * packed outcome; the worker is then ready again); 0 -> worker: TAG_TASK (two uint64:
 * position, previous position) or TAG_STOP. Waiting polls with a short sleep instead of
 * blocking, because Open MPI's blocking receive spins a core that the metrics need. */
#include "scan_mpi.h"
#include "error.h"
#include "map.h"

#include <limits.h>
#include <mpi.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TAG_READY  1
#define TAG_TASK   2
#define TAG_RESULT 3
#define TAG_STOP   4

#define POLL_NS             (1000 * 1000) /* 1 ms between polls for a message */
#define WINDOW_PER_WORKER   4             /* results held for in-order writing, per worker ... */
#define WINDOW_MIN          16            /* ... and at least this many */
#define MAX_MESSAGE         INT_MAX
#define OUTCOME_INTERRUPTED 3 /* status of a result whose computation was interrupted */

int scan_mpi_launched(void)
{
    /* Open MPI's mpirun, PMIx (Open MPI 4, srun --mpi=pmix), PMI-1/2 (srun, MPICH) */
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_SIZE") ||
           getenv("PMI_RANK");
}

/* ---- waiting ---- */

/* Waits for a message of any tag from any rank (from a given one when src >= 0). */
static void wait_message(int src, MPI_Status *st)
{
    const struct timespec nap = {0, POLL_NS};
    for (;;) {
        int flag = 0;
        MPI_Iprobe(src >= 0 ? src : MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, st);
        if (flag)
            return;
        nanosleep(&nap, NULL);
    }
}

/* ---- outcomes on the wire ---- */

typedef struct {
    char *p;
    size_t len, cap;
    int oom;
} wbuf;

static void put(wbuf *b, const void *v, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, v, n);
    b->len += n;
}

static void put_u64(wbuf *b, uint64_t v)
{
    put(b, &v, sizeof v);
}

static void put_str(wbuf *b, const char *s)
{
    size_t n = strlen(s);
    put_u64(b, n);
    put(b, s, n);
}

/* status, pos, prev, bytes, seconds, message, then for a complete checkpoint: the
 * tensors (name, kind, layer, rows, cols), the values, has_top and the top spectra. */
static int pack(const scan_outcome *o, int status, wbuf *b)
{
    const scan_table *t = &o->t;
    put_u64(b, (uint64_t)status);
    put_u64(b, o->pos);
    put_u64(b, o->prev_pos);
    put(b, &o->bytes, sizeof o->bytes);
    put(b, &o->seconds, sizeof o->seconds);
    put_str(b, o->message);
    if (status == SCAN_COMPLETE) {
        put_u64(b, t->n);
        put_u64(b, t->nvals);
        for (size_t i = 0; i < t->n; i++) {
            const cks_store_tensor *c = &t->cols[i];
            int64_t layer = c->layer;
            put_str(b, c->name);
            put_str(b, c->kind);
            put(b, &layer, sizeof layer);
            put(b, &c->rows, sizeof c->rows);
            put(b, &c->cols, sizeof c->cols);
        }
        put(b, t->vals, t->nvals * t->n * sizeof *t->vals);
        for (size_t i = 0; i < t->n; i++) {
            unsigned char h = (unsigned char)(t->has_top[i] != 0);
            put(b, &h, 1);
        }
        for (size_t i = 0; i < t->n; i++)
            if (t->has_top[i])
                put(b, t->top + i * SCAN_SPECTRA_K, SCAN_SPECTRA_K * sizeof *t->top);
        /* the ppl family: per set its values, then its per-token losses (-1: none) */
        put_u64(b, t->nsets);
        put(b, t->ppl_vals, t->nsets * SCAN_PPL_VALUES * sizeof *t->ppl_vals);
        for (size_t i = 0; i < t->nsets; i++) {
            int64_t k = t->token_nll[i] ? t->ntok[i] : -1;
            put(b, &k, sizeof k);
            if (k > 0)
                put(b, t->token_nll[i], (size_t)k * sizeof *t->token_nll[i]);
        }
    }
    if (b->oom || b->len > MAX_MESSAGE)
        return cks_error_set(CKS_ENOMEM, "cannot pack the result of a checkpoint (%zu bytes)",
                             b->len);
    return 0;
}

typedef struct {
    const char *p;
    size_t len, at;
    int bad;
} rbuf;

static void get(rbuf *b, void *v, size_t n)
{
    if (b->bad || n > b->len - b->at) {
        b->bad = 1;
        memset(v, 0, n);
        return;
    }
    memcpy(v, b->p + b->at, n);
    b->at += n;
}

static uint64_t get_u64(rbuf *b)
{
    uint64_t v;
    get(b, &v, sizeof v);
    return v;
}

/* A string of the message, copied into *dst (advanced) inside the table's storage. */
static const char *get_str(rbuf *b, char **dst, const char *end)
{
    uint64_t n = get_u64(b);
    if (b->bad || n > b->len - b->at || n >= (uint64_t)(end - *dst)) {
        b->bad = 1;
        return "";
    }
    char *s = *dst;
    get(b, s, (size_t)n);
    s[n] = '\0';
    *dst += n + 1;
    return s;
}

static int unpack(const scan *sc, const char *msg, size_t len, int rank, scan_outcome *o,
                  int *status)
{
    rbuf b = {msg, len, 0, 0};
    char scratch[sizeof o->message], *sp = scratch;
    memset(o, 0, sizeof *o);
    *status = (int)get_u64(&b);
    o->pos = get_u64(&b);
    o->prev_pos = get_u64(&b);
    get(&b, &o->bytes, sizeof o->bytes);
    get(&b, &o->seconds, sizeof o->seconds);
    snprintf(o->message, sizeof o->message, "%s", get_str(&b, &sp, scratch + sizeof scratch));
    o->rank = rank;
    o->status = *status == SCAN_INCOMPLETE ? SCAN_INCOMPLETE
                : *status == SCAN_FAILED   ? SCAN_FAILED
                                           : SCAN_COMPLETE;
    if (!b.bad && (*status < 0 || *status > OUTCOME_INTERRUPTED || o->pos >= sc->nsel ||
                   (o->prev_pos != SIZE_MAX && o->prev_pos >= o->pos)))
        b.bad = 1;
    if (!b.bad && *status == SCAN_COMPLETE) {
        uint64_t n = get_u64(&b), nvals = get_u64(&b);
        int err;
        /* each tensor takes at least 40 bytes of the message: n is bounded by it */
        if (b.bad || n > len / 40)
            goto bad;
        if ((err = scan_table_alloc(sc, (size_t)n, &o->t)) != 0)
            return err;
        if (nvals != o->t.nvals || !(o->t.strings = malloc(len + 1)))
            goto bad;
        char *dst = o->t.strings, *end = o->t.strings + len + 1;
        for (size_t i = 0; i < n && !b.bad; i++) {
            cks_store_tensor *c = &o->t.cols[i];
            int64_t layer;
            c->name = (char *)get_str(&b, &dst, end);
            c->kind = (char *)get_str(&b, &dst, end);
            get(&b, &layer, sizeof layer);
            get(&b, &c->rows, sizeof c->rows);
            get(&b, &c->cols, sizeof c->cols);
            c->layer = (int32_t)layer;
        }
        get(&b, o->t.vals, o->t.nvals * o->t.n * sizeof *o->t.vals);
        for (size_t i = 0; i < n && !b.bad; i++) {
            unsigned char h;
            get(&b, &h, 1);
            o->t.has_top[i] = h != 0;
        }
        for (size_t i = 0; i < n && !b.bad; i++)
            if (o->t.has_top[i])
                get(&b, o->t.top + i * SCAN_SPECTRA_K, SCAN_SPECTRA_K * sizeof *o->t.top);
        if (get_u64(&b) != o->t.nsets)
            goto bad;
        get(&b, o->t.ppl_vals, o->t.nsets * SCAN_PPL_VALUES * sizeof *o->t.ppl_vals);
        for (size_t i = 0; i < o->t.nsets && !b.bad; i++) {
            int64_t k;
            get(&b, &k, sizeof k);
            if (b.bad || k < -1 || (k > 0 && (uint64_t)k > (len - b.at) / sizeof(float)))
                goto bad;
            o->t.ntok[i] = k < 0 ? 0 : k;
            if (k < 0)
                continue;
            if (!(o->t.token_nll[i] = malloc(k ? (size_t)k * sizeof(float) : 1)))
                goto bad;
            get(&b, o->t.token_nll[i], (size_t)k * sizeof(float));
        }
    }
    if (!b.bad && b.at == len)
        return 0;
bad:
    scan_table_release(&o->t);
    return cks_error_set(CKS_EFORMAT, "rank %d sent a malformed result (%zu bytes)", rank, len);
}

/* ---- threads ---- */

/* --threads by default: a rank bound to some CPUs by the launcher uses those; an unbound
 * one shares the node's CPUs with the other workers of its node (rank 0 only waits). */
static int default_threads(int rank)
{
    MPI_Comm node;
    int local = 1, here0 = rank == 0, any0 = 0;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node);
    MPI_Comm_size(node, &local);
    MPI_Allreduce(&here0, &any0, 1, MPI_INT, MPI_MAX, node);
    MPI_Comm_free(&node);
    int workers = local - any0 > 0 ? local - any0 : 1, online = cli_default_threads();
    cpu_set_t set;
    int mine = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : online;
    if (mine > 0 && mine < online)
        return mine;
    return online / workers > 0 ? online / workers : 1;
}

/* ---- the workers ---- */

/* What every rank must agree on before work starts: rank 0's result of setup. */
typedef struct {
    int32_t err;
    uint64_t ref_idx, nsel, digest;
    char canon[256];
} plan_header;

static uint64_t selection_digest(const scan *sc)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < sc->nsel; i++) {
        const cks_ckpt_info *ci = cks_source_ckpt(sc->src, sc->sel[i]);
        const char *parts[] = {ci->name, ci->commit ? ci->commit : ""};
        for (int k = 0; k < 2; k++)
            for (const unsigned char *p = (const unsigned char *)parts[k];; p++) {
                h = (h ^ *p) * 1099511628211ull;
                if (!*p)
                    break;
            }
    }
    return h;
}

static int worker_setup(scan *sc, const plan_header *h)
{
    int err;
    if ((err =
             scan_groups_parse(h->canon, sc->groups, &sc->ngroups, sc->canon, sizeof sc->canon)) ||
        (err = cks_source_open(&sc->src, sc->o.source, sc->o.branches)))
        return err;
    for (size_t g = 0; g < sc->ngroups; g++)
        sc->ppl |= strcmp(sc->groups[g]->option, "ppl") == 0;
    if (sc->ppl && !sc->o.neval) /* every rank runs the same command line */
        return cks_error_set(CKS_EINVAL, "the ppl family needs --eval on every rank");
    size_t n = cks_source_count(sc->src), k = 0;
    if (!(sc->sel = calloc(n ? n : 1, sizeof *sc->sel)))
        return cks_error_set(CKS_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i += (size_t)sc->o.every)
        sc->sel[k++] = i;
    sc->nsel = k;
    if (sc->nsel != h->nsel || selection_digest(sc) != h->digest)
        return cks_error_set(CKS_EINVAL,
                             "%s: this rank sees other checkpoints than rank 0 (%zu vs %llu): "
                             "every rank must read the same source",
                             sc->o.source, sc->nsel, (unsigned long long)h->nsel);
    sc->ref_idx = h->ref_idx == UINT64_MAX ? SIZE_MAX : (size_t)h->ref_idx;
    if (sc->ref_idx != SIZE_MAX && sc->ref_idx >= n)
        return cks_error_set(CKS_EINVAL, "internal: reference %zu out of range", sc->ref_idx);
    return 0;
}

static int worker_loop(scan *sc, int rank)
{
    MPI_Send(NULL, 0, MPI_BYTE, 0, TAG_READY, MPI_COMM_WORLD);
    for (;;) {
        MPI_Status st;
        uint64_t task[2];
        wait_message(0, &st);
        if (st.MPI_TAG == TAG_STOP) {
            MPI_Recv(NULL, 0, MPI_BYTE, 0, TAG_STOP, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            return 0;
        }
        MPI_Recv(task, 2, MPI_UINT64_T, 0, TAG_TASK, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        scan_outcome o;
        wbuf b = {NULL, 0, 0, 0};
        int err = scan_compute(sc, (size_t)task[0],
                               task[1] == UINT64_MAX ? SIZE_MAX : (size_t)task[1], &o);
        if (err) { /* interrupted or out of memory: rank 0 keeps the checkpoint for later */
            memset(&o, 0, sizeof o);
            o.pos = (size_t)task[0];
            o.prev_pos = SIZE_MAX;
            snprintf(o.message, sizeof o.message, "%s", cks_error_last());
        }
        if (pack(&o, err ? OUTCOME_INTERRUPTED : (int)o.status, &b) != 0) {
            free(b.p);
            b = (wbuf){NULL, 0, 0, 0};
            snprintf(o.message, sizeof o.message, "rank %d: %s", rank, cks_error_last());
            pack(&o, SCAN_FAILED, &b);
        }
        scan_table_release(&o.t);
        MPI_Send(b.p, (int)b.len, MPI_BYTE, 0, TAG_RESULT, MPI_COMM_WORLD);
        free(b.p);
    }
}

/* ---- the coordinator ---- */

typedef enum { T_PLANNED, T_SKIP, T_RUNNING, T_DONE } task_state;

typedef struct {
    size_t pos, prev;
    task_state state;
    int status; /* T_DONE: the outcome's status or OUTCOME_INTERRUPTED */
    scan_outcome o;
} task;

typedef struct {
    scan *sc;
    int nranks;
    task *tasks; /* in plan order (step order) */
    size_t ntasks, next_write, window;
    int *idle; /* stack of ranks waiting for work */
    int nidle, busy;
    /* the serial loop's walk (cmd_scan.c's scan_run), one step at a time */
    size_t plan_pos, prev_pos;
    int dirty, planned_all;
} coord;

/* Weights of selected checkpoint pos open (probed on rank 0, which reads no tensor). */
static int probe(scan *sc, size_t pos)
{
    const size_t keep[3] = {sc->sel[pos], sc->ref_idx, SIZE_MAX};
    const cks_weights *w;
    int ok = scan_slot_get(sc, sc->sel[pos], keep, &w) == 0;
    cks_error_clear();
    return ok;
}

/* The next checkpoint to hand out, as scan_run would meet it: skips are queued for
 * their report line; a checkpoint to analyse is probed so that the next one's previous
 * checkpoint is known now. 0 when the walk is over. */
static int plan_next(coord *c, task **out)
{
    scan *sc = c->sc;
    while (c->plan_pos < sc->nsel) {
        size_t pos = c->plan_pos++;
        const scan_state *st = &sc->state[pos];
        task *t = &c->tasks[c->ntasks++];
        memset(t, 0, sizeof *t);
        t->pos = pos;
        t->prev = c->prev_pos;
        if (st->same && !c->dirty) {
            t->state = T_SKIP;
            c->prev_pos = pos;
            continue;
        }
        int complete = probe(sc, pos);
        int changed = !(st->same && complete) && (complete || st->any);
        if (c->dirty != 2)
            c->dirty = changed ? 1 : complete ? 0 : c->dirty;
        if (complete)
            c->prev_pos = pos;
        t->state = T_PLANNED;
        *out = t;
        return 1;
    }
    c->planned_all = 1;
    return 0;
}

/* Writes the finished tasks at the head of the plan, in order. */
static int write_ready(coord *c)
{
    scan *sc = c->sc;
    int err = 0;
    while (c->next_write < c->ntasks && !err) {
        task *t = &c->tasks[c->next_write];
        if (t->state == T_SKIP) {
            sc->skipped++;
            scan_report(sc, t->pos, "already complete in %s: skipped", sc->o.output);
        } else if (t->state == T_DONE && t->status == OUTCOME_INTERRUPTED) {
            err = cks_error_set(CKS_EINTR, "interrupted");
        } else if (t->state == T_DONE) {
            if ((err = scan_record(sc, &t->o)) == 0)
                sc->analysed++;
            scan_table_release(&t->o.t);
        } else {
            break;
        }
        if (!err)
            c->next_write++;
    }
    return err;
}

static int receive(coord *c, const MPI_Status *st)
{
    int n = 0, status, err = 0;
    MPI_Get_count(st, MPI_BYTE, &n);
    char *msg = malloc(n > 0 ? (size_t)n : 1);
    if (!msg)
        return cks_error_set(CKS_ENOMEM, "out of memory");
    MPI_Recv(msg, n, MPI_BYTE, st->MPI_SOURCE, st->MPI_TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    c->idle[c->nidle++] = st->MPI_SOURCE;
    if (st->MPI_TAG == TAG_RESULT) {
        scan_outcome o;
        c->busy--;
        if ((err = unpack(c->sc, msg, (size_t)n, st->MPI_SOURCE, &o, &status)) == 0) {
            task *t = NULL;
            for (size_t i = c->next_write; i < c->ntasks && !t; i++)
                if (c->tasks[i].pos == o.pos && c->tasks[i].state == T_RUNNING)
                    t = &c->tasks[i];
            if (!t) {
                scan_table_release(&o.t);
                err = cks_error_set(CKS_EFORMAT, "rank %d returned a checkpoint it was not given",
                                    st->MPI_SOURCE);
            } else {
                t->o = o;
                t->status = status;
                t->state = T_DONE;
                if (status == OUTCOME_INTERRUPTED && !scan_interrupted)
                    err = cks_error_set(CKS_EIO, "rank %d: %s", st->MPI_SOURCE, o.message);
            }
        }
    }
    free(msg);
    return err;
}

static int coordinate(coord *c)
{
    scan *sc = c->sc;
    int err = 0, nworkers = c->nranks - 1;
    while (!err) {
        while (c->nidle > 0 && !scan_interrupted && !c->planned_all &&
               c->ntasks - c->next_write < c->window) {
            task *t;
            if (!plan_next(c, &t))
                break;
            uint64_t msg[2] = {t->pos, t->prev == SIZE_MAX ? UINT64_MAX : t->prev};
            MPI_Send(msg, 2, MPI_UINT64_T, c->idle[--c->nidle], TAG_TASK, MPI_COMM_WORLD);
            t->state = T_RUNNING;
            c->busy++;
        }
        if ((err = write_ready(c)) != 0)
            break;
        int over = c->planned_all || scan_interrupted;
        if (over && c->busy == 0 && c->nidle == nworkers)
            break;
        MPI_Status st;
        wait_message(-1, &st);
        err = receive(c, &st);
    }
    /* finish what is running (its results are written when they can be), then stop */
    while (c->busy > 0 || c->nidle < nworkers) {
        MPI_Status st;
        wait_message(-1, &st);
        int e = receive(c, &st);
        if (!err)
            err = e ? e : write_ready(c);
    }
    for (int r = 1; r < c->nranks; r++)
        MPI_Send(NULL, 0, MPI_BYTE, r, TAG_STOP, MPI_COMM_WORLD);
    if (!err && scan_interrupted)
        err = cks_error_set(CKS_EINTR, "interrupted");
    for (size_t i = c->next_write; i < c->ntasks; i++)
        scan_table_release(&c->tasks[i].o.t);
    cli_progress_done(&sc->prog);
    return err;
}

static int coordinator(scan *sc, int nranks, int setup_err)
{
    coord c;
    memset(&c, 0, sizeof c);
    c.sc = sc;
    c.nranks = nranks;
    c.prev_pos = SIZE_MAX;
    c.window = (size_t)(nranks - 1) * WINDOW_PER_WORKER;
    if (c.window < WINDOW_MIN)
        c.window = WINDOW_MIN;
    if (setup_err)
        return setup_err;
    if (!(c.tasks = calloc(sc->nsel + 1, sizeof *c.tasks)) ||
        !(c.idle = calloc((size_t)nranks, sizeof *c.idle)))
        return cks_error_set(CKS_ENOMEM, "out of memory");
    for (size_t i = 0; i < sc->nsel; i++)
        if (sc->sel[i] == sc->ref_idx && sc->state[i].any && !sc->state[i].same)
            c.dirty = 2; /* as scan_run: a changed reference makes every drift/ref stale */
    int err = coordinate(&c);
    free(c.tasks);
    free(c.idle);
    return err;
}

int scan_mpi_main(scan *sc)
{
    int provided, rank, nranks, status;
    /* OpenMP threads compute, only the main thread calls MPI */
    MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
    /* Open MPI may install its own SIGBUS handler (a backtrace printer): a checkpoint file
     * that shrinks while mapped must still fail only that checkpoint */
    cks_map_guard_install();
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);
    if (!sc->o.threads_given)
        sc->o.threads = default_threads(rank);
    if (sc->o.nshards) {
        if (rank == 0)
            cli_usage_error("scan", "--shard splits a scan across separate jobs; under MPI the "
                                    "ranks share one scan: drop --shard");
        MPI_Finalize();
        return CLI_USAGE;
    }
    if (nranks == 1) { /* nobody to hand work to: the serial scan */
        int err = scan_setup(sc);
        if (!err)
            cks_store_set_hook(sc->store, scan_test_point, sc);
        status = err ? cli_fail("scan", err) : scan_finish(sc, scan_run(sc));
        MPI_Finalize();
        return status;
    }
    plan_header h;
    memset(&h, 0, sizeof h);
    if (rank == 0) {
        h.err = scan_setup(sc);
        if (h.err == 0) {
            cks_store_set_hook(sc->store, scan_test_point, sc);
            h.ref_idx = sc->ref_idx == SIZE_MAX ? UINT64_MAX : sc->ref_idx;
            h.nsel = sc->nsel;
            h.digest = selection_digest(sc);
            snprintf(h.canon, sizeof h.canon, "%s", sc->canon);
        }
    } else {
        sc->o.quiet = 1; /* rank 0 reports */
        cli_progress_init(&sc->prog, 1);
    }
    MPI_Bcast(&h, (int)sizeof h, MPI_BYTE, 0, MPI_COMM_WORLD);
    int mine = 0, any = 0;
    if (rank != 0 && h.err == 0 && (mine = worker_setup(sc, &h)) != 0)
        fprintf(stderr, "ckptscope scan: rank %d: error: %s\n", rank, cks_error_last());
    MPI_Allreduce(&mine, &any, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (rank == 0) {
        int err = h.err;
        if (!err && any)
            err = cks_error_set(any, "a rank could not set up (its error is above); nothing was "
                                     "analysed");
        status = scan_finish(sc, coordinator(sc, nranks, err));
    } else {
        status = h.err || any ? CLI_USAGE : worker_loop(sc, rank);
    }
    MPI_Finalize();
    return status;
}
