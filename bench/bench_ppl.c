/* bench_ppl: throughput and peak memory of layer-major perplexity on a model of the
 * stories110M shape (dim 768, 12 layers, 12 heads, hidden 2048, vocab 32000; random
 * weights written once by the fixture library under --dir), next to the sgemm GFLOP/s
 * measured in the same run. It measures; it never passes or fails.
 *
 * Each evaluation (and each sgemm measurement) runs in a child process (fork), so its
 * peak RSS (wait4's ru_maxrss) is the evaluation's alone, not the fixture writer's, and
 * the parent never starts an OpenMP thread pool (which would not survive fork).
 *
 * With --family, the same shape in other model families (the fixture generator's
 * GPT-NeoX, OLMo, ... at dim 768, 12 heads, intermediate 2048), each row beside the LLaMA
 * row of the same dtype, precision and threads measured in the same run.
 *
 * --precision runs the evaluation in f32 (HF-exact) and/or bf16 arithmetic (DESIGN §5); the
 * bf16 kernel is the CPU's best unless CKS_BF16_KERNEL names one (avx512, onednn, emulated).
 * --dtypes is the stored dtype of the weights.
 *
 * usage: bench_ppl [--dir DIR] [--tokens N] [--ctx N] [--stride N] [--reps N]
 *                  [--dtypes f32,bf16] [--precision f32,bf16] [--threads 1,2]
 *                  [--family llama,gpt_neox,...] [--rss-only] [--no-rss] */
#include "error.h"
#include "fixture.h"
#include "gemm.h"
#include "ppl.h"
#include "source.h"
#include "weights.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    const char *dir;
    int64_t tokens, ctx, stride;
    int reps;
    int dt_f32, dt_bf16;
    int pr_f32, pr_bf16;
    int th1, th2;
    int rss, speed;
    const char *families[8]; /* model families to measure, llama first */
    int nfamilies;
} options;

typedef struct {
    double seconds;
    int64_t rows, scored;
    long maxrss_kb;
    double cpu;     /* user + system seconds of the child */
    double load[2]; /* 1-minute load average before and after */
    double nll;
    cks_ppl_stats st;
    int ok;
} run_result;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void model_shape(cks_fx_model *m, int layers, cks_dtype dt, const char *family)
{
    cks_fx_spec s;
    cks_fx_spec_default(&s, NULL);
    *m = s.model;
    m->hidden = 768;
    m->intermediate = 2048;
    m->layers = layers;
    m->heads = 12;
    m->kv_heads = 12;
    m->vocab = 32000;
    m->max_pos = 1024;
    m->dtype = dt;
    m->std = 0.05;
    m->family = family;
}

/* The checkpoint folder for (family, layers, dtype) into dir, written on first use (in a
 * child process, so the writer's memory never counts). */
static int ensure_model(const options *o, const char *family, int layers, cks_dtype dt, char *dir,
                        size_t cap)
{
    char st[4200];
    if (strcmp(family, "llama") == 0)
        snprintf(dir, cap, "%s/stories110m-L%d-%s", o->dir, layers, cks_dtype_name(dt));
    else
        snprintf(dir, cap, "%s/%s-L%d-%s", o->dir, family, layers, cks_dtype_name(dt));
    snprintf(st, sizeof st, "%s/ckpt_000/model.safetensors", dir);
    if (access(st, R_OK) == 0)
        return 0;
    fprintf(stderr, "bench_ppl: writing %s ...\n", dir);
    pid_t pid = fork();
    if (pid == 0) {
        cks_fx_spec s;
        cks_fx_spec_default(&s, dir);
        s.layout = CKS_FX_FOLDER;
        s.nckpt = 1;
        model_shape(&s.model, layers, dt, family);
        _exit(cks_fx_write(&s) == 0 ? 0 : 1);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* Child: one evaluation of a single document of `tokens` random ids; writes a result. */
static void child_eval(const options *o, const char *dir, int threads, cks_precision prec, int fd)
{
    cks_source *src = NULL;
    cks_ckpt *ck = NULL;
    cks_weights *w = NULL;
    cks_config cfg;
    cks_docset set;
    cks_ppl_result res;
    cks_ppl_options po;
    cks_ppl_stats st;
    run_result r = {0};
    if (cks_source_open(&src, dir, NULL) || cks_ckpt_open(&ck, src, 0) ||
        cks_ckpt_config(ck, &cfg) || cks_weights_open(&w, ck) ||
        cks_docset_init(&set, "bench", "random")) {
        fprintf(stderr, "bench_ppl: %s\n", cks_error_last());
        _exit(1);
    }
    int32_t *ids = malloc((size_t)o->tokens * sizeof *ids);
    unsigned s = 12345;
    for (int64_t i = 0; i < o->tokens; i++) {
        s = s * 1103515245u + 12345u;
        ids[i] = (int32_t)((s >> 8) % 32000u);
    }
    cks_docset_add(&set, ids, o->tokens, 0);
    free(ids);
    cks_ppl_options_default(&po, &cfg);
    po.ctx = o->ctx;
    po.stride = o->stride;
    po.bos = 0;
    po.nthreads = threads;
    po.precision = prec;
    double t0 = now();
    if (cks_ppl_evaluate(&res, w, &cfg, dir, &set, 1, &po, &st) != 0) {
        fprintf(stderr, "bench_ppl: %s\n", cks_error_last());
        _exit(1);
    }
    r.seconds = now() - t0;
    r.rows = st.rows;
    r.scored = res.tokens;
    r.nll = res.nll;
    r.st = st;
    r.ok = 1;
    if (write(fd, &r, sizeof r) != (ssize_t)sizeof r)
        _exit(1);
    _exit(0);
}

static run_result run(const options *o, const char *dir, int threads, cks_precision prec)
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
        child_eval(o, dir, threads, prec, pfd[1]);
    }
    close(pfd[1]);
    if (read(pfd[0], &r, sizeof r) != (ssize_t)sizeof r)
        r.ok = 0;
    close(pfd[0]);
    int st;
    struct rusage ru;
    wait4(pid, &st, 0, &ru);
    r.maxrss_kb = ru.ru_maxrss;
    r.cpu = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + (double)ru.ru_stime.tv_sec +
            ru.ru_stime.tv_usec * 1e-6;
    r.load[0] = before;
    getloadavg(&r.load[1], 1);
    return r;
}

