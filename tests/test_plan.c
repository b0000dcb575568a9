/* The scan planner (analyze/engine/plan.h) over a table of cases: gaps, failed
 * and incomplete checkpoints, --resume after re-uploads and new rows, --extend, shard
 * I/N with recorded previous checkpoints, and the reference (auto, fixed, outside the
 * selection, failed). Each expected plan is written out by hand from the rules in
 * plan.h and DESIGN §3-§4; the resume cases are the ones tests/cli/test_scan.py and
 * test_mpi.py run end to end. No subprocess, no file. */
#include "plan.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#define N CKS_PLAN_NONE

typedef struct {
    const char *name;
    /* one character per position: avail ?=unknown o=opens c=complete i=incomplete
     * f=failed; file and base -=none s=same commit x=other commit */
    const char *avail, *file, *base;
    const char *file_prev; /* parts: digit or '.' per position (NULL: none recorded) */
    int uses_prev;
    cks_ref_mode ref_mode;
    size_t ref;
    cks_avail ref_avail;
    size_t shard, nshards;
    /* expected: per planned position "<action><prev>" with action r(un) s(kip)
     * u (reuse) and prev a digit or '.', separated by spaces */
    const char *want;
    size_t need, want_ref;
    int ref_failed;
} plan_case;

static const plan_case cases[] = {
    /* a new scan: the automatic reference must be known first */
    {"fresh: probe the reference", "????", "----", NULL, NULL, 1, CKS_REF_AUTO, 0, 0, 0, 0, "", 0,
     N, 0},
    {"fresh, all open", "oooo", "----", NULL, NULL, 1, CKS_REF_AUTO, 0, 0, 0, 0, "r. r0 r1 r2", N,
     0, 0},
    /* serially the next checkpoint's outcome is learnt by analysing it */
    {"serial: stop at the first unknown", "cc??", "----", NULL, NULL, 1, CKS_REF_AUTO, 0, 0, 0, 0,
     "r. r0 r1", 2, 0, 0},
    {"the last one may stay unknown", "cc?", "---", NULL, NULL, 1, CKS_REF_AUTO, 0, 0, 0, 0,
     "r. r0 r1", N, 0, 0},
    {"gaps: incomplete and failed are nobody's previous", "cicfc", "-----", NULL, NULL, 1,
     CKS_REF_AUTO, 0, 0, 0, 0, "r. r0 r0 r2 r2", N, 0, 0},
    {"a failed first checkpoint is not the reference", "fooi", "----", NULL, NULL, 1, CKS_REF_AUTO,
     0, 0, 0, 0, "r. r. r1 r2", N, 1, 0},
    {"nothing usable: no reference", "fif", "---", NULL, NULL, 1, CKS_REF_AUTO, 0, 0, 0, 0,
     "r. r. r.", N, N, 0},
    {"no family needs the previous one: nothing to probe", "???", "---", NULL, NULL, 0,
     CKS_REF_NONE, 0, 0, 0, 0, "r. r. r.", N, N, 0},
    {"auto reference without previous: probe it", "???", "---", NULL, NULL, 0, CKS_REF_AUTO, 0, 0,
     0, 0, "", 0, N, 0},
    /* --resume */
    {"resume: every row stands", "????", "ssss", NULL, NULL, 1, CKS_REF_FIXED, 0, 0, 0, 0,
     "s. s0 s1 s2", N, 0, 0},
    {"resume: a re-upload is analysed again, and its successor", "????", "sxss", NULL, NULL, 1,
     CKS_REF_FIXED, 0, 0, 0, 0, "s. r0", 1, 0, 0},
    {"resume: ... once it is known", "?cc?", "sxss", NULL, NULL, 1, CKS_REF_FIXED, 0, 0, 0, 0,
     "s. r0 r1 s2", N, 0, 0},
    {"resume: a row that was missing changes its successor's previous", "?cc?", "s-ss", NULL, NULL,
     1, CKS_REF_FIXED, 0, 0, 0, 0, "s. r0 r1 s2", N, 0, 0},
    {"resume: a checkpoint now incomplete is analysed, its successor too", "?i?", "sss", NULL, NULL,
     1, CKS_REF_FIXED, 0, 0, 0, 0, "s. r0 r0", N, 0, 0},
    {"resume: one found failed since is analysed again", "?f?", "sss", NULL, NULL, 1, CKS_REF_FIXED,
     0, 0, 0, 0, "s. r0 r0", N, 0, 0},
    {"resume: still incomplete, nothing changes", "?i??", "s-ss", NULL, NULL, 1, CKS_REF_FIXED, 0,
     0, 0, 0, "s. r0 s0 s2", N, 0, 0},
    {"resume: the reference re-uploaded makes every row stale", "ccc", "xss", NULL, NULL, 1,
     CKS_REF_FIXED, 0, 0, 0, 0, "r. r0 r1", N, 0, 0},
    {"resume without a previous-checkpoint family: rows stand alone", "???", "sxs", NULL, NULL, 0,
     CKS_REF_NONE, 0, 0, 0, 0, "s. r. s.", N, N, 0},
    /* the reference */
    {"a fixed reference that failed leaves no plan", "cfc", "---", NULL, NULL, 1, CKS_REF_FIXED, 1,
     0, 0, 0, "", N, 1, 1},
    {"a fixed reference outside the selection", "oo", "--", NULL, NULL, 1, CKS_REF_FIXED, 2,
     CKS_AVAIL_OPENS, 0, 0, "r. r0", N, 2, 0},
    {"... found incomplete", "oo", "--", NULL, NULL, 1, CKS_REF_FIXED, 2, CKS_AVAIL_INCOMPLETE, 0,
     0, "", N, 2, 1},
    {"a fixed later reference, not probed yet", "??", "--", NULL, NULL, 1, CKS_REF_FIXED, 1, 0, 0,
     0, "r.", 0, 1, 0},
    /* --shard I/N */
    {"shard 1/2: the others' availability decides", "o????", "-----", NULL, NULL, 1, CKS_REF_AUTO,
     0, 0, 1, 2, "r. r0", 1, 0, 0},
    {"shard 1/2 with every neighbour probed", "oifoo", "-----", NULL, NULL, 1, CKS_REF_AUTO, 0, 0,
     1, 2, "r. r0 r0 r0 r3", N, 0, 0},
    {"part resumed: recorded previous checkpoints", "ooooo", "s-s-s", NULL, "..1.3", 1,
     CKS_REF_FIXED, 0, 0, 0, 2, "s. r0 s1 r2 s3", N, 0, 0},
    {"part resumed: a neighbour that opens now", "ooooo", "s-s-s", NULL, "..0.3", 1, CKS_REF_FIXED,
     0, 0, 0, 2, "s. r0 r1 r2 s3", N, 0, 0},
    /* --extend */
    {"extend: the finished run's rows are reused", "????", "----", "ssss", NULL, 1, CKS_REF_FIXED,
     0, 0, 0, 2, "u. u0 u1 u2", N, 0, 0},
    {"extend: a re-upload and its successor are analysed", "?o??", "----", "sxss", NULL, 1,
     CKS_REF_FIXED, 0, 0, 0, 2, "u. r0 r1", 2, 0, 0},
    {"extend: ... and the new ones", "?oooo", "-----", "sxs--", NULL, 1, CKS_REF_FIXED, 0, 0, 0, 2,
     "u. r0 r1 r2 r3", N, 0, 0},
    {"extend: a checkpoint now complete changes its successor's previous", "?oo", "---", "s-s",
     NULL, 1, CKS_REF_FIXED, 0, 0, 1, 2, "u. r0 r1", N, 0, 0},
    {"extend: the part's own row wins over the base's", "??", "s-", "ss", NULL, 1, CKS_REF_FIXED, 0,
     0, 0, 2, "s. u0", N, 0, 0},
};

