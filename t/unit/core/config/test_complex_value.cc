// clang-format off
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
extern "C" {
#include <cmocka.h>
}
// clang-format on

#include <cstdio>
#include <string>

#include "config/complex_value.h"

using portico::config::ComplexValue;

namespace {

// Segments as `'literal'`, `$name` or `$<capture>`; errors as `ERR message`.
std::string compile(const std::string &text) {
    ComplexValue cv;
    if (const char *err = portico::config::compile_complex_value(text, cv)) {
        return std::string("ERR ") + err + (cv.segments.empty() ? "" : " (segments left)");
    }
    std::string out;
    for (const auto &s : cv.segments) {
        if (!out.empty()) out += ' ';
        if (!s.is_var)
            out += "'" + s.text + "'";
        else if (s.capture > 0)
            out += "$<" + std::to_string(s.capture) + ">";
        else
            out += "$" + s.text;
    }
    return out;
}

struct Row {
    const char *text;
    const char *expected;
};

const Row kRows[] = {
    {"", ""},
    {"plain text", "'plain text'"},
    {"$host", "$host"},
    {"$host$request_uri", "$host $request_uri"},
    {"http://$host:8080/x", "'http://' $host ':8080/x'"},
    {"${name}suffix", "$name 'suffix'"},
    {"$name.suffix", "$name '.suffix'"},
    {"$http_x_forwarded_for", "$http_x_forwarded_for"},
    {"/path/$1", "'/path/' $<1>"},
    {"$1$9", "$<1> $<9>"},
    {"$10", "$<1> '0'"},
    {"$0", "$0"},
    {"${1}x", "$1 'x'"},
    {"a$", "ERR invalid variable name \"a$\""},
    {"$", "ERR invalid variable name \"$\""},
    {"price: $ 5", "ERR invalid variable name \"price: $ 5\""},
    {"$-x", "ERR invalid variable name \"$-x\""},
    {"${}", "ERR invalid variable name \"${}\""},
    {"${", "ERR invalid variable name \"${\""},
    {"${name", "ERR the closing bracket in \"name\" variable is missing"},
    {"${na-me}", "ERR the closing bracket in \"na\" variable is missing"},
};

void test_rows(void **) {
    int failures = 0;
    for (const Row &row : kRows) {
        const std::string got = compile(row.text);
        if (got != row.expected) {
            std::printf("[%s]\n  expected %s\n  got      %s\n", row.text, row.expected,
                        got.c_str());
            ++failures;
        }
    }
    assert_int_equal(failures, 0);
}

void test_literal(void **) {
    ComplexValue cv;
    assert_null(portico::config::compile_complex_value("/var/www", cv));
    assert_false(cv.has_vars());
    assert_string_equal(cv.literal().c_str(), "/var/www");
    assert_null(portico::config::compile_complex_value("/var/$host/www", cv));
    assert_true(cv.has_vars());
    assert_string_equal(cv.literal().c_str(), "/var//www");
}

} // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rows),
        cmocka_unit_test(test_literal),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
