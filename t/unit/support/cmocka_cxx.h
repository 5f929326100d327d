// CMocka for C++ tests: the one header a t/unit/*.cc test includes.
//
// cmocka.h (1.1.5 on Debian 12) needs <stdarg.h>, <stddef.h>, <stdint.h> and
// <setjmp.h> before it and has no extern "C" guard of its own. It also
// defines function-like macros `fail()` and `skip()`, which rewrite any
// later `.fail()` (std::basic_ios) or `skip(` in C++ headers. Here they are
// replaced by inline functions with the same call syntax, so this header can
// come first or last and `fail()` / `fail_msg()` / `skip()` still report the
// caller's file and line.
#pragma once

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

extern "C" {
#include <cmocka.h>
}

#undef fail
#undef skip

// __builtin_FILE/LINE rather than std::source_location: clang 14 (the fuzz
// compiler) cannot use libstdc++ 12's <source_location>.
[[noreturn]] inline void fail(const char *file = __builtin_FILE(), int line = __builtin_LINE()) {
    _fail(file, line);
    __builtin_unreachable(); // _fail longjmps out of the test (or exits)
}

inline void skip(const char *file = __builtin_FILE(), int line = __builtin_LINE()) {
    _skip(file, line);
}

// A table-driven test names the row that failed: PT_ROW_FAIL(row.name, "...").
#define PT_ROW_FAIL(name, fmt, ...) fail_msg("%s: " fmt, (name)__VA_OPT__(, ) __VA_ARGS__)
