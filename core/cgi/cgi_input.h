// What the CGI-environment builder reads about one request. The server fills
// it per request with views into the request arena; the builder never owns or
// copies any of it. Every field is the already-computed nginx variable of the
// same meaning, so the builder's output stays byte-exact to nginx's.
#pragma once

#include <span>
#include <string_view>

namespace portico::cgi {

struct HeaderView {
    std::string_view name;
    std::string_view value;
};

// The SCRIPT_NAME / PATH_INFO split of one request. The lead stores it on the
// request (not in a per-location context) so that it survives try_files and
// internal redirects: nginx recomputes it from the new $uri and loses
// PATH_INFO (trac #321, the reason for Debian's `set $path_info` workaround).
// The views point into the $uri the split was computed from, which lives in
// the request arena for the whole request.
struct SplitResult {
    std::string_view script_name; // capture 1, or the whole $uri when no match
    std::string_view index;       // fastcgi_index, only when script_name ends in '/'
    std::string_view path_info;   // capture 2, "" when no match
    bool done = false;
};

struct CgiInput {
    std::string_view method;      // $request_method
    std::string_view request_uri; // $request_uri: the raw target, query included
    std::string_view uri;         // $uri / $document_uri: decoded, normalized, current
    std::string_view args;        // $args / $query_string: "" when absent or empty

    std::string_view document_root; // $document_root (root or alias, variables evaluated)
    std::string_view realpath_root; // $realpath_root
    std::string_view fastcgi_index; // fastcgi_index of the location, "" when unset

    std::string_view server_name; // $server_name: the configured one, not Host (nginx)
    std::string_view server_addr; // $server_addr: local address, IPv6 without brackets
    std::string_view server_port; // $server_port: local port
    std::string_view remote_addr; // $remote_addr (after realip, if any)
    std::string_view remote_port; // $remote_port
    std::string_view peer_addr;   // the TCP peer before realip; "" = same as remote_addr

    // $host (authority host, lower-case, no port; server_name when the request
    // names none) and the port the authority carried ("" when none). Together
    // they give HTTP_HOST as nginx >= 1.29.5 does: $host$is_request_port$request_port.
    std::string_view host;
    std::string_view request_port;

    bool https = false;               // the client connection used TLS
    std::string_view server_protocol; // "HTTP/1.1"

    std::string_view content_type;
    // "" while a chunked body's length is unknown, the decimal length once the
    // body has been read (nginx's $content_length does the same).
    std::string_view content_length;

    std::span<const HeaderView> headers; // in arrival order, duplicates kept

    std::string_view remote_user; // $remote_user, "" when no credentials were checked
    std::string_view auth_type;   // auth-scheme when the server authenticated (RFC 3875 4.1.1)

    SplitResult split; // filled once by SplitPathInfo::split or split_without_regex
};

} // namespace portico::cgi
