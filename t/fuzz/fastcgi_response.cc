// Arbitrary bytes through the CGI response head parser, split at a
// fuzzer-chosen point, with a fuzzer-chosen head limit; the outcome must be
// the same as feeding the bytes whole.
// fuzz-sources: modules/fastcgi/cgi_response.cc
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fastcgi/cgi_response.h"

using namespace portico::fastcgi;

namespace {

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) __builtin_trap();                                                             \
    } while (0)

struct Outcome {
    HeadStatus status;
    std::string_view error;
    std::size_t consumed;
    std::string summary; // the parsed head, flattened
};

Outcome parse(std::string_view input, std::size_t split, std::size_t max) {
    CgiHeadParser parser(max);
    Outcome out{HeadStatus::Again, {}, 0, {}};
    std::string_view parts[2] = {input.substr(0, split), input.substr(split)};
    for (std::string_view part : parts) {
        HeadResult r = parser.feed(part);
        out.status = r.status;
        out.error = r.error;
        if (r.status == HeadStatus::Error) return out;
        CHECK(r.consumed <= part.size());
        out.consumed += r.consumed;
        if (r.status == HeadStatus::Done) break;
        CHECK(r.consumed == part.size());
    }
    if (out.status != HeadStatus::Done) return out;
    const CgiResponseHead &h = parser.head();
    CHECK(h.head_size == out.consumed && h.head_size <= max);
    std::string_view head = input.substr(0, h.head_size);
    CHECK(head.back() == '\n');
    CHECK(h.status == 0 || (h.status >= 100 && h.status <= 999));
    int eff = h.effective_status();
    CHECK(eff >= 100 && eff <= 999);
    CHECK((h.location_kind == LocationKind::None) == h.location.empty());
    if (h.kind == ResponseKind::LocalRedirect) CHECK(h.location[0] == '/' && h.fields.empty());
    out.summary = std::to_string(h.status) + '|' + std::string(h.reason) + '|' +
                  std::string(h.location) + '|' + std::string(h.content_type) + '|' +
                  std::string(to_string(h.kind)) + '|' + std::string(to_string(h.location_kind)) +
                  '|' + std::string(h.x_accel_redirect) + '|' + (h.has_x_accel ? "x" : "-");
    for (const HeaderField &f : h.fields) {
        CHECK(!f.name.empty());
        for (unsigned char c : f.value)
            CHECK(c >= 0x20 || c == '\t');
        CHECK(f.value.find('\x7f') == std::string_view::npos);
        out.summary += '|';
        out.summary.append(f.name);
        out.summary += ':';
        out.summary.append(f.value);
    }
    return out;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
    if (size < 3) return 0;
    // bytes 0-1: the head limit (16..65551); byte 2: where to split.
    std::size_t max = 16 + (std::size_t{data[0]} << 8 | data[1]);
    std::string_view input(reinterpret_cast<const char *>(data) + 3, size - 3);
    std::size_t split = input.empty() ? 0 : data[2] % (input.size() + 1);
    if (data[2] == 0xff) split = input.size() / 2;

    Outcome whole = parse(input, input.size(), max);
    Outcome parts = parse(input, split, max);
    CHECK(whole.status == parts.status);
    CHECK(whole.error == parts.error);
    if (whole.status == HeadStatus::Done) CHECK(whole.consumed == parts.consumed);
    CHECK(whole.summary == parts.summary);
    return 0;
}
