/* The tables of known score names (see eval_metrics.h). Directions are lm-eval-harness's
 * own (lm_eval/api/metrics.py and the v0.3 task classes' higher_is_better()); "binomial"
 * marks means of 0/1 outcomes per document, whose standard error is sqrt(p(1-p)/n). */
#include "eval_metrics.h"

#include <stddef.h>
#include <string.h>

#define H CKS_DIR_HIGHER
#define L CKS_DIR_LOWER

static const cks_eval_metric_info lmeval[] = {
    /* multiple-choice and exact answers: fractions of documents */
    {"acc", H, 1, "fraction", "accuracy"},
    {"acc_norm", H, 1, "fraction", "length-normalised accuracy"},
    {"acc_mutual_info", H, 1, "fraction", "mutual-information accuracy"},
    {"exact_match", H, 1, "fraction", "exact match"},
    {"em", H, 1, "fraction", "exact match"},
    {"mc1", H, 1, "fraction", "single-true multiple-choice accuracy (TruthfulQA)"},
    {"contains", H, 1, "fraction", "answer contained in the output"},
    {"pass@1", H, 1, "fraction", "pass rate of one sample"},
    {"bleu_acc", H, 1, "fraction", "BLEU closer to a true than a false answer"},
    {"rouge1_acc", H, 1, "fraction", "ROUGE-1 closer to a true than a false answer"},
    {"rouge2_acc", H, 1, "fraction", "ROUGE-2 closer to a true than a false answer"},
    {"rougeL_acc", H, 1, "fraction", "ROUGE-L closer to a true than a false answer"},
    {"pct_stereotype", L, 1, "fraction", "pairs where the stereotype is preferred (CrowS-Pairs)"},
    /* means of continuous per-document scores */
    {"mc2", H, 0, "fraction", "probability mass on true answers (TruthfulQA)"},
    {"f1", H, 0, NULL, "F1 score"},
    {"mcc", H, 0, NULL, "Matthews correlation"},
    {"bleu", H, 0, NULL, "BLEU"},
    {"chrf", H, 0, NULL, "chrF"},
    {"ter", L, 0, NULL, "translation edit rate"},
    {"bleu_max", H, 0, NULL, "best BLEU against true answers"},
    {"bleu_diff", H, 0, NULL, "BLEU true minus false"},
    {"rouge1_max", H, 0, NULL, "best ROUGE-1 against true answers"},
    {"rouge1_diff", H, 0, NULL, "ROUGE-1 true minus false"},
    {"rouge2_max", H, 0, NULL, "best ROUGE-2 against true answers"},
    {"rouge2_diff", H, 0, NULL, "ROUGE-2 true minus false"},
    {"rougeL_max", H, 0, NULL, "best ROUGE-L against true answers"},
    {"rougeL_diff", H, 0, NULL, "ROUGE-L true minus false"},
    {"brier_score", L, 0, NULL, "Brier score"},
    {"likelihood_difference", L, 0, "nats", "likelihood difference (CrowS-Pairs)"},
    {"likelihood_diff", L, 0, "nats", "likelihood difference (CrowS-Pairs)"},
    /* language modelling */
    {"ppl", L, 0, "perplexity", "perplexity"},
    {"perplexity", L, 0, "perplexity", "perplexity"},
    {"word_perplexity", L, 0, "perplexity", "perplexity per word"},
    {"byte_perplexity", L, 0, "perplexity", "perplexity per byte"},
    {"bits_per_byte", L, 0, "bits/byte", "bits per byte"},
};

/* DESIGN §3 and §5: the built-in held-out perplexity, in the order scan writes it
 * (/eval/<set>/<name>, `what` its description attribute). tokens is a count, not a
 * score: it has no direction. */
static const cks_eval_metric_info builtin[] = {
    {"nll", L, 0, "nats/token", "mean negative log-likelihood per scored token"},
    {"ppl", L, 0, "perplexity", "perplexity exp(nll)"},
    {"bpb", L, 0, "bits/byte",
     "summed NLL / (ln 2 * UTF-8 bytes of the set's text); NaN for token inputs"},
    {"tokens", CKS_DIR_UNKNOWN, 0, "tokens", "scored tokens"},
    {"top1_acc", H, 1, "fraction",
     "fraction of scored tokens that are the most likely next token (ties: the lowest id)"},
};

#undef H
#undef L

const cks_eval_metric_info *cks_eval_metric_lookup(const char *metric)
{
    size_t n = strcspn(metric, ",");
    for (size_t i = 0; i < sizeof lmeval / sizeof lmeval[0]; i++)
        if (strlen(lmeval[i].name) == n && strncmp(lmeval[i].name, metric, n) == 0)
            return &lmeval[i];
    return NULL;
}

const cks_eval_metric_info *cks_ppl_metrics(size_t *count)
{
    *count = sizeof builtin / sizeof builtin[0];
    return builtin;
}

const cks_eval_metric_info *cks_ppl_metric_lookup(const char *name)
{
    for (size_t i = 0; i < sizeof builtin / sizeof builtin[0]; i++)
        if (strcmp(builtin[i].name, name) == 0)
            return &builtin[i];
    return NULL;
}

const char *cks_direction_name(cks_direction d)
{
    switch (d) {
    case CKS_DIR_HIGHER:
        return "higher";
    case CKS_DIR_LOWER:
        return "lower";
    case CKS_DIR_EQUAL:
        return "equal";
    default:
        return "unknown";
    }
}

int cks_direction_parse(const char *s, cks_direction *out)
{
    if (strcmp(s, "higher") == 0 || strcmp(s, "true") == 0)
        *out = CKS_DIR_HIGHER;
    else if (strcmp(s, "lower") == 0 || strcmp(s, "false") == 0)
        *out = CKS_DIR_LOWER;
    else if (strcmp(s, "equal") == 0)
        *out = CKS_DIR_EQUAL;
    else
        return -1;
    return 0;
}
