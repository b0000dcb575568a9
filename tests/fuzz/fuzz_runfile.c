/* Fuzz target: a run file (HDF5) read the way `report` and `plot` read it: opened through
 * the run view (store.h reader API), its checkpoints and tensors, every row-indexed
 * dataset in full, by row and for "has values", the attributes, and the checkpoint report
 * (JSON and text). The first byte chooses what the rest is:
 *   even: the bytes of an HDF5 file, written to a temporary file as found on disk; this
 *         mostly exercises the HDF5 library's own parser, which is not our code (see
 *         tests/fuzz/README.md for what it does with hostile bytes);
 *   odd:  a recipe (recipe() below) that builds a well-formed HDF5 file with hostile
 *         content through the raw HDF5 API: tables with odd rows and types, datasets of
 *         any rank, shape and type at the paths ckptscope reads, odd attributes. That is
 *         where ckptscope's side of the API is tested.
 * After each input no HDF5 object may stay open (a leaked id is a bug of ours). */
#include "check.h"
#include "fuzz.h"
#include "report.h"
#include "runview.h"
#include "store.h"

#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static char dir[4096], path[4200];

static void cleanup(void)
{
    unlink(path);
    rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *t = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/cks-fuzz-runfile-XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(dir)) {
        perror("fuzz_runfile: mkdtemp");
        abort();
    }
    snprintf(path, sizeof path, "%s/run.h5", dir);
    atexit(cleanup);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    return 0;
}

/* ---- the recipe: input bytes read by a cursor that yields zeros past the end ---- */

typedef struct {
    const uint8_t *p;
    size_t n, at;
} cursor;

static unsigned u8(cursor *c)
{
    return c->at < c->n ? c->p[c->at++] : 0;
}

static int64_t i64(cursor *c)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)u8(c) << (8 * i);
    return (int64_t)v;
}

/* A short string: one of a few meaningful words, or raw bytes (any byte but NUL). */
static void str(cursor *c, const char *const *words, size_t nwords, char *out, size_t cap)
{
    unsigned k = u8(c);
    if (words && k < 2 * nwords) {
        snprintf(out, cap, "%s", words[k % nwords]);
        return;
    }
    size_t len = (k & 31) < cap ? (k & 31) : cap - 1, i;
    for (i = 0; i < len; i++) {
        unsigned b = u8(c);
        out[i] = (char)(b ? b : 'x');
    }
    out[i] = '\0';
}

static const char *const tensor_names[] = {"model.embed_tokens.weight",
                                           "model.layers.0.self_attn.q_proj.weight",
                                           "model.layers.1.mlp.down_proj.weight",
                                           "model.layers.0.input_layernorm.weight",
                                           "model.norm.weight",
                                           "lm_head.weight"};
static const char *const kinds[] = {"q",          "k",       "v",         "o",        "gate",
                                    "up",         "down",    "attn_norm", "mlp_norm", "embed",
                                    "final_norm", "lm_head", "other"};
static const char *const statuses[] = {"complete", "incomplete", "failed"};
static const char *const paths[] = {
    "/norms/fro",          "/norms/rms",
    "/norms/nan",          "/drift/prev/rel_fro",
    "/drift/ref/rel_fro",  "/drift/prev/cos",
    "/spectral/alpha",     "/spectral/stable_rank",
    "/spectral/sigma_max", "/spectra/model.layers.0.self_attn.q_proj.weight",
    "/eval/wiki/ppl",      "/eval/wiki/bpb",
    "/eval/wiki/nll",      "/eval/wiki/token_nll",
    "/evals/arc/acc",      "/evals/arc/acc_stderr",
    "/evals/arc",          "/norms",
    "/checkpoints",        "/tensors"};
static const char *const axes[] = {"checkpoint,tensor", "checkpoint", "checkpoint,rank",
                                   "checkpoint,token", "tensor"};

static void attr_str(hid_t obj, const char *name, const char *value)
{
    hid_t t = H5Tcopy(H5T_C_S1), sp = H5Screate(H5S_SCALAR);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    if (H5Aexists(obj, name) > 0)
        H5Adelete(obj, name);
    hid_t a = H5Acreate2(obj, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    if (a >= 0) {
        H5Awrite(a, t, &value);
        H5Aclose(a);
    }
    H5Sclose(sp);
    H5Tclose(t);
}

static void attr_i64(hid_t obj, const char *name, int64_t v)
{
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    if (a >= 0) {
        H5Awrite(a, H5T_NATIVE_INT64, &v);
        H5Aclose(a);
    }
    H5Sclose(sp);
}

static hid_t vstr(void)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    return t;
}

