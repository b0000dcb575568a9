/* Small helpers shared by the benchmarks: wall clock, page-cache warm-up, peak RSS. */
#ifndef CKS_BENCH_COMMON_H
#define CKS_BENCH_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/resource.h>
#include <time.h>

static inline double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Touches every page so the data is resident (page cache and page tables). */
static inline uint64_t bench_touch(const void *p, size_t n)
{
    const volatile unsigned char *b = p;
    uint64_t s = 0;
    for (size_t i = 0; i < n; i += 4096)
        s += b[i];
    return s;
}

static inline long bench_peak_rss_kib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

static inline void bench_machine(void)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[512];
    while (f && fgets(line, sizeof line, f)) {
        if (sizeof "model name" - 1 && line[0] == 'm' && line[5] == ' ' && line[6] == 'n') {
            printf("machine: %s", line);
            break;
        }
    }
    if (f)
        fclose(f);
    f = fopen("/proc/loadavg", "r");
    if (f && fgets(line, sizeof line, f))
        printf("load average: %s", line);
    if (f)
        fclose(f);
}

#endif
