#include "config/setters.h"

#include <limits>

namespace portico::config {

const char *const kInvalidValue = "invalid value";
const char *const kInvalidNumber = "invalid number";
const char *const kFlagMustBe = "it must be \"on\" or \"off\"";

namespace {

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();

bool equals_nocase(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        char x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
        if (x != y) return false;
    }
    return true;
}

bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

// nginx's ngx_atoi: digits only, at least one, overflow refused.
bool to_int(std::string_view v, int64_t &out) {
    if (v.empty()) return false;
    int64_t value = 0;
    for (char c : v) {
        if (!is_digit(c)) return false;
        const int d = c - '0';
        if (value > (kMax - d) / 10) return false;
        value = value * 10 + d;
    }
    out = value;
    return true;
}

// nginx's ngx_parse_time. Units must come largest first and once each; a
// space may end a bare number (counted as seconds) or follow a unit.
bool parse_time(std::string_view v, bool is_sec, int64_t &out) {
    enum Step { Start, Year, Month, Week, Day, Hour, Min, Sec, Msec, Last };
    // nginx starts the msec parser past months, which refuses y and M there
    Step step = is_sec ? Start : Month;
    int64_t value = 0, total = 0;
    bool valid = false;
    std::size_t p = 0;
    while (p < v.size()) {
        const char c = v[p++];
        if (is_digit(c)) {
            const int d = c - '0';
            if (value > (kMax - d) / 10) return false;
            value = value * 10 + d;
            valid = true;
            continue;
        }
        Step next;
        int64_t scale;
        switch (c) {
        case 'y':
            next = Year, scale = 60LL * 60 * 24 * 365;
            break;
        case 'M':
            next = Month, scale = 60LL * 60 * 24 * 30;
            break;
        case 'w':
            next = Week, scale = 60LL * 60 * 24 * 7;
            break;
        case 'd':
            next = Day, scale = 60LL * 60 * 24;
            break;
        case 'h':
            next = Hour, scale = 60LL * 60;
            break;
        case 'm':
            if (p < v.size() && v[p] == 's') {
                if (is_sec) return false;
                ++p;
                next = Msec, scale = 1;
            } else {
                next = Min, scale = 60;
            }
            break;
        case 's':
            next = Sec, scale = 1;
            break;
        case ' ':
            next = Last, scale = 1;
            break;
        default:
            return false;
        }
        // a unit must be smaller than the one before it ('y' only first)
        if (next == Year ? step > Start : step >= next) return false;
        // a bare number before a space is seconds; it must come after no smaller unit
        if (next == Last && step >= Sec) return false;
        step = next;
        if (step != Msec && !is_sec) scale *= 1000;
        if (value > kMax / scale) return false;
        value *= scale;
        if (total > kMax - value) return false;
        total += value;
        value = 0;
        while (p < v.size() && v[p] == ' ')
            ++p;
    }
    if (!valid) return false;
    if (!is_sec) {
        if (value > kMax / 1000) return false;
        value *= 1000;
    }
    if (total > kMax - value) return false;
    out = total + value;
    return true;
}

} // namespace

const char *parse_flag(std::string_view v, bool &out) {
    if (equals_nocase(v, "on")) {
        out = true;
        return nullptr;
    }
    if (equals_nocase(v, "off")) {
        out = false;
        return nullptr;
    }
    return kFlagMustBe;
}

const char *parse_size(std::string_view v, int64_t &out) {
    if (v.empty()) return kInvalidValue;
    int64_t scale = 1;
    switch (v.back()) {
    case 'k':
    case 'K':
        scale = 1024;
        break;
    case 'm':
    case 'M':
        scale = 1024 * 1024;
        break;
    case 'g':
    case 'G':
        scale = 1024 * 1024 * 1024;
        break;
    default:
        break;
    }
    if (scale != 1) v.remove_suffix(1);
    int64_t n;
    if (!to_int(v, n) || n > kMax / scale) return kInvalidValue;
    out = n * scale;
    return nullptr;
}

const char *parse_msec(std::string_view v, int64_t &out) {
    return parse_time(v, false, out) ? nullptr : kInvalidValue;
}

const char *parse_sec(std::string_view v, int64_t &out) {
    return parse_time(v, true, out) ? nullptr : kInvalidValue;
}

const char *parse_int(std::string_view v, int64_t &out) {
    return to_int(v, out) ? nullptr : kInvalidNumber;
}

std::string setter_error_text(std::string_view directive, std::string_view value,
                              const char *message) {
    if (message == kFlagMustBe) {
        return "invalid value \"" + std::string(value) + "\" in \"" + std::string(directive) +
               "\" directive, " + message;
    }
    return "\"" + std::string(directive) + "\" directive " + message;
}

} // namespace portico::config
