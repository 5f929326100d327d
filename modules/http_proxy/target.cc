#include "target.h"

#include <cstdio>

namespace portico::proxy {

const char *parse_pass(std::string_view t, PassTarget &out) {
    out = PassTarget{};
    std::string scheme;
    if (t.substr(0, 8) == "https://") {
        out.ssl = true;
        scheme = "https://";
    } else if (t.substr(0, 7) == "http://") {
        scheme = "http://";
    } else {
        return "!invalid URL prefix in proxy_pass";
    }
    t.remove_prefix(scheme.size());
    const char *default_port = out.ssl ? "443" : "80";
    std::string_view authority;
    if (t.substr(0, 5) == "unix:") {
        // http://unix:/path/to.sock:/uri — the path ends at the next ':'
        size_t colon = t.find(':', 5);
        std::string_view path = t.substr(5, colon == std::string_view::npos ? t.npos : colon - 5);
        if (path.empty() || path[0] != '/') return "!invalid unix socket path in proxy_pass";
        out.upstream = "unix:" + std::string(path);
        out.proxy_host = "localhost";
        out.host = "localhost";
        out.proxy_port = "";
        out.url = scheme + "localhost";
        if (colon != std::string_view::npos) {
            std::string_view rest = t.substr(colon + 1);
            if (!rest.empty()) {
                if (rest[0] != '/') return "!invalid URI part in proxy_pass";
                out.has_uri = true;
                out.uri = std::string(rest);
            }
        }
        return nullptr;
    }
    size_t slash = t.find('/');
    authority = t.substr(0, slash);
    if (slash != std::string_view::npos) {
        out.has_uri = true;
        out.uri = std::string(t.substr(slash));
    }
    if (authority.empty()) return "!no host in proxy_pass";
    for (unsigned char ch : authority) {
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                  ch == '.' || ch == '-' || ch == '_' || ch == ':' || ch == '[' || ch == ']';
        if (!ok) return "!invalid host in proxy_pass";
    }
    size_t colon = authority.rfind(':');
    size_t bracket = authority.rfind(']');
    bool has_port = colon != std::string_view::npos && (bracket == std::string_view::npos || colon > bracket);
    if (has_port) {
        std::string_view port = authority.substr(colon + 1);
        if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != port.npos)
            return "!invalid port in proxy_pass";
        out.upstream = std::string(authority);
        out.proxy_port = std::string(port);
        out.host = std::string(authority.substr(0, colon));
        out.proxy_host = port == default_port ? out.host : std::string(authority);
    } else {
        // a bare name: the upstream{} block of that name (a host name
        // without an upstream block needs its port written out)
        out.upstream = std::string(authority);
        out.proxy_port = default_port;
        out.proxy_host = std::string(authority);
        out.host = std::string(authority);
    }
    if (out.host.empty()) return "!no host in proxy_pass";
    out.url = scheme + std::string(authority);
    return nullptr;
}

bool valid_request_target(std::string_view uri) {
    if (uri.empty() || uri[0] != '/') return false;
    for (unsigned char ch : uri)
        if (ch <= 0x20 || ch == 0x7f) return false;
    return true;
}

void append_escaped_uri(std::string_view uri, std::string &out) {
    static const char hex[] = "0123456789ABCDEF";
    for (unsigned char ch : uri) {
        bool plain = ch > 0x20 && ch < 0x7f && ch != '%' && ch != '?' && ch != '#' && ch != '"' &&
                     ch != '<' && ch != '>' && ch != '\\' && ch != '^' && ch != '`' && ch != '{' &&
                     ch != '|' && ch != '}';
        if (plain) {
            out += char(ch);
        } else {
            out += '%';
            out += hex[ch >> 4];
            out += hex[ch & 15];
        }
    }
}

std::string upstream_uri(bool has_uri, std::string_view uri_part, std::string_view location,
                         std::string_view uri, std::string_view args,
                         std::string_view request_uri, bool uri_changed) {
    std::string out;
    if (!has_uri) {
        if (!uri_changed && !request_uri.empty()) return std::string(request_uri);
        append_escaped_uri(uri, out);
    } else {
        out.assign(uri_part);
        std::string_view rest = uri;
        if (rest.substr(0, location.size()) == location) rest.remove_prefix(location.size());
        else rest = {}; // an exact location naming a different $uri: the part alone
        append_escaped_uri(rest, out);
    }
    if (!args.empty()) {
        out += '?';
        out += args;
    }
    return out;
}

} // namespace portico::proxy
