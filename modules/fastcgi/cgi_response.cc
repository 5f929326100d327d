#include "cgi_response.h"

#include <algorithm>
#include <array>
#include <string_view>

namespace portico::fastcgi {

namespace {

// RFC 9110 §5.6.2: token characters; a field name is a token. A table:
// it is asked per byte of every response header name.
constexpr std::array<bool, 256> make_tchar_table() {
    std::array<bool, 256> t{};
    for (int c = 0; c < 256; ++c)
        t[std::size_t(c)] = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    for (char c : std::string_view("!#$%&'*+-.^_`|~"))
        t[static_cast<unsigned char>(c)] = true;
    return t;
}
constexpr std::array<bool, 256> kTchar = make_tchar_table();

bool is_tchar(unsigned char c) {
    return kTchar[c];
}

bool is_alpha(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool is_digit(unsigned char c) {
    return c >= '0' && c <= '9';
}

unsigned char lower(unsigned char c) {
    return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (a[i] != b[i] && lower(a[i]) != lower(b[i])) return false; // same bytes: no folding
    return true;
}

bool istarts_with(std::string_view s, std::string_view prefix) {
    return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

std::string_view trim_ows(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
        s.remove_suffix(1);
    return s;
}

// RFC 3986 §3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ), then ':'.
bool has_scheme(std::string_view uri) {
    if (uri.empty() || !is_alpha(uri[0])) return false;
    for (std::size_t i = 1; i < uri.size(); ++i) {
        unsigned char c = uri[i];
        if (c == ':') return true;
        if (!is_alpha(c) && !is_digit(c) && c != '+' && c != '-' && c != '.') return false;
    }
    return false;
}

LocationKind location_kind(std::string_view value) {
    // RFC 3875 §6.3.2: local-Location = local-pathquery, which starts with "/".
    if (value[0] == '/') return LocationKind::LocalPath;
    if (has_scheme(value)) return LocationKind::AbsoluteUri;
    return LocationKind::Relative;
}

} // namespace

std::string_view to_string(LocationKind kind) {
    switch (kind) {
    case LocationKind::None:
        return "none";
    case LocationKind::LocalPath:
        return "local path";
    case LocationKind::AbsoluteUri:
        return "absolute URI";
    case LocationKind::Relative:
        return "relative reference";
    }
    return "?";
}

std::string_view to_string(ResponseKind kind) {
    switch (kind) {
    case ResponseKind::Document:
        return "document";
    case ResponseKind::LocalRedirect:
        return "local redirect";
    case ResponseKind::ClientRedirect:
        return "client redirect";
    case ResponseKind::ClientRedirectWithDocument:
        return "client redirect with document";
    }
    return "?";
}

int CgiResponseHead::effective_status() const {
    if (status != 0) return status;
    if (location_kind != LocationKind::None && kind != ResponseKind::LocalRedirect) return 302;
    return 200;
}

CgiHeadParser::CgiHeadParser(std::size_t max_head_size) : max_head_size_(max_head_size) {
    buffer_.reserve(max_head_size_);
    head_.fields.reserve(32); // PHP sends a handful; reused across reset()
}

void CgiHeadParser::reset() {
    buffer_.clear(); // keeps the capacity
    line_start_ = 0;
    done_ = false;
    error_ = {};
    auto fields = std::move(head_.fields);
    fields.clear();
    head_ = CgiResponseHead{};
    head_.fields = std::move(fields);
}

HeadResult CgiHeadParser::refuse(std::string_view reason) {
    error_ = reason;
    HeadResult r;
    r.status = HeadStatus::Error;
    r.error = reason;
    return r;
}

HeadResult CgiHeadParser::feed(std::string_view bytes) {
    if (!error_.empty()) return refuse(error_);
    if (done_) return HeadResult{HeadStatus::Done, 0, {}};

    // Never past the reserved capacity: the views in head_ must not move.
    std::size_t old_size = buffer_.size();
    std::size_t take = std::min(bytes.size(), max_head_size_ - old_size);
    buffer_.append(bytes.substr(0, take));

    for (;;) {
        std::size_t lf = buffer_.find('\n', line_start_);
        if (lf == std::string::npos) break;
        std::string_view line(buffer_.data() + line_start_, lf - line_start_);
        // CGI apps end lines with LF (RFC 3875 §6.3, "NL") or CRLF (PHP); the
        // CR of a CRLF is the only CR a line may hold.
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        line_start_ = lf + 1;
        if (line.empty()) {
            done_ = true;
            head_.head_size = line_start_;
            if (auto reason = classify(); !reason.empty()) return refuse(reason);
            return HeadResult{HeadStatus::Done, line_start_ - old_size, {}};
        }
        if (auto reason = parse_line(line); !reason.empty()) return refuse(reason);
    }
    // A full buffer without the blank line: the head cannot fit (nginx: "upstream
    // sent too big header").
    if (buffer_.size() == max_head_size_) return refuse("header block too large");
    return HeadResult{HeadStatus::Again, bytes.size(), {}};
}

std::string_view CgiHeadParser::parse_line(std::string_view line) {
    if (line.find('\r') != std::string_view::npos) return "bare CR in CGI header";
    // obs-fold (RFC 9112 §5.2) is not CGI syntax; unfolding it is how header
    // smuggling through gateways starts.
    if (line[0] == ' ' || line[0] == '\t') return "obs-fold in CGI header";
    std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) return "CGI header line without a colon";
    std::string_view name = line.substr(0, colon);
    if (name.empty()) return "empty CGI header name";
    for (unsigned char c : name) {
        if (is_tchar(c)) continue;
        if (c == ' ' || c == '\t') return "whitespace before colon in CGI header";
        return "invalid character in CGI header name";
    }
    std::string_view value = trim_ows(line.substr(colon + 1));
    for (unsigned char c : value) {
        if ((c >= 0x20 || c == '\t') && c != 0x7f) continue;
        if (c == 0) return "NUL in CGI header value";
        return "control character in CGI header value";
    }

    if (iequals(name, "Status")) {
        if (head_.status != 0) return "duplicate Status in CGI header";
        // RFC 3875 §6.3.3: Status = status-code SP reason-phrase. nginx and
        // Apache accept the code alone, and so do we.
        if (value.size() < 3 || !is_digit(value[0]) || !is_digit(value[1]) || !is_digit(value[2]) ||
            value[0] == '0')
            return "invalid Status in CGI header";
        if (value.size() > 3 && value[3] != ' ') return "invalid Status in CGI header";
        head_.status = (value[0] - '0') * 100 + (value[1] - '0') * 10 + (value[2] - '0');
        head_.reason = value.size() > 3 ? trim_ows(value.substr(4)) : std::string_view{};
        return {};
    }
    if (iequals(name, "Location")) {
        if (head_.location_kind != LocationKind::None) return "duplicate Location in CGI header";
        if (value.empty()) return "empty Location in CGI header";
        head_.location = value;
        head_.location_kind = location_kind(value);
        return {};
    }
    if (iequals(name, "Content-Type")) {
        if (head_.has_content_type) return "duplicate Content-Type in CGI header";
        head_.content_type = value;
        head_.has_content_type = true;
        return {};
    }
    if (istarts_with(name, "X-Accel-")) {
        head_.has_x_accel = true;
        if (iequals(name, "X-Accel-Redirect")) {
            if (head_.has_x_accel_redirect) return "duplicate X-Accel-Redirect in CGI header";
            head_.x_accel_redirect = value;
            head_.has_x_accel_redirect = true;
        }
    }
    head_.fields.push_back(HeaderField{name, value});
    return {};
}

// RFC 3875 §6.2.
std::string_view CgiHeadParser::classify() {
    bool any_field = head_.status != 0 || head_.location_kind != LocationKind::None ||
                     head_.has_content_type || !head_.fields.empty();
    // §6.2: every response carries at least one CGI field.
    if (!any_field) return "CGI response without header fields";
    if (head_.location_kind == LocationKind::None) {
        head_.kind = ResponseKind::Document;
    } else if (head_.location_kind == LocationKind::LocalPath && head_.status == 0 &&
               !head_.has_content_type && head_.fields.empty()) {
        // §6.2.2: the Location field alone. The caller still has to see an
        // empty body before serving it internally.
        head_.kind = ResponseKind::LocalRedirect;
    } else if (head_.has_content_type) {
        head_.kind = ResponseKind::ClientRedirectWithDocument;
    } else {
        head_.kind = ResponseKind::ClientRedirect;
    }
    return {};
}

} // namespace portico::fastcgi