static cks_avail avail_of(char c)
{
    switch (c) {
    case 'o':
        return CKS_AVAIL_OPENS;
    case 'c':
        return CKS_AVAIL_COMPLETE;
    case 'i':
        return CKS_AVAIL_INCOMPLETE;
    case 'f':
        return CKS_AVAIL_FAILED;
    default:
        return CKS_AVAIL_UNKNOWN;
    }
}

static cks_held held_of(const char *s, size_t i)
{
    char c = s && i < strlen(s) ? s[i] : '-';
    return c == 's' ? CKS_HELD_SAME : c == 'x' ? CKS_HELD_OTHER : CKS_HELD_NONE;
}

static void describe(const cks_task *t, size_t n, char *buf, size_t cap)
{
    size_t k = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        char a = t[i].action == CKS_TASK_SKIP ? 's' : t[i].action == CKS_TASK_REUSE ? 'u' : 'r';
        char p = t[i].prev == N ? '.' : (char)('0' + t[i].prev);
        k += (size_t)snprintf(buf + k, cap - k, "%s%c%c", i ? " " : "", a, p);
    }
}

static void test_plan__table(void **state)
{
    (void)state;
    int bad = 0;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const plan_case *pc = &cases[c];
        cks_plan_ckpt ck[16];
        cks_task tasks[16];
        size_t n = strlen(pc->avail);
        for (size_t i = 0; i < n; i++) {
            ck[i].avail = avail_of(pc->avail[i]);
            ck[i].file = held_of(pc->file, i);
            ck[i].base = held_of(pc->base, i);
            ck[i].file_prev =
                pc->file_prev && pc->file_prev[i] != '.' ? (size_t)(pc->file_prev[i] - '0') : N;
        }
        cks_plan_input in = {ck,
                             n,
                             pc->shard,
                             pc->nshards,
                             pc->uses_prev,
                             pc->ref_mode,
                             pc->ref,
                             pc->ref_avail,
                             pc->file_prev != NULL,
                             pc->base != NULL,
                             0};
        cks_plan out;
        char got[256];
        cks_plan_make(&in, tasks, &out);
        describe(tasks, out.ntasks, got, sizeof got);
        int ok = strcmp(got, pc->want) == 0 && out.need == pc->need &&
                 out.ref_failed == pc->ref_failed && (pc->ref_failed || out.ref == pc->want_ref);
        for (size_t i = 0; ok && i < out.ntasks; i++)
            ok = tasks[i].ref == out.ref && tasks[i].pos == i &&
                 tasks[i].own == (!pc->nshards || i % pc->nshards == pc->shard);
        if (!ok) {
            bad++;
            print_error("case '%s': got '%s' need %zd ref %zd failed %d; want '%s' need %zd ref "
                        "%zd failed %d\n",
                        pc->name, got, (ssize_t)out.need, (ssize_t)out.ref, out.ref_failed,
                        pc->want, (ssize_t)pc->need, (ssize_t)pc->want_ref, pc->ref_failed);
        }
    }
    assert_int_equal(bad, 0);
}

