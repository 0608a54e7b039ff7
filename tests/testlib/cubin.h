// TinyCubin: a minimal CUDA ELF built by hand (one function symbol), for
// tests that need bytes that pass the cubin checks (src/compile/cubin.h,
// daemon/cubin_check.h) without a compiler. Pure.
#ifndef TPJIT_TESTS_TESTLIB_CUBIN_H_
#define TPJIT_TESTS_TESTLIB_CUBIN_H_

#include <string>

namespace tpjit::testing {

// A minimal 64-bit ELF holding one function symbol `name`; e_flags carry
// `sm` the way CUDA ELF ABI v8 does; `machine` 190 is EM_CUDA.
std::string TinyCubin(const std::string& name, int sm = 90, int machine = 190);

}  // namespace tpjit::testing

#endif  // TPJIT_TESTS_TESTLIB_CUBIN_H_
