#pragma once
// proxy_pass's URL and nginx's rules for the URI sent upstream. Pure
// functions over strings: unit-testable without a server.
#include <string>
#include <string_view>

namespace portico::proxy {

struct PassTarget {
    std::string upstream;   // for upstream_ref: "host:port", "unix:/path" or a name
    std::string proxy_host; // $proxy_host: "host[:port]" (port when not 80), "localhost" for unix
    std::string proxy_port; // $proxy_port: "80" by default
    std::string url;        // "http://host[:port]": the prefix proxy_redirect default matches
    bool has_uri = false;   // "http://a/" has a URI part ("/"); "http://a" has none
    std::string uri;        // the URI part
};

// nullptr or a message for the directive.
const char *parse_pass(std::string_view text, PassTarget &out);

// The escaping nginx applies to a normalized $uri before sending it: what
// could be read back as something else (space, '%', '?', '#', controls,
// non-ASCII) becomes %XX.
void append_escaped_uri(std::string_view uri, std::string &out);

// The URI of the upstream request (nginx's rules):
//  - proxy_pass with a URI part: the part of $uri matching the (prefix)
//    location is replaced by it; args follow after '?';
//  - without one: the client's $request_uri as sent, or, when the URI was
//    changed (internal redirect), the escaped $uri plus args.
std::string upstream_uri(bool has_uri, std::string_view uri_part, std::string_view location,
                         std::string_view uri, std::string_view args,
                         std::string_view request_uri, bool uri_changed);

} // namespace portico::proxy
