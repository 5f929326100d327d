// SPDX-License-Identifier: BSD-2-Clause
// Fuzz the response-head parser: whole vs cut at a fuzzer-chosen offset must agree; the framing
// decision is always exactly one of no body / chunked / length / close-delimited.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "http/parser.h"

using namespace portico::http;

namespace {
void check(bool ok) {
    if (!ok) {
        abort();
    }
}
bool same(const ResponseHead &a, const ResponseHead &b) {
    if (a.headers.size() != b.headers.size()) {
        return false;
    }
    for (size_t i = 0; i < a.headers.size(); ++i) {
        if (a.headers[i].name != b.headers[i].name || a.headers[i].value != b.headers[i].value) {
            return false;
        }
    }
    return a.version == b.version && a.status == b.status && a.reason == b.reason &&
           a.content_length == b.content_length && a.chunked == b.chunked &&
           a.close_delimited == b.close_delimited && a.keep_alive == b.keep_alive &&
           a.no_body == b.no_body && a.upgrade == b.upgrade && a.head_len == b.head_len;
}
} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) {
        return 0;
    }
    Limits limits;
    if (data[0] & 1) {
        limits.max_request_line = 64;
        limits.max_header_line = 48;
        limits.max_head = 256;
        limits.max_headers = 6;
    }
    const bool head = data[0] & 2;
    std::string_view in(reinterpret_cast<const char *>(data) + 2, size - 2);
    size_t cut = in.empty() ? 0 : data[1] % (in.size() + 1);

    ResponseHead whole_head, split_head;
    ResponseParser whole(limits), split(limits);
    ParseResult rw = whole.feed(in, whole_head, head);

    std::string prefix(in.substr(0, cut));
    ParseResult rp = split.feed(prefix, split_head, head);
    if (rp.state == ParseState::Done) {
        check(split_head.head_len <= cut);
    }
    std::string copy(in);
    ParseResult rs = split.feed(copy, split_head, head);

    check(rw.state == rs.state && rw.status == rs.status);
    if (rw.state == ParseState::Error) {
        check(rw.status == 502 && rw.reason != nullptr);
        check(rp.state != ParseState::Done);
    }
    if (rw.state == ParseState::Done) {
        const ResponseHead &h = whole_head;
        check(same(h, split_head));
        check(h.head_len >= 4 && h.head_len <= in.size());
        check(in.substr(h.head_len - 4, 4) == "\r\n\r\n");
        check(h.status >= 100 && h.status <= 599);
        int framings = int(h.no_body) + int(h.chunked) + int(h.close_delimited) +
                       int(!h.no_body && h.content_length >= 0);
        check(framings == 1);
        check(!h.close_delimited || !h.keep_alive);
    }
    return 0;
}
