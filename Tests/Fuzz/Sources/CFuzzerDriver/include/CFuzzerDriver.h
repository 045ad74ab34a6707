#ifndef CFUZZERDRIVER_H
#define CFUZZERDRIVER_H
#include <stddef.h>
#include <stdint.h>
/// libFuzzer's driver (compiler-rt, LLVM >= 11). SwiftPM renames an executable's entry point to
/// `<Target>_main`, so the harness's own `main` hands control to libFuzzer through this.
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));
#endif
