/* The table of metric families (see family.h), and --metrics: parsing a list of family
 * names and the default list. */
#include "family.h"
#include "error.h"

#include <stdio.h>
#include <string.h>

static const cks_family *const table[] = {
    &cks_family_norms, &cks_family_spectral, &cks_family_drift_prev, &cks_family_drift_ref,
    &cks_family_ppl,   &cks_family_kl,       &cks_family_memo,
};
#define NFAMILIES (sizeof table / sizeof table[0])
_Static_assert(NFAMILIES <= CKS_MAX_FAMILIES, "CKS_MAX_FAMILIES");

const cks_family *const *cks_families(size_t *n)
{
    *n = NFAMILIES;
    return table;
}

/* Distinct option names in table order; only those needing no input unless all. */
static void option_names(char *buf, size_t cap, int all)
{
    size_t k = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < NFAMILIES; i++) {
        if ((!all && table[i]->given) ||
            (i > 0 && strcmp(table[i]->option, table[i - 1]->option) == 0))
            continue;
        k += (size_t)snprintf(buf + k, k < cap ? cap - k : 0, "%s%s", k ? "," : "",
                              table[i]->option);
    }
}

int cks_family_enabled(const cks_family_ckpt *in, const char *option)
{
    for (size_t f = 0; f < in->nfam; f++)
        if (strcmp(in->fam[f]->option, option) == 0)
            return 1;
    return 0;
}

const char *cks_families_default(void)
{
    static char names[256]; /* constant after the first call; the table is static */
    if (!names[0])
        option_names(names, sizeof names, 0);
    return names;
}

int cks_families_parse(const char *list, const cks_family **out, size_t *n, char *canon, size_t cap)
{
    int want[NFAMILIES] = {0};
    char known[256];
    option_names(known, sizeof known, 1);
    if (!*list)
        return cks_error_set(CKS_EINVAL, "--metrics is empty (known: %s)", known);
    for (const char *p = list; *p;) {
        size_t len = strcspn(p, ",");
        int found = 0;
        for (size_t i = 0; i < NFAMILIES; i++)
            if (strlen(table[i]->option) == len && strncmp(table[i]->option, p, len) == 0)
                found = want[i] = 1;
        if (!found)
            return cks_error_set(CKS_EINVAL,
                                 "unknown metric family '%.*s' in --metrics (known: %s)", (int)len,
                                 p, known);
        p += len + (p[len] == ',');
    }
    size_t k = 0, c = 0;
    canon[0] = '\0';
    for (size_t i = 0; i < NFAMILIES; i++) {
        if (!want[i])
            continue;
        out[k++] = table[i];
        if (k == 1 || strcmp(table[i]->option, out[k - 2]->option) != 0)
            c += (size_t)snprintf(canon + c, c < cap ? cap - c : 0, "%s%s", c ? "," : "",
                                  table[i]->option);
    }
    *n = k;
    return 0;
}

const char *cks_scan_default_metrics(void)
{
    return cks_families_default();
}