static hid_t lcpl(void)
{
    hid_t p = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(p, 1);
    return p;
}

/* /checkpoints or /tensors: n records, some field left out or of another type on request. */
static void table(hid_t f, cursor *c, int tensors)
{
    enum { MAXR = 8 };
    unsigned flags = u8(c), n = u8(c) % MAXR;
    char s[4][MAXR][40];
    const char *sp[4][MAXR];
    int64_t a[MAXR], b[MAXR];
    int32_t layer[MAXR];
    for (unsigned r = 0; r < n; r++) {
        str(c, tensors ? tensor_names : NULL, tensors ? 6 : 0, s[0][r], sizeof s[0][r]);
        if (!tensors && (u8(c) & 1))
            snprintf(s[0][r], sizeof s[0][r], "ckpt_%03u", r);
        str(c, tensors ? kinds : statuses, tensors ? 13 : 3, s[1][r], sizeof s[1][r]);
        str(c, NULL, 0, s[2][r], sizeof s[2][r]);
        str(c, NULL, 0, s[3][r], sizeof s[3][r]);
        for (int k = 0; k < 4; k++)
            sp[k][r] = s[k][r];
        a[r] = (u8(c) & 1) ? (int64_t)(r * 100) : i64(c);
        b[r] = i64(c);
        layer[r] = (u8(c) & 1) ? (int32_t)(r / 2) : (int32_t)i64(c);
    }
    /* the file type: a packed compound of the fields kept */
    hid_t st = vstr(), num = (flags & 4) ? H5T_STD_I16LE : H5T_STD_I64LE;
    const char *names[5];
    hid_t types[5];
    int nf = 0;
    if (tensors) {
        const char *nm[] = {"name", "layer", "kind", "rows", "cols"};
        hid_t ty[] = {st, (flags & 8) ? H5T_IEEE_F64LE : H5T_STD_I32LE, st, num, num};
        for (int k = 0; k < 5; k++)
            if (!(flags & (16 << (k % 4))) || k == 0) {
                names[nf] = nm[k];
                types[nf++] = ty[k];
            }
    } else {
        const char *nm[] = {"name", "step", "commit", "status", "analysed_at"};
        hid_t ty[] = {(flags & 2) ? H5T_STD_I64LE : st, num, st, st, st};
        for (int k = 0; k < 5; k++)
            if (!(flags & (16 << (k % 4))) || k == 0) {
                names[nf] = nm[k];
                types[nf++] = ty[k];
            }
    }
    size_t off = 0, size = 0;
    for (int k = 0; k < nf; k++)
        size += H5Tget_size(types[k]);
    hid_t ft = H5Tcreate(H5T_COMPOUND, size);
    for (int k = 0; k < nf; k++) {
        H5Tinsert(ft, names[k], off, types[k]);
        off += H5Tget_size(types[k]);
    }
    /* the memory type: the same fields from arrays of records */
    typedef struct {
        const char *s0;
        int64_t a;
        const char *s1, *s2, *s3;
        int64_t b;
        int32_t layer;
        double fl;
    } rec;
    rec recs[MAXR];
    hid_t mt = H5Tcreate(H5T_COMPOUND, sizeof(rec));
    for (int k = 0; k < nf; k++) {
        const char *nm = names[k];
        int is_str = H5Tget_class(types[k]) == H5T_STRING;
        size_t o =
            strcmp(nm, "name") == 0                                ? HOFFSET(rec, s0)
            : strcmp(nm, "kind") == 0 || strcmp(nm, "commit") == 0 ? HOFFSET(rec, s1)
            : strcmp(nm, "status") == 0                            ? HOFFSET(rec, s2)
            : strcmp(nm, "analysed_at") == 0                       ? HOFFSET(rec, s3)
            : strcmp(nm, "layer") == 0
                ? (H5Tget_class(types[k]) == H5T_FLOAT ? HOFFSET(rec, fl) : HOFFSET(rec, layer))
            : strcmp(nm, "cols") == 0 ? HOFFSET(rec, b)
                                      : HOFFSET(rec, a);
        hid_t m = is_str                                ? st
                  : H5Tget_class(types[k]) == H5T_FLOAT ? H5T_NATIVE_DOUBLE
                  : o == HOFFSET(rec, layer)            ? H5T_NATIVE_INT32
                  : strcmp(nm, "name") == 0             ? H5T_NATIVE_INT64
                                                        : H5T_NATIVE_INT64;
        if (strcmp(nm, "name") == 0 && !is_str)
            o = HOFFSET(rec, a);
        H5Tinsert(mt, nm, o, m);
    }
    for (unsigned r = 0; r < n; r++)
        recs[r] = (rec){sp[0][r], a[r], sp[1][r], sp[2][r],
                        sp[3][r], b[r], layer[r], (double)layer[r] + 0.5};
    hsize_t dims = n, maxd = H5S_UNLIMITED, chunk = 8;
    hid_t space = H5Screate_simple(1, &dims, &maxd), dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 1, &chunk);
    hid_t d = H5Dcreate2(f, tensors ? "/tensors" : "/checkpoints", ft, space, H5P_DEFAULT, dcpl,
                         H5P_DEFAULT);
    if (d >= 0) {
        if (n)
            H5Dwrite(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, recs);
        H5Dclose(d);
    }
    H5Pclose(dcpl);
    H5Sclose(space);
    H5Tclose(mt);
    H5Tclose(ft);
    H5Tclose(st);
}

