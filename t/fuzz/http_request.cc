// SPDX-License-Identifier: BSD-2-Clause
// Fuzz the request-head parser: any input, whole and cut at a fuzzer-chosen offset (the two
// feeds from different buffers, as when the caller's buffer moves), must give the same answer;
// Done heads lie inside the input and end with CRLF CRLF.
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
bool same(const RequestHead &a, const RequestHead &b) {
    if (a.headers.size() != b.headers.size()) {
        return false;
    }
    for (size_t i = 0; i < a.headers.size(); ++i) {
        if (a.headers[i].name != b.headers[i].name || a.headers[i].value != b.headers[i].value) {
            return false;
        }
    }
    return a.method == b.method && a.target == b.target && a.path == b.path && a.query == b.query &&
           a.scheme == b.scheme && a.authority == b.authority && a.version == b.version &&
           a.host == b.host && a.content_length == b.content_length && a.chunked == b.chunked &&
           a.keep_alive == b.keep_alive && a.expect_continue == b.expect_continue &&
           a.upgrade == b.upgrade && a.head_len == b.head_len;
}
} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) {
        return 0;
    }
    // byte 0: options; byte 1: where to cut
    Limits limits;
    if (data[0] & 1) {
        limits.max_request_line = 64;
        limits.max_header_line = 48;
        limits.max_head = 256;
        limits.max_headers = 6;
    }
    limits.underscores_in_headers = data[0] & 2;
    limits.ignore_invalid_headers = data[0] & 4;
    std::string_view in(reinterpret_cast<const char *>(data) + 2, size - 2);
    size_t cut = in.empty() ? 0 : data[1] % (in.size() + 1);

    RequestHead whole_head, split_head;
    RequestParser whole(limits), split(limits);
    ParseResult rw = whole.feed(in, whole_head);

    std::string prefix(in.substr(0, cut));
    ParseResult rp = split.feed(prefix, split_head);
    if (rp.state == ParseState::Done) {
        check(split_head.head_len <= cut);
    }
    std::string copy(in);
    ParseResult rs = split.feed(copy, split_head);

    check(rw.state == rs.state && rw.status == rs.status);
    if (rp.state == ParseState::Error) {
        check(rp.status == rw.status);
    }
    if (rw.state == ParseState::Error) {
        check(rw.reason != nullptr && rw.status >= 400 && rw.status < 600);
    }
    if (rw.state == ParseState::Done) {
        check(same(whole_head, split_head));
        check(whole_head.head_len >= 4 && whole_head.head_len <= in.size());
        check(in.substr(whole_head.head_len - 4, 4) == "\r\n\r\n");
        check(!(whole_head.chunked && whole_head.content_length >= 0));
        check(whole_head.version == 10 || whole_head.version == 11);
        check(whole_head.head_len <= limits.max_head);
        // the parser is reusable after reset()
        whole.reset();
        RequestHead again;
        ParseResult r2 = whole.feed(in, again);
        check(r2.state == ParseState::Done && same(again, whole_head));
    }
    return 0;
}
