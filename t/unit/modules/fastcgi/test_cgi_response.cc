// CGI response head (RFC 3875 §6): a table of heads, each fed at every split
// point and byte by byte, checked for the same outcome every time.
#include <csetjmp>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
extern "C" { // cmocka.h has no C++ guard of its own
#include <cmocka.h>
}

#include <string>
#include <string_view>
#include <vector>

#include "fastcgi/cgi_response.h"

using namespace portico::fastcgi;
using namespace std::string_view_literals;

namespace {

using RK = ResponseKind;
using LK = LocationKind;

struct Row {
    const char *name;
    std::string_view input;      // head, then whatever body follows
    const char *error = nullptr; // nullptr: the head must parse
    int status = 0;
    int effective = 200;
    RK kind = RK::Document;
    LK location_kind = LK::None;
    std::string_view location = {};
    std::string_view content_type = {};
    std::string_view fields = {}; // "name=value;" for each passed-on field, in order
    std::string_view reason = {};
    std::string_view x_accel_redirect = {};
    bool x_accel = false;
    std::size_t max = 4096;
};

const Row rows[] = {
    {.name = "document CRLF",
     .input = "Content-Type: text/html\r\n\r\n<p>hi</p>",
     .content_type = "text/html"},
    {.name = "document LF",
     .input = "Content-Type: text/plain\n\nhello\n",
     .content_type = "text/plain"},
    {.name = "LF and CRLF mixed",
     .input = "Status: 201 Created\nContent-Type: a/b\r\n\nx",
     .status = 201,
     .effective = 201,
     .content_type = "a/b",
     .reason = "Created"},
    {.name = "PHP 404",
     .input = "Status: 404 Not Found\r\nContent-type: text/html; charset=UTF-8\r\n\r\n",
     .status = 404,
     .effective = 404,
     .content_type = "text/html; charset=UTF-8",
     .reason = "Not Found"},
    {.name = "Status code alone", .input = "Status: 404\r\n\r\n", .status = 404, .effective = 404},
    {.name = "Status 999 custom",
     .input = "Status: 999 Odd\r\nContent-Type: a\r\n\r\n",
     .status = 999,
     .effective = 999,
     .content_type = "a",
     .reason = "Odd"},
    {.name = "Status lower case, OWS",
     .input = "status:   302   Found  \r\nLocation: /x\r\n\r\n",
     .status = 302,
     .effective = 302,
     .kind = RK::ClientRedirect,
     .location_kind = LK::LocalPath,
     .location = "/x",
     .reason = "Found"},
    {.name = "Status two digits",
     .input = "Status: 99 Low\r\n\r\n",
     .error = "invalid Status in CGI header"},
    {.name = "Status leading zero",
     .input = "Status: 099 x\r\n\r\n",
     .error = "invalid Status in CGI header"},
    {.name = "Status four digits",
     .input = "Status: 2000\r\n\r\n",
     .error = "invalid Status in CGI header"},
    {.name = "Status not digits",
     .input = "Status: 20a OK\r\n\r\n",
     .error = "invalid Status in CGI header"},
    {.name = "Status empty", .input = "Status:\r\n\r\n", .error = "invalid Status in CGI header"},
    {.name = "Status twice",
     .input = "Status: 200 OK\r\nStatus: 500 No\r\n\r\n",
     .error = "duplicate Status in CGI header"},
    {.name = "local redirect",
     .input = "Location: /index.php?x=1\r\n\r\n",
     .kind = RK::LocalRedirect,
     .location_kind = LK::LocalPath,
     .location = "/index.php?x=1"},
    {.name = "client redirect",
     .input = "Location: http://example.com/\r\n\r\n",
     .effective = 302,
     .kind = RK::ClientRedirect,
     .location_kind = LK::AbsoluteUri,
     .location = "http://example.com/"},
    {.name = "client redirect with document",
     .input = "Location: https://x.test/a\r\nContent-Type: text/html\r\n\r\n<a href=...>moved</a>",
     .effective = 302,
     .kind = RK::ClientRedirectWithDocument,
     .location_kind = LK::AbsoluteUri,
     .location = "https://x.test/a",
     .content_type = "text/html"},
    {.name = "client redirect with Status",
     .input = "Status: 301 Moved\r\nLocation: https://x/\r\n\r\n",
     .status = 301,
     .effective = 301,
     .kind = RK::ClientRedirect,
     .location_kind = LK::AbsoluteUri,
     .location = "https://x/",
     .reason = "Moved"},
    {.name = "local path plus other field is not a local redirect",
     .input = "Location: /login\r\nX-Powered-By: PHP/8.2\r\n\r\n",
     .effective = 302,
     .kind = RK::ClientRedirect,
     .location_kind = LK::LocalPath,
     .location = "/login",
     .fields = "X-Powered-By=PHP/8.2;"},
    {.name = "local path with Content-Type",
     .input = "Location: /a\r\nContent-Type: t/h\r\n\r\nbody",
     .effective = 302,
     .kind = RK::ClientRedirectWithDocument,
     .location_kind = LK::LocalPath,
     .location = "/a",
     .content_type = "t/h"},
    {.name = "relative Location as nginx passes it",
     .input = "Location: index.php\r\n\r\n",
     .effective = 302,
     .kind = RK::ClientRedirect,
     .location_kind = LK::Relative,
     .location = "index.php"},
    {.name = "Location empty",
     .input = "Location:  \r\n\r\n",
     .error = "empty Location in CGI header"},
    {.name = "Location twice",
     .input = "Location: /a\r\nLocation: /b\r\n\r\n",
     .error = "duplicate Location in CGI header"},
    {.name = "Content-Type twice",
     .input = "Content-Type: a\r\nContent-Type: b\r\n\r\n",
     .error = "duplicate Content-Type in CGI header"},
    {.name = "bare CR inside a value",
     .input = "Content-Type: a\rb\r\n\r\n",
     .error = "bare CR in CGI header"},
    {.name = "CR CR LF", .input = "Content-Type: a\r\r\n\r\n", .error = "bare CR in CGI header"},
    {.name = "bare CR blank line",
     .input = "Content-Type: a\r\n\r\r\n",
     .error = "bare CR in CGI header"},
    {.name = "obs-fold SP",
     .input = "X-A: 1\r\n continued\r\nContent-Type: a\r\n\r\n",
     .error = "obs-fold in CGI header"},
    {.name = "obs-fold HT", .input = "X-A: 1\n\tcontinued\n\n", .error = "obs-fold in CGI header"},
    {.name = "NUL in value", .input = "X-A: a\0b\r\n\r\n"sv, .error = "NUL in CGI header value"},
    {.name = "CTL in value",
     .input = "X-A: a\x01z\r\n\r\n",
     .error = "control character in CGI header value"},
    {.name = "DEL in value",
     .input = "X-A: a\x7fz\r\n\r\n",
     .error = "control character in CGI header value"},
    {.name = "space before colon",
     .input = "Content-Type : text/html\r\n\r\n",
     .error = "whitespace before colon in CGI header"},
    {.name = "tab before colon",
     .input = "Status\t: 200\r\n\r\n",
     .error = "whitespace before colon in CGI header"},
    {.name = "no colon", .input = "NotAHeader\r\n\r\n", .error = "CGI header line without a colon"},
    {.name = "HTTP status line (NPH) is not CGI",
     .input = "HTTP/1.1 200 OK\r\n\r\n",
     .error = "CGI header line without a colon"},
    {.name = "empty name", .input = ": v\r\n\r\n", .error = "empty CGI header name"},
    {.name = "bad name char",
     .input = "X(A): 1\r\n\r\n",
     .error = "invalid character in CGI header name"},
    {.name = "NUL in name",
     .input = "X\0A: 1\r\n\r\n"sv,
     .error = "invalid character in CGI header name"},
    {.name = "no fields at all",
     .input = "\r\nbody",
     .error = "CGI response without header fields"},
    {.name = "X-Accel-Redirect",
     .input =
         "X-Accel-Redirect: /protected/f.zip\r\nX-Accel-Buffering: no\r\nContent-Type: a\r\n\r\n",
     .content_type = "a",
     .fields = "X-Accel-Redirect=/protected/f.zip;X-Accel-Buffering=no;",
     .x_accel_redirect = "/protected/f.zip",
     .x_accel = true},
    {.name = "X-Accel other",
     .input = "x-accel-buffering: no\r\nContent-Type: a\r\n\r\n",
     .content_type = "a",
     .fields = "x-accel-buffering=no;",
     .x_accel = true},
    {.name = "X-Accel-Redirect twice",
     .input = "X-Accel-Redirect: /a\r\nX-Accel-Redirect: /b\r\n\r\n",
     .error = "duplicate X-Accel-Redirect in CGI header"},
    {.name = "fields in order, repeats kept",
     .input = "Set-Cookie: a=1\r\nContent-Type: t\r\nSet-Cookie: b=2\r\nX-Empty:\r\n\r\n",
     .content_type = "t",
     .fields = "Set-Cookie=a=1;Set-Cookie=b=2;X-Empty=;"},
    {.name = "obs-text and HT in value",
     .input = "X-Name: caf\xc3\xa9\tok\r\n\r\n",
     .fields = "X-Name=caf\xc3\xa9\tok;"},
    {.name = "head exactly at the limit",
     .input = "Content-Type: abcdefghijklmn\r\n\r\nbody-is-not-counted",
     .content_type = "abcdefghijklmn",
     .max = 32},
    {.name = "head one byte over the limit",
     .input = "Content-Type: abcdefghijklmno\r\n\r\n",
     .error = "header block too large",
     .max = 32},
    {.name = "line never ends",
     .input = "X-Long: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
     .error = "header block too large",
     .max = 32},
};

std::string fields_of(const CgiResponseHead &head) {
    std::string s;
    for (const HeaderField &f : head.fields) {
        s.append(f.name);
        s += '=';
        s.append(f.value);
        s += ';';
    }
    return s;
}

// Feeds `row.input` in the given pieces; returns the error or checks the head.
void run(const Row &row, const std::vector<std::size_t> &cuts) {
    CgiHeadParser parser(row.max);
    std::size_t prev = 0;
    std::size_t head_bytes = 0;
    HeadResult r;
    for (std::size_t i = 0; i <= cuts.size(); ++i) {
        std::size_t end = i < cuts.size() ? cuts[i] : row.input.size();
        std::string_view chunk = row.input.substr(prev, end - prev);
        prev = end;
        r = parser.feed(chunk);
        if (r.status == HeadStatus::Error) break;
        head_bytes += r.consumed;
        if (r.status == HeadStatus::Done) break;
        assert_int_equal(r.consumed, chunk.size());
    }
    if (row.error) {
        if (r.status != HeadStatus::Error)
            fail_msg("%s: expected error \"%s\"", row.name, row.error);
        if (r.error != row.error)
            fail_msg("%s: error \"%s\", expected \"%s\"", row.name, std::string(r.error).c_str(),
                     row.error);
        // sticky
        assert_int_equal(parser.feed("\r\n").status, HeadStatus::Error);
        return;
    }
    if (r.status != HeadStatus::Done)
        fail_msg("%s: not done (%s)", row.name, std::string(r.error).c_str());
    const CgiResponseHead &h = parser.head();
    // the body starts right after the blank line
    assert_int_equal(head_bytes, h.head_size);
    std::string_view head = row.input.substr(0, h.head_size);
    assert_true(head.ends_with("\n\n") || head.ends_with("\n\r\n") || head == "\n" ||
                head == "\r\n");
    if (h.status != row.status) fail_msg("%s: status %d", row.name, h.status);
    if (h.effective_status() != row.effective && row.kind != RK::LocalRedirect)
        fail_msg("%s: effective status %d", row.name, h.effective_status());
    if (h.kind != row.kind)
        fail_msg("%s: kind %s", row.name, std::string(to_string(h.kind)).c_str());
    assert_int_equal(h.location_kind, row.location_kind);
    assert_true(h.location == row.location);
    assert_true(h.content_type == row.content_type);
    assert_int_equal(h.has_content_type, !row.content_type.empty());
    if (fields_of(h) != row.fields) fail_msg("%s: fields %s", row.name, fields_of(h).c_str());
    assert_true(h.reason == row.reason);
    assert_int_equal(h.has_x_accel, row.x_accel);
    assert_true(h.x_accel_redirect == row.x_accel_redirect);
    // after Done nothing more is taken
    assert_int_equal(parser.feed("more").consumed, 0);
}

void table_whole(void **) {
    assert_true(std::size(rows) >= 25);
    for (const Row &row : rows)
        run(row, {});
}

void table_every_split_point(void **) {
    for (const Row &row : rows)
        for (std::size_t a = 0; a <= row.input.size(); ++a)
            run(row, {a});
}

void table_every_pair_of_split_points(void **) {
    for (const Row &row : rows)
        for (std::size_t a = 0; a <= row.input.size(); ++a)
            for (std::size_t b = a; b <= row.input.size(); ++b)
                run(row, {a, b});
}

void table_byte_at_a_time(void **) {
    for (const Row &row : rows) {
        std::vector<std::size_t> cuts;
        for (std::size_t i = 1; i < row.input.size(); ++i)
            cuts.push_back(i);
        run(row, cuts);
    }
}

void reset_reuses_the_parser(void **) {
    CgiHeadParser parser(64);
    HeadResult r = parser.feed("Status: 500 Bad\r\nX-A: 1\r\n\r\n");
    assert_int_equal(r.status, HeadStatus::Done);
    assert_int_equal(parser.head().fields.size(), 1);
    parser.reset();
    r = parser.feed("Content-Type: a\n\nbody");
    assert_int_equal(r.status, HeadStatus::Done);
    assert_int_equal(r.consumed, 17);
    assert_int_equal(parser.head().status, 0);
    assert_int_equal(parser.head().fields.size(), 0);
    assert_true(parser.head().content_type == "a");
    parser.reset();
    assert_int_equal(parser.feed("bad line\n").status, HeadStatus::Error);
    parser.reset();
    assert_int_equal(parser.feed("Location: /x\n\n").status, HeadStatus::Done);
    assert_int_equal(parser.head().kind, RK::LocalRedirect);
}

void large_heads_at_the_default_limits(void **) {
    // nginx's fastcgi_buffer_size defaults: 4k or 8k. 64 KiB of headers from
    // a broken app must be refused, whatever the feeding.
    std::string big;
    while (big.size() < 65536)
        big += "X-Filler: 0123456789012345678901234567890123456789\r\n";
    for (std::size_t limit : {std::size_t{4096}, std::size_t{8192}}) {
        CgiHeadParser parser(limit);
        HeadResult r;
        std::size_t off = 0;
        do {
            r = parser.feed(std::string_view(big).substr(off, 1000));
            off += 1000;
        } while (r.status == HeadStatus::Again && off < big.size());
        assert_int_equal(r.status, HeadStatus::Error);
        assert_true(r.error == "header block too large");
    }
    // a head of 8000 bytes fits 8k, not 4k
    std::string head;
    while (head.size() < 7900)
        head += "X-Filler: 0123456789012345678901234567890123456789\r\n";
    head += "Content-Type: text/html\r\n\r\n";
    CgiHeadParser fits(8192);
    assert_int_equal(fits.feed(head).status, HeadStatus::Done);
    assert_int_equal(fits.head().head_size, head.size());
    CgiHeadParser small(4096);
    assert_int_equal(small.feed(head).status, HeadStatus::Error);
}

} // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(table_whole),
        cmocka_unit_test(table_every_split_point),
        cmocka_unit_test(table_every_pair_of_split_points),
        cmocka_unit_test(table_byte_at_a_time),
        cmocka_unit_test(reset_reuses_the_parser),
        cmocka_unit_test(large_heads_at_the_default_limits),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
