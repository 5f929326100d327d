// Regex: compile errors in nginx's words, captures, names, caseless.
#include <csetjmp>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <iterator>
#include <string>
#include <string_view>
#include <utility>

#include "base/regex.h"

// cmocka last: its fail() macro breaks C++ headers included after it
extern "C" {
#include <cmocka.h>
}

using portico::Regex;

namespace {

struct MatchCase {
    std::string_view pattern;
    bool caseless;
    std::string_view subject;
    int want; // match()'s return with room for 10 pairs
};

const MatchCase match_cases[] = {
    {"\\.php$", false, "/index.php", 1},
    {"\\.php$", false, "/index.PHP", 0},
    {"\\.php$", true, "/index.PHP", 1},
    {"^/(a)(b)?(c)$", false, "/ac", 4}, // group 2 unset but counted: PCRE2 numbering
    {"^/(a)(b)?$", false, "/a", 2},     // trailing unset groups are not counted
    {"^(.+?\\.php)(/.*)$", false, "/x.php/info", 3},
    {"^(.+?\\.php)(/.*)$", false, "/x.php\n/info", 0}, // '.' does not match newline
    {"", false, "", 1},
};

void test_match_table(void **) {
    int failures = 0;
    for (const MatchCase &c : match_cases) {
        std::string err;
        auto re = Regex::compile(c.pattern, c.caseless, err);
        int ov[20];
        int got = re ? re->match(c.subject, ov, 10) : -100;
        if (got != c.want) {
            std::printf("FAIL /%.*s/ on \"%.*s\": %d want %d %s\n", int(c.pattern.size()),
                        c.pattern.data(), int(c.subject.size()), c.subject.data(), got, c.want,
                        err.c_str());
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

void test_offsets_and_unset(void **) {
    std::string err;
    auto re = Regex::compile("^/(a)(b)?(c)$", false, err);
    assert_true(re.has_value());
    assert_int_equal(re->capture_count(), 3);
    int ov[20];
    assert_int_equal(re->match("/ac", ov, 10), 4);
    assert_int_equal(ov[0], 0);
    assert_int_equal(ov[1], 3);
    assert_int_equal(ov[2], 1);
    assert_int_equal(ov[3], 2);
    assert_int_equal(ov[4], -1); // (b)? did not take part
    assert_int_equal(ov[5], -1);
    assert_int_equal(ov[6], 2);
    assert_int_equal(ov[7], 3);
    assert_int_equal(ov[8], -1); // beyond the groups
    // a short ovector: filled as far as it goes
    int small[2];
    assert_int_equal(re->match("/ac", small, 1), 1);
    assert_int_equal(small[1], 3);
    assert_true(re->matches("/abc"));
    assert_false(re->matches("/ab"));
}

void test_names(void **) {
    std::string err;
    auto re = Regex::compile("^(?<user>[a-z]+)\\.(x)\\.(?<domain>.+)$", false, err);
    assert_true(re.has_value());
    assert_int_equal(re->capture_count(), 3);
    const auto &names = re->names();
    assert_int_equal(names.size(), 2);
    // the name table is sorted by name
    assert_string_equal(names[0].first.c_str(), "domain");
    assert_int_equal(names[0].second, 3);
    assert_string_equal(names[1].first.c_str(), "user");
    assert_int_equal(names[1].second, 1);
}

void test_compile_errors(void **) {
    std::string err;
    assert_false(Regex::compile("(abc", false, err).has_value());
    assert_string_equal(err.c_str(),
                        "pcre2_compile() failed: missing closing parenthesis in \"(abc\" at \"\"");
    assert_false(Regex::compile("a)b", false, err).has_value());
    assert_string_equal(
        err.c_str(), "pcre2_compile() failed: unmatched closing parenthesis in \"a)b\" at \")b\"");
}

void test_move(void **) {
    std::string err;
    auto re = Regex::compile("x+", false, err);
    assert_true(re.has_value());
    Regex moved = std::move(*re);
    assert_true(moved.matches("axxb"));
    assert_string_equal(std::string(moved.pattern()).c_str(), "x+");
}

} // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_match_table), cmocka_unit_test(test_offsets_and_unset),
        cmocka_unit_test(test_names),       cmocka_unit_test(test_compile_errors),
        cmocka_unit_test(test_move),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
