/* Fuzz target: a PyTorch checkpoint (torch.save zip archive, restricted unpickler, tensor
 * records against their storages) through cks_torchbin_parse. The first byte chooses how
 * the rest is read:
 *   even: the rest is the archive, as found on disk;
 *   odd:  a state dict pickle packed into a valid archive here: byte 1 gives the storage
 *         count n (mod 33), then n little-endian u16 byte sizes of the storages "0".."n-1",
 *         then data.pkl. The archive's CRC-32 checks would refuse almost every mutated
 *         pickle, so this mode lets the fuzzer reach the unpickler and the tensor records.
 * Accepted files must keep torchbin.h's promises: views inside the file, nbytes = numel *
 * dtype size, names unique. */
#include "check.h"
#include "fuzz.h"
#include "map.h"
#include "torchbin.h"
#include "torchfx.h"

#include <stdio.h>

#define DISPLAY      "fuzz/pytorch_model.bin"
#define MAX_STORAGES 32

static void parse(const uint8_t *data, size_t size)
{
    cks_map *m;
    cks_tensor_list l;
    FUZZ_REQUIRE(cks_map_adopt(&m, data, size, NULL, NULL, DISPLAY) == 0);
    cks_tensor_list_init(&l);
    int err = cks_torchbin_parse(m, 0, &l);
    if (err) {
        FUZZ_REQUIRE(l.count == 0);
        fuzz_check_refusal(err, DISPLAY);
    } else {
        for (size_t i = 0; i < l.count; i++) {
            const cks_tensor *t = &l.items[i];
            FUZZ_REQUIRE((uint64_t)t->numel * cks_dtype_size(t->dtype) == t->nbytes);
            FUZZ_REQUIRE(fuzz_inside(t->data, t->nbytes, data, size));
            FUZZ_REQUIRE(cks_tensor_list_find(&l, t->name) == (long)i);
            if (cks_dtype_is_float(t->dtype) && t->numel > 0) {
                double v[8];
                cks_widen_f64(t->dtype, t->data, v, t->numel < 8 ? (size_t)t->numel : 8);
            }
        }
    }
    cks_tensor_list_release(&l);
    cks_map_free(m);
}

/* Packs the pickle and storages into an archive as torch's writer lays it out. */
static void parse_packed(const uint8_t *data, size_t size)
{
    if (size < 1)
        return;
    size_t n = data[0] % (MAX_STORAGES + 1), at = 1 + 2 * n;
    if (size < at)
        return;
    cks_fx_zip_entry e[MAX_STORAGES + 2];
    char keys[MAX_STORAGES][32];
    e[0] = (cks_fx_zip_entry){"archive/data.pkl", data + at, size - at};
    e[1] = (cks_fx_zip_entry){"archive/version", "3\n", 2};
    for (size_t i = 0; i < n; i++) {
        snprintf(keys[i], sizeof keys[i], "archive/data/%zu", i);
        e[2 + i] = (cks_fx_zip_entry){keys[i], NULL,
                                      (uint64_t)data[1 + 2 * i] | (uint64_t)data[2 + 2 * i] << 8};
    }
    size_t zlen;
    unsigned char *zip = cks_fx_torchzip_mem(e, (int)n + 2, &zlen);
    FUZZ_REQUIRE(zip);
    parse(zip, zlen);
    free(zip);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (data[0] & 1)
        parse_packed(data + 1, size - 1);
    else
        parse(data + 1, size - 1);
    return 0;
}
