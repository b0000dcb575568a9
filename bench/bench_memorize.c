/* bench_memorize: greedy generation for memorisation (metrics/generate.h) on a model of the
 * stories110M shape (dim 768, 12 layers, 12 heads, hidden 2048, vocab 32000; random
 * weights written once by the fixture library under --dir, the same folder bench_ppl
 * uses), N sequences × (k + l) tokens, against the ppl path (metrics/ppl.h) over the same
 * number of tokens (N documents of k + l ids, one window each) in the same run. Prints
 * tokens per second of both (generation: N · (k + l) tokens through the model, of which
 * N · l generated), the weight passes, and the peak RSS of each run at each N (a child
 * process per run, wait4's ru_maxrss): the generation's should not grow with N. It
 * measures; it never passes or fails.
 *
 * usage: bench_memorize [--dir DIR] [--samples 100,1000] [--prompt 32]
 *                       [--continuation 32] [--threads N] [--cache-mib M] [--no-ppl] */
#include "bench_common.h"
#include "error.h"
#include "fixture.h"
#include "generate.h"
#include "ppl.h"
#include "source.h"
#include "weights.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct {
    const char *dir;
    int64_t samples[4];
    int nsamples;
    int64_t k, l;
    int threads, ppl;
    size_t cache;
} options;

typedef struct {
    double seconds;
    long maxrss_kb;
    double load[2];
    cks_generate_stats gst;
    int64_t rows;
    int ok;
} run_result;