/* Weight-product GFLOP/s (cks_matmul in the precision) at the biggest projection of the
 * model, measured now. */
static double gemm_peak(int threads, cks_precision prec)
{
    const int64_t M = 4096, N = 4096, K = 768; /* [gate|up] of 4096 rows */
    float *A = malloc(sizeof(float) * (size_t)(M * K)),
          *B = malloc(sizeof(float) * (size_t)(N * K)),
          *C = malloc(sizeof(float) * (size_t)(M * N));
    cks_mm mm;
    cks_wmat w;
    void *buf = NULL;
    int bad = 0;
    if (cks_mm_init(&mm, prec, CKS_BF16_AUTO) != 0 ||
        posix_memalign(&buf, 64, cks_wmat_bytes(&mm, N, K, &bad)) != 0 || bad)
        return 0;
    for (int64_t i = 0; i < M * K; i++)
        A[i] = (float)(i % 17) * 0.01f;
    for (int64_t i = 0; i < N * K; i++)
        B[i] = (float)(i % 13) * 0.01f;
    cks_wmat_init(&w, &mm, buf, N, K);
    cks_wmat_fill(&w, 0, N * K, CKS_DT_F32, B);
    double best = 1e30;
    for (int r = 0; r < 4; r++) {
        double t0 = now();
        cks_matmul(&mm, &w, 0, N, M, A, K, 0.0f, C, N, threads);
        double dt = now() - t0;
        if (r > 0 && dt < best)
            best = dt;
    }
    cks_mm_release(&mm);
    free(buf);
    free(A);
    free(B);
    free(C);
    return 2.0 * (double)M * (double)N * (double)K / best * 1e-9;
}

/* gemm_peak in a child: the parent never starts OpenMP threads, since libgomp's pool
 * does not survive fork() and a later child would hang in its first parallel region. */
static double gemm_peak_child(int threads, cks_precision prec)
{
    double gf = 0;
    int pfd[2];
    if (pipe(pfd) != 0)
        return 0;
    pid_t pid = fork();
    if (pid == 0) {
        close(pfd[0]);
        gf = gemm_peak(threads, prec);
        _exit(write(pfd[1], &gf, sizeof gf) == (ssize_t)sizeof gf ? 0 : 1);
    }
    close(pfd[1]);
    if (read(pfd[0], &gf, sizeof gf) != (ssize_t)sizeof gf)
        gf = 0;
    close(pfd[0]);
    waitpid(pid, NULL, 0);
    return gf;
}

/* Matrix-product FLOPs of the evaluation: 2·params per window row through the layers,
 * the causal attention products, 2·vocab·dim per scored row. */
