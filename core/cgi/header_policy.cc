#include "cgi/header_policy.h"

#include "base/ascii.h"

#include <array>
#include <cstring>

namespace portico::cgi {

namespace {

using ascii::iequals;

constexpr char cgi_char(char c) {
    if (c >= 'a' && c <= 'z') return static_cast<char>(c & ~0x20);
    return c == '-' ? '_' : c;
}

constexpr bool name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
}

struct Known {
    std::string_view name;
    HeaderClass cls;
};

// The one table. Lookup is linear: it is short and names are compared only
// when lengths match.
constexpr std::array<Known, 13> known_headers{{
    {"connection", HeaderClass::hop_by_hop},
    {"keep-alive", HeaderClass::hop_by_hop},
    {"te", HeaderClass::hop_by_hop},
    {"trailer", HeaderClass::hop_by_hop},
    {"transfer-encoding", HeaderClass::hop_by_hop},
    {"upgrade", HeaderClass::hop_by_hop},
    {"proxy-connection", HeaderClass::hop_by_hop}, // never standard, still sent by old clients
    {"proxy", HeaderClass::httpoxy},
    {"content-type", HeaderClass::content_meta},
    {"content-length", HeaderClass::content_meta},
    {"host", HeaderClass::host},
    {"authorization", HeaderClass::authorization},
    {"proxy-authorization", HeaderClass::proxy_authorization},
}};

// Trim optional whitespace (RFC 9110 5.6.3) around a list element.
std::string_view trim_ows(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
        s.remove_suffix(1);
    return s;
}

} // namespace

bool same_cgi_name(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (cgi_char(a[i]) != cgi_char(b[i])) return false;
    return true;
}

namespace {
// Per byte: 0 not allowed in a CGI name, 1 [A-Za-z0-9-], 2 '_'.
constexpr std::array<unsigned char, 256> make_name_table() {
    std::array<unsigned char, 256> t{};
    for (int c = 0; c < 256; ++c)
        t[std::size_t(c)] = name_char(char(c)) ? 1 : 0;
    t['_'] = 2;
    return t;
}
constexpr std::array<unsigned char, 256> kNameByte = make_name_table();

// The table's entries of this length (at most two share one), so a name is
// compared with one or two candidates instead of the whole table: this runs
// per header per request on both gateways.
constexpr const Known *known_by_length(std::size_t n, char first) {
    auto at = [](std::size_t i) { return &known_headers[i]; };
    char f = ascii::to_lower(first);
    switch (n) {
    case 2: return at(2);                           // te
    case 4: return at(10);                          // host
    case 5: return at(7);                           // proxy
    case 7: return f == 't' ? at(3) : at(5);        // trailer, upgrade
    case 10: return f == 'c' ? at(0) : at(1);       // connection, keep-alive
    case 12: return at(8);                          // content-type
    case 13: return at(11);                         // authorization
    case 14: return at(9);                          // content-length
    case 16: return at(6);                          // proxy-connection
    case 17: return at(4);                          // transfer-encoding
    case 19: return at(12);                         // proxy-authorization
    default: return nullptr;
    }
}
constexpr bool every_known_found() {
    for (const Known &k : known_headers)
        if (known_by_length(k.name.size(), k.name[0]) != &k) return false;
    return true;
}
static_assert(every_known_found(), "known_by_length out of step with known_headers");
} // namespace

HeaderClass classify_header(std::string_view name) {
    if (name.empty()) return HeaderClass::invalid_name;
    unsigned seen = 1;
    for (char c : name) {
        unsigned b = kNameByte[ascii::byte(c)];
        if (b == 0) return HeaderClass::invalid_name;
        seen |= b;
    }
    if (seen & 2) return HeaderClass::underscore;
    const Known *k = known_by_length(name.size(), name[0]);
    return k && iequals(k->name, name) ? k->cls : HeaderClass::end_to_end;
}

bool listed_in_connection(std::string_view name, std::span<const HeaderView> headers) {
    for (const HeaderView &h : headers) {
        if (!iequals(h.name, "connection")) continue;
        std::string_view rest = h.value;
        while (!rest.empty()) {
            std::size_t comma = rest.find(',');
            std::string_view token = trim_ows(rest.substr(0, comma));
            if (iequals(token, name)) return true;
            if (comma == std::string_view::npos) break;
            rest.remove_prefix(comma + 1);
        }
    }
    return false;
}

bool HeaderPolicy::passes_class(HeaderClass cls) const {
    switch (cls) {
    case HeaderClass::end_to_end:
    case HeaderClass::underscore: // callers check the config flag first
        return true;
    case HeaderClass::authorization:
        return config_.pass_authorization;
    case HeaderClass::proxy_authorization:
        return config_.pass_proxy_authorization;
    case HeaderClass::hop_by_hop:
    case HeaderClass::httpoxy:
    case HeaderClass::invalid_name:
    case HeaderClass::content_meta:
    case HeaderClass::host:
        return false;
    }
    return false;
}

bool HeaderPolicy::pass_to_cgi(std::string_view name, std::span<const HeaderView> headers) const {
    HeaderClass cls = classify_header(name);
    if (cls == HeaderClass::underscore && !config_.underscores_in_headers) return false;
    if (!passes_class(cls)) return false;
    // A name the client lists in Connection is hop-by-hop for this request.
    return !listed_in_connection(name, headers);
}

bool HeaderPolicy::forward_to_http_upstream(std::string_view name,
                                            std::span<const HeaderView> headers) const {
    HeaderClass cls = classify_header(name);
    if (cls == HeaderClass::underscore && !config_.underscores_in_headers) return false;
    // Content-Type is end-to-end for HTTP; only the length framing is ours.
    if (cls == HeaderClass::content_meta) {
        if (!iequals(name, "content-type")) return false;
    } else if (!passes_class(cls)) {
        return false;
    }
    return !listed_in_connection(name, headers);
}

std::size_t cgi_name_size(std::string_view name) {
    return 5 + name.size();
}

namespace {
constexpr std::array<char, 256> make_cgi_char_table() {
    std::array<char, 256> t{};
    for (int c = 0; c < 256; ++c)
        t[std::size_t(c)] = cgi_char(char(c));
    return t;
}
constexpr std::array<char, 256> kCgiChar = make_cgi_char_table();
} // namespace

std::string_view write_cgi_name(std::string_view name, char *out) {
    std::memcpy(out, "HTTP_", 5);
    char *p = out + 5;
    for (char c : name)
        *p++ = kCgiChar[ascii::byte(c)];
    return {out, static_cast<std::size_t>(p - out)};
}

} // namespace portico::cgi
