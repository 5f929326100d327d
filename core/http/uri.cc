#include "http/uri.h"

#include <cstdint>

namespace portico::http {

namespace {

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    c = static_cast<char>(c | 0x20);
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

char ascii_lower(char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c | 0x20) : c;
}

} // namespace

const char *to_string(UriError e) {
    switch (e) {
    case UriError::None:
        return "ok";
    case UriError::BadEncoding:
        return "bad percent-encoding in URI";
    case UriError::EncodedNul:
        return "encoded NUL in URI";
    case UriError::AboveRoot:
        return "URI goes above the root";
    case UriError::Invalid:
        return "invalid URI";
    }
    return "invalid URI";
}

// One pass, decoding into out and resolving each segment when it ends.
//
// %2F and %2E are decoded *before* dot segments and slashes are resolved, as
// nginx does: "/a/..%2F..%2Fetc" is "/etc" or a 400, never a path that still
// climbs once the file layer decodes it. The path we match locations against
// is then byte for byte the path root/alias are joined with, so no encoded
// form can slip past a location prefix or out of the document root. The price
// (also nginx's) is that an application that gives "%2F" a meaning inside a
// segment cannot see it in $uri; $request_uri keeps the raw form for
// proxying. Refusing %2F outright (Apache's AllowEncodedSlashes Off) would
// break nginx configs that work today.
//
// '#' never comes from a conforming client (fragments are not sent); nginx
// cuts the path there, we refuse it rather than silently serve a shorter path.
UriError normalize_path(std::string_view raw, bool merge_slashes, std::string &out) {
    out.clear();
    if (raw.empty() || raw[0] != '/') return UriError::Invalid;
    // The usual path needs nothing done (no escape, no dot segment, no
    // empty segment): one scan and one copy instead of a push per byte.
    size_t k = 0;
    for (; k < raw.size(); ++k) {
        char c = raw[k];
        if (c == '%' || c == '\0' || c == '#') break;
        if (c == '/' && k + 1 < raw.size() && (raw[k + 1] == '/' || raw[k + 1] == '.')) break;
    }
    if (k == raw.size()) {
        out.assign(raw);
        return UriError::None;
    }
    if (out.capacity() < raw.size()) out.reserve(raw.size());

    out.push_back('/');
    size_t seg = 1; // where the current segment starts in out
    size_t i = 1;
    for (;;) {
        bool end = i == raw.size();
        char c = '/';
        if (!end) {
            c = raw[i++];
            if (c == '%') {
                if (raw.size() - i < 2) return UriError::BadEncoding;
                int hi = hex_value(raw[i]), lo = hex_value(raw[i + 1]);
                if (hi < 0 || lo < 0) return UriError::BadEncoding;
                i += 2;
                c = static_cast<char>(hi << 4 | lo);
                if (c == '\0') return UriError::EncodedNul;
            } else if (c == '\0' || c == '#') {
                return UriError::Invalid;
            }
            if (c != '/') {
                out.push_back(c);
                continue;
            }
        }

        size_t len = out.size() - seg;
        if (len == 1 && out[seg] == '.') {
            out.resize(seg); // "/a/./b" and "/a/." keep the slash: "/a/b", "/a/"
        } else if (len == 2 && out[seg] == '.' && out[seg + 1] == '.') {
            if (seg == 1) return UriError::AboveRoot;
            // drop "/prev/..": the segment before may be empty when slashes
            // are not merged ("/a//.." is "/a/"), as RFC 3986 5.2.4 does
            size_t prev = out.rfind('/', seg - 2);
            out.resize(prev + 1);
            seg = prev + 1;
        } else if (!end && !(len == 0 && merge_slashes)) {
            out.push_back('/');
            seg = out.size();
        }
        if (end) return UriError::None;
    }
}

// nginx finds the name anywhere and then insists it starts the args or
// follows '&' and is followed by '='; walking the '&'-separated pieces gives
// the same answers. "?a" alone has no value: $arg_a is empty.
bool find_arg(std::string_view args, std::string_view name, std::string_view &value) {
    if (name.empty()) return false;
    size_t pos = 0;
    while (pos <= args.size()) {
        size_t amp = args.find('&', pos);
        if (amp == std::string_view::npos) amp = args.size();
        std::string_view piece = args.substr(pos, amp - pos);
        if (piece.size() > name.size() && piece[name.size()] == '=') {
            bool same = true;
            for (size_t k = 0; k < name.size() && same; k++)
                same = ascii_lower(piece[k]) == ascii_lower(name[k]);
            if (same) {
                value = piece.substr(name.size() + 1);
                return true;
            }
        }
        pos = amp + 1;
    }
    return false;
}

std::string_view uri_extension(std::string_view uri) {
    // nginx looks no further left than index 2
    for (size_t i = uri.size(); i-- > 2;) {
        if (uri[i] == '/') return {};
        if (uri[i] == '.' && uri[i - 1] != '/') return uri.substr(i + 1);
    }
    return {};
}

void escape_uri(std::string_view in, std::string &out) {
    static constexpr char hex[] = "0123456789ABCDEF";
    for (char ch : in) {
        auto c = static_cast<unsigned char>(ch);
        if (c <= 0x20 || c >= 0x7f || c == '#' || c == '%' || c == '?') {
            out.push_back('%');
            out.push_back(hex[c >> 4]);
            out.push_back(hex[c & 0xf]);
        } else {
            out.push_back(ch);
        }
    }
}

} // namespace portico::http
