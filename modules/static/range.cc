#include "range.h"

namespace static_module {
namespace {

bool is_ows(char c) { return c == ' ' || c == '\t'; }

std::string_view trim(std::string_view s) {
    while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
    return s;
}

// 1*DIGIT, at most 18 digits so the value and any sum of two stay in int64
bool number(std::string_view s, int64_t &out) {
    if (s.empty() || s.size() > 18) return false;
    out = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return false;
        out = out * 10 + (c - '0');
    }
    return true;
}

bool unit_is_bytes(std::string_view u) {
    // range-unit is case-insensitive (RFC 9110 §14.1)
    static constexpr std::string_view kBytes = "bytes";
    if (u.size() != kBytes.size()) return false;
    for (size_t i = 0; i < u.size(); i++)
        if ((u[i] | 0x20) != kBytes[i]) return false;
    return true;
}

} // namespace

RangeResult parse_ranges(std::string_view header, int64_t size, std::vector<ByteRange> &out) {
    out.clear();
    size_t eq = header.find('=');
    if (eq == std::string_view::npos || !unit_is_bytes(header.substr(0, eq)))
        return RangeResult::Ignore;
    std::string_view set = header.substr(eq + 1);
    bool any = false;
    int64_t total = 0;
    while (true) {
        size_t comma = set.find(',');
        std::string_view spec = trim(set.substr(0, comma));
        // empty list elements are allowed by the list syntax (RFC 9110 §5.6.1.2)
        if (!spec.empty()) {
            any = true;
            size_t dash = spec.find('-');
            if (dash == std::string_view::npos) return RangeResult::Ignore;
            std::string_view first = spec.substr(0, dash), last = spec.substr(dash + 1);
            int64_t a = 0, b = 0;
            if (first.empty()) {
                // suffix-range: the last b bytes; "-0" is valid and unsatisfiable
                if (!number(last, b)) return RangeResult::Ignore;
                if (b > 0 && size > 0) out.push_back({b >= size ? 0 : size - b, size - 1});
            } else {
                if (!number(first, a)) return RangeResult::Ignore;
                if (last.empty()) {
                    b = size - 1;
                } else {
                    if (!number(last, b)) return RangeResult::Ignore;
                    // last < first makes the whole ranges-specifier invalid (§14.1.1)
                    if (b < a) return RangeResult::Ignore;
                    if (b >= size) b = size - 1;
                }
                if (a < size) out.push_back({a, b});
            }
            if (out.size() > kMaxRanges) {
                out.clear();
                return RangeResult::Ignore;
            }
        }
        if (comma == std::string_view::npos) break;
        set.remove_prefix(comma + 1);
    }
    if (!any) return RangeResult::Ignore;
    if (out.empty()) return RangeResult::Unsatisfiable;
    for (const ByteRange &r : out) total += r.end - r.start + 1;
    if (out.size() > 1 && total > size) {
        out.clear();
        return RangeResult::Ignore;
    }
    return RangeResult::Satisfiable;
}

} // namespace static_module
