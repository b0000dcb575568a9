/* The MPI driver (a build with -DCKPTSCOPE_MPI=ON, started by mpirun or srun): transport
 * only. Rank 0 opens the run file, plans (plan.h, the same walk state as the serial
 * scan), hands the tasks to the other ranks as each asks for work, re-plans on what their
 * outcomes show, and records the outcomes in step order, one crash-atomic transaction per
 * checkpoint. Workers compute tasks with the engine (no run file) and send the outcomes
 * back (wire.h). A checkpoint a worker cannot read comes back failed and is recorded so;
 * a task whose previous checkpoint or reference failed comes back stale and is handed out
 * again against the right ones. A killed job leaves a run file that --resume (under MPI
 * or alone) completes.
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
 * packed outcome; the worker is then ready again); 0 -> worker: TAG_TASK (five uint64:
 * position, previous, reference, action, own) or TAG_STOP. Waiting polls with a short
 * sleep instead of blocking, because Open MPI's blocking receive spins a core that the
 * metrics need. */
#include "drive.h"
#include "error.h"
#include "map.h"
#include "wire.h"

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

#define POLL_NS           (1000 * 1000) /* 1 ms between polls for a message */
#define WINDOW_PER_WORKER 4             /* tasks ahead of the next row to write, per worker */
#define WINDOW_MIN        16            /* ... and at least this many */

int cks_scan_mpi_launched(void)
{
    /* Open MPI's mpirun, PMIx (Open MPI 4, srun --mpi=pmix), PMI-1/2 (srun, MPICH) */
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_SIZE") ||
           getenv("PMI_RANK");
}

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
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    int workers = local - any0 > 0 ? local - any0 : 1;
    cpu_set_t set;
    int mine = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : (int)online;
    if (mine > 0 && mine < online)
        return mine;
    return online / workers > 0 ? (int)(online / workers) : 1;
}

/* ---- the workers ---- */

/* What every rank must agree on before work starts: rank 0's result of setup. */
typedef struct {
    int32_t err;
    uint64_t nsel, digest;
    char canon[256];
} plan_header;

