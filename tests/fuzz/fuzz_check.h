// FUZZ_CHECK(cond): a property a fuzz target asserts; a failure prints the
// condition and aborts, so both libFuzzer and the plain driver report it as a
// crash with the input that caused it.
#ifndef PHI3_TESTS_FUZZ_FUZZ_CHECK_H_
#define PHI3_TESTS_FUZZ_FUZZ_CHECK_H_

#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(cond)                                                          \
  do {                                                                            \
    if (!(cond)) {                                                                \
      std::fprintf(stderr, "%s:%d: FUZZ_CHECK failed: %s\n", __FILE__, __LINE__, \
                   #cond);                                                        \
      std::abort();                                                               \
    }                                                                             \
  } while (0)

#endif  // PHI3_TESTS_FUZZ_FUZZ_CHECK_H_