/* A task run against another previous checkpoint no longer stands when its row was
 * complete; an incomplete or failed row does not depend on its neighbours. */
static void test_plan__task_stands(void **state)
{
    (void)state;
    cks_task t = {3, 1, 0, CKS_TASK_RUN, 1}, d = t;
    assert_true(cks_task_stands(&t, &d, 1));
    d.prev = 2;
    assert_false(cks_task_stands(&t, &d, 1));
    assert_true(cks_task_stands(&t, &d, 0));
    d = t;
    d.ref = 1;
    assert_false(cks_task_stands(&t, &d, 1));
    d = t;
    d.action = CKS_TASK_SKIP;
    assert_false(cks_task_stands(&t, &d, 0));
    t.action = CKS_TASK_SKIP;
    d.prev = 0;
    assert_true(cks_task_stands(&t, &d, 1));
}

/* What a fetching source must keep: from the task being run, its previous checkpoint,
 * the reference and every later own task to run with its previous one. */
static void test_plan__needed(void **state)
{
    (void)state;
    cks_plan_ckpt ck[7];
    cks_task tasks[7];
    cks_plan out;
    const char *avail = "oofoooo";
    for (size_t i = 0; i < 7; i++)
        ck[i] = (cks_plan_ckpt){avail_of(avail[i]), CKS_HELD_NONE, N, CKS_HELD_NONE};
    ck[4].file = CKS_HELD_SAME; /* analysed (its previous one changed), then 5 skipped */
    ck[5].file = CKS_HELD_SAME;
    ck[5].avail = CKS_AVAIL_UNKNOWN;
    cks_plan_input in = {ck, 7, 0, 0, 1, CKS_REF_AUTO, 0, 0, 0, 0, 0};
    cks_plan_make(&in, tasks, &out);
    assert_int_equal(out.ntasks, 7);
    assert_int_equal(tasks[5].action, CKS_TASK_SKIP);
    size_t need[16];
    /* from task 3 (previous 1, since 2 failed): the reference 0, then 1, 3, 4, 6 with
     * 6's previous 5 (skipped, yet read as the previous checkpoint) */
    size_t k = cks_plan_needed(tasks, out.ntasks, 3, need, 16);
    size_t want[] = {0, 1, 3, 4, 5, 6};
    assert_int_equal(k, 6);
    for (size_t i = 0; i < k; i++)
        assert_int_equal(need[i], want[i]);
    /* a short buffer gets the first ones and the full count */
    assert_int_equal(cks_plan_needed(tasks, out.ntasks, 3, need, 2), 6);
    assert_int_equal(need[1], 1);
    /* sharded: the other shard's tasks are not needed, their previous ones may be */
    in.nshards = 2;
    in.shard = 1;
    cks_plan_make(&in, tasks, &out);
    k = cks_plan_needed(tasks, out.ntasks, 1, need, 16);
    size_t want2[] = {0, 1, 3};
    assert_int_equal(k, 3);
    for (size_t i = 0; i < k; i++)
        assert_int_equal(need[i], want2[i]);
}