/* The checkpoint folder, written on first use in a child (its memory never counts). */
static int ensure_model(const options *o, char *dir, size_t cap)
{
    char st[4200];
    snprintf(dir, cap, "%s/stories110m-L12-BF16", o->dir);
    snprintf(st, sizeof st, "%s/ckpt_000/model.safetensors", dir);
    if (access(st, R_OK) == 0)
        return 0;
    fprintf(stderr, "bench_memorize: writing %s ...\n", dir);
    pid_t pid = fork();
    if (pid == 0) {
        cks_fx_spec s;
        cks_fx_spec_default(&s, dir);
        s.layout = CKS_FX_FOLDER;
        s.nckpt = 1;
        s.model.hidden = 768;
        s.model.intermediate = 2048;
        s.model.layers = 12;
        s.model.heads = 12;
        s.model.kv_heads = 12;
        s.model.vocab = 32000;
        s.model.max_pos = 1024;
        s.model.dtype = CKS_DT_BF16;
        s.model.std = 0.05;
        _exit(cks_fx_write(&s) == 0 ? 0 : 1);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static int32_t *random_ids(int64_t n)
{
    int32_t *ids = malloc((size_t)n * sizeof *ids);
    unsigned s = 12345;
    for (int64_t i = 0; ids && i < n; i++) {
        s = s * 1103515245u + 12345u;
        ids[i] = (int32_t)((s >> 8) % 32000u);
    }
    return ids;
}

/* Child: one generation (ppl = 0) or one ppl evaluation (ppl = 1) of n sequences. */
static void child(const options *o, const char *dir, int64_t n, int ppl, int fd)
{
    cks_source *src = NULL;
    cks_ckpt *ck = NULL;
    cks_weights *w = NULL;
    cks_config cfg;
    run_result r = {0};
    const int64_t width = o->k + o->l;
    int32_t *ids = random_ids(n * width);
    if (!ids || cks_source_open(&src, dir, NULL) || cks_ckpt_open(&ck, src, 0) ||
        cks_ckpt_config(ck, &cfg) || cks_weights_open(&w, ck)) {
        fprintf(stderr, "bench_memorize: %s\n", cks_error_last());
        _exit(1);
    }
    double t0 = bench_now();
    if (!ppl) {
        int32_t *gen = malloc((size_t)(n * o->l) * sizeof *gen);
        cks_generate_options go = {
            .k = o->k, .l = o->l, .nthreads = o->threads, .cache_max = o->cache};
        if (!gen || cks_generate(gen, w, &cfg, dir, ids, width, n, &go, &r.gst) != 0) {
            fprintf(stderr, "bench_memorize: %s\n", cks_error_last());
            _exit(1);
        }
        r.rows = n * width;
    } else {
        cks_docset set;
        cks_ppl_result res;
        cks_ppl_options po;
        cks_ppl_stats st;
        if (cks_docset_init(&set, "bench", "random") != 0)
            _exit(1);
        for (int64_t i = 0; i < n; i++)
            cks_docset_add(&set, ids + i * width, width, 0);
        cks_ppl_options_default(&po, &cfg);
        po.ctx = width;
        po.stride = width;
        po.bos = 0;
        po.nthreads = o->threads;
        if (cks_ppl_evaluate(&res, w, &cfg, dir, &set, 1, &po, &st) != 0) {
            fprintf(stderr, "bench_memorize: %s\n", cks_error_last());
            _exit(1);
        }
        r.rows = st.rows;
    }
    r.seconds = bench_now() - t0;
    r.ok = 1;
    if (write(fd, &r, sizeof r) != (ssize_t)sizeof r)
        _exit(1);
    _exit(0);
}

static run_result run(const options *o, const char *dir, int64_t n, int ppl)
{
    run_result r = {0};
    int pfd[2];
    double before = -1;
    if (pipe(pfd) != 0)
        return r;
    getloadavg(&before, 1);
    pid_t pid = fork();
    if (pid == 0) {
        close(pfd[0]);
        child(o, dir, n, ppl, pfd[1]);
    }
    close(pfd[1]);
    if (read(pfd[0], &r, sizeof r) != (ssize_t)sizeof r)
        r.ok = 0;
    close(pfd[0]);
    int st;
    struct rusage ru;
    wait4(pid, &st, 0, &ru);
    r.maxrss_kb = ru.ru_maxrss;
    r.load[0] = before;
    getloadavg(&r.load[1], 1);
    return r;
}

static int parse(int argc, char **argv, options *o)
{
    static const struct option opts[] = {
        {"dir", required_argument, NULL, 'd'},     {"samples", required_argument, NULL, 's'},
        {"prompt", required_argument, NULL, 'k'},  {"continuation", required_argument, NULL, 'l'},
        {"threads", required_argument, NULL, 't'}, {"cache-mib", required_argument, NULL, 'c'},
        {"no-ppl", no_argument, NULL, 'n'},        {NULL, 0, NULL, 0}};
    int c;
    *o = (options){.dir = "/tmp/ckptscope-bench",
                   .samples = {100, 1000},
                   .nsamples = 2,
                   .k = 32,
                   .l = 32,
                   .threads = 2,
                   .ppl = 1};
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'd') {
            o->dir = optarg;
        } else if (c == 's') {
            o->nsamples = 0;
            for (char *p = optarg; *p && o->nsamples < 4; p += strcspn(p, ","), p += *p == ',')
                o->samples[o->nsamples++] = strtoll(p, NULL, 10);
        } else if (c == 'k' || c == 'l') {
            *(c == 'k' ? &o->k : &o->l) = strtoll(optarg, NULL, 10);
        } else if (c == 't') {
            o->threads = atoi(optarg);
        } else if (c == 'c') {
            o->cache = (size_t)strtoull(optarg, NULL, 10) << 20;
        } else if (c == 'n') {
            o->ppl = 0;
        } else {
            return -1;
        }
    }
    return o->k > 0 && o->l > 0 && o->nsamples > 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    options o;
    char dir[4096];
    if (parse(argc, argv, &o) != 0) {
        fprintf(stderr, "usage: bench_memorize [--dir DIR] [--samples 100,1000] [--prompt K] "
                        "[--continuation L] [--threads N] [--cache-mib M] [--no-ppl]\n");
        return 2;
    }
    mkdir(o.dir, 0777);
    if (ensure_model(&o, dir, sizeof dir) != 0) {
        fprintf(stderr, "bench_memorize: cannot write the model under %s\n", o.dir);
        return 1;
    }
    bench_machine();
    fflush(stdout);
    printf("stories110M shape (dim 768, 12 layers, vocab 32000, bf16 weights, f32 arithmetic), "
           "prompt %lld + "
           "continuation %lld, %d threads, cache bound %zu MiB\n",
           (long long)o.k, (long long)o.l, o.threads,
           (o.cache ? o.cache : CKS_GENERATE_CACHE_MAX) >> 20);
    printf("%-10s %8s %9s %12s %10s %8s %8s %10s %13s\n", "path", "samples", "seconds", "tokens/s",
           "gen tok/s", "batch", "batches", "peak MiB", "load 1m");
    for (int i = 0; i < o.nsamples; i++) {
        for (int ppl = 0; ppl <= o.ppl; ppl++) {
            run_result r = run(&o, dir, o.samples[i], ppl);
            if (!r.ok) {
                printf("%-10s %8lld failed\n", ppl ? "ppl" : "memorize", (long long)o.samples[i]);
                continue;
            }
            char gen[32] = "-", batch[32] = "-", batches[32] = "-";
            if (!ppl) {
                snprintf(gen, sizeof gen, "%.0f", (double)(o.samples[i] * o.l) / r.seconds);
                snprintf(batch, sizeof batch, "%lld", (long long)r.gst.batch);
                snprintf(batches, sizeof batches, "%lld", (long long)r.gst.batches);
            }
            printf("%-10s %8lld %9.2f %12.0f %10s %8s %8s %10.0f %6.2f-%-6.2f\n",
                   ppl ? "ppl" : "memorize", (long long)o.samples[i], r.seconds,
                   (double)r.rows / r.seconds, gen, batch, batches, r.maxrss_kb / 1024.0, r.load[0],
                   r.load[1]);
            if (!ppl)
                printf("           prefill %.2f s, decode steps %.2f s, lm_head %.2f s; "
                       "%lld passes over the weights, caches %s\n",
                       r.gst.t_prefill, r.gst.t_decode, r.gst.t_head, (long long)r.gst.loads,
                       r.gst.cache_file ? "in a scratch file" : "in memory");
            fflush(stdout);
        }
    }
    printf("tokens/s: tokens through the model (ppl: the window rows; memorize: prompt + "
           "continuation); gen tok/s: generated tokens. Weights are read %lld times per "
           "checkpoint by generation, whatever the samples, once by ppl.\n",
           (long long)o.l);
    return 0;
}