/* One dataset at one of the paths ckptscope reads: rank 0..3, small dimensions around the
 * table lengths, float64, float32, int32 or string, values from the input (NaN, Inf and
 * denormals included), with the attributes the store writes (or odd ones). */
static void dataset(hid_t f, cursor *c)
{
    char p[300], word[40];
    unsigned k = u8(c);
    if (k < 2 * (sizeof paths / sizeof paths[0]))
        snprintf(p, sizeof p, "%s", paths[k % (sizeof paths / sizeof paths[0])]);
    else {
        str(c, NULL, 0, word, sizeof word);
        snprintf(p, sizeof p, "/%s/%s", (k & 1) ? "evals" : "spectra", word);
    }
    unsigned shape = u8(c), type = u8(c) % 4;
    int rank = (int)(shape % 4);
    hsize_t dims[3] = {u8(c) % 10, u8(c) % 10, u8(c) % 4}, maxd[3], chunk[3];
    hsize_t cells = 1;
    for (int i = 0; i < rank; i++) {
        cells *= dims[i];
        maxd[i] = H5S_UNLIMITED;
        chunk[i] = dims[i] ? dims[i] : 1;
    }
    hid_t ft = type == 0   ? H5T_IEEE_F64LE
               : type == 1 ? H5T_IEEE_F32LE
               : type == 2 ? H5T_STD_I32LE
                           : vstr();
    hid_t space =
        rank ? H5Screate_simple(rank, dims, (shape & 16) ? maxd : NULL) : H5Screate(H5S_SCALAR);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE), lp = lcpl();
    if (rank && (shape & 16))
        H5Pset_chunk(dcpl, rank, chunk);
    if (shape & 32) { /* a fill value for the unwritten cells */
        double fill = NAN;
        if (type < 2)
            H5Pset_fill_value(dcpl, H5T_NATIVE_DOUBLE, &fill);
    }
    hid_t d = H5Dcreate2(f, p, ft, space, lp, dcpl, H5P_DEFAULT);
    if (d >= 0) {
        if (!(shape & 64) && type < 3 && cells <= 1024) {
            double *v = calloc(cells ? cells : 1, sizeof *v);
            for (hsize_t i = 0; v && i < cells; i++) {
                unsigned b = u8(c);
                v[i] = b == 255   ? NAN
                       : b == 254 ? INFINITY
                       : b == 253 ? -INFINITY
                       : b == 252 ? 5e-324
                       : b == 251 ? 1e308
                                  : (double)b / 8 - 4;
            }
            if (v && cells)
                H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
            free(v);
        }
        unsigned at = u8(c);
        if (at & 1) {
            str(c, axes, 5, word, sizeof word);
            attr_str(d, "axes", word);
        }
        if (at & 2) {
            str(c, NULL, 0, word, sizeof word);
            attr_str(d, "description", word);
        }
        if (at & 4) {
            str(c, NULL, 0, word, sizeof word);
            attr_str(d, "unit", word);
        }
        if (at & 8)
            attr_i64(d, "axes", i64(c));
        H5Dclose(d);
    }
    if (type == 3)
        H5Tclose(ft);
    H5Pclose(lp);
    H5Pclose(dcpl);
    H5Sclose(space);
}