static void expect_needed(const cks_task *tasks, size_t ntasks, size_t from, const size_t *want,
                          size_t nwant)
{
    size_t need[16];
    assert_int_equal(cks_plan_needed(tasks, ntasks, from, need, 16), nwant);
    for (size_t i = 0; i < nwant; i++)
        assert_int_equal(need[i], want[i]);
}

/* guess: the plan past the first checkpoint never opened, each taken as usable (what a
 * fetching source prefetches by), equal to the plan made without it up to that point. */
static void test_plan__guess(void **state)
{
    (void)state;
    cks_plan_ckpt ck[7];
    cks_task tasks[7], known[7];
    cks_plan out, kout;
    const char *avail = "cf?????";
    for (size_t i = 0; i < 7; i++)
        ck[i] = (cks_plan_ckpt){avail_of(avail[i]), CKS_HELD_NONE, N, CKS_HELD_NONE};
    cks_plan_input in = {ck, 7, 0, 0, 1, CKS_REF_AUTO, 0, 0, 0, 0, 0};
    cks_plan_make(&in, known, &kout);
    assert_int_equal(kout.ntasks, 3); /* serially: stops at 2, the first unknown */
    assert_int_equal(kout.need, 2);
    in.guess = 1;
    cks_plan_make(&in, tasks, &out);
    assert_int_equal(out.ntasks, 7);
    assert_int_equal(out.need, N);
    assert_int_equal(out.ref, 0);
    /* the failed 1 is nobody's previous; 2..5 are guessed usable */
    const size_t prev[] = {N, 0, 0, 2, 3, 4, 5};
    for (size_t i = 0; i < 7; i++) {
        assert_int_equal(tasks[i].prev, prev[i]);
        if (i < kout.ntasks)
            assert_int_equal(tasks[i].prev, known[i].prev);
    }
    /* from task 2: the reference 0 (also 2's previous), 2, and every later one */
    const size_t w1[] = {0, 2, 3, 4, 5, 6};
    expect_needed(tasks, out.ntasks, 2, w1, 6);
    /* shard 0/3: its tasks 3 and 6 with their previous ones 2 and 5 */
    in.nshards = 3;
    cks_plan_make(&in, tasks, &out);
    const size_t w2[] = {0, 2, 3, 5, 6};
    expect_needed(tasks, out.ntasks, 0, w2, 5);
    /* a fresh scan with an automatic reference: the first guessed usable */
    for (size_t i = 0; i < 7; i++)
        ck[i].avail = CKS_AVAIL_UNKNOWN;
    in.nshards = 0;
    cks_plan_make(&in, tasks, &out);
    assert_int_equal(out.ref, 0);
    assert_int_equal(out.ntasks, 7);
    in.guess = 0;
    cks_plan_make(&in, tasks, &out);
    assert_int_equal(out.ntasks, 0);
    assert_int_equal(out.need, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plan__table),
        cmocka_unit_test(test_plan__task_stands),
        cmocka_unit_test(test_plan__needed),
        cmocka_unit_test(test_plan__guess),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
