/* Tiny LLaMA-shaped checkpoint sources for tests (see fixture.h). */
#include "fixture.h"
#include "sha256.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void cks_fx_spec_default(cks_fx_spec *s, const char *dir)
{
    memset(s, 0, sizeof *s);
    s->dir = dir;
    s->layout = CKS_FX_GIT;
    s->nckpt = 3;
    s->step_every = 100;
    s->shards = 1;
    s->lfs_missing_from = -1;
    s->seed = 1;
    s->model = (cks_fx_model){.hidden = 64,
                              .intermediate = 160,
                              .layers = 2,
                              .heads = 4,
                              .kv_heads = 2,
                              .vocab = 256,
                              .max_pos = 128,
                              .rope_theta = 10000.0,
                              .eps = 1e-5,
                              .tied = 0,
                              .dtype = CKS_DT_F32,
                              .rotary_pct = 0.25};
}

static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double gauss(uint64_t *st)
{
    double u1 = ((double)(splitmix(st) >> 11) + 1.0) / 9007199254740993.0;
    double u2 = (double)(splitmix(st) >> 11) / 9007199254740992.0;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

static uint64_t name_seed(uint64_t seed, const char *name, uint64_t salt)
{
    uint64_t h = 1469598103934665603ull ^ seed ^ (salt * 0x100000001b3ull);
    for (const char *p = name; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    return h;
}

static double round_to(cks_dtype dt, double v)
{
    switch (dt) {
    case CKS_DT_F64:
        return v;
    case CKS_DT_BF16:
        return cks_bf16_to_f32(cks_f32_to_bf16((float)v));
    case CKS_DT_F16:
        return cks_f16_to_f32(cks_f32_to_f16((float)v));
    default:
        return (float)v;
    }
}

void cks_fx_tensor_values(const cks_fx_spec *s, const char *name, int64_t n, int k, double *out)
{
    size_t len = strlen(name);
    int is_bias = len > 5 && strcmp(name + len - 5, ".bias") == 0;
    int is_norm = strstr(name, "norm") != NULL && !is_bias;
    uint64_t a = name_seed(s->seed, name, 1), b = name_seed(s->seed, name, 2);
    double t = (double)(k * (s->step_every ? s->step_every : 100)) / 1000.0;
    double sd = s->model.std > 0 ? s->model.std : 0.02;
    for (int64_t i = 0; i < n; i++) {
        double w0 = is_norm ? 1.0 + 0.05 * gauss(&a) : is_bias ? 0.1 * gauss(&a) : sd * gauss(&a);
        double d = 0.01 * gauss(&b);
        out[i] = round_to(s->model.dtype, w0 + t * d);
    }
}

static void store(cks_dtype dt, const double *v, int64_t n, unsigned char *dst)
{
    for (int64_t i = 0; i < n; i++) {
        switch (dt) {
        case CKS_DT_F64:
            memcpy(dst + 8 * i, &v[i], 8);
            break;
        case CKS_DT_BF16: {
            uint16_t h = cks_f32_to_bf16((float)v[i]);
            memcpy(dst + 2 * i, &h, 2);
            break;
        }
        case CKS_DT_F16: {
            uint16_t h = cks_f32_to_f16((float)v[i]);
            memcpy(dst + 2 * i, &h, 2);
            break;
        }
        default: {
            float f = (float)v[i];
            memcpy(dst + 4 * i, &f, 4);
            break;
        }
        }
    }
}

unsigned char *cks_fx_safetensors(const cks_fx_st_tensor *t, int n, size_t *size)
{
    json_t *hdr = json_object();
    size_t off = 0;
    json_object_set_new(hdr, "__metadata__", json_pack("{s:s}", "format", "pt"));
    for (int i = 0; i < n; i++) {
        json_t *shape = json_array();
        for (int d = 0; d < t[i].ndim; d++)
            json_array_append_new(shape, json_integer(t[i].shape[d]));
        json_object_set_new(hdr, t[i].name,
                            json_pack("{s:s, s:o, s:[I, I]}", "dtype", cks_dtype_name(t[i].dtype),
                                      "shape", shape, "data_offsets", (json_int_t)off,
                                      (json_int_t)(off + t[i].nbytes)));
        off += t[i].nbytes;
    }
    char *h = json_dumps(hdr, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(hdr);
    if (!h)
        return NULL;
    size_t hl = strlen(h), padded = (hl + 7) / 8 * 8;
    unsigned char *buf = malloc(8 + padded + off + 1);
    if (!buf) {
        free(h);
        return NULL;
    }
    for (int k = 0; k < 8; k++)
        buf[k] = (unsigned char)((uint64_t)padded >> (8 * k));
    memcpy(buf + 8, h, hl);
    memset(buf + 8 + hl, ' ', padded - hl);
    free(h);
    size_t pos = 8 + padded;
    for (int i = 0; i < n; i++) {
        if (t[i].nbytes)
            memcpy(buf + pos, t[i].data, t[i].nbytes);
        pos += t[i].nbytes;
    }
    *size = pos;
    return buf;
}

/* ---- one checkpoint's files in memory ---- */

typedef struct {
    cks_fx_file files[64];
    char names[64][64];
    int n;
} ckpt_files;

static void ckpt_files_free(ckpt_files *cf)
{
    for (int i = 0; i < cf->n; i++)
        free((void *)cf->files[i].data);
    cf->n = 0;
}

static int push_file(ckpt_files *cf, const char *name, void *data, size_t len)
{
    if (cf->n >= 64 || !data) {
        free(data);
        return -1;
    }
    snprintf(cf->names[cf->n], sizeof cf->names[cf->n], "%s", name);
    cf->files[cf->n] = (cks_fx_file){cf->names[cf->n], data, len};
    cf->n++;
    return 0;
}

/* The stored bytes of tensor x at checkpoint k (a heap buffer) and its size. */
static unsigned char *tensor_bytes(const cks_fx_spec *s, const cks_fx_tensor *x, int k,
                                   cks_fx_st_tensor *st)
{
    int64_t numel = 1;
    for (int d = 0; d < x->ndim; d++)
        numel *= x->shape[d];
    cks_dtype dt = x->fill == CKS_FX_RANDOM ? s->model.dtype : x->dtype;
    size_t es = cks_dtype_size(dt);
    unsigned char *raw = calloc((size_t)numel ? (size_t)numel : 1, es);
    double *v = malloc(((size_t)numel ? (size_t)numel : 1) * sizeof *v);
    if (!raw || !v) {
        free(raw);
        free(v);
        return NULL;
    }
    if (x->fill == CKS_FX_RANDOM) {
        cks_fx_tensor_values(s, x->name, numel, k, v);
        store(dt, v, numel, raw);
    } else if (x->fill == CKS_FX_TRIL) { /* [1, 1, P, P] of bool */
        int64_t p = x->shape[x->ndim - 1];
        for (int64_t i = 0; i < numel; i++)
            raw[i] = (i % p) <= (i / p) % p;
    } else {
        int64_t nf = x->ndim ? x->shape[0] : 1;
        for (int64_t i = 0; i < numel; i++)
            v[i] = x->fill == CKS_FX_CONST ? x->value : pow(10000.0, -(double)i / (double)nf);
        store(dt, v, numel, raw);
    }
    free(v);
    *st = (cks_fx_st_tensor){x->name, dt, x->ndim, {0}, raw, (size_t)numel * es};
    for (int d = 0; d < x->ndim; d++)
        st->shape[d] = x->shape[d];
    return raw;
}

/* One weight file (a shard or the single file) of the tensors sh, sh+shards, ... */
static int build_shard(const cks_fx_spec *s, int k, const cks_fx_tensor *ts, int nt, int sh,
                       int shards, json_t *wm, ckpt_files *cf)
{
    static cks_fx_st_tensor st[1024];
    const char *ext = s->bin ? "bin" : "safetensors", *stem = s->bin ? "pytorch_model" : "model";
    char fname[64], archive[64];
    int m = 0, rc = 0;
    for (int i = sh; i < nt && rc == 0; i += shards)
        if (!tensor_bytes(s, &ts[i], k, &st[m++]))
            rc = -1;
    if (shards == 1)
        snprintf(fname, sizeof fname, "%s.%s", stem, ext);
    else
        snprintf(fname, sizeof fname, "%s-%05d-of-%05d.%s", stem, sh + 1, shards, ext);
    snprintf(archive, sizeof archive, "%.*s", (int)(strlen(fname) - strlen(ext) - 1), fname);
    for (int i = 0; i < m; i++)
        json_object_set_new(wm, st[i].name, json_string(fname));
    size_t size = 0;
    unsigned char *buf = NULL;
    if (rc == 0)
        buf = s->bin ? cks_fx_torch_bin(st, m, archive, &size) : cks_fx_safetensors(st, m, &size);
    for (int i = 0; i < m; i++)
        free((void *)st[i].data);
    return rc == 0 ? push_file(cf, fname, buf, size) : -1;
}

static int build_ckpt(const cks_fx_spec *s, int k, ckpt_files *cf)
{
    static cks_fx_tensor ts[1024];
    int nt = cks_fx_tensors(&s->model, ts, 1024), shards = s->shards < 1 ? 1 : s->shards;
    if (nt > 1024)
        return -1;
    char *cfg = cks_fx_config_json(&s->model);
    if (push_file(cf, "config.json", cfg, cfg ? strlen(cfg) : 0) != 0)
        return -1;
    json_t *wm = json_object();
    int rc = 0;
    for (int sh = 0; sh < shards && rc == 0; sh++)
        rc = build_shard(s, k, ts, nt, sh, shards, wm, cf);
    if (rc == 0 && shards > 1) {
        json_t *ix = json_pack("{s:{s:i}, s:o}", "metadata", "total_size", 0, "weight_map", wm);
        wm = NULL;
        char *txt = json_dumps(ix, JSON_INDENT(2) | JSON_SORT_KEYS);
        json_decref(ix);
        rc = push_file(cf, s->bin ? "pytorch_model.bin.index.json" : "model.safetensors.index.json",
                       txt, txt ? strlen(txt) : 0);
    }
    json_decref(wm);
    return rc;
}

static int write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len) {
        fprintf(stderr, "fixture: cannot write %s: %s\n", path, strerror(errno));
        if (f)
            fclose(f);
        return -1;
    }
    return fclose(f) == 0 ? 0 : -1;
}

static int write_folder(const cks_fx_spec *s, int k, const ckpt_files *cf)
{
    char dir[4096], p[4200];
    snprintf(dir, sizeof dir, "%s/ckpt_%03d", s->dir, k);
    if (mkdir(dir, 0755) != 0)
        return -1;
    for (int i = 0; i < cf->n; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, cf->files[i].path);
        if (write_file(p, cf->files[i].data, cf->files[i].len) != 0)
            return -1;
    }
    return 0;
}