static double eval_flops(const run_result *r, int layers, int64_t ctx, const char *family)
{
    const double dim = 768, hid = 2048, V = 32000;
    const double mlp = strcmp(family, "gpt_neox") == 0 ? 2 : 3; /* up, down (and gate) */
    double per_row = 2.0 * layers * (4 * dim * dim + mlp * dim * hid);
    double wins = (double)r->rows / (double)(ctx - 1), n = (double)(ctx - 1);
    double attn = wins * layers * 2.0 * 2.0 * dim * n * (n + 1) / 2; /* QKᵀ and PV */
    return per_row * (double)r->rows + attn + 2.0 * V * dim * (double)r->scored;
}

/* One family at one dtype, precision and thread count: the best of o->reps evaluations.
 * The LLaMA row (the first) sets *llama_rate; the others print their rows/s relative to
 * it. */
static int speed_row(const options *o, const char *family, cks_dtype dt, cks_precision prec, int th,
                     double *llama_rate)
{
    char dir[4096];
    if (ensure_model(o, family, 12, dt, dir, sizeof dir) != 0)
        return -1;
    run_result best = {0};
    for (int r = 0; r < o->reps; r++) {
        run_result x = run(o, dir, th, prec);
        if (x.ok && (!best.ok || x.seconds < best.seconds))
            best = x;
    }
    if (!best.ok) {
        printf("%-9s %-6s %-5s %7d   (failed)\n", family, cks_dtype_name(dt),
               cks_precision_name(prec), th);
        return 0;
    }
    double peak = gemm_peak_child(th, prec),
           gf = eval_flops(&best, 12, o->ctx, family) / best.seconds * 1e-9;
    double rate = (double)best.rows / best.seconds;
    char rel[16] = "-";
    if (strcmp(family, "llama") == 0)
        *llama_rate = rate;
    else if (*llama_rate > 0)
        snprintf(rel, sizeof rel, "%.3f", rate / *llama_rate);
    printf("%-9s %-6s %-5s %7d %9lld %9lld %12.1f %12.1f %10.1f %10.1f %9.2f %8.2f %8.1f %9s\n",
           family, cks_dtype_name(dt), cks_precision_name(prec), th, (long long)best.rows,
           (long long)best.scored, rate, (double)best.scored / best.seconds, gf, peak, gf / peak,
           best.seconds, (double)best.maxrss_kb / 1024.0, rel);
    printf("          phases (s): embed %.2f, widen %.2f, layers %.2f (attention %.2f), lm_head "
           "%.2f; CPU %.2f s (%.1f rows per CPU-second); nll %.6f; load %.2f -> %.2f\n",
           best.st.t_embed, best.st.t_widen, best.st.t_layers, best.st.t_attention, best.st.t_head,
           best.cpu, (double)best.rows / best.cpu, best.nll, best.load[0], best.load[1]);
    fflush(stdout);
    return 0;
}

static int parse(int argc, char **argv, options *o)
{
    static const struct option opts[] = {
        {"dir", 1, 0, 'd'},     {"tokens", 1, 0, 'n'},    {"ctx", 1, 0, 'c'},
        {"stride", 1, 0, 's'},  {"reps", 1, 0, 'r'},      {"dtypes", 1, 0, 'D'},
        {"threads", 1, 0, 'T'}, {"rss-only", 0, 0, 'R'},  {"no-rss", 0, 0, 'N'},
        {"family", 1, 0, 'F'},  {"precision", 1, 0, 'P'}, {0, 0, 0, 0}};
    int c;
    *o = (options){.dir = "/tmp/ckptscope-bench",
                   .tokens = 19456 + 1,
                   .ctx = 512,
                   .stride = 0,
                   .reps = 2,
                   .dt_f32 = 1,
                   .dt_bf16 = 1,
                   .pr_f32 = 1,
                   .pr_bf16 = 1,
                   .th1 = 1,
                   .th2 = 1,
                   .rss = 1,
                   .speed = 1,
                   .families = {"llama"},
                   .nfamilies = 1};
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            o->dir = optarg;
            break;
        case 'n':
            o->tokens = strtoll(optarg, NULL, 10);
            break;
        case 'c':
            o->ctx = strtoll(optarg, NULL, 10);
            break;
        case 's':
            o->stride = strtoll(optarg, NULL, 10);
            break;
        case 'r':
            o->reps = atoi(optarg);
            break;
        case 'D':
            o->dt_f32 = strstr(optarg, "f32") != NULL;
            o->dt_bf16 = strstr(optarg, "bf16") != NULL;
            break;
        case 'P':
            o->pr_f32 = strstr(optarg, "f32") != NULL;
            o->pr_bf16 = strstr(optarg, "bf16") != NULL;
            break;
        case 'T':
            o->th1 = strchr(optarg, '1') != NULL;
            o->th2 = strchr(optarg, '2') != NULL;
            break;
        case 'R':
            o->speed = 0;
            break;
        case 'N':
            o->rss = 0;
            break;
        case 'F': /* llama first: the others are measured beside it */
            for (char *t = strtok(optarg, ","); t && o->nfamilies < 8; t = strtok(NULL, ","))
                if (strcmp(t, "llama") != 0)
                    o->families[o->nfamilies++] = t;
            break;
        default:
            return -1;
        }
    }
    if (o->stride == 0)
        o->stride = o->ctx;
    return o->tokens > 1 && o->ctx > 1 && o->stride >= 1 && o->stride <= o->ctx && o->reps >= 1
               ? 0
               : -1;
}

