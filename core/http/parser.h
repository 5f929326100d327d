// SPDX-License-Identifier: BSD-2-Clause
// Strict, incremental HTTP/1.1 message-head parser (RFC 9112, RFC 9110), requests and responses.
// Ambiguity is refused, never guessed: anything two peers could read differently (CL+TE, duplicate
// CL, obs-fold, bare CR/LF, whitespace before the colon, ...) is an error, because a server in
// front of other servers must not be the one that disagrees (request smuggling).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace portico::http {

// Views into the caller's buffer; value trimmed of OWS (RFC 9112 §5.1).
struct Header {
    std::string_view name, value;
};

struct Limits {
    size_t max_request_line = 8192; // > → 414 (nginx large_client_header_buffers size)
    size_t max_header_line = 8192;  // one field line > → 431 (nginx answers 400; RFC 6585 431)
    size_t max_head = 32768;        // whole head incl. final CRLF CRLF > → 431
    size_t max_headers = 100;       // field lines (dropped ones included) > → 431
    // nginx: names with '_' are dropped unless on. Requests only: upstream responses keep them,
    // as nginx's proxy does.
    bool underscores_in_headers = false;
    // nginx: names with other non-token bytes are dropped when on and passed when off. A name
    // with a CTL or whitespace (before the colon) is a 400 either way.
    bool ignore_invalid_headers = true;
};

struct RequestHead {
    std::string_view method, target;
    std::string_view path, query; // path = target up to '?' (absolute-form: the path part, "/"
                                  // when empty), query = after the first '?', no '?'
    std::string_view scheme, authority; // absolute-form only (scheme as sent, e.g. "HTTP")
    int version = 11;                   // 10 or 11
    std::vector<Header> headers;        // in order, duplicates kept, dropped names left out
    std::string_view host;              // absolute-form authority if any, else the Host value, raw
    int64_t content_length = -1;        // -1: none
    bool chunked = false, keep_alive = true, expect_continue = false;
    bool upgrade = false; // Connection: upgrade and an Upgrade field (RFC 9110 §7.8)
    size_t head_len = 0;  // bytes of the head incl. the final CRLF CRLF
};

enum class ParseState { Done, Again, Error };

// On Error, status is the answer to give (requests: 400/405/414/417/431/501/505; responses:
// always 502) and reason a static string for the log line.
struct ParseResult {
    ParseState state;
    int status = 0;
    const char *reason = nullptr;
};

namespace detail {
// Offsets into the buffer: the caller may move its buffer between feed() calls (evbuffer pullup),
// so nothing pointing into an earlier buffer is kept; views are made once, at Done.
struct Span {
    uint32_t off = 0, len = 0;
    std::string_view in(std::string_view buf) const { return buf.substr(off, len); }
};
struct FieldSpan {
    Span name, value;
};

// Splits the head into CRLF-terminated lines, resuming its search where it stopped last time so
// that feeding the whole buffer again and again stays linear in the head size.
class LineReader {
  public:
    struct Step {
        ParseState state; // Done: `line` holds one line without its CRLF
        std::string_view line{};
        uint32_t off = 0;
        int status = 0;
        const char *reason = nullptr;
    };
    // line_limit/line_status: the limit for the line being read and the status when it is
    // exceeded; head_limit/head_status: same for the whole head.
    Step next(std::string_view buf, size_t line_limit, int line_status, size_t head_limit,
              int head_status);
    size_t pos() const { return pos_; }
    void reset() { pos_ = scan_ = 0; }

  private:
    size_t pos_ = 0;  // start of the next unread line
    size_t scan_ = 0; // bytes already searched for '\n'
};

// What the framing and connection-management fields said, gathered line by line.
struct FieldFacts {
    int content_length_count = 0;
    int64_t content_length = -1;
    int transfer_encoding_count = 0;
    bool chunked = false;
    int host_count = 0;
    Span host;
    bool conn_close = false, conn_keep_alive = false, conn_upgrade = false;
    bool upgrade_field = false;
    bool expect_continue = false;
};

// Shared by both parsers: the field-line loop and the framing rules for one head.
class HeadCore {
  public:
    explicit HeadCore(const Limits &limits) : limits_(limits) {}
    void reset();

  protected:
    enum class Phase { StartLine, Fields, Done, Failed };
    ParseResult refuse(int status, const char *reason);
    // Parses one field line and records what framing fields say; the response parser maps
    // every error it returns to 502.
    ParseResult field_line(std::string_view line, uint32_t off, bool is_request);
    ParseResult content_length_field(std::string_view value);
    ParseResult transfer_encoding_field(std::string_view value);

    Limits limits_;
    LineReader reader_;
    Phase phase_ = Phase::StartLine;
    ParseResult error_{ParseState::Error};
    int version_ = 11;
    unsigned empty_lines_ = 0;
    size_t field_lines_ = 0;
    std::vector<FieldSpan> fields_;
    FieldFacts facts_;
};
} // namespace detail

// Incremental request-head parser. Call feed() with the WHOLE buffered bytes so far each time
// more arrive (the bytes already given must be unchanged; the buffer may move). Returns Again
// until the head is complete, then Done with `out` filled (views into `buffered`, valid as long
// as those bytes are), or Error as soon as the bytes seen are known bad or over a limit. After
// Done or Error further calls repeat the answer; reset() readies the parser for the next request
// on the connection (the caller drops head_len bytes, plus the body, from its buffer first).
class RequestParser : private detail::HeadCore {
  public:
    explicit RequestParser(const Limits &limits) : HeadCore(limits) {}
    ParseResult feed(std::string_view buffered, RequestHead &out);
    void reset();
    // a parser kept in a pool serves connections of other listeners next
    void set_limits(const Limits &limits) { limits_ = limits; }

  private:
    ParseResult request_line(std::string_view line, uint32_t off);
    ParseResult finish(std::string_view buf, RequestHead &out);

    detail::Span method_, target_, path_, query_, scheme_, authority_;
    bool path_is_root_ = false; // absolute-form without a path: path is "/"
};

struct ResponseHead {
    int version = 11, status = 0;
    std::string_view reason;
    std::vector<Header> headers;
    int64_t content_length = -1; // body length when known; 0 when no_body
    bool chunked = false, close_delimited = false, keep_alive = true;
    bool no_body = false; // RFC 9112 §6.3: HEAD response, 1xx, 204, 304
    bool upgrade = false; // Connection: upgrade (meaningful on 101)
    size_t head_len = 0;
};

// Same contract as RequestParser, for an upstream's response (same strictness; every error is a
// 502 and the proxy must drop the upstream connection). A 1xx answer is returned as Done with
// status 1xx and its own head_len: the caller skips those bytes, calls reset() and feeds the
// rest (RFC 9110 §15.2).
class ResponseParser : private detail::HeadCore {
  public:
    explicit ResponseParser(const Limits &limits) : HeadCore(limits) {}
    ParseResult feed(std::string_view buffered, ResponseHead &out, bool request_was_head);
    void reset();

  private:
    ParseResult status_line(std::string_view line, uint32_t off);
    ParseResult finish(std::string_view buf, ResponseHead &out, bool request_was_head);

    int status_ = 0;
    detail::Span reason_;
};

// uri-host [ ":" port ] (RFC 3986 §3.2.2-3): reg-name, IPv4 or a bracketed IP literal; no
// userinfo, no "..", port at most 5 digits. Used for Host and absolute-form authorities.
bool valid_host(std::string_view host);

} // namespace portico::http