static int write_hf(const cks_fx_spec *s, int k, const ckpt_files *cf)
{
    char p[4096], commit[65], snap[4096];
    /* a stable 40-hex commit id derived from the checkpoint's content */
    char hex[65], seedtxt[64];
    snprintf(seedtxt, sizeof seedtxt, "ckpt-%d-%llu", k, (unsigned long long)s->seed);
    cks_sha256_hex(seedtxt, strlen(seedtxt), hex);
    snprintf(commit, sizeof commit, "%.40s", hex);
    snprintf(p, sizeof p, "%s/refs/ckpt_%03d", s->dir, k);
    char line[64];
    snprintf(line, sizeof line, "%s", commit);
    if (write_file(p, line, strlen(line)) != 0)
        return -1;
    snprintf(snap, sizeof snap, "%s/snapshots/%s", s->dir, commit);
    if (mkdir(snap, 0755) != 0)
        return -1;
    for (int i = 0; i < cf->n; i++) {
        char oid[65], blob[4200], link[4200], target[200];
        cks_sha256_hex(cf->files[i].data, cf->files[i].len, oid);
        snprintf(blob, sizeof blob, "%s/blobs/%s", s->dir, oid);
        if (access(blob, F_OK) != 0 && write_file(blob, cf->files[i].data, cf->files[i].len))
            return -1;
        snprintf(link, sizeof link, "%s/%s", snap, cf->files[i].path);
        snprintf(target, sizeof target, "../../blobs/%s", oid);
        if (symlink(target, link) != 0)
            return -1;
    }
    return 0;
}