static uint64_t selection_digest(const cks_selection *sel)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < sel->n; i++) {
        const cks_ckpt_info *ci = cks_selection_info(sel, i);
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

typedef struct {
    cks_scan_cfg cfg;
    cks_selection sel;
    cks_engine *eng;
} worker;

static int worker_setup(worker *wk, const cks_scan_options *o, const cks_scan_hooks *h,
                        const plan_header *ph)
{
    int err;
    if ((err = cks_scan_cfg_init(&wk->cfg, o, h, ph->canon)) ||
        (err = cks_selection_open(&wk->sel, o)))
        return err;
    if (wk->sel.n != ph->nsel || selection_digest(&wk->sel) != ph->digest)
        return cks_error_set(CKS_EINVAL,
                             "%s: this rank sees other checkpoints than rank 0 (%zu vs %llu): "
                             "every rank must read the same source",
                             o->source, wk->sel.n, (unsigned long long)ph->nsel);
    return cks_engine_new(&wk->eng, &wk->cfg, &wk->sel);
}

/* An outside reference (position nsel) is named by its source index after the task. */
static int worker_loop(worker *wk, int rank)
{
    MPI_Send(NULL, 0, MPI_BYTE, 0, TAG_READY, MPI_COMM_WORLD);
    for (;;) {
        MPI_Status st;
        uint64_t msg[6];
        wait_message(0, &st);
        if (st.MPI_TAG == TAG_STOP) {
            MPI_Recv(NULL, 0, MPI_BYTE, 0, TAG_STOP, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            return 0;
        }
        MPI_Recv(msg, 6, MPI_UINT64_T, 0, TAG_TASK, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        cks_task t = {(size_t)msg[0], (size_t)msg[1], (size_t)msg[2], (cks_task_action)msg[3],
                      (int)msg[4]};
        wk->sel.idx[wk->sel.n] = (size_t)msg[5];
        cks_outcome o;
        cks_wbuf b = {NULL, 0, 0, 0};
        /* a worker fetches what it maps: its task's checkpoints (the next task is not
         * known until rank 0 hands it out) */
        int err = cks_engine_ahead(wk->eng, NULL, &t);
        if (!err)
            err = cks_engine_compute(wk->eng, &t, &o);
        if (err) { /* interrupted or out of memory: rank 0 keeps the task for later */
            memset(&o, 0, sizeof o);
            o.task = t;
            snprintf(o.message, sizeof o.message, "%s", cks_error_last());
        }
        if (cks_wire_pack(&o, err != 0, &b) != 0) {
            free(b.p);
            b = (cks_wbuf){NULL, 0, 0, 0};
            cks_outcome_release(&o);
            o.status = CKS_SCAN_FAILED;
            o.stale = 0;
            snprintf(o.message, sizeof o.message, "rank %d: %s", rank, cks_error_last());
            cks_wire_pack(&o, 0, &b);
        }
        cks_outcome_release(&o);
        MPI_Send(b.p, (int)b.len, MPI_BYTE, 0, TAG_RESULT, MPI_COMM_WORLD);
        free(b.p);
    }
}

/* ---- the coordinator ---- */

typedef struct {
    cks_drive *d;
    int nranks, *idle, nidle, busy;
    signed char *inflight; /* per position: handed out, its outcome not back yet */
    cks_outcome *held;     /* per position: an outcome back, waiting for its turn */
    signed char *has_held;
    size_t cursor, window; /* rows before cursor are written */
} coord;

static int interrupted(const cks_scan_hooks *h)
{
    return h->interrupted && *h->interrupted;
}

/* An outcome back still stands for the planned task at pos. */
static int held_stands(const coord *c, size_t pos)
{
    const cks_outcome *o = &c->held[pos];
    return c->has_held[pos] &&
           cks_task_stands(&c->d->w.tasks[pos], &o->task, o->status == CKS_SCAN_COMPLETE);
}

static void drop_held(coord *c, size_t pos)
{
    if (c->has_held[pos])
        cks_outcome_release(&c->held[pos]);
    c->has_held[pos] = 0;
}

/* Writes the planned tasks at the head of the plan whose outcomes are back, in order. */
static int write_ready(coord *c)
{
    cks_walk *w = &c->d->w;
    const cks_scan_hooks *h = c->d->cfg.h;
    int err = 0;
    for (size_t i = c->cursor; i < w->plan.ntasks && !err; i++) {
        const cks_task *t = &w->tasks[i];
        if (cks_walk_stands(w, i)) {
        } else if (t->action != CKS_TASK_RUN) {
            cks_record_skip(&c->d->rec, t);
            cks_walk_executed(w, t, 0);
        } else if (held_stands(c, i)) {
            const cks_outcome *o = &c->held[i];
            if (o->status == CKS_SCAN_COMPLETE && h->point)
                h->point(h->ctx, "analysed");
            if ((err = cks_record(&c->d->rec, o)) == 0)
                cks_walk_executed(w, t, o->status == CKS_SCAN_COMPLETE);
            drop_held(c, i);
        } else {
            break;
        }
        if (!err && i == c->cursor)
            c->cursor++;
    }
    return err;
}

/* Hands the tasks of the window that are not out, or back, to idle workers. */
static void hand_out(coord *c)
{
    cks_walk *w = &c->d->w;
    size_t end = c->cursor + c->window < w->plan.ntasks ? c->cursor + c->window : w->plan.ntasks;
    for (size_t i = c->cursor; i < end && c->nidle > 0; i++) {
        const cks_task *t = &w->tasks[i];
        if (t->action != CKS_TASK_RUN || cks_walk_stands(w, i) || c->inflight[i] ||
            held_stands(c, i))
            continue;
        drop_held(c, i);
        uint64_t msg[6] = {t->pos,    t->prev,          t->ref,
                           t->action, (uint64_t)t->own, c->d->sel.idx[c->d->sel.n]};
        MPI_Send(msg, 6, MPI_UINT64_T, c->idle[--c->nidle], TAG_TASK, MPI_COMM_WORLD);
        c->inflight[i] = 1;
        c->busy++;
    }
}

static int receive(coord *c, const MPI_Status *st)
{
    int n = 0, interrupted_out = 0, err = 0;
    MPI_Get_count(st, MPI_BYTE, &n);
    char *msg = malloc(n > 0 ? (size_t)n : 1);
    if (!msg)
        return cks_error_set(CKS_ENOMEM, "out of memory");
    MPI_Recv(msg, n, MPI_BYTE, st->MPI_SOURCE, st->MPI_TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    c->idle[c->nidle++] = st->MPI_SOURCE;
    if (st->MPI_TAG == TAG_RESULT) {
        cks_outcome o;
        c->busy--;
        err = cks_wire_unpack(msg, (size_t)n, c->d->sel.n, c->d->cfg.nvals, st->MPI_SOURCE, &o,
                              &interrupted_out);
        if (!err && !c->inflight[o.task.pos]) {
            cks_outcome_release(&o);
            err = cks_error_set(CKS_EFORMAT, "rank %d returned a checkpoint it was not given",
                                st->MPI_SOURCE);
        } else if (!err) {
            c->inflight[o.task.pos] = 0;
            if (interrupted_out) {
                if (!interrupted(c->d->cfg.h))
                    err = cks_error_set(CKS_EIO, "rank %d: %s", st->MPI_SOURCE, o.message);
                cks_outcome_release(&o);
            } else {
                cks_walk_learn_outcome(&c->d->w, &o);
                if (o.stale) {
                    cks_walk_warn_stale(&o, &c->d->sel, c->d->cfg.h);
                    cks_outcome_release(&o);
                } else {
                    drop_held(c, o.task.pos);
                    c->held[o.task.pos] = o;
                    c->has_held[o.task.pos] = 1;
                }
            }
        }
    }
    free(msg);
    return err;
}

/* Probes the checkpoint the plan needs to go on, on rank 0 (its weights open or not;
 * nothing is read). */
static void probe(coord *c)
{
    char msg[1200];
    cks_avail a;
    cks_engine_probe(c->d->eng, c->d->w.plan.need, &a, msg, sizeof msg);
    cks_walk_learn(&c->d->w, c->d->w.plan.need, a, msg);
}

static int coordinate(coord *c)
{
    cks_walk *w = &c->d->w;
    const cks_scan_hooks *h = c->d->cfg.h;
    int err = 0, nworkers = c->nranks - 1;
    while (!err) {
        cks_walk_plan(w);
        if ((err = cks_walk_ref_error(w, &c->d->sel)) || (err = write_ready(c)))
            break;
        int over = interrupted(h);
        if (!over) {
            hand_out(c);
            if (w->plan.need != CKS_PLAN_NONE && c->nidle > 0 &&
                w->plan.need < c->cursor + c->window) {
                probe(c);
                continue;
            }
        }
        if (c->busy == 0 && (over || (w->plan.need == CKS_PLAN_NONE && c->cursor == w->in.n)))
            break;
        if (c->busy == 0 && w->plan.need != CKS_PLAN_NONE) {
            probe(c);
            continue;
        }
        MPI_Status st;
        wait_message(-1, &st);
        err = receive(c, &st);
    }
    /* finish what is out (written when it can be), then stop */
    while (c->busy > 0 || c->nidle < nworkers) {
        MPI_Status st;
        wait_message(-1, &st);
        int e = receive(c, &st);
        cks_walk_plan(w);
        if (!err)
            err = e ? e : write_ready(c);
    }
    for (int r = 1; r < c->nranks; r++)
        MPI_Send(NULL, 0, MPI_BYTE, r, TAG_STOP, MPI_COMM_WORLD);
    if (!err && interrupted(h))
        err = cks_error_set(CKS_EINTR, "interrupted");
    return err;
}

static int coordinator(cks_drive *d, int nranks)
{
    coord c;
    size_t n = d->sel.n;
    memset(&c, 0, sizeof c);
    c.d = d;
    c.nranks = nranks;
    c.window = (size_t)(nranks - 1) * WINDOW_PER_WORKER;
    if (c.window < WINDOW_MIN)
        c.window = WINDOW_MIN;
    int err = 0;
    if (!(c.idle = calloc((size_t)nranks, sizeof *c.idle)) || !(c.inflight = calloc(n + 1, 1)) ||
        !(c.held = calloc(n + 1, sizeof *c.held)) || !(c.has_held = calloc(n + 1, 1)))
        err = cks_error_set(CKS_ENOMEM, "out of memory");
    if (!err)
        err = coordinate(&c);
    for (size_t i = 0; c.has_held && i < n; i++)
        drop_held(&c, i);
    free(c.idle);
    free(c.inflight);
    free(c.held);
    free(c.has_held);
    return err;
}

/* ---- every rank ---- */

static int run_rank0(cks_drive *d, int nranks, plan_header *ph)
{
    int err = cks_drive_open(d, NULL);
    if (!err) {
        ph->nsel = d->sel.n;
        ph->digest = selection_digest(&d->sel);
        snprintf(ph->canon, sizeof ph->canon, "%s", d->cfg.canon);
    }
    ph->err = err;
    MPI_Bcast(ph, (int)sizeof *ph, MPI_BYTE, 0, MPI_COMM_WORLD);
    int any = 0, none = 0;
    MPI_Allreduce(&none, &any, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (!err && any)
        err = cks_error_set(any, "a rank could not set up (its error is above); nothing was "
                                 "analysed");
    return err ? err : coordinator(d, nranks);
}

static int run_worker(const cks_scan_options *o, const cks_scan_hooks *h, int rank,
                      cks_scan_summary *sum)
{
    plan_header ph;
    worker wk;
    int mine = 0, any = 0;
    memset(&wk, 0, sizeof wk);
    MPI_Bcast(&ph, (int)sizeof ph, MPI_BYTE, 0, MPI_COMM_WORLD);
    ph.canon[sizeof ph.canon - 1] = '\0';
    if (ph.err == 0)
        mine = worker_setup(&wk, o, h, &ph);
    MPI_Allreduce(&mine, &any, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    int err = mine;
    if (ph.err || (any && !mine)) {
        sum->error_reported = 1; /* rank 0 says why */
        err = CKS_EINVAL;
    } else if (!any) {
        err = worker_loop(&wk, rank);
    }
    cks_engine_free(wk.eng);
    cks_selection_release(&wk.sel);
    cks_scan_cfg_release(&wk.cfg);
    return err;
}

int cks_scan_mpi(const cks_scan_options *opts, const cks_scan_hooks *hooks, cks_scan_summary *sum)
{
    int provided, rank, nranks, err;
    cks_scan_options o = *opts;
    cks_scan_hooks h = *hooks;
    /* OpenMP threads compute, only the main thread calls MPI */
    MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
    /* Open MPI may install its own SIGBUS handler (a backtrace printer): a checkpoint file
     * that shrinks while mapped must still fail only that checkpoint */
    cks_map_guard_install();
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);
    if (!o.threads_given)
        o.threads = default_threads(rank);
    memset(sum, 0, sizeof *sum);
    if (o.nshards) {
        err = cks_error_set(CKS_EINVAL, "--shard splits a scan across separate jobs; under MPI "
                                        "the ranks share one scan: drop --shard");
        sum->error_reported = rank != 0;
    } else if (rank != 0) {
        h.progress = NULL; /* rank 0 reports */
        h.row = NULL;
        h.fetch = NULL;
        err = run_worker(&o, &h, rank, sum);
    } else {
        cks_drive d;
        if ((err = cks_drive_begin(&d, &o, &h, sum)) != 0) {
            plan_header ph;
            memset(&ph, 0, sizeof ph);
            ph.err = err ? err : CKS_ERROR;
            if (nranks > 1) {
                int none = 0, any;
                MPI_Bcast(&ph, (int)sizeof ph, MPI_BYTE, 0, MPI_COMM_WORLD);
                MPI_Allreduce(&none, &any, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
            }
        } else if (nranks == 1) { /* nobody to hand work to: the serial scan */
            err = cks_drive_serial(&d);
        } else {
            err = run_rank0(&d, nranks, &(plan_header){0});
        }
        cks_drive_end(&d);
    }
    sum->rank = rank;
    MPI_Finalize();
    return err;
}
