/* The entry points every fuzz target defines (libFuzzer's interface). The same sources
 * build two ways: with -fsanitize=fuzzer (-DCKS_FUZZ=ON, preset fuzz) libFuzzer drives
 * them; otherwise driver.c's main runs them on given files, which is how the committed
 * corpora and crash regressions replay in every ordinary build (ctest fuzz_replay_*).
 *
 * Contract of a target: any input, any size, must return 0 without crashing, leaking,
 * hanging or allocating out of proportion to the input; a parser's refusal is a normal
 * outcome. */
#ifndef CKS_FUZZ_H
#define CKS_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* Optional one-time setup (libFuzzer calls it before the first input when defined). */
int LLVMFuzzerInitialize(int *argc, char ***argv);

#endif