int cks_fx_write(const cks_fx_spec *s)
{
    char p[4096];
    if (mkdir(s->dir, 0755) != 0) {
        fprintf(stderr, "fixture: cannot create %s: %s\n", s->dir, strerror(errno));
        return -1;
    }
    if (s->layout == CKS_FX_HF) {
        const char *subs[] = {"refs", "snapshots", "blobs"};
        for (int i = 0; i < 3; i++) {
            snprintf(p, sizeof p, "%s/%s", s->dir, subs[i]);
            if (mkdir(p, 0755) != 0)
                return -1;
        }
    }
    for (int k = 0; k < s->nckpt; k++) {
        ckpt_files cf = {.n = 0};
        int rc = build_ckpt(s, k, &cf);
        if (rc == 0) {
            if (s->layout == CKS_FX_FOLDER) {
                rc = write_folder(s, k, &cf);
            } else if (s->layout == CKS_FX_HF) {
                rc = write_hf(s, k, &cf);
            } else {
                static const char *const lfs[] = {"*.safetensors", NULL};
                char ref[128];
                snprintf(ref, sizeof ref, "refs/%s/ckpt_%03d",
                         s->remote ? "remotes/origin" : "heads", k);
                int skip = s->lfs && s->lfs_missing_from >= 0 && k >= s->lfs_missing_from;
                rc = cks_fx_git_commit(s->dir, s->bare, ref, cf.files, cf.n, s->lfs ? lfs : NULL,
                                       skip, NULL);
            }
        }
        ckpt_files_free(&cf);
        if (rc != 0) {
            fprintf(stderr, "fixture: failed writing checkpoint %d under %s\n", k, s->dir);
            return -1;
        }
    }
    return 0;
}
