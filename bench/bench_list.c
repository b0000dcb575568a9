/* `list` on a K2-like repository: 360 checkpoint branches, each with config.json, a shard
 * index and 3 safetensors shards stored as Git LFS pointers (objects present). Times the
 * library path (open the source, list every checkpoint's files with LFS checks) and,
 * when given the ckptscope executable, the whole command. */
#include "bench_common.h"
#include "fixture.h"
#include "source.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    int n = 360;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/cks-bench-list-%d", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp",
             (int)getpid());
    bench_machine();
    double t0 = bench_now();
    for (int k = 0; k < n; k++) {
        char ref[64], cfg[64], shard[3][256], index[512];
        cks_fx_file f[5];
        snprintf(ref, sizeof ref, "refs/heads/ckpt_%03d", k);
        snprintf(cfg, sizeof cfg, "{\"hidden_size\": 8192, \"ckpt\": %d}", k);
        snprintf(
            index, sizeof index,
            "{\"weight_map\": {\"a\": \"model-00001-of-00003.safetensors\", \"b\": "
            "\"model-00002-of-00003.safetensors\", \"c\": \"model-00003-of-00003.safetensors\"}}");
        f[0] = (cks_fx_file){"config.json", cfg, strlen(cfg)};
        f[1] = (cks_fx_file){"model.safetensors.index.json", index, strlen(index)};
        for (int s = 0; s < 3; s++) {
            snprintf(shard[s], sizeof shard[s], "shard %d of checkpoint %d", s, k);
            static const char *names[3] = {"model-00001-of-00003.safetensors",
                                           "model-00002-of-00003.safetensors",
                                           "model-00003-of-00003.safetensors"};
            f[2 + s] = (cks_fx_file){names[s], shard[s], strlen(shard[s])};
        }
        static const char *const lfs[] = {"*.safetensors", NULL};
        if (cks_fx_git_commit(dir, 0, ref, f, 5, lfs, 0, NULL) != 0)
            return 1;
    }
    printf("built %d branches in %.1f s\n", n, bench_now() - t0);

    for (int rep = 0; rep < 3; rep++) {
        t0 = bench_now();
        cks_source *s;
        if (cks_source_open(&s, dir, NULL) != 0)
            return 1;
        size_t files = 0;
        for (size_t i = 0; i < cks_source_count(s); i++) {
            cks_ckpt *c;
            if (cks_ckpt_open(&c, s, i) != 0)
                return 1;
            files += cks_ckpt_nfiles(c);
            cks_ckpt_free(c);
        }
        size_t nck = cks_source_count(s);
        cks_source_free(s);
        printf("library: %zu checkpoints, %zu files listed in %.3f s\n", nck, files,
               bench_now() - t0);
    }
    if (argc > 1) {
        char cmd[8400];
        snprintf(cmd, sizeof cmd, "%s list %s --json > /dev/null", argv[1], dir);
        for (int rep = 0; rep < 3; rep++) {
            t0 = bench_now();
            if (system(cmd) != 0)
                return 1;
            printf("ckptscope list --json: %.3f s\n", bench_now() - t0);
        }
    }
    snprintf(dir + strlen(dir), sizeof dir - strlen(dir), "%s", "");
    char rm[4200];
    snprintf(rm, sizeof rm, "rm -rf %s", dir);
    return system(rm) == 0 ? 0 : 1;
}
