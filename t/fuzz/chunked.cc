// SPDX-License-Identifier: BSD-2-Clause
// Fuzz the chunked decoder: whole, cut at a fuzzer-chosen offset and byte by byte must give the
// same body, the same outcome and stop at the same byte; data views stay inside the input.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "http/chunked.h"

using namespace portico::http;

namespace {
void check(bool ok) {
    if (!ok) {
        abort();
    }
}

struct Outcome {
    ParseState state = ParseState::Again;
    int status = 0;
    size_t consumed = 0;
    std::string body;
    int64_t total = 0;
};

Outcome decode(std::string_view in, int64_t max_body, size_t step) {
    ChunkedDecoder dec(max_body);
    Outcome out;
    for (size_t start = 0; start < in.size(); start += step) {
        std::string piece(in.substr(start, step)); // its own buffer
        std::string_view rest = piece;
        while (!rest.empty()) {
            std::string_view data;
            auto s = dec.feed(rest, &data);
            check(s.consumed <= rest.size());
            check(data.empty() || (data.data() >= rest.data() &&
                                   data.data() + data.size() <= rest.data() + s.consumed));
            out.body.append(data);
            rest.remove_prefix(s.consumed);
            out.consumed += s.consumed;
            out.state = s.state;
            out.status = s.status;
            if (s.state != ParseState::Again) {
                out.total = dec.total();
                return out;
            }
        }
    }
    out.total = dec.total();
    return out;
}

bool same(const Outcome &a, const Outcome &b) {
    return a.state == b.state && a.status == b.status && a.consumed == b.consumed &&
           a.body == b.body && a.total == b.total;
}
} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) {
        return 0;
    }
    const int64_t max_body = (data[0] & 1) ? int64_t(data[0] >> 1) * 4 : -1;
    std::string_view in(reinterpret_cast<const char *>(data) + 2, size - 2);
    size_t cut = 1 + data[1] % (in.size() + 1);

    Outcome whole = decode(in, max_body, in.size() + 1);
    check(same(whole, decode(in, max_body, cut)));
    if (in.size() < 2048) {
        check(same(whole, decode(in, max_body, 1)));
    }
    check(whole.total == int64_t(whole.body.size()));
    check(max_body < 0 || whole.total <= max_body);
    if (whole.state == ParseState::Error) {
        check(whole.status == 400 || whole.status == 413 || whole.status == 431);
    }
    return 0;
}
