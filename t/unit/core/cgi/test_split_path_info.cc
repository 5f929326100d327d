// fastcgi_split_path_info: load-time checks, nginx's match/no-match results,
// fastcgi_index, and the CVE-2019-11043 refusals.
#include "cgi/split_path_info.h"

#include <cstdio>
#include <string>

// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
extern "C" { // this cmocka.h has no C++ guard
#include <cmocka.h>
}
// clang-format on

using namespace portico::cgi;

namespace {

struct CompileRow {
    const char *pattern;
    bool ok;
    const char *error_part; // substring of the error when !ok
};

const CompileRow compile_rows[] = {
    {"^(.+\\.php)(/.+)$", true, ""},
    {"^(.+?\\.php)(/.*)$", true, ""},
    {"^(.+\\.php)(?:/.+)$", false, "it has 1"},
    {"^(.+\\.php)(/.+)(x)$", false, "it has 3"},
    {"^.+\\.php$", false, "it has 0"},
    {"^(?<script>.+\\.php)(?<info>/.*)$", true, ""},
    {"^(.+\\.php(/.+)$", false, "missing closing parenthesis"},
};

struct SplitRow {
    const char *pattern; // nullptr = no fastcgi_split_path_info
    std::string uri;
    const char *index;
    SplitStatus status;
    const char *script; // script_name + index
    const char *path_info;
};

const SplitRow split_rows[] = {
    {"^(.+\\.php)(/.+)$", "/index.php/foo", "", SplitStatus::ok, "/index.php", "/foo"},
    {"^(.+\\.php)(/.+)$", "/index.php", "", SplitStatus::ok, "/index.php", ""},
    {"^(.+\\.php)(/.+)$", "/index.php/", "", SplitStatus::ok, "/index.php/", ""},
    {"^(.+\\.php)(/.+)$", "/dir/", "index.php", SplitStatus::ok, "/dir/index.php", ""},
    {"^(.+\\.php)(/.+)$", "/a.php/b/", "index.php", SplitStatus::ok, "/a.php", "/b/"},
    {"^(.+?\\.php)(/.*)$", "/a.php/b.php/c", "", SplitStatus::ok, "/a.php", "/b.php/c"},
    {"^(.+\\.php)(/.*)$", "/a.php/b.php/c", "", SplitStatus::ok, "/a.php/b.php", "/c"},
    {"^(.+\\.php)(/.*)?$", "/x.php", "", SplitStatus::ok, "/x.php", ""},
    {"^(/app)(/.*)?$", "/app", "", SplitStatus::ok, "/app", ""},
    {"^(/app)(/.*)?$", "/app/users/7", "", SplitStatus::ok, "/app", "/users/7"},
    {"^()(/.*)$", "/", "", SplitStatus::ok, "", "/"},
    // case-sensitive, byte-wise: no Unicode folding can turn .PHP into .php
    {"^(.+\\.php)(/.+)$", "/x.PHP/y", "", SplitStatus::ok, "/x.PHP/y", ""},
    {"^(.+\\.php)(/.+)$", "/caf\xC3\xA9.php/\xC3\xA9", "", SplitStatus::ok, "/caf\xC3\xA9.php",
     "/\xC3\xA9"},
    // CVE-2019-11043: the regex would fail across the newline, leaving
    // SCRIPT_NAME = whole path and PATH_INFO empty. Refused before matching.
    {"^(.+\\.php)(/.+)$", "/index.php/PHP_VALUE\nsession.auto_start=1;;;", "",
     SplitStatus::refused_control_char, "", ""},
    {"^(.+?\\.php)(/.*)$", "/index.php/x\r.php", "", SplitStatus::refused_control_char, "", ""},
    {"^(.+\\.php)(/.+)$", std::string("/a.jpg\0.php", 11), "", SplitStatus::refused_control_char,
     "", ""},
    {"(?s)^(.+\\.php)(/.+)$", "/i.php/\n", "", SplitStatus::refused_control_char, "", ""},
    {nullptr, "/index.php\n", "", SplitStatus::refused_control_char, "", ""},
    {nullptr, "/index.php/foo", "", SplitStatus::ok, "/index.php/foo", ""},
    {nullptr, "/", "index.php", SplitStatus::ok, "/index.php", ""},
    {nullptr, "/blog/", "", SplitStatus::ok, "/blog/", ""},
};

void test_compile(void **) {
    int failures = 0;
    for (const CompileRow &row : compile_rows) {
        std::string err;
        auto split = SplitPathInfo::compile(row.pattern, err);
        if (split.has_value() != row.ok ||
            (!row.ok && err.find(row.error_part) == std::string::npos)) {
            std::printf("  [%s] ok=%d err=%s\n", row.pattern, split.has_value(), err.c_str());
            ++failures;
        }
    }
    assert_int_equal(failures, 0);
}

void test_split(void **) {
    int failures = 0;
    for (const SplitRow &row : split_rows) {
        SplitResult out;
        SplitStatus status;
        if (row.pattern) {
            std::string err;
            auto split = SplitPathInfo::compile(row.pattern, err);
            assert_true(split.has_value());
            status = split->split(row.uri, row.index, out);
        } else {
            status = split_without_regex(row.uri, row.index, out);
        }
        std::string script = std::string(out.script_name) + std::string(out.index);
        bool good = status == row.status &&
                    (status != SplitStatus::ok ||
                     (out.done && script == row.script && out.path_info == row.path_info));
        if (!good) {
            std::printf("  [%s on %s] status=%s script=%s path_info=%s\n",
                        row.pattern ? row.pattern : "(none)", row.uri.c_str(),
                        std::string(to_string(status)).c_str(), script.c_str(),
                        std::string(out.path_info).c_str());
            ++failures;
        }
        // views point into the uri, never into a temporary
        if (status == SplitStatus::ok && !out.script_name.empty() &&
            (out.script_name.data() < row.uri.data() ||
             out.script_name.data() > row.uri.data() + row.uri.size())) {
            std::printf("  [%s] script_name is not a view into the uri\n", row.uri.c_str());
            ++failures;
        }
    }
    std::printf("  %zu split rows, %d failures\n", std::size(split_rows), failures);
    assert_int_equal(failures, 0);
}

void test_splittable(void **) {
    assert_true(path_is_splittable("/a/b.php"));
    assert_true(path_is_splittable(""));
    assert_false(path_is_splittable("/a\n"));
    assert_false(path_is_splittable("\r"));
    assert_false(path_is_splittable(std::string_view("/\0", 2)));
}

} // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_compile),
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_splittable),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
