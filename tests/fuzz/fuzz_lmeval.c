/* Fuzz target: an lm-evaluation-harness result file through cks_lmeval_parse, then the
 * checkpoint and model naming that evals import applies to it. Accepted files must keep
 * lmeval.h's promises: entries sorted by (task, metric), names within CKS_MAX_EVAL_NAME
 * and free of '/' (they become HDF5 paths), unique, at most CKS_MAX_EVAL_METRICS per task. */
#include "check.h"
#include "fuzz.h"
#include "lmeval.h"

#define DISPLAY "fuzz/eval_results.json"

static void check_name(const char *s)
{
    size_t n = strlen(s);
    FUZZ_REQUIRE(n > 0 && n <= CKS_MAX_EVAL_NAME && !strchr(s, '/'));
    FUZZ_REQUIRE(strcmp(s, ".") != 0 && strcmp(s, "..") != 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cks_eval_result r;
    int err = cks_lmeval_parse((const char *)data, size, DISPLAY, &r);
    if (err) {
        fuzz_check_refusal(err, DISPLAY);
        return 0;
    }
    FUZZ_REQUIRE(r.version == 3 || r.version == 4);
    size_t per_task = 0, tasks = 0;
    for (size_t i = 0; i < r.count; i++) {
        const cks_eval_entry *e = &r.items[i];
        check_name(e->task);
        check_name(e->metric);
        FUZZ_REQUIRE(e->higher_is_better >= -1 && e->higher_is_better <= 1);
        if (i > 0) {
            int c = strcmp(r.items[i - 1].task, e->task);
            FUZZ_REQUIRE(c < 0 || (c == 0 && strcmp(r.items[i - 1].metric, e->metric) < 0));
            per_task = c == 0 ? per_task + 1 : 1;
            tasks += c != 0;
        } else {
            per_task = tasks = 1;
        }
        FUZZ_REQUIRE(per_task <= CKS_MAX_EVAL_METRICS && tasks <= CKS_MAX_EVAL_TASKS);
    }
    char name[64], tiny[4];
    static const char *const files[] = {"evals/eval_step1000.json", "results.json", NULL};
    for (int i = 0; i < 3; i++) {
        if ((err = cks_lmeval_checkpoint(&r, files[i], name, sizeof name)) == 0)
            FUZZ_REQUIRE(name[0] != '\0' || r.model_args);
        else
            fuzz_check_refusal(err, files[i] ? files[i] : "eval result");
        if (cks_lmeval_checkpoint(&r, files[i], tiny, sizeof tiny) == 0)
            FUZZ_REQUIRE(strlen(tiny) < sizeof tiny);
        cks_error_clear();
    }
    if (cks_lmeval_model(&r, name, sizeof name) == 0)
        FUZZ_REQUIRE(strlen(name) < sizeof name);
    cks_error_clear();
    cks_lmeval_release(&r);
    return 0;
}
