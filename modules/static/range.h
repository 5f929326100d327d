// Range request header parsing (RFC 9110 §14.1-14.2), byte unit only.
// Pure: no host calls, so it can be unit-tested and fuzzed on its own.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace static_module {

struct ByteRange {
    int64_t start, end; // inclusive, already clipped to the representation
};

enum class RangeResult {
    Ignore,        // no byte ranges, invalid syntax, or refused as abusive: send 200
    Unsatisfiable, // valid, but no range overlaps the representation: 416
    Satisfiable,   // `out` holds at least one range, in the order asked
};

// More ranges than this (or ranges that add up to more than the file) are
// answered with the whole file: many tiny or overlapping ranges cost us far
// more than the client (CVE-2011-3192, "Apache Killer").
constexpr size_t kMaxRanges = 64;

RangeResult parse_ranges(std::string_view header, int64_t size, std::vector<ByteRange> &out);

} // namespace static_module