static int speed_table(const options *o)
{
    printf("%-9s %-6s %-5s %7s %9s %9s %12s %12s %10s %10s %9s %8s %8s %9s\n", "family", "dtype",
           "prec", "threads", "rows", "scored", "rows/s", "scored/s", "GFLOP/s", "gemm", "fraction",
           "seconds", "RSS MiB", "vs llama");
    for (int d = 0; d < 2; d++) {
        cks_dtype dt = d == 0 ? CKS_DT_F32 : CKS_DT_BF16;
        if ((d == 0 && !o->dt_f32) || (d == 1 && !o->dt_bf16))
            continue;
        for (int p = 0; p < 2; p++) {
            if ((p == 0 && !o->pr_f32) || (p == 1 && !o->pr_bf16))
                continue;
            for (int th = 1; th <= 2; th++) {
                if ((th == 1 && !o->th1) || (th == 2 && !o->th2))
                    continue;
                double llama_rate = 0;
                for (int f = 0; f < o->nfamilies; f++)
                    if (speed_row(o, o->families[f], dt,
                                  p == 0 ? CKS_PRECISION_F32 : CKS_PRECISION_BF16, th,
                                  &llama_rate) != 0)
                        return 1;
            }
        }
    }
    return 0;
}

static int rss_table(const options *o)
{
    char dir[4096];
    printf("\npeak RSS of the evaluation (child process, F32 weights, 2 threads)\n");
    printf("%-7s %-5s %14s %14s\n", "layers", "prec", "weights MiB", "peak RSS MiB");
    for (int layers = 12; layers <= 24; layers += 12) {
        if (ensure_model(o, "llama", layers, CKS_DT_F32, dir, sizeof dir) != 0)
            return 1;
        char st[4200];
        struct stat sb;
        snprintf(st, sizeof st, "%s/ckpt_000/model.safetensors", dir);
        stat(st, &sb);
        for (int p = 0; p < 2; p++) {
            if ((p == 0 && !o->pr_f32) || (p == 1 && !o->pr_bf16))
                continue;
            cks_precision prec = p == 0 ? CKS_PRECISION_F32 : CKS_PRECISION_BF16;
            run_result x = run(o, dir, 2, prec);
            printf("%-7d %-5s %14.1f %14.1f\n", layers, cks_precision_name(prec),
                   (double)sb.st_size / 1048576.0, x.ok ? (double)x.maxrss_kb / 1024.0 : -1.0);
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    options o;
    if (parse(argc, argv, &o) != 0) {
        fprintf(stderr, "usage: bench_ppl [--dir DIR] [--tokens N] [--ctx N] [--stride N] "
                        "[--reps N] [--dtypes f32,bf16] [--precision f32,bf16] [--threads 1,2] "
                        "[--family llama,gpt_neox,...] [--rss-only] [--no-rss]\n");
        return 2;
    }
    mkdir(o.dir, 0755);
    double load[3] = {0};
    if (getloadavg(load, 3) < 0)
        load[0] = -1;
    printf("layer-major ppl, stories110M shape (dim 768, 12 heads, hidden 2048, vocab 32000), "
           "one document of %lld random tokens, ctx %lld, stride %lld; f32 gemm %s, bf16 kernel "
           "%s; load %.2f\n",
           (long long)o.tokens, (long long)o.ctx, (long long)o.stride,
           cks_gemm_backend_name(CKS_GEMM_DEFAULT),
           cks_bf16_kernel_name(cks_bf16_kernel_resolve(CKS_BF16_AUTO)), load[0]);
    printf("gemm: cks_matmul GFLOP/s of a 4096x4096x768 product in the row's precision, "
           "measured after the row; fraction = the evaluation's matmul GFLOP/s / that\n");
    if (o.speed && speed_table(&o) != 0)
        return 1;
    if (o.rss && rss_table(&o) != 0)
        return 1;
    return 0;
}
