/* scan --shard I/N (see scan_shard.h): which checkpoints a shard analyses, how it finds
 * each one's previous complete checkpoint without the other shards' results, the marks
 * of its part file (reports/part.h), resuming a part, and --extend. */
#include "scan_shard.h"
#include "error.h"
#include "part.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct scan_shard {
    char shard_s[24], count_s[24];
    char *list;         /* part_checkpoints */
    char *ref;          /* the drift reference chosen at setup; "" when none */
    char *extends;      /* realpath of --extend; NULL without */
    signed char *opens; /* per selected position: 1 its weights open, 0 not, -1 not probed */
    double *part_prev;  /* per selected position: /part/prev of its row in the part (resume) */
    /* --extend: what the finished run holds, per selected position */
    unsigned char *base_complete, *base_same;
    int base_ref_stale; /* the reference's commit changed: no drift/ref value is current */
    size_t own;         /* positions of this shard */
};

int scan_shard_parse(const char *arg, int64_t *i, int64_t *n)
{
    const char *slash = strchr(arg, '/');
    char first[32];
    if (!slash || (size_t)(slash - arg) >= sizeof first)
        return cli_usage_error("scan", "--shard must be I/N with 0 <= I < N, not '%s'", arg);
    memcpy(first, arg, (size_t)(slash - arg));
    first[slash - arg] = '\0';
    if (cli_parse_int("scan", "the N of --shard I/N", slash + 1, 1, CKS_MAX_CHECKPOINTS, n) != 0 ||
        cli_parse_int("scan", "the I of --shard I/N", first, 0, *n - 1, i) != 0)
        return CLI_USAGE;
    return 0;
}

void scan_shard_free(scan_shard *sh)
{
    if (!sh)
        return;
    free(sh->list);
    free(sh->ref);
    free(sh->extends);
    free(sh->opens);
    free(sh->part_prev);
    free(sh->base_complete);
    free(sh->base_same);
    free(sh);
}

static int selection_list(const scan *sc, char **out)
{
    cks_part_ckpt *c = calloc(sc->nsel ? sc->nsel : 1, sizeof *c);
    if (!c)
        return cks_error_set(CKS_ENOMEM, "out of memory");
    for (size_t i = 0; i < sc->nsel; i++) {
        const cks_ckpt_info *ci = cks_source_ckpt(sc->src, sc->sel[i]);
        c[i] = (cks_part_ckpt){(char *)ci->name, ci->step, (char *)(ci->commit ? ci->commit : "")};
    }
    int err = cks_part_list_encode(c, sc->nsel, out);
    free(c);
    return err;
}

/* --extend RUN.h5: its families, its reference (*ref) and which selected checkpoints it
 * holds complete, with or without the current commit. */
static int load_base(scan *sc, char **ref)
{
    scan_shard *sh = sc->shard;
    const char *path = sc->o.extend;
    cks_store *b = NULL;
    cks_store_ckpt *rows = NULL;
    cks_part_info p;
    size_t n = 0;
    int err = cks_store_open(&b, path, CKS_STORE_READ);
    if (err)
        return err;
    if ((err = cks_part_read(b, &p)) == 0) {
        cks_part_info_release(&p);
        err = cks_error_set(CKS_EINVAL,
                            "%s is a part file: --extend takes a finished run (merge the parts "
                            "first)",
                            path);
        goto done;
    }
    if (err != CKS_ENOTFOUND || (err = scan_adopt_metrics(sc, b)) != 0)
        goto done;
    if ((err = cks_store_get_attr(b, "/drift/ref", "ref", ref)) == CKS_ENOTFOUND)
        err = 0;
    if (err || (err = cks_store_checkpoints(b, &rows, &n)) != 0)
        goto done;
    if (!(sh->base_complete = calloc(sc->nsel + 1, 1)) ||
        !(sh->base_same = calloc(sc->nsel + 1, 1)) || !(sh->extends = realpath(path, NULL))) {
        err = cks_error_set(CKS_ENOMEM, "%s: %s", path, "out of memory or unresolvable path");
        goto done;
    }
    for (size_t i = 0; i < sc->nsel; i++) {
        const cks_ckpt_info *ci = cks_source_ckpt(sc->src, sc->sel[i]);
        for (size_t r = 0; r < n; r++) {
            if (strcmp(rows[r].name, ci->name) != 0 || strcmp(rows[r].status, "complete") != 0)
                continue;
            sh->base_complete[i] = 1;
            sh->base_same[i] = strcmp(rows[r].commit, ci->commit ? ci->commit : "") == 0;
        }
    }
done:
    cks_store_ckpts_free(rows, n);
    cks_store_free(b);
    return err;
}

