// SPDX-License-Identifier: BSD-2-Clause
// core/http/chunked.cc: every row decoded whole, cut at every offset and byte by byte; the body,
// the outcome and the bytes consumed must be the same each way.
// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
extern "C" { // this cmocka.h has no C++ guard
#include <cmocka.h>
}
// clang-format on

#include <string>
#include <string_view>
#include <vector>

#include "http/chunked.h"

using namespace std::literals;
using portico::http::ChunkedDecoder;
using portico::http::ParseState;

namespace {

struct Row {
    const char *name;
    std::string_view raw;
    int status = 0;             // 0: Done expected
    std::string_view body = {}; // decoded body when Done
    size_t consumed = SIZE_MAX; // bytes consumed; SIZE_MAX: all of raw
    int64_t max_body = -1;
};

const std::string kLongExt =
    "1;" + std::string(ChunkedDecoder::kMaxSizeLine, 'e') + "\r\na\r\n0\r\n\r\n";
const std::string kLongTrailer =
    "0\r\nX: " + std::string(ChunkedDecoder::kMaxTrailers, 't') + "\r\n\r\n";

const Row kRows[] = {
    // ---- accepted ----
    {"one chunk", "5\r\nhello\r\n0\r\n\r\n", 0, "hello"},
    {"many chunks", "1\r\na\r\n2\r\nbc\r\n3\r\ndef\r\n0\r\n\r\n", 0, "abcdef"},
    {"uppercase hex", "A\r\n0123456789\r\n0\r\n\r\n", 0, "0123456789"},
    {"lowercase hex", "a\r\n0123456789\r\n0\r\n\r\n", 0, "0123456789"},
    {"leading zeros", "0005\r\nhello\r\n000\r\n\r\n", 0, "hello"},
    {"empty body", "0\r\n\r\n", 0, ""},
    {"extensions", "5;a=b;c;d=\"x y\\\"z\"\r\nhello\r\n0;e\r\n\r\n", 0, "hello"},
    {"quoted ext with obs-text", "2;q=\"\xe9;\"\r\nhi\r\n0\r\n\r\n", 0, "hi"},
    {"trailers", "5\r\nhello\r\n0\r\nX-T: 1\r\nY: \t\r\n\r\n", 0, "hello"},
    {"CRLF inside data", "4\r\n\r\n\r\n\r\n0\r\n\r\n", 0, "\r\n\r\n"},
    {"stops after the body", "0\r\n\r\nGET / HTTP/1.1\r\n", 0, "", 5},
    {"max_body exact", "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", 0, "abcde", SIZE_MAX, 5},
    {"16 hex digits", "0000000000000003\r\nabc\r\n0\r\n\r\n", 0, "abc"},
    // ---- refused: size line ----
    {"empty size", "\r\n", 400},
    {"leading space", " 5\r\nhello\r\n0\r\n\r\n", 400},
    {"trailing space", "5 \r\nhello\r\n0\r\n\r\n", 400},
    {"0x prefix", "0x5\r\nhello\r\n0\r\n\r\n", 400},
    {"minus", "-5\r\nhello\r\n0\r\n\r\n", 400},
    {"plus", "+5\r\nhello\r\n0\r\n\r\n", 400},
    {"17 hex digits", "00000000000000005\r\nhello\r\n0\r\n\r\n", 400},
    {"size over 2^62", "4000000000000001\r\n", 413},
    {"bare LF after size", "5\nhello\r\n0\r\n\r\n", 400},
    {"bare CR after size", "5\rhello\r\n0\r\n\r\n", 400},
    {"size line too long", kLongExt, 400},
    // ---- refused: extensions (no BWS) ----
    {"space before ;", "5 ;a\r\nhello\r\n0\r\n\r\n", 400},
    {"space after ;", "5; a\r\nhello\r\n0\r\n\r\n", 400},
    {"space before =", "5;a =b\r\nhello\r\n0\r\n\r\n", 400},
    {"space after =", "5;a= b\r\nhello\r\n0\r\n\r\n", 400},
    {"empty ext name", "5;=b\r\nhello\r\n0\r\n\r\n", 400},
    {"empty ext value", "5;a=\r\nhello\r\n0\r\n\r\n", 400},
    {"empty ext", "5;\r\nhello\r\n0\r\n\r\n", 400},
    {"unterminated quote", "5;a=\"b\r\nhello\r\n0\r\n\r\n", 400},
    {"junk after quote", "5;a=\"b\"c\r\nhello\r\n0\r\n\r\n", 400},
    {"CTL in quote", "5;a=\"\x01\"\r\nhello\r\n0\r\n\r\n", 400},
    // ---- refused: data ----
    {"data too long", "5\r\nhelloX\r\n0\r\n\r\n", 400},
    {"data too short", "5\r\nhell\r\n0\r\n\r\n", 400},
    {"bare LF after data", "5\r\nhello\n0\r\n\r\n", 400},
    {"max_body exceeded", "3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n", 413, {}, SIZE_MAX, 5},
    // ---- refused: trailers ----
    {"trailer obs-fold", "0\r\nX: 1\r\n y\r\n\r\n", 400},
    {"trailer starts with space", "0\r\n X: 1\r\n\r\n", 400},
    {"trailer space before colon", "0\r\nX : 1\r\n\r\n", 400},
    {"trailer without colon", "0\r\nX\r\n\r\n", 400},
    {"trailer empty name", "0\r\n: 1\r\n\r\n", 400},
    {"trailer NUL", "0\r\nX: a\0b\r\n\r\n"sv, 400},
    {"trailer bare LF", "0\r\nX: 1\n\r\n", 400},
    {"final bare LF", "0\r\n\n", 400},
    {"final CR CR", "0\r\n\r\r", 400},
    {"trailer section too large", kLongTrailer, 431},
};

struct Outcome {
    ParseState state = ParseState::Again;
    int status = 0;
    std::string body;
    size_t consumed = 0;
};

// Feeds raw in pieces cut at `cuts` (ascending), looping as the contract asks.
Outcome decode(const Row &row, const std::vector<size_t> &cuts) {
    ChunkedDecoder dec(row.max_body);
    Outcome out;
    size_t start = 0;
    for (size_t i = 0; i <= cuts.size(); ++i) {
        size_t end = i < cuts.size() ? cuts[i] : row.raw.size();
        std::string piece(row.raw.substr(start, end - start)); // its own buffer
        std::string_view in = piece;
        while (!in.empty()) {
            std::string_view data;
            auto s = dec.feed(in, &data);
            assert_true(s.consumed <= in.size());
            out.body.append(data);
            in.remove_prefix(s.consumed);
            out.consumed += s.consumed;
            out.state = s.state;
            out.status = s.status;
            if (s.state != ParseState::Again) {
                assert_int_equal(s.state == ParseState::Done, dec.done());
                if (s.state == ParseState::Error) {
                    assert_non_null(s.reason);
                }
                return out;
            }
            if (!data.empty()) {
                assert_true(data.data() >= piece.data() &&
                            data.data() + data.size() <= piece.data() + piece.size());
            }
        }
        start = end;
    }
    return out;
}

void check(const Row &row, const Outcome &got, const char *how, size_t cut) {
    if (row.status != 0) {
        if (got.state != ParseState::Error || got.status != row.status) {
            fail_msg("%s (%s %zu): expected %d, got state %d status %d", row.name, how, cut,
                     row.status, int(got.state), got.status);
        }
        return;
    }
    if (got.state != ParseState::Done) {
        fail_msg("%s (%s %zu): expected Done, got state %d status %d", row.name, how, cut,
                 int(got.state), got.status);
    }
    if (got.body != row.body) {
        fail_msg("%s (%s %zu): body '%s'", row.name, how, cut, got.body.c_str());
    }
    size_t want = row.consumed == SIZE_MAX ? row.raw.size() : row.consumed;
    assert_int_equal(got.consumed, want);
}

void whole(void **) {
    for (const Row &row : kRows) {
        check(row, decode(row, {}), "whole", 0);
    }
}

void every_split(void **) {
    for (const Row &row : kRows) {
        Outcome ref = decode(row, {});
        for (size_t cut = 1; cut < row.raw.size(); ++cut) {
            Outcome got = decode(row, {cut});
            check(row, got, "split", cut);
            assert_int_equal(got.consumed, ref.consumed); // errors stop at the same byte
        }
    }
}

void byte_by_byte(void **) {
    for (const Row &row : kRows) {
        std::vector<size_t> cuts;
        for (size_t i = 1; i < row.raw.size(); ++i) {
            cuts.push_back(i);
        }
        Outcome got = decode(row, cuts);
        check(row, got, "bytes", 0);
        assert_int_equal(got.consumed, decode(row, {}).consumed);
    }
}

void after_end(void **) {
    ChunkedDecoder dec(-1);
    std::string_view data;
    auto s = dec.feed("2\r\nok\r\n0\r\n\r\n", &data);
    assert_int_equal(int(s.state), int(ParseState::Again));
    assert_true(data == "ok");
    assert_int_equal(dec.total(), 2);
    s = dec.feed("\r\n0\r\n\r\n", &data);
    assert_int_equal(int(s.state), int(ParseState::Done));
    assert_int_equal(s.consumed, 7u);
    s = dec.feed("more", &data);
    assert_int_equal(int(s.state), int(ParseState::Done));
    assert_int_equal(s.consumed, 0u);
    assert_true(data.empty());
    dec.reset();
    assert_false(dec.done());
    assert_int_equal(dec.total(), 0);
}

void encode_header(void **) {
    struct {
        size_t n;
        std::string_view want;
    } const rows[] = {
        {1, "1\r\n"},
        {15, "f\r\n"},
        {16, "10\r\n"},
        {4096, "1000\r\n"},
        {0xdeadbeef, "deadbeef\r\n"},
        {SIZE_MAX, "ffffffffffffffff\r\n"},
    };
    for (const auto &row : rows) {
        char buf[20];
        size_t len = 0;
        portico::http::chunked_encode_header(row.n, buf, &len);
        assert_true(std::string_view(buf, len) == row.want);
        // what we produce, we accept
        std::string body(std::min<size_t>(row.n, 64), 'x');
        if (row.n <= 64) {
            std::string wire = std::string(buf, len) + body +
                               std::string(portico::http::kChunkDataEnd) +
                               std::string(portico::http::kChunkedLast);
            Row r{"encoded", wire, 0, body};
            check(r, decode(r, {}), "encoded", row.n);
        }
    }
}

} // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(whole),         cmocka_unit_test(every_split),
        cmocka_unit_test(byte_by_byte),  cmocka_unit_test(after_end),
        cmocka_unit_test(encode_header),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
