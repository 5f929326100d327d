// SPDX-License-Identifier: BSD-2-Clause
// core/http/parser.cc: every request/response row is parsed whole, cut at every byte offset
// (prefix first, then the whole buffer from a different address) and grown byte by byte; all
// three must agree with the row.
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

#include "http/parser.h"

using namespace std::literals;
using portico::http::Limits;
using portico::http::ParseResult;
using portico::http::ParseState;
using portico::http::RequestHead;
using portico::http::RequestParser;
using portico::http::ResponseHead;
using portico::http::ResponseParser;

namespace {

Limits small_limits() {
    Limits l;
    l.max_request_line = 32;
    l.max_header_line = 24;
    l.max_head = 96;
    l.max_headers = 3;
    return l;
}
Limits tiny_head() {
    Limits l;
    l.max_head = 40;
    return l;
}
Limits lenient_names() {
    Limits l;
    l.underscores_in_headers = true;
    l.ignore_invalid_headers = false;
    return l;
}

struct Req {
    const char *name;
    std::string_view raw;
    int status = 0; // 0: Done expected
    std::string_view method = "GET", path = "/", query = "", host = "h";
    int version = 11;
    int64_t content_length = -1;
    bool chunked = false, keep_alive = true, expect_continue = false, upgrade = false;
    int headers = -1;                              // expected count, -1 unchecked
    std::string_view field = {}, field_value = {}; // a field that must be present with value
    Limits limits = {};
};

const Req kRequests[] = {
    // ---- accepted ----
    {"origin-form with query", "GET /a/b?x=1&y HTTP/1.1\r\nHost: h\r\n\r\n", 0, "GET", "/a/b",
     "x=1&y", "h", 11, -1, false, true, false, false, 1},
    {"content-length", "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 42\r\n\r\n", 0, "POST", "/p",
     "", "h", 11, 42},
    {"chunked, case-insensitive",
     "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: ChunKed\r\n\r\n", 0, "POST", "/", "", "h",
     11, -1, true},
    {"http/1.0 without host closes", "GET / HTTP/1.0\r\n\r\n", 0, "GET", "/", "", "", 10, -1, false,
     false},
    {"http/1.0 keep-alive", "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", 0, "GET", "/", "",
     "", 10, -1, false, true},
    {"connection close wins", "GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, close\r\n\r\n",
     0, "GET", "/", "", "h", 11, -1, false, false},
    {"absolute-form wins over Host", "GET HTTP://Ex.com:8080/a?b HTTP/1.1\r\nHost: other\r\n\r\n",
     0, "GET", "/a", "b", "Ex.com:8080"},
    {"absolute-form https, empty path", "GET https://h HTTP/1.1\r\nHost: h\r\n\r\n", 0, "GET", "/",
     "", "h"},
    {"absolute-form, query without path", "GET http://h?q=1 HTTP/1.1\r\nHost: x\r\n\r\n", 0, "GET",
     "/", "q=1", "h"},
    {"OPTIONS *", "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", 0, "OPTIONS", "*"},
    {"leading empty lines", "\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n"},
    {"value trimmed of OWS", "GET / HTTP/1.1\r\nHost: h\r\nX-A: \t a b \t\r\n\r\n", 0, "GET", "/",
     "", "h", 11, -1, false, true, false, false, 2, "X-A", "a b"},
    {"empty value", "GET / HTTP/1.1\r\nHost: h\r\nX-E:\r\n\r\n", 0, "GET", "/", "", "h", 11, -1,
     false, true, false, false, 2, "X-E", ""},
    {"underscore name dropped", "GET / HTTP/1.1\r\nHost: h\r\nX_A: 1\r\n\r\n", 0, "GET", "/", "",
     "h", 11, -1, false, true, false, false, 1},
    {"invalid name dropped", "GET / HTTP/1.1\r\nX{y}: 1\r\nHost: h\r\n\r\n", 0, "GET", "/", "", "h",
     11, -1, false, true, false, false, 1},
    {"underscores on, invalid passed", "GET / HTTP/1.1\r\nX_A: 1\r\nX{y}: 2\r\nHost: h\r\n\r\n", 0,
     "GET", "/", "", "h", 11, -1, false, true, false, false, 3, "X{y}", "2", lenient_names()},
    {"expect 100-continue", "PUT / HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\n\r\n", 0, "PUT",
     "/", "", "h", 11, -1, false, true, true},
    {"expect ignored in 1.0", "PUT / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n", 0, "PUT", "/", "",
     "", 10, -1, false, false, false},
    {"upgrade", "GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", 0,
     "GET", "/", "", "h", 11, -1, false, true, false, true},
    {"connection upgrade without Upgrade",
     "GET / HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\n\r\n", 0, "GET", "/", "", "h", 11, -1,
     false, true, false, false},
    {"ipv6 host", "GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", 0, "GET", "/", "", "[::1]:8080"},
    {"high bytes in path", "GET /caf\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n", 0, "GET",
     "/caf\xc3\xa9"},
    {"content-length 2^62",
     "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4611686018427387904\r\n\r\n", 0, "POST", "/",
     "", "h", 11, 4611686018427387904},
    {"duplicate other fields kept", "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nA: 2\r\n\r\n", 0, "GET",
     "/", "", "h", 11, -1, false, true, false, false, 3},
    {"within small limits", "GET /0123456789 HTTP/1.1\r\nHost: h\r\nA: 1\r\n\r\n", 0, "GET",
     "/0123456789", "", "h", 11, -1, false, true, false, false, 2, "A", "1", small_limits()},

    // ---- refused: request line ----
    {"double space", "GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 400},
    {"method not a token", "G@T / HTTP/1.1\r\nHost: h\r\n\r\n", 400},
    {"HTTP/2.0", "GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505},
    {"HTTP/1.2", "GET / HTTP/1.2\r\nHost: h\r\n\r\n", 505},
    {"HTTP/1.10", "GET / HTTP/1.10\r\nHost: h\r\n\r\n", 400},
    {"lowercase version", "GET / http/1.1\r\nHost: h\r\n\r\n", 400},
    {"no version (0.9)", "GET /\r\n\r\n", 400},
    {"trailing space", "GET / HTTP/1.1 \r\nHost: h\r\n\r\n", 400},
    {"fragment in target", "GET /a#b HTTP/1.1\r\nHost: h\r\n\r\n", 400},
    {"CTL in target", "GET /a\x01 HTTP/1.1\r\nHost: h\r\n\r\n", 400},
    {"DEL in target", "GET /a\x7f HTTP/1.1\r\nHost: h\r\n\r\n", 400},
    {"HTAB separator", "GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n", 400},
    {"asterisk without OPTIONS", "GET * HTTP/1.1\r\nHost: h\r\n\r\n", 400},
    {"CONNECT", "CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n", 405},
    {"CONNECT bad target", "CONNECT /x HTTP/1.1\r\nHost: h\r\n\r\n", 400},
    {"other scheme", "GET ftp://h/ HTTP/1.1\r\nHost: h\r\n\r\n", 400},
    {"userinfo in authority", "GET http://u@h/ HTTP/1.1\r\nHost: h\r\n\r\n", 400},
    {"empty authority", "GET http:///a HTTP/1.1\r\nHost: h\r\n\r\n", 400},
    {"relative target", "GET a/b HTTP/1.1\r\nHost: h\r\n\r\n", 400},
    {"too many leading empty lines", "\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", 400},
    // ---- refused: line ends ----
    {"bare LF ends request line", "GET / HTTP/1.1\nHost: h\r\n\r\n", 400},
    {"bare LF ends head", "GET / HTTP/1.1\r\nHost: h\r\n\n", 400},
    {"bare CR in value", "GET / HTTP/1.1\r\nHost: h\r\nA: x\ry\r\n\r\n", 400},
    {"bare CR in request line", "GET /\r HTTP/1.1\r\nHost: h\r\n\r\n", 400},
    // ---- refused: field lines ----
    {"obs-fold", "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\n 2\r\n\r\n", 400},
    {"whitespace before first field", "GET / HTTP/1.1\r\n Host: h\r\n\r\n", 400},
    {"space before colon", "GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400},
    {"tab before colon", "GET / HTTP/1.1\r\nHost\t: h\r\n\r\n", 400},
    {"space in name, invalid passed",
     "GET / HTTP/1.1\r\nHost: h\r\nA B: 1\r\n\r\n",
     400,
     "",
     "",
     "",
     "",
     11,
     -1,
     false,
     true,
     false,
     false,
     -1,
     {},
     {},
     lenient_names()},
    {"NUL in value", "GET / HTTP/1.1\r\nHost: h\r\nA: x\0y\r\n\r\n"sv, 400},
    {"CTL in value", "GET / HTTP/1.1\r\nHost: h\r\nA: \x1b[0m\r\n\r\n", 400},
    {"CTL in name", "GET / HTTP/1.1\r\nHost: h\r\nA\x01: 1\r\n\r\n", 400},
    {"no colon", "GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n", 400},
    {"empty name", "GET / HTTP/1.1\r\nHost: h\r\n: x\r\n\r\n", 400},
    // ---- refused: framing ----
    {"CL and TE",
     "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
    {"TE and CL",
     "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", 400},
    {"duplicate equal CL",
     "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n", 400},
    {"CL list", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3, 3\r\n\r\n", 400},
    {"CL sign", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +3\r\n\r\n", 400},
    {"CL empty", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length:\r\n\r\n", 400},
    {"CL hex", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x3\r\n\r\n", 400},
    {"CL over 2^62", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4611686018427387905\r\n\r\n",
     400},
    {"CL overflow", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999999\r\n\r\n",
     400},
    {"TE gzip", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
    {"TE identity", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: identity\r\n\r\n", 501},
    {"TE gzip, chunked", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
     400},
    {"TE chunked, chunked",
     "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 400},
    {"TE with parameter", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked;x=1\r\n\r\n",
     400},
    {"TE twice",
     "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: "
     "chunked\r\n\r\n",
     400},
    {"TE empty", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\r\n\r\n", 400},
    {"TE in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
    // ---- refused: Host, Expect, Connection ----
    {"missing Host", "GET / HTTP/1.1\r\nA: 1\r\n\r\n", 400},
    {"missing Host, absolute-form", "GET http://h/ HTTP/1.1\r\n\r\n", 400},
    {"two Hosts", "GET / HTTP/1.1\r\nHost: h\r\nHost: h\r\n\r\n", 400},
    {"Host with slash", "GET / HTTP/1.1\r\nHost: h/x\r\n\r\n", 400},
    {"Host with userinfo", "GET / HTTP/1.1\r\nHost: u@h\r\n\r\n", 400},
    {"Host with space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400},
    {"Host empty", "GET / HTTP/1.1\r\nHost:\r\n\r\n", 400},
    {"Host dotdot", "GET / HTTP/1.1\r\nHost: a..b\r\n\r\n", 400},
    {"Host bad port", "GET / HTTP/1.1\r\nHost: h:8o\r\n\r\n", 400},
    {"Host unclosed bracket", "GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", 400},
    {"Expect other", "PUT / HTTP/1.1\r\nHost: h\r\nExpect: 200-ok\r\n\r\n", 417},
    {"Connection not tokens", "GET / HTTP/1.1\r\nHost: h\r\nConnection: close@\r\n\r\n", 400},
    // ---- refused: limits ----
    {"request line too long",
     "GET /0123456789012345678901234567 HTTP/1.1\r\n\r\n",
     414,
     "",
     "",
     "",
     "",
     11,
     -1,
     false,
     true,
     false,
     false,
     -1,
     {},
     {},
     small_limits()},
    {"field line too long",
     "GET / HTTP/1.1\r\nHost: h\r\nA: 0123456789012345678901\r\n\r\n",
     431,
     "",
     "",
     "",
     "",
     11,
     -1,
     false,
     true,
     false,
     false,
     -1,
     {},
     {},
     small_limits()},
    {"too many fields",
     "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n",
     431,
     "",
     "",
     "",
     "",
     11,
     -1,
     false,
     true,
     false,
     false,
     -1,
     {},
     {},
     small_limits()},
    {"head too large",
     "GET / HTTP/1.1\r\nHost: h\r\nA: 0123456789012345\r\n\r\n",
     431,
     "",
     "",
     "",
     "",
     11,
     -1,
     false,
     true,
     false,
     false,
     -1,
     {},
     {},
     tiny_head()},
};

RequestHead g_head; // outside the test bodies: CMocka longjmps past destructors

void check_request(const Req &row, ParseResult r, const RequestHead &h, std::string_view buf) {
    if (row.status != 0) {
        if (r.state != ParseState::Error || r.status != row.status) {
            fail_msg("%s: expected error %d, got state %d status %d (%s)", row.name, row.status,
                     int(r.state), r.status, r.reason ? r.reason : "");
        }
        assert_non_null(r.reason);
        return;
    }
    if (r.state != ParseState::Done) {
        fail_msg("%s: expected Done, got state %d status %d (%s)", row.name, int(r.state), r.status,
                 r.reason ? r.reason : "");
    }
    auto eq = [&](std::string_view got, std::string_view want, const char *what) {
        if (got != want) {
            fail_msg("%s: %s is '%.*s', expected '%.*s'", row.name, what, int(got.size()),
                     got.data(), int(want.size()), want.data());
        }
    };
    eq(h.method, row.method, "method");
    eq(h.path, row.path, "path");
    eq(h.query, row.query, "query");
    eq(h.host, row.host, "host");
    assert_int_equal(h.version, row.version);
    assert_int_equal(h.content_length, row.content_length);
    assert_int_equal(h.chunked, row.chunked);
    assert_int_equal(h.keep_alive, row.keep_alive);
    assert_int_equal(h.expect_continue, row.expect_continue);
    assert_int_equal(h.upgrade, row.upgrade);
    assert_int_equal(h.head_len, buf.size());
    if (row.headers >= 0) {
        assert_int_equal(h.headers.size(), size_t(row.headers));
    }
    if (!row.field.empty()) {
        bool found = false;
        for (const auto &f : h.headers) {
            if (f.name == row.field) {
                eq(f.value, row.field_value, "field value");
                found = true;
            }
        }
        assert_true(found);
    }
    // every view points into the buffer given last
    for (const auto &f : h.headers) {
        assert_true(f.name.data() >= buf.data() && f.name.data() < buf.data() + buf.size());
    }
}

void request_whole(void **) {
    for (const Req &row : kRequests) {
        RequestParser p(row.limits);
        check_request(row, p.feed(row.raw, g_head), g_head, row.raw);
        // a second feed after the answer repeats it
        check_request(row, p.feed(row.raw, g_head), g_head, row.raw);
    }
}

void request_every_split(void **) {
    for (const Req &row : kRequests) {
        for (size_t cut = 0; cut < row.raw.size(); ++cut) {
            RequestParser p(row.limits);
            std::string prefix(row.raw.substr(0, cut)); // its own buffer: the whole one moves
            ParseResult r = p.feed(prefix, g_head);
            if (row.status == 0) {
                if (r.state != ParseState::Again) {
                    fail_msg("%s: prefix of %zu bytes gave state %d", row.name, cut, int(r.state));
                }
            } else if (r.state == ParseState::Error) {
                assert_int_equal(r.status, row.status); // refused early, for the same reason
            } else {
                assert_int_equal(int(r.state), int(ParseState::Again));
            }
            std::string whole(row.raw);
            check_request(row, p.feed(whole, g_head), g_head, whole);
        }
    }
}

void request_byte_by_byte(void **) {
    for (const Req &row : kRequests) {
        RequestParser p(row.limits);
        std::string buf;
        ParseResult r{ParseState::Again};
        for (char c : row.raw) {
            assert_int_equal(int(r.state), int(ParseState::Again));
            buf.push_back(c);
            r = p.feed(buf, g_head);
            if (r.state == ParseState::Error) {
                break;
            }
        }
        check_request(row, r, g_head, buf);
    }
}

// A limit is enforced as soon as the buffered bytes pass it, not when the line ends.
void request_limits_before_line_end(void **) {
    Limits l;
    RequestParser p(l);
    std::string line = "GET /" + std::string(l.max_request_line, 'a');
    ParseResult r = p.feed(line, g_head);
    assert_int_equal(int(r.state), int(ParseState::Error));
    assert_int_equal(r.status, 414);

    RequestParser q(l);
    std::string head = "GET / HTTP/1.1\r\nX: " + std::string(l.max_header_line, 'b');
    r = q.feed(head, g_head);
    assert_int_equal(r.status, 431);

    std::string many = "GET / HTTP/1.1\r\n";
    while (many.size() <= l.max_head) {
        many += "X-Filler: 0123456789012345678901234567890123456789\r\n";
    }
    l.max_headers = 10000;
    RequestParser t(l);
    r = t.feed(many, g_head);
    assert_int_equal(r.status, 431);
}

// Pipelined requests in one buffer: head_len lets the caller find the next one.
void request_pipelined(void **) {
    std::string buf = "POST /one HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"
                      "GET /two?x HTTP/1.1\r\nHost: b\r\n\r\n"
                      "GET /three HTTP/1.1\r\nHost: c\r\nConnection: close\r\n\r\n";
    Limits l;
    RequestParser p(l);
    std::string_view rest = buf;
    const char *paths[] = {"/one", "/two", "/three"};
    for (int i = 0; i < 3; ++i) {
        ParseResult r = p.feed(rest, g_head);
        assert_int_equal(int(r.state), int(ParseState::Done));
        assert_true(g_head.path == paths[i]);
        assert_int_equal(g_head.headers.size(), i == 1 ? 1u : 2u); // cleared, not appended
        size_t body = g_head.content_length > 0 ? size_t(g_head.content_length) : 0;
        rest.remove_prefix(g_head.head_len + body);
        p.reset();
    }
    assert_true(rest.empty());
    assert_false(g_head.keep_alive);
}

struct Resp {
    const char *name;
    std::string_view raw;
    int status = 0; // 0: Done expected (all errors are 502)
    bool head = false;
    int code = 200, version = 11;
    int64_t content_length = -1;
    bool chunked = false, close_delimited = false, keep_alive = true, no_body = false;
    std::string_view reason = "OK";
};

const Resp kResponses[] = {
    {"content-length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", 0, false, 200, 11, 5},
    {"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 0, false, 200, 11, -1,
     true},
    {"close-delimited", "HTTP/1.1 200 OK\r\nServer: x\r\n\r\n", 0, false, 200, 11, -1, false, true,
     false},
    {"204", "HTTP/1.1 204 No Content\r\n\r\n", 0, false, 204, 11, 0, false, false, true, true,
     "No Content"},
    {"304 with CL", "HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n", 0, false, 304, 11, 0,
     false, false, true, true, "Not Modified"},
    {"HEAD response", "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", 0, true, 200, 11, 0, false,
     false, true, true},
    {"100 continue", "HTTP/1.1 100 Continue\r\n\r\n", 0, false, 100, 11, 0, false, false, true,
     true, "Continue"},
    {"1.0 closes", "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", 0, false, 200, 10, 1, false,
     false, false},
    {"1.0 keep-alive", "HTTP/1.0 200 OK\r\nContent-Length: 1\r\nConnection: keep-alive\r\n\r\n", 0,
     false, 200, 10, 1, false, false, true},
    {"no reason", "HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n", 0, false, 404, 11, 0, false, false,
     true, false, ""},
    {"empty reason", "HTTP/1.1 500 \r\nContent-Length: 0\r\n\r\n", 0, false, 500, 11, 0, false,
     false, true, false, ""},
    {"underscores kept", "HTTP/1.1 200 OK\r\nX_Y: 1\r\nContent-Length: 0\r\n\r\n", 0, false, 200,
     11, 0},
    {"CL and TE", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
     502},
    {"CL and TE on HEAD",
     "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 502, true},
    {"duplicate CL", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", 502},
    {"TE gzip", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", 502},
    {"TE in 1.0", "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 502},
    {"HTTP/2", "HTTP/2 200 OK\r\n\r\n", 502},
    {"4-digit status", "HTTP/1.1 2000 OK\r\n\r\n", 502},
    {"status 099", "HTTP/1.1 099 X\r\n\r\n", 502},
    {"no SP before reason", "HTTP/1.1 200OK\r\n\r\n", 502},
    {"leading empty line", "\r\nHTTP/1.1 200 OK\r\n\r\n", 502},
    {"bare LF", "HTTP/1.1 200 OK\nContent-Length: 0\n\n", 502},
    {"obs-fold", "HTTP/1.1 200 OK\r\nA: 1\r\n 2\r\n\r\n", 502},
    {"invalid name", "HTTP/1.1 200 OK\r\nA{: 1\r\n\r\n", 502},
    {"CTL in reason", "HTTP/1.1 200 O\x01K\r\n\r\n", 502},
    {"space before colon", "HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n", 502},
};

ResponseHead g_resp;

void check_response(const Resp &row, ParseResult r, std::string_view buf) {
    if (row.status != 0) {
        if (r.state != ParseState::Error || r.status != row.status) {
            fail_msg("%s: expected %d, got state %d status %d", row.name, row.status, int(r.state),
                     r.status);
        }
        return;
    }
    if (r.state != ParseState::Done) {
        fail_msg("%s: expected Done, got state %d (%s)", row.name, int(r.state),
                 r.reason ? r.reason : "");
    }
    assert_int_equal(g_resp.status, row.code);
    assert_int_equal(g_resp.version, row.version);
    assert_int_equal(g_resp.content_length, row.content_length);
    assert_int_equal(g_resp.chunked, row.chunked);
    assert_int_equal(g_resp.close_delimited, row.close_delimited);
    assert_int_equal(g_resp.keep_alive, row.keep_alive);
    assert_int_equal(g_resp.no_body, row.no_body);
    assert_true(g_resp.reason == row.reason);
    assert_int_equal(g_resp.head_len, buf.size());
}

void response_rows(void **) {
    Limits l;
    for (const Resp &row : kResponses) {
        ResponseParser whole(l);
        check_response(row, whole.feed(row.raw, g_resp, row.head), row.raw);
        for (size_t cut = 0; cut < row.raw.size(); ++cut) {
            ResponseParser p(l);
            std::string prefix(row.raw.substr(0, cut));
            ParseResult r = p.feed(prefix, g_resp, row.head);
            if (row.status == 0 || r.state != ParseState::Error) {
                assert_int_equal(int(r.state), int(ParseState::Again));
            }
            std::string buf(row.raw);
            check_response(row, p.feed(buf, g_resp, row.head), buf);
        }
    }
}

// 1xx heads come first; the caller skips each one and parses the final answer.
void response_interim_then_final(void **) {
    std::string buf = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s>\r\n\r\n"
                      "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok";
    Limits l;
    ResponseParser p(l);
    std::string_view rest = buf;
    int codes[] = {100, 103, 201};
    for (int code : codes) {
        ParseResult r = p.feed(rest, g_resp, false);
        assert_int_equal(int(r.state), int(ParseState::Done));
        assert_int_equal(g_resp.status, code);
        rest.remove_prefix(g_resp.head_len);
        p.reset();
    }
    assert_true(rest == "ok");
    assert_int_equal(g_resp.content_length, 2);
}

void response_upgrade(void **) {
    Limits l;
    ResponseParser p(l);
    std::string_view raw = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                           "Upgrade: websocket\r\n\r\n";
    ParseResult r = p.feed(raw, g_resp, false);
    assert_int_equal(int(r.state), int(ParseState::Done));
    assert_true(g_resp.upgrade);
    assert_true(g_resp.no_body);
}

void host_validation(void **) {
    struct {
        std::string_view host;
        bool ok;
    } const rows[] = {
        {"example.com", true},
        {"EXAMPLE.com:80", true},
        {"127.0.0.1", true},
        {"[2001:db8::1]", true},
        {"[::1]:443", true},
        {"h:", true},
        {"xn--caf-dma.example", true},
        {"a%20b", true},
        {"", false},
        {":80", false},
        {"h:123456", false},
        {"[::1]x", false},
        {"[]", false},
        {"[g::1]", false},
        {"a/b", false},
        {"a\\b", false},
        {"u@h", false},
        {"a..b", false},
        {"h\0"sv, false},
        {"a b", false},
    };
    for (const auto &row : rows) {
        if (portico::http::valid_host(row.host) != row.ok) {
            fail_msg("valid_host('%.*s') should be %d", int(row.host.size()), row.host.data(),
                     row.ok);
        }
    }
}

int teardown(void **) {
    g_head = RequestHead{};
    g_resp = ResponseHead{};
    return 0;
}

} // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(request_whole, teardown),
        cmocka_unit_test_teardown(request_every_split, teardown),
        cmocka_unit_test_teardown(request_byte_by_byte, teardown),
        cmocka_unit_test_teardown(request_limits_before_line_end, teardown),
        cmocka_unit_test_teardown(request_pipelined, teardown),
        cmocka_unit_test_teardown(response_rows, teardown),
        cmocka_unit_test_teardown(response_interim_then_final, teardown),
        cmocka_unit_test_teardown(response_upgrade, teardown),
        cmocka_unit_test(host_validation),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
