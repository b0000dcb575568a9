/* Fuzz target: a safetensors file (header length, JSON header, data) through
 * cks_safetensors_parse on an adopted buffer. Accepted files must keep the header's
 * promises (safetensors.h): every view inside the data, nbytes = numel * dtype size, no two
 * views overlapping; then each view is widened, as the metrics would read it. */
#include "check.h"
#include "fuzz.h"
#include "map.h"
#include "safetensors.h"

#define DISPLAY "fuzz/model.safetensors"

static int cmp_ptr(const void *a, const void *b)
{
    const cks_tensor *x = *(const cks_tensor *const *)a, *y = *(const cks_tensor *const *)b;
    const unsigned char *p = x->data, *q = y->data;
    return p < q ? -1 : p > q;
}

static void check_views(const cks_tensor_list *l, const uint8_t *data, size_t size)
{
    const cks_tensor **by = malloc((l->count ? l->count : 1) * sizeof *by);
    FUZZ_REQUIRE(by);
    for (size_t i = 0; i < l->count; i++) {
        const cks_tensor *t = &l->items[i];
        FUZZ_REQUIRE(t->ndim >= 0 && t->ndim <= CKS_MAX_DIMS);
        FUZZ_REQUIRE((uint64_t)t->numel * cks_dtype_size(t->dtype) == t->nbytes);
        FUZZ_REQUIRE(fuzz_inside(t->data, t->nbytes, data, size));
        FUZZ_REQUIRE(cks_tensor_list_find(l, t->name) >= 0);
        by[i] = t;
        if (cks_dtype_is_float(t->dtype)) {
            double v[16];
            size_t n = t->numel < 16 ? (size_t)t->numel : 16;
            cks_widen_f64(t->dtype, t->data, v, n);
        }
    }
    qsort(by, l->count, sizeof *by, cmp_ptr);
    for (size_t i = 1; i < l->count; i++)
        FUZZ_REQUIRE(by[i - 1]->nbytes == 0 || by[i]->nbytes == 0 ||
                     (const unsigned char *)by[i - 1]->data + by[i - 1]->nbytes <=
                         (const unsigned char *)by[i]->data);
    free(by);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cks_map *m;
    cks_tensor_list l;
    FUZZ_REQUIRE(cks_map_adopt(&m, data, size, NULL, NULL, DISPLAY) == 0);
    cks_tensor_list_init(&l);
    int err = cks_safetensors_parse(m, 0, &l);
    if (err) {
        FUZZ_REQUIRE(l.count == 0); /* nothing appended on error */
        fuzz_check_refusal(err, DISPLAY);
    } else {
        check_views(&l, data, size);
        cks_tensor_list_sort(&l);
    }
    cks_tensor_list_release(&l);
    cks_map_free(m);
    return 0;
}
