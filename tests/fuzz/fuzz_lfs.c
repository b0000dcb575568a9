/* Fuzz target: a Git LFS pointer through cks_lfs_is_pointer / cks_lfs_pointer_parse, and
 * the object path made from it (the oid becomes a path, so an accepted oid must be exactly
 * 64 lowercase hex digits). */
#include "check.h"
#include "fuzz.h"
#include "lfs.h"

#define DISPLAY "fuzz:model.safetensors"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cks_lfs_pointer p;
    (void)cks_lfs_is_pointer((const char *)data, size);
    int err = cks_lfs_pointer_parse((const char *)data, size, DISPLAY, &p);
    if (err) {
        fuzz_check_refusal(err, DISPLAY);
        return 0;
    }
    FUZZ_REQUIRE(strlen(p.oid) == 64 && strspn(p.oid, "0123456789abcdef") == 64);
    FUZZ_REQUIRE(p.size <= CKS_LFS_MAX_SIZE);
    char path[256], tiny[16];
    FUZZ_REQUIRE(cks_lfs_object_path("/repo/.git/lfs", &p, path, sizeof path) == 0);
    FUZZ_REQUIRE(strncmp(path, "/repo/.git/lfs/objects/", 23) == 0 && !strstr(path, ".."));
    FUZZ_REQUIRE(cks_lfs_object_path("/repo/.git/lfs", &p, tiny, sizeof tiny) == CKS_ELIMIT);
    cks_error_clear();
    return 0;
}