static int recipe(const uint8_t *data, size_t size)
{
    cursor c = {data, size, 0};
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0)
        return -1;
    unsigned flags = u8(&c);
    char s[40];
    if (flags & 1) {
        str(&c, NULL, 0, s, sizeof s);
        attr_str(f, "format", s);
    } else {
        attr_str(f, "format", CKS_STORE_FORMAT);
    }
    if (flags & 2)
        attr_str(f, "format_version", "1");
    else
        attr_i64(f, "format_version", (flags & 4) ? i64(&c) : CKS_STORE_FORMAT_VERSION);
    static const char *const root_attrs[] = {"source", "config", "created_by", "metrics"};
    static const char *const root_values[] = {"norms,drift,spectral", "{\"hidden_size\": 8}", "{",
                                              "ckptscope 0.1.0", "/src"};
    for (int i = 0; i < 4; i++) {
        if (flags & (8 << i)) {
            str(&c, root_values, 5, s, sizeof s);
            attr_str(f, root_attrs[i], s);
        }
    }
    if (!(flags & 128)) {
        table(f, &c, 0);
        table(f, &c, 1);
    }
    for (int i = 0; i < 16 && c.at < c.n; i++)
        dataset(f, &c);
    if (u8(&c) & 1) {
        hid_t g = H5Gopen2(f, "/drift/ref", H5P_DEFAULT);
        if (g >= 0) {
            str(&c, NULL, 0, s, sizeof s);
            attr_str(g, "ref", s);
            H5Gclose(g);
        }
    }
    H5Fclose(f);
    H5Eclear2(H5E_DEFAULT);
    return 0;
}

/* ---- the reader side ---- */

static void read_all(cks_runview *v)
{
    char **ds = NULL;
    size_t nds = 0;
    if (cks_store_row_datasets(v->store, &ds, &nds) != 0) {
        cks_error_clear();
        nds = 0;
    }
    size_t latest = cks_runview_latest(v);
    FUZZ_REQUIRE(latest < v->n);
    for (size_t i = 0; i < nds; i++) {
        double *m = NULL;
        size_t cols = 0;
        (void)cks_runview_has_values(v, ds[i]);
        int err = cks_runview_read(v, ds[i], 0, &m, &cols);
        if (err == 0)
            free(m);
        else
            fuzz_check_refusal(err, path);
        m = NULL;
        if ((err = cks_runview_read_at(v, ds[i], latest, &m, &cols)) == 0)
            free(m);
        else
            fuzz_check_refusal(err, path);
        char *a = NULL;
        if ((err = cks_runview_attr(v, ds[i], "unit", &a)) == 0)
            free(a);
        else
            fuzz_check_refusal(err, path);
    }
    cks_store_names_free(ds, nds);
    static const char *const root[] = {"source", "config", "created_by", "metrics"};
    for (int i = 0; i < 4; i++) {
        char *a = NULL;
        if (cks_runview_attr(v, "/", root[i], &a) == 0)
            free(a);
        cks_error_clear();
    }
    const char *groups[] = {"/evals", "/eval", "/spectra"};
    for (int i = 0; i < 3; i++) {
        char **names = NULL;
        size_t n = 0;
        if (cks_store_list(v->store, groups[i], &names, &n) == 0)
            cks_store_names_free(names, n);
        cks_error_clear();
    }
    for (int f = CKS_REPORT_TEXT; f <= CKS_REPORT_HTML; f++) {
        cks_buf b;
        cks_buf_init(&b);
        if (cks_report_checkpoint(v, f == CKS_REPORT_JSON ? 0 : latest, (cks_report_format)f, &b))
            cks_error_clear();
        cks_buf_release(&b);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int recipes_only = -1;
    if (recipes_only < 0) /* CI: only well-formed files of hostile content (README.md) */
        recipes_only = getenv("CKS_FUZZ_RUNFILE_RECIPES_ONLY") != NULL;
    if (size < 1)
        return 0;
    if ((data[0] & 1) || recipes_only) {
        if (recipe(data + 1, size - 1) != 0)
            return 0;
    } else {
        FILE *f = fopen(path, "wb");
        FUZZ_REQUIRE(f && fwrite(data + 1, 1, size - 1, f) == size - 1 && fclose(f) == 0);
    }
    cks_runview *v;
    int err = cks_runview_open(&v, path);
    if (err) {
        fuzz_check_refusal(err, path);
    } else {
        read_all(v);
        cks_runview_free(v);
    }
    FUZZ_REQUIRE(H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL) == 0);
    return 0;
}
