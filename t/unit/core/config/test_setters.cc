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

#include "config/setters.h"

namespace cfg = portico::config;

namespace {

using Parser = const char *(*)(std::string_view, int64_t &);

struct Row {
    const char *what;
    Parser parse;
    const char *input;
    bool ok;
    int64_t expected;
};

constexpr int64_t K = 1024, M = K * K, G = M * K;
constexpr int64_t kMs = 1, kS = 1000 * kMs, kMin = 60 * kS, kH = 60 * kMin, kD = 24 * kH;

const Row kRows[] = {
    {"size", cfg::parse_size, "1024", true, 1024},
    {"size", cfg::parse_size, "0", true, 0},
    {"size", cfg::parse_size, "10k", true, 10 * K},
    {"size", cfg::parse_size, "10K", true, 10 * K},
    {"size", cfg::parse_size, "1m", true, M},
    {"size", cfg::parse_size, "8M", true, 8 * M},
    {"size", cfg::parse_size, "2g", true, 2 * G},
    {"size", cfg::parse_size, "2G", true, 2 * G},
    {"size", cfg::parse_size, "9223372036854775807", true, INT64_MAX},
    {"size", cfg::parse_size, "9223372036854775808", false, 0},
    {"size", cfg::parse_size, "8589934592g", false, 0},
    {"size", cfg::parse_size, "8589934591g", true, 8589934591 * G},
    {"size", cfg::parse_size, "10q", false, 0},
    {"size", cfg::parse_size, "", false, 0},
    {"size", cfg::parse_size, "k", false, 0},
    {"size", cfg::parse_size, "-1", false, 0},
    {"size", cfg::parse_size, " 1", false, 0},
    {"size", cfg::parse_size, "1kb", false, 0},
    {"size", cfg::parse_size, "1.5m", false, 0},
    {"msec", cfg::parse_msec, "30", true, 30 * kS},
    {"msec", cfg::parse_msec, "500ms", true, 500},
    {"msec", cfg::parse_msec, "1s", true, kS},
    {"msec", cfg::parse_msec, "1h 30m", true, kH + 30 * kMin},
    {"msec", cfg::parse_msec, "1h30m", true, kH + 30 * kMin},
    {"msec", cfg::parse_msec, "1d2h3m4s5ms", true, kD + 2 * kH + 3 * kMin + 4 * kS + 5},
    {"msec", cfg::parse_msec, "1w", true, 7 * kD},
    {"msec", cfg::parse_msec, "1m 10", true, kMin + 10 * kS},
    {"msec", cfg::parse_msec, "1y", false, 0}, // nginx: y and M only in seconds
    {"msec", cfg::parse_msec, "1M", false, 0},
    {"msec", cfg::parse_msec, "30m 1h", false, 0}, // smaller unit first
    {"msec", cfg::parse_msec, "1s1s", false, 0},
    {"msec", cfg::parse_msec, "1ms 1s", false, 0},
    {"msec", cfg::parse_msec, "", false, 0},
    {"msec", cfg::parse_msec, "s", false, 0},
    {"msec", cfg::parse_msec, "10x", false, 0},
    {"msec", cfg::parse_msec, "-1s", false, 0},
    {"msec", cfg::parse_msec, "9223372036854776s", false, 0},
    {"sec", cfg::parse_sec, "60", true, 60},
    {"sec", cfg::parse_sec, "1y", true, 365 * 86400},
    {"sec", cfg::parse_sec, "1y 1M", true, 365 * 86400 + 30 * 86400},
    {"sec", cfg::parse_sec, "2d 12h", true, 2 * 86400 + 12 * 3600},
    {"sec", cfg::parse_sec, "500ms", false, 0},
    {"sec", cfg::parse_sec, "1M 1y", false, 0},
    {"sec", cfg::parse_sec, "9223372036854775807", true, INT64_MAX},
    {"sec", cfg::parse_sec, "9223372036854775807s 1", false, 0},
    {"int", cfg::parse_int, "0", true, 0},
    {"int", cfg::parse_int, "65535", true, 65535},
    {"int", cfg::parse_int, "007", true, 7},
    {"int", cfg::parse_int, "-5", false, 0},
    {"int", cfg::parse_int, "+5", false, 0},
    {"int", cfg::parse_int, "5 ", false, 0},
    {"int", cfg::parse_int, "", false, 0},
    {"int", cfg::parse_int, "99999999999999999999", false, 0},
};

void test_rows(void **) {
    int failures = 0;
    for (const Row &row : kRows) {
        int64_t got = -42;
        const char *msg = row.parse(row.input, got);
        const bool ok = msg == nullptr;
        if (ok != row.ok || (ok && got != row.expected) || (!ok && got != -42)) {
            std::printf("%s [%s]: expected %s %lld, got %s %lld\n", row.what, row.input,
                        row.ok ? "ok" : "error", static_cast<long long>(row.expected),
                        ok ? "ok" : msg, static_cast<long long>(got));
            ++failures;
        }
    }
    assert_int_equal(failures, 0);
}

void test_messages(void **) {
    int64_t v;
    assert_string_equal(cfg::parse_size("10q", v), "invalid value");
    assert_string_equal(cfg::parse_msec("10q", v), "invalid value");
    assert_string_equal(cfg::parse_int("x", v), "invalid number");
    assert_string_equal(
        cfg::setter_error_text("client_max_body_size", "10q", cfg::parse_size("10q", v)).c_str(),
        "\"client_max_body_size\" directive invalid value");
}

void test_flag(void **) {
    struct {
        const char *input;
        bool ok, value;
    } rows[] = {{"on", true, true},    {"off", true, false},  {"ON", true, true},
                {"Off", true, false},  {"yes", false, false}, {"", false, false},
                {"on ", false, false}, {"o", false, false}};
    for (auto &r : rows) {
        bool v = !r.value;
        const char *msg = cfg::parse_flag(r.input, v);
        assert_int_equal(msg == nullptr, r.ok);
        if (r.ok) assert_int_equal(v, r.value);
    }
    bool v;
    assert_string_equal(
        cfg::setter_error_text("gzip", "yes", cfg::parse_flag("yes", v)).c_str(),
        "invalid value \"yes\" in \"gzip\" directive, it must be \"on\" or \"off\"");
}

} // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rows),
        cmocka_unit_test(test_messages),
        cmocka_unit_test(test_flag),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