int scan_shard_setup(scan *sc)
{
    scan_shard *sh = calloc(1, sizeof *sh);
    char *base_ref = NULL;
    int err = 0;
    if (!sh)
        return cks_error_set(CKS_ENOMEM, "out of memory");
    sc->shard = sh;
    snprintf(sh->shard_s, sizeof sh->shard_s, "%lld", (long long)sc->o.shard);
    snprintf(sh->count_s, sizeof sh->count_s, "%lld", (long long)sc->o.nshards);
    if (!(sh->opens = malloc(sc->nsel + 1)) ||
        !(sh->part_prev = malloc((sc->nsel + 1) * sizeof *sh->part_prev)))
        return cks_error_set(CKS_ENOMEM, "out of memory");
    for (size_t i = 0; i < sc->nsel; i++) {
        sh->opens[i] = -1;
        sh->part_prev[i] = NAN;
    }
    for (size_t pos = (size_t)sc->o.shard; pos < sc->nsel; pos += (size_t)sc->o.nshards)
        sh->own++;
    if ((err = selection_list(sc, &sh->list)) != 0)
        return err;
    if (sc->o.extend && (err = load_base(sc, &base_ref)) != 0)
        goto done;
    /* the reference a single scan would take: every part must record the same one */
    if ((err = scan_choose_ref(sc, base_ref, sc->o.extend ? sc->o.extend : sc->o.output)) != 0)
        goto done;
    const char *ref = sc->ref_idx != SIZE_MAX ? cks_source_ckpt(sc->src, sc->ref_idx)->name : "";
    if (!(sh->ref = strdup(ref))) {
        err = cks_error_set(CKS_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; sh->base_same && i < sc->nsel; i++)
        if (sc->sel[i] == sc->ref_idx && !sh->base_same[i])
            sh->base_ref_stale = 1;
done:
    free(base_ref);
    return err;
}

void scan_shard_attrs(scan *sc, const char **attrs, size_t cap)
{
    scan_shard *sh = sc->shard;
    const char *mine[] = {CKS_PART_SHARD,
                          sh->shard_s,
                          CKS_PART_COUNT,
                          sh->count_s,
                          CKS_PART_CHECKPOINTS,
                          sh->list,
                          CKS_PART_REF,
                          sh->ref,
                          sh->extends ? CKS_PART_EXTENDS : NULL,
                          sh->extends};
    size_t k = 0;
    for (size_t i = 0; i < sizeof mine / sizeof mine[0] && mine[i] && k + 3 <= cap; i += 2) {
        attrs[k++] = mine[i];
        attrs[k++] = mine[i + 1];
    }
    attrs[k] = NULL;
}

/* The selection as part_checkpoints records it, for comparing with a resumed part. */
static int selection_info(const scan *sc, cks_part_ckpt **out)
{
    cks_part_ckpt *c = calloc(sc->nsel ? sc->nsel : 1, sizeof *c);
    if (!c)
        return cks_error_set(CKS_ENOMEM, "out of memory");
    for (size_t i = 0; i < sc->nsel; i++) {
        const cks_ckpt_info *ci = cks_source_ckpt(sc->src, sc->sel[i]);
        c[i] = (cks_part_ckpt){(char *)ci->name, ci->step, (char *)(ci->commit ? ci->commit : "")};
    }
    *out = c;
    return 0;
}

int scan_shard_check_file(scan *sc)
{
    const scan_options *o = &sc->o;
    cks_part_info p;
    cks_part_ckpt *cur = NULL;
    char diff[1024];
    int err = cks_part_read(sc->store, &p);
    if (err == CKS_ENOTFOUND)
        return !sc->shard ? 0
                          : cks_error_set(CKS_EINVAL,
                                          "%s is a whole run file, not a part: --shard writes a "
                                          "new part file (or resumes a part of the same shard)",
                                          o->output);
    if (err)
        return err;
    if (!sc->shard) {
        err = cks_error_set(CKS_EINVAL,
                            "%s is part %lld/%lld of a sharded scan: resume it with --shard "
                            "%lld/%lld, or join the parts with 'ckptscope merge'",
                            o->output, (long long)p.shard, (long long)p.count, (long long)p.shard,
                            (long long)p.count);
    } else if (p.shard != o->shard || p.count != o->nshards) {
        err = cks_error_set(CKS_EINVAL,
                            "%s is part %lld/%lld; --shard %lld/%lld would mix shards: resume "
                            "it with --shard %lld/%lld",
                            o->output, (long long)p.shard, (long long)p.count, (long long)o->shard,
                            (long long)o->nshards, (long long)p.shard, (long long)p.count);
    } else if ((err = selection_info(sc, &cur)) == 0 &&
               cks_part_list_diff(p.ckpts, p.n, o->output, cur, sc->nsel, o->source, diff,
                                  sizeof diff)) {
        err = cks_error_set(CKS_EINVAL,
                            "the checkpoints changed since %s was started (%s): scan this shard "
                            "into a new part file",
                            o->output, diff);
    } else if (!err && (!p.extends != !sc->shard->extends ||
                        (p.extends && strcmp(p.extends, sc->shard->extends) != 0))) {
        err = p.extends ? cks_error_set(CKS_EINVAL, "%s extends %s: resume it with --extend %s",
                                        o->output, p.extends, p.extends)
                        : cks_error_set(CKS_EINVAL, "%s extends no run: resume it without --extend",
                                        o->output);
    }
    free(cur);
    cks_part_info_release(&p);
    return err;
}

int scan_shard_stored_ref(scan *sc, char **out)
{
    char *v = NULL;
    int err = cks_store_get_attr(sc->store, "/", CKS_PART_REF, &v);
    *out = NULL;
    if (err == CKS_ENOTFOUND)
        return 0;
    if (err)
        return err;
    if (*v)
        *out = v;
    else
        free(v);
    return 0;
}

int scan_shard_write_row(scan *sc, size_t row, const scan_table *t, const size_t *cols)
{
    size_t n;
    int err = cks_store_ntensors(sc->store, &n);
    if (err)
        return err;
    double *v = malloc((n ? n : 1) * sizeof *v);
    if (!v)
        return cks_error_set(CKS_ENOMEM, "out of memory");
    for (size_t c = 0; c < n; c++)
        v[c] = NAN;
    for (size_t i = 0; i < t->n; i++)
        v[cols[i]] = (double)i;
    err = cks_store_write_row(sc->store, CKS_PART_ORDER, row, v, n,
                              "position of each tensor in its checkpoint's own tensor list (NaN: "
                              "not in it); merge appends columns in this order",
                              NULL);
    free(v);
    return err;
}

int scan_shard_write_prev(scan *sc, size_t row, size_t prev_pos)
{
    return cks_store_write_series(sc->store, CKS_PART_PREV, row,
                                  prev_pos == SIZE_MAX ? NAN : (double)prev_pos,
                                  "position in part_checkpoints of the checkpoint /drift/prev "
                                  "was measured against (NaN: none)",
                                  NULL);
}

/* /part/prev of the rows a resumed part holds, by selected position. */
static int load_part_prev(scan *sc)
{
    scan_shard *sh = sc->shard;
    cks_store_ckpt *rows = NULL;
    double *prev = NULL;
    size_t n = 0, r = 0, c = 0;
    int err;
    if (!cks_store_exists(sc->store, CKS_PART_PREV))
        return 0;
    if ((err = cks_store_checkpoints(sc->store, &rows, &n)) ||
        (err = cks_store_read_matrix(sc->store, CKS_PART_PREV, &prev, &r, &c)))
        goto done;
    for (size_t pos = 0; pos < sc->nsel; pos++) {
        const char *name = cks_source_ckpt(sc->src, sc->sel[pos])->name;
        for (size_t k = 0; k < n && k < r && c == 1; k++)
            if (strcmp(rows[k].name, name) == 0)
                sh->part_prev[pos] = prev[k];
    }
done:
    free(prev);
    cks_store_ckpts_free(rows, n);
    return err;
}

/* The previous complete checkpoint of selected position pos, as the single scan finds
 * it: the nearest earlier one whose weights open. Probing maps a neighbour (it is kept
 * for the drift) and reads no tensor. */
static size_t probe_prev(scan *sc, size_t pos)
{
    scan_shard *sh = sc->shard;
    for (size_t q = pos; q-- > 0;) {
        if (sh->opens[q] < 0) {
            const size_t keep[3] = {sc->sel[q], sc->ref_idx, SIZE_MAX};
            const cks_weights *w;
            sh->opens[q] = scan_slot_get(sc, sc->sel[q], keep, &w) == 0;
            cks_error_clear();
        }
        if (sh->opens[q])
            return q;
    }
    return SIZE_MAX;
}

static int same_prev(double recorded, size_t prev)
{
    return prev == SIZE_MAX ? isnan(recorded) : recorded == (double)prev;
}

/* --extend: the finished run holds pos complete, of the same commit, and measured its
 * drift against the same previous checkpoint (of the same commit) and reference. */
static int extend_done(const scan *sc, size_t pos, size_t prev)
{
    const scan_shard *sh = sc->shard;
    if (!sh->base_same || !sh->base_same[pos] || sh->base_ref_stale)
        return 0;
    size_t bprev = SIZE_MAX;
    for (size_t q = pos; q-- > 0 && bprev == SIZE_MAX;)
        if (sh->base_complete[q])
            bprev = q;
    return bprev == prev && (prev == SIZE_MAX || sh->base_same[prev]);
}

int scan_shard_run(scan *sc)
{
    scan_shard *sh = sc->shard;
    int err = load_part_prev(sc);
    for (size_t pos = (size_t)sc->o.shard; pos < sc->nsel && !err; pos += (size_t)sc->o.nshards) {
        if (scan_interrupted) {
            err = cks_error_set(CKS_EINTR, "interrupted");
            break;
        }
        size_t prev = probe_prev(sc, pos);
        if (sc->state[pos].same && same_prev(sh->part_prev[pos], prev)) {
            sc->skipped++;
            sh->opens[pos] = 1;
            scan_report(sc, pos, "already complete in %s: skipped", sc->o.output);
            continue;
        }
        if (extend_done(sc, pos, prev)) {
            sc->skipped++;
            scan_report(sc, pos, "already in %s: left out of this part", sc->o.extend);
            continue;
        }
        int complete;
        if ((err = scan_analyse(sc, pos, prev, &complete)) != 0)
            break;
        sc->analysed++;
        sh->opens[pos] = (signed char)complete;
    }
    cli_progress_done(&sc->prog);
    return err;
}

void scan_shard_describe(const scan *sc, char *buf, size_t cap)
{
    snprintf(buf, cap, "shard %lld/%lld: %zu of %zu checkpoints", (long long)sc->o.shard,
             (long long)sc->o.nshards, sc->shard->own, sc->nsel);
}
