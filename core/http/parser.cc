// SPDX-License-Identifier: BSD-2-Clause
#include "http/parser.h"

#include <cstring>

#include "base/ascii.h"

namespace portico::http {

namespace {

using detail::Span;

// RFC 9112 §2.2: a server SHOULD ignore at least one empty line before the request-line
// (clients that send an extra CRLF after a POST body). A few, not an unbounded stream.
constexpr unsigned kMaxLeadingEmptyLines = 4;
// RFC 9110 §8.6 allows any 1*DIGIT; nothing real is near 2^62 and staying there keeps every sum
// of lengths far from int64 overflow.
constexpr int64_t kMaxContentLength = int64_t(1) << 62;

Span span(std::string_view part, std::string_view line, uint32_t line_off) {
    if (part.empty()) {
        return Span{}; // a default view may not point into the line at all
    }
    return Span{uint32_t(line_off + (part.data() - line.data())), uint32_t(part.size())};
}

ParseResult ok() {
    return ParseResult{ParseState::Done};
}

// RFC 9110 §8.6: Content-Length = 1*DIGIT. No sign, no list ("5, 5"), no OWS inside.
bool parse_content_length(std::string_view v, int64_t *out) {
    if (v.empty()) {
        return false;
    }
    int64_t n = 0;
    for (char c : v) {
        if (!ascii::is_digit(c)) {
            return false;
        }
        if (n > (kMaxContentLength - (c - '0')) / 10) {
            return false;
        }
        n = n * 10 + (c - '0');
    }
    *out = n;
    return true;
}

// RFC 9110 §7.6.1: Connection = #connection-option; empty list elements are allowed (§5.6.1.2).
bool parse_connection(std::string_view v, detail::FieldFacts &facts) {
    while (true) {
        size_t comma = v.find(',');
        std::string_view item = ascii::trim_ows(v.substr(0, comma));
        if (!item.empty()) {
            if (!ascii::is_token(item)) {
                return false;
            }
            if (ascii::iequals(item, "close")) {
                facts.conn_close = true;
            } else if (ascii::iequals(item, "keep-alive")) {
                facts.conn_keep_alive = true;
            } else if (ascii::iequals(item, "upgrade")) {
                facts.conn_upgrade = true;
            }
        }
        if (comma == std::string_view::npos) {
            return true;
        }
        v.remove_prefix(comma + 1);
    }
}

bool valid_port(std::string_view p) {
    if (p.size() > 5) {
        return false;
    }
    for (char c : p) {
        if (!ascii::is_digit(c)) {
            return false;
        }
    }
    return true;
}

// Target bytes: VCHAR and obs-text (nginx passes high bytes in paths); never SP, CTL or DEL.
// '#' is refused: a fragment is never sent on the wire (RFC 9112 §3.2), one that is means a
// client and an intermediary may disagree about where the path ends.
bool valid_target_bytes(std::string_view t) {
    for (char c : t) {
        if (!(ascii::is_vchar(c) || ascii::is_obs_text(c)) || c == '#') {
            return false;
        }
    }
    return true;
}

// HTTP-version = "HTTP/" DIGIT "." DIGIT (RFC 9112 §2.3); case-sensitive.
// Returns 10/11, 0 for another well-formed version, -1 for garbage.
int parse_version(std::string_view v) {
    if (v.size() != 8 || v.substr(0, 5) != "HTTP/" || !ascii::is_digit(v[5]) || v[6] != '.' ||
        !ascii::is_digit(v[7])) {
        return -1;
    }
    if (v[5] == '1' && (v[7] == '0' || v[7] == '1')) {
        return v[7] == '0' ? 10 : 11;
    }
    return 0;
}

} // namespace

bool valid_host(std::string_view h) {
    if (h.empty()) {
        return false;
    }
    std::string_view port;
    if (h.front() == '[') {
        size_t close = h.find(']');
        if (close == std::string_view::npos || close == 1) {
            return false;
        }
        for (char c : h.substr(1, close - 1)) {
            if (!(ascii::is_hexdig(c) || c == ':' || c == '.')) {
                return false;
            }
        }
        std::string_view rest = h.substr(close + 1);
        if (!rest.empty()) {
            if (rest.front() != ':') {
                return false;
            }
            port = rest.substr(1);
        }
    } else {
        // one pass for the name's end, its bytes and ".." (nginx refuses ".."
        // in a host too: $host ends up in paths, root /srv/$host)
        size_t colon = 0;
        char prev = 0;
        for (; colon < h.size() && h[colon] != ':'; ++colon) {
            char c = h[colon];
            if (!ascii::is_reg_name_char(c) || (c == '.' && prev == '.')) {
                return false;
            }
            prev = c;
        }
        if (colon == 0) {
            return false;
        }
        if (colon < h.size()) {
            port = h.substr(colon + 1);
        }
    }
    return valid_port(port);
}

namespace detail {

LineReader::Step LineReader::next(std::string_view buf, size_t line_limit, int line_status,
                                  size_t head_limit, int head_status) {
    if (buf.size() < pos_) {
        return Step{ParseState::Error, {}, 0, 500, "buffer shrank between feeds"};
    }
    size_t nl = buf.find('\n', scan_ > pos_ ? scan_ : pos_);
    // Limits are checked in the same order for a complete and an incomplete line, so a
    // request cut anywhere fails with the same status as the whole request.
    if (nl == std::string_view::npos) {
        scan_ = buf.size();
        size_t len = buf.size() - pos_;
        if (len > 0 && buf.back() == '\r') {
            --len;
        }
        if (len > line_limit) {
            return Step{ParseState::Error, {}, 0, line_status, "line too long"};
        }
        if (buf.size() > head_limit) {
            return Step{ParseState::Error, {}, 0, head_status, "head too large"};
        }
        return Step{ParseState::Again};
    }
    bool has_cr = nl > pos_ && buf[nl - 1] == '\r';
    size_t len = nl - pos_ - (has_cr ? 1 : 0);
    if (len > line_limit) {
        return Step{ParseState::Error, {}, 0, line_status, "line too long"};
    }
    if (nl + 1 > head_limit) {
        return Step{ParseState::Error, {}, 0, head_status, "head too large"};
    }
    // RFC 9112 §2.2 lets a recipient accept a bare LF as a line end. We refuse it: peers behind
    // us that do not would see a different head (request smuggling), and no real client needs it.
    if (!has_cr) {
        return Step{ParseState::Error, {}, 0, 400, "bare LF as line terminator"};
    }
    std::string_view line = buf.substr(pos_, len);
    // RFC 9112 §2.2: a bare CR must be refused or replaced by SP; we refuse.
    // Not searched for here: every line's reader refuses a CR (a CTL) in its
    // own byte checks (method token, target bytes, version, field name and
    // value, status line), and a second scan of each line cost ~30
    // instructions per line. t/unit/core/http/test_parser.cc keeps both cases.
    Step s{ParseState::Done, line, uint32_t(pos_)};
    pos_ = nl + 1;
    scan_ = pos_;
    return s;
}

void HeadCore::reset() {
    reader_.reset();
    phase_ = Phase::StartLine;
    error_ = ParseResult{ParseState::Error};
    version_ = 11;
    empty_lines_ = 0;
    field_lines_ = 0;
    fields_.clear();
    facts_ = FieldFacts{};
}

ParseResult HeadCore::refuse(int status, const char *reason) {
    phase_ = Phase::Failed;
    error_ = ParseResult{ParseState::Error, status, reason};
    return error_;
}

ParseResult HeadCore::content_length_field(std::string_view value) {
    // RFC 9112 §6.3: several Content-Length values are an error even when equal (as nginx).
    if (++facts_.content_length_count > 1) {
        return ParseResult{ParseState::Error, 400, "duplicate Content-Length"};
    }
    if (!parse_content_length(value, &facts_.content_length)) {
        return ParseResult{ParseState::Error, 400, "invalid Content-Length"};
    }
    return ok();
}

ParseResult HeadCore::transfer_encoding_field(std::string_view value) {
    // Only exactly "chunked" is understood. A single unknown coding ("gzip", "identity") is
    // 501 (RFC 9112 §6.1, as nginx); a list, parameters or a second field is 400: we never
    // guess which coding is final.
    if (++facts_.transfer_encoding_count > 1) {
        return ParseResult{ParseState::Error, 400, "duplicate Transfer-Encoding"};
    }
    if (ascii::iequals(value, "chunked")) {
        facts_.chunked = true;
    } else if (ascii::is_token(value)) {
        return ParseResult{ParseState::Error, 501, "unsupported transfer coding"};
    } else {
        return ParseResult{ParseState::Error, 400, "invalid Transfer-Encoding"};
    }
    return ok();
}

ParseResult HeadCore::field_line(std::string_view line, uint32_t off, bool is_request) {
    if (++field_lines_ > limits_.max_headers) {
        return ParseResult{ParseState::Error, 431, "too many header fields"};
    }
    // RFC 9112 §5.2: obs-fold is refused; a line starting with whitespace right after the
    // start-line is refused by §2.2 too.
    if (ascii::is_ows(line.front())) {
        return ParseResult{ParseState::Error, 400, "obs-fold or whitespace before field name"};
    }
    size_t colon = 0;
    bool underscore = false, invalid = false;
    // the usual name is all tchar without '_': one table test per byte
    while (colon < line.size() && ascii::is_tchar_no_underscore(line[colon])) {
        ++colon;
    }
    for (; colon < line.size() && line[colon] != ':'; ++colon) {
        char c = line[colon];
        if (ascii::is_tchar(c)) {
            underscore |= c == '_';
        } else if (ascii::is_ows(c)) {
            // RFC 9112 §5.1: no whitespace between name and colon; MUST answer 400.
            return ParseResult{ParseState::Error, 400, "whitespace in field name"};
        } else if (ascii::is_ctl(c)) {
            return ParseResult{ParseState::Error, 400, "control character in field name"};
        } else {
            invalid = true;
        }
    }
    if (colon == line.size()) {
        return ParseResult{ParseState::Error, 400, "field line without colon"};
    }
    if (colon == 0) {
        return ParseResult{ParseState::Error, 400, "empty field name"};
    }
    std::string_view name = line.substr(0, colon);
    std::string_view raw_value = line.substr(colon + 1);
    for (char c : raw_value) {
        if (!ascii::is_field_value_char(c)) {
            return ParseResult{ParseState::Error, 400, "control character in field value"};
        }
    }
    if (invalid && (!is_request || limits_.ignore_invalid_headers)) {
        if (!is_request) {
            return ParseResult{ParseState::Error, 400, "invalid field name"};
        }
        return ok(); // nginx ignore_invalid_headers: dropped
    }
    // nginx underscores_in_headers off: dropped (they would collide with '-' in CGI names)
    if (underscore && is_request && !limits_.underscores_in_headers) {
        return ok();
    }
    std::string_view value = ascii::trim_ows(raw_value);
    fields_.push_back(FieldSpan{span(name, line, off), span(value, line, off)});

    // the fields that matter to framing, told apart by length first: most
    // names are none of them and cost one switch
    switch (name.size()) {
    case 14:
        if (ascii::iequals(name, "content-length")) {
            return content_length_field(value);
        }
        break;
    case 17:
        if (ascii::iequals(name, "transfer-encoding")) {
            return transfer_encoding_field(value);
        }
        break;
    case 10:
        if (ascii::iequals(name, "connection") && !parse_connection(value, facts_)) {
            return ParseResult{ParseState::Error, 400, "invalid Connection"};
        }
        break;
    case 7:
        if (ascii::iequals(name, "upgrade")) {
            facts_.upgrade_field = true;
        }
        break;
    case 4:
        if (is_request && ascii::iequals(name, "host")) {
            // RFC 9112 §3.2: more than one Host, or an invalid one, MUST be answered with 400.
            if (++facts_.host_count > 1) {
                return ParseResult{ParseState::Error, 400, "duplicate Host"};
            }
            if (!valid_host(value)) {
                return ParseResult{ParseState::Error, 400, "invalid Host"};
            }
            facts_.host = span(value, line, off);
        }
        break;
    case 6:
        if (is_request && ascii::iequals(name, "expect")) {
            // RFC 9110 §10.1.1: only 100-continue exists; others MAY get 417, which we choose.
            if (!ascii::iequals(value, "100-continue")) {
                return ParseResult{ParseState::Error, 417, "unsupported expectation"};
            }
            facts_.expect_continue = true;
        }
        break;
    default:
        break;
    }
    return ok();
}

} // namespace detail

// ---- requests ----

void RequestParser::reset() {
    HeadCore::reset();
    method_ = target_ = path_ = query_ = scheme_ = authority_ = Span{};
    path_is_root_ = false;
}

ParseResult RequestParser::request_line(std::string_view line, uint32_t off) {
    // RFC 9112 §3: request-line = method SP request-target SP HTTP-version, single SPs.
    size_t sp1 = line.find(' ');
    size_t sp2 = line.rfind(' ');
    if (sp1 == std::string_view::npos || sp1 == sp2) {
        return refuse(400, "malformed request line");
    }
    std::string_view method = line.substr(0, sp1);
    std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    if (!ascii::is_token(method)) {
        return refuse(400, "invalid method");
    }
    int v = parse_version(line.substr(sp2 + 1));
    if (v < 0) {
        return refuse(400, "invalid HTTP version");
    }
    if (v == 0) {
        return refuse(505, "unsupported HTTP version");
    }
    version_ = v;
    if (target.empty() || !valid_target_bytes(target)) {
        return refuse(400, "invalid request target");
    }
    method_ = span(method, line, off);
    target_ = span(target, line, off);

    if (method == "CONNECT") {
        // RFC 9112 §3.2.3: CONNECT takes authority-form and only it; we are no forward proxy.
        if (!valid_host(target)) {
            return refuse(400, "invalid CONNECT target");
        }
        return refuse(405, "CONNECT is not supported");
    }
    std::string_view path_and_query;
    if (target.front() == '/') {
        path_and_query = target; // origin-form
    } else if (target == "*") {
        // RFC 9112 §3.2.4: asterisk-form is only for a server-wide OPTIONS.
        if (method != "OPTIONS") {
            return refuse(400, "asterisk-form target without OPTIONS");
        }
        path_and_query = target;
    } else {
        // RFC 9112 §3.2.2 absolute-form; only the http(s) schemes make sense for us.
        size_t scheme_len = ascii::istarts_with(target, "http://")    ? 4
                            : ascii::istarts_with(target, "https://") ? 5
                                                                      : 0;
        if (scheme_len == 0) {
            return refuse(400, "invalid request target");
        }
        std::string_view rest = target.substr(scheme_len + 3);
        size_t end = rest.find_first_of("/?");
        std::string_view authority = rest.substr(0, end);
        if (!valid_host(authority)) {
            return refuse(400, "invalid authority in request target");
        }
        scheme_ = span(target.substr(0, scheme_len), line, off);
        authority_ = span(authority, line, off);
        path_and_query = rest.substr(authority.size());
    }
    size_t q = path_and_query.find('?');
    std::string_view path = path_and_query.substr(0, q);
    path_is_root_ = path.empty();
    path_ = span(path, line, off);
    if (q != std::string_view::npos) {
        query_ = span(path_and_query.substr(q + 1), line, off);
    }
    phase_ = Phase::Fields;
    return ok();
}

ParseResult RequestParser::finish(std::string_view buf, RequestHead &out) {
    // RFC 9112 §6.1: TE in an HTTP/1.0 message means the framing is faulty.
    if (facts_.transfer_encoding_count > 0 && version_ == 10) {
        return refuse(400, "Transfer-Encoding in an HTTP/1.0 request");
    }
    // RFC 9112 §6.3: CL with TE "ought to be handled as an error" — smuggling's classic.
    if (facts_.transfer_encoding_count > 0 && facts_.content_length_count > 0) {
        return refuse(400, "both Content-Length and Transfer-Encoding");
    }
    // RFC 9112 §3.2: an HTTP/1.1 request without Host MUST get 400 (absolute-form included).
    if (version_ == 11 && facts_.host_count == 0) {
        return refuse(400, "missing Host");
    }
    phase_ = Phase::Done;
    out.method = method_.in(buf);
    out.target = target_.in(buf);
    out.path = path_is_root_ ? std::string_view("/") : path_.in(buf);
    out.query = query_.in(buf);
    out.scheme = scheme_.in(buf);
    out.authority = authority_.in(buf);
    out.version = version_;
    out.headers.clear();
    for (const detail::FieldSpan &f : fields_) {
        out.headers.push_back(Header{f.name.in(buf), f.value.in(buf)});
    }
    // RFC 9112 §3.2.2: the absolute-form authority wins over Host.
    out.host = authority_.len > 0 ? out.authority : facts_.host.in(buf);
    out.content_length = facts_.content_length;
    out.chunked = facts_.chunked;
    // RFC 9112 §9.3: 1.1 persists unless "close"; 1.0 only with "keep-alive".
    out.keep_alive =
        !facts_.conn_close && (version_ == 11 || (version_ == 10 && facts_.conn_keep_alive));
    // RFC 9110 §10.1.1: 100-continue in an HTTP/1.0 request MUST be ignored.
    out.expect_continue = facts_.expect_continue && version_ == 11;
    out.upgrade = facts_.conn_upgrade && facts_.upgrade_field;
    out.head_len = reader_.pos();
    return ok();
}

ParseResult RequestParser::feed(std::string_view buf, RequestHead &out) {
    if (phase_ == Phase::Failed) {
        return error_;
    }
    if (phase_ == Phase::Done) {
        return finish(buf, out);
    }
    while (true) {
        bool start = phase_ == Phase::StartLine;
        auto step = reader_.next(buf, start ? limits_.max_request_line : limits_.max_header_line,
                                 start ? 414 : 431, limits_.max_head, 431);
        if (step.state == ParseState::Again) {
            return ParseResult{ParseState::Again};
        }
        if (step.state == ParseState::Error) {
            return refuse(step.status, step.reason);
        }
        ParseResult r = ok();
        if (start) {
            if (step.line.empty()) {
                if (++empty_lines_ > kMaxLeadingEmptyLines) {
                    return refuse(400, "too many empty lines before the request line");
                }
                continue;
            }
            r = request_line(step.line, step.off);
        } else if (step.line.empty()) {
            return finish(buf, out);
        } else {
            r = field_line(step.line, step.off, true);
        }
        if (r.state == ParseState::Error) {
            return refuse(r.status, r.reason);
        }
    }
}

// ---- responses ----

void ResponseParser::reset() {
    HeadCore::reset();
    status_ = 0;
    reason_ = Span{};
}

ParseResult ResponseParser::status_line(std::string_view line, uint32_t off) {
    // RFC 9112 §4: status-line = HTTP-version SP status-code SP [ reason-phrase ]. We also take
    // "HTTP/1.1 200" without the second SP: nothing about framing depends on the reason.
    if (line.size() < 12 || line.substr(0, 7) != "HTTP/1." || !ascii::is_digit(line[7]) ||
        line[8] != ' ') {
        return refuse(502, "invalid status line");
    }
    version_ = line[7] == '0' ? 10 : 11; // RFC 9110 §2.5: a higher 1.x minor reads as 1.1
    int status = 0;
    for (size_t i = 9; i < 12; ++i) {
        if (!ascii::is_digit(line[i])) {
            return refuse(502, "invalid status code");
        }
        status = status * 10 + (line[i] - '0');
    }
    if (status < 100 || status > 599) {
        return refuse(502, "invalid status code");
    }
    std::string_view reason;
    if (line.size() > 12) {
        if (line[12] != ' ') {
            return refuse(502, "invalid status line");
        }
        reason = line.substr(13);
        for (char c : reason) {
            if (!ascii::is_field_value_char(c)) {
                return refuse(502, "control character in reason phrase");
            }
        }
    }
    status_ = status;
    reason_ = span(reason, line, off);
    phase_ = Phase::Fields;
    return ok();
}

ParseResult ResponseParser::finish(std::string_view buf, ResponseHead &out, bool request_was_head) {
    const bool te = facts_.transfer_encoding_count > 0;
    if (te && version_ == 10) {
        return refuse(502, "Transfer-Encoding in an HTTP/1.0 response");
    }
    if (te && facts_.content_length_count > 0) {
        return refuse(502, "both Content-Length and Transfer-Encoding");
    }
    phase_ = Phase::Done;
    out.version = version_;
    out.status = status_;
    out.reason = reason_.in(buf);
    out.headers.clear();
    for (const detail::FieldSpan &f : fields_) {
        out.headers.push_back(Header{f.name.in(buf), f.value.in(buf)});
    }
    out.keep_alive =
        !facts_.conn_close && (version_ == 11 || (version_ == 10 && facts_.conn_keep_alive));
    out.upgrade = facts_.conn_upgrade;
    out.chunked = out.close_delimited = false;
    // RFC 9112 §6.3, in its order: no body for HEAD, 1xx, 204, 304; then chunked; then
    // Content-Length; else the body runs until the server closes.
    out.no_body = request_was_head || status_ < 200 || status_ == 204 || status_ == 304;
    if (out.no_body) {
        out.content_length = 0;
    } else if (facts_.chunked) {
        out.content_length = -1;
        out.chunked = true;
    } else if (facts_.content_length_count > 0) {
        out.content_length = facts_.content_length;
    } else {
        out.content_length = -1;
        out.close_delimited = true;
        out.keep_alive = false;
    }
    out.head_len = reader_.pos();
    return ok();
}

ParseResult ResponseParser::feed(std::string_view buf, ResponseHead &out, bool request_was_head) {
    if (phase_ == Phase::Failed) {
        return error_;
    }
    if (phase_ == Phase::Done) {
        return finish(buf, out, request_was_head);
    }
    while (true) {
        bool start = phase_ == Phase::StartLine;
        auto step = reader_.next(buf, start ? limits_.max_request_line : limits_.max_header_line,
                                 502, limits_.max_head, 502);
        if (step.state == ParseState::Again) {
            return ParseResult{ParseState::Again};
        }
        if (step.state == ParseState::Error) {
            return refuse(502, step.reason);
        }
        ParseResult r = ok();
        if (start) {
            r = status_line(step.line, step.off); // no leading empty lines from a server
        } else if (step.line.empty()) {
            return finish(buf, out, request_was_head);
        } else {
            r = field_line(step.line, step.off, false);
        }
        if (r.state == ParseState::Error) {
            return refuse(502, r.reason);
        }
    }
}

} // namespace portico::http
