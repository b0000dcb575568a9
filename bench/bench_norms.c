/* Norms throughput over a page-cached, memory-mapped safetensors tensor, next to a plain
 * streaming read of the same bytes (the memory-bandwidth yardstick), for F32, BF16 and F16
 * with 1 and 2 threads. Prints GB/s of stored bytes and the fraction of the plain read. */
#include "bench_common.h"
#include "fixture.h"
#include "map.h"
#include "norms.h"
#include "safetensors.h"
#include "simd.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The yardstick: sum of 64-bit words, vectorised, threads over halves. */
CKS_CLONES static uint64_t stream_sum(const uint64_t *p, size_t n)
{
    uint64_t s[8] = {0};
    for (size_t i = 0; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++)
            s[l] += p[i + l];
    return s[0] + s[1] + s[2] + s[3] + s[4] + s[5] + s[6] + s[7];
}

static double plain_read(const void *data, size_t bytes, int threads)
{
    size_t n = bytes / 8;
    uint64_t total = 0;
    double t0 = bench_now();
#pragma omp parallel for num_threads(threads) reduction(+ : total) schedule(static)
    for (int c = 0; c < 64; c++) {
        size_t lo = n * (size_t)c / 64, hi = n * (size_t)(c + 1) / 64;
        total += stream_sum((const uint64_t *)data + lo, hi - lo);
    }
    double dt = bench_now() - t0;
    if (total == 42)
        printf(" ");
    return (double)bytes / dt / 1e9;
}

static const char *write_tensor(cks_dtype dt, int64_t numel, const char *path)
{
    size_t es = cks_dtype_size(dt), nb = (size_t)numel * es, size;
    unsigned char *raw = malloc(nb);
    uint64_t x = 12345;
    for (int64_t i = 0; i < numel; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        float v = (float)((int64_t)(x >> 40) - (1 << 23)) * 1e-9f;
        if (dt == CKS_DT_BF16 || dt == CKS_DT_F16) {
            uint16_t h = dt == CKS_DT_BF16 ? cks_f32_to_bf16(v) : cks_f32_to_f16(v);
            memcpy(raw + 2 * i, &h, 2);
        } else {
            memcpy(raw + 4 * i, &v, 4);
        }
    }
    cks_fx_st_tensor t = {
        "model.layers.0.mlp.up_proj.weight", dt, 2, {numel / 4096, 4096}, raw, nb};
    unsigned char *file = cks_fx_safetensors(&t, 1, &size);
    FILE *f = fopen(path, "wb");
    fwrite(file, 1, size, f);
    fclose(f);
    free(file);
    free(raw);
    return path;
}

int main(int argc, char **argv)
{
    int64_t mib = argc > 1 ? atoll(argv[1]) : 1024; /* stored bytes per tensor */
    const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    bench_machine();
    printf("%-6s %-8s %10s %12s %12s %9s\n", "dtype", "threads", "MiB", "read GB/s", "norms GB/s",
           "fraction");
    cks_dtype dts[3] = {CKS_DT_F32, CKS_DT_BF16, CKS_DT_F16};
    for (int d = 0; d < 3; d++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/cks-bench-norms-%d.safetensors", dir, (int)getpid());
        int64_t numel = mib * 1024 * 1024 / (int64_t)cks_dtype_size(dts[d]);
        numel -= numel % 4096;
        write_tensor(dts[d], numel, path);
        cks_map *m;
        cks_tensor_list l;
        cks_tensor_list_init(&l);
        if (cks_map_file(&m, path, NULL) != 0 || cks_safetensors_parse(m, 0, &l) != 0) {
            fprintf(stderr, "bench_norms: cannot read %s\n", path);
            return 1;
        }
        const cks_tensor *t = &l.items[0];
        bench_touch(m->data, m->size);
        for (int threads = 1; threads <= 2; threads++) {
            double best_read = 0, best = 0;
            for (int rep = 0; rep < 5; rep++) {
                double r = plain_read(t->data, t->nbytes, threads);
                best_read = r > best_read ? r : best_read;
                cks_norms nr;
                double t0 = bench_now();
                cks_norms_compute(t, threads, &nr);
                double g = (double)t->nbytes / (bench_now() - t0) / 1e9;
                best = g > best ? g : best;
            }
            printf("%-6s %-8d %10lld %12.2f %12.2f %8.0f%%\n", cks_dtype_name(dts[d]), threads,
                   (long long)(t->nbytes >> 20), best_read, best, 100 * best / best_read);
        }
        cks_tensor_list_release(&l);
        cks_map_free(m);
        unlink(path);
    }
    return 0;
}
