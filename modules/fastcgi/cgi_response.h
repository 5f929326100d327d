// The CGI response head (RFC 3875 §6) read from a FastCGI app's STDOUT:
// incremental, strict, bounded by the caller's buffer size.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace portico::fastcgi {

enum class LocationKind {
    None,
    LocalPath,   // "/path?query": RFC 3875 §6.2.2 local-Location
    AbsoluteUri, // "scheme:...": RFC 3875 §6.2.3 client-Location
    Relative,    // anything else ("index.php"): not CGI, but PHP apps send it and nginx passes it
};

// RFC 3875 §6.2: which of the four responses the head makes.
enum class ResponseKind {
    Document,                   // §6.2.1
    LocalRedirect,              // §6.2.2: only "Location: /path"; the server serves it internally
    ClientRedirect,             // §6.2.3: Location and no document
    ClientRedirectWithDocument, // §6.2.4: Location and Content-Type
};

std::string_view to_string(LocationKind kind);
std::string_view to_string(ResponseKind kind);

struct HeaderField {
    std::string_view name;
    std::string_view value;
};

// Views into the parser's own buffer: valid while the parser lives and is
// neither reset nor fed again.
struct CgiResponseHead {
    int status = 0; // from "Status:"; 0 when the app sent none
    std::string_view reason;
    std::string_view location;
    LocationKind location_kind = LocationKind::None;
    std::string_view content_type;
    bool has_content_type = false;
    // X-Accel-* fields stay in `fields` (the gateway hides them, as nginx's
    // fastcgi_hide_header default does); these say they are there.
    bool has_x_accel = false;
    std::string_view x_accel_redirect;
    bool has_x_accel_redirect = false;
    // Every field but Status, Location and Content-Type, in the app's order.
    std::vector<HeaderField> fields;
    ResponseKind kind = ResponseKind::Document;
    std::size_t head_size = 0; // bytes of the head, the blank line included

    // The status the client gets: Status if given, else 302 for a redirect
    // (nginx does the same for a Location without Status), else 200.
    int effective_status() const;
};

enum class HeadStatus { Again, Done, Error };

struct HeadResult {
    HeadStatus status = HeadStatus::Again;
    // Bytes of this feed's input that belong to the head. On Done the body
    // starts at input.substr(consumed); on Again it is the whole input.
    std::size_t consumed = 0;
    std::string_view error{}; // static text, for the 502 log line
};

class CgiHeadParser {
  public:
    // nginx's fastcgi_buffer_size: the head must fit (4k or 8k by default).
    explicit CgiHeadParser(std::size_t max_head_size = 4096);

    HeadResult feed(std::string_view bytes);
    const CgiResponseHead &head() const { return head_; }
    std::size_t max_head_size() const { return max_head_size_; }
    void reset();

  private:
    HeadResult refuse(std::string_view reason);
    std::string_view parse_line(std::string_view line);
    std::string_view classify();

    std::size_t max_head_size_;
    std::string buffer_; // capacity max_head_size_, reserved once: views stay put
    std::size_t line_start_ = 0;
    bool done_ = false;
    std::string_view error_;
    CgiResponseHead head_;
};

} // namespace portico::fastcgi
