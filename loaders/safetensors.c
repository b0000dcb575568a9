/* safetensors header parsing into tensor views (format and checks: safetensors.h). */
#include "safetensors.h"
#include "checked.h"
#include "error.h"
#include "json.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    uint64_t begin, end;
    const char *name;
} range;

static int cmp_range(const void *a, const void *b)
{
    const range *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : 0;
}

static int parse_entry(const char *disp, const char *name, json_t *e, const unsigned char *data,
                       uint64_t dlen, int file, cks_tensor *t, range *r)
{
    json_t *jd = json_object_get(e, "dtype"), *js = json_object_get(e, "shape"),
           *jo = json_object_get(e, "data_offsets");
    memset(t, 0, sizeof *t);
    if (!json_is_object(e) || !json_is_string(jd) || !json_is_array(js) || !json_is_array(jo) ||
        json_array_size(jo) != 2)
        return cks_error_set(CKS_EFORMAT,
                             "%s: tensor '%s' lacks dtype, shape or a [begin, end] data_offsets",
                             disp, name);
    if (cks_dtype_from_name(json_string_value(jd), &t->dtype) != 0)
        return cks_error_set(CKS_EFORMAT, "%s: tensor '%s' has unknown dtype '%s'", disp, name,
                             json_string_value(jd));
    size_t nd = json_array_size(js);
    if (nd > CKS_MAX_DIMS)
        return cks_error_set(CKS_ELIMIT, "%s: tensor '%s' has %zu dimensions (limit %d)", disp,
                             name, nd, CKS_MAX_DIMS);
    t->ndim = (int)nd;
    for (size_t i = 0; i < nd; i++) {
        json_t *d = json_array_get(js, i);
        if (!json_is_integer(d) || json_integer_value(d) < 0)
            return cks_error_set(CKS_EFORMAT, "%s: tensor '%s' has a bad shape entry", disp, name);
        t->shape[i] = json_integer_value(d);
    }
    json_t *jb = json_array_get(jo, 0), *je = json_array_get(jo, 1);
    if (!json_is_integer(jb) || !json_is_integer(je) || json_integer_value(jb) < 0 ||
        json_integer_value(je) < json_integer_value(jb))
        return cks_error_set(CKS_EFORMAT, "%s: tensor '%s' has bad data_offsets", disp, name);
    r->begin = (uint64_t)json_integer_value(jb);
    r->end = (uint64_t)json_integer_value(je);
    r->name = name;
    if (r->end > dlen)
        return cks_error_set(CKS_EFORMAT,
                             "%s: tensor '%s' ends at %llu, past the data (%llu bytes)", disp, name,
                             (unsigned long long)r->end, (unsigned long long)dlen);
    t->nbytes = (size_t)(r->end - r->begin);
    if (cks_tensor_check_extent(t->dtype, t->ndim, t->shape, t->nbytes, &t->numel) != 0)
        return cks_error_set(CKS_EFORMAT,
                             "%s: tensor '%s': shape and dtype %s do not match its %zu bytes", disp,
                             name, cks_dtype_name(t->dtype), t->nbytes);
    t->name = name;
    t->data = data + r->begin;
    t->file = file;
    return 0;
}

int cks_safetensors_parse(const cks_map *m, int file, cks_tensor_list *out)
{
    const char *disp = m->display;
    json_t *hdr = NULL;
    range *ranges = NULL;
    cks_tensor_list tmp;
    int err = 0;
    uint64_t n = 0;

    cks_tensor_list_init(&tmp);
    if (m->size < 8)
        return cks_error_set(CKS_EFORMAT, "%s: %zu bytes, too short for a safetensors file", disp,
                             m->size);
    for (int i = 7; i >= 0; i--)
        n = (n << 8) | m->data[i];
    if (n > CKS_MAX_ST_HEADER)
        return cks_error_set(CKS_ELIMIT, "%s: header length %llu exceeds the %u-byte limit", disp,
                             (unsigned long long)n, CKS_MAX_ST_HEADER);
    if (n > m->size - 8)
        return cks_error_set(CKS_EFORMAT,
                             "%s: header length %llu runs past the end of the file (%zu bytes)",
                             disp, (unsigned long long)n, m->size);
    if ((err = cks_json_parse((const char *)m->data + 8, (size_t)n, disp, 1, &hdr)) != 0)
        return err;
    const unsigned char *data = m->data + 8 + n;
    uint64_t dlen = m->size - 8 - n;
    size_t count = json_object_size(hdr);
    if (count > CKS_MAX_TENSORS) {
        err = cks_error_set(CKS_ELIMIT, "%s: %zu tensors (limit %d)", disp, count, CKS_MAX_TENSORS);
        goto done;
    }
    if (!(ranges = calloc(count ? count : 1, sizeof *ranges))) {
        err = cks_error_set(CKS_ENOMEM, "out of memory");
        goto done;
    }
    size_t nr = 0;
    const char *key;
    json_t *val;
    json_object_foreach(hdr, key, val)
    {
        if (strcmp(key, "__metadata__") == 0)
            continue;
        cks_tensor t;
        if ((err = parse_entry(disp, key, val, data, dlen, file, &t, &ranges[nr])) != 0 ||
            (err = cks_tensor_list_push(&tmp, &t)) != 0)
            goto done;
        if (ranges[nr].end > ranges[nr].begin) /* empty tensors occupy no bytes */
            nr++;
    }
    qsort(ranges, nr, sizeof *ranges, cmp_range);
    for (size_t i = 1; i < nr; i++) {
        if (ranges[i].begin < ranges[i - 1].end) {
            err = cks_error_set(CKS_EFORMAT, "%s: tensors '%s' and '%s' overlap", disp,
                                ranges[i - 1].name, ranges[i].name);
            goto done;
        }
    }
    for (size_t i = 0; i < tmp.count; i++) {
        if ((err = cks_tensor_list_push(out, &tmp.items[i])) != 0) {
            /* roll back: nothing appended on error */
            while (out->count > 0 && i-- > 0) {
                out->count--;
                free(out->names[out->count]);
            }
            goto done;
        }
    }
done:
    cks_tensor_list_release(&tmp);
    free(ranges);
    json_decref(hdr);
    return err;
}
