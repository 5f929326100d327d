#pragma once
// proxy_pass's URL and nginx's rules for the URI sent upstream. Pure
// functions over strings: unit-testable without a server.
#include <string>
#include <string_view>

namespace portico::proxy {

struct PassTarget {
    bool ssl = false;       // https://
    std::string upstream;   // for upstream_ref: "host:port", "unix:/path" or a name
    std::string proxy_host; // $proxy_host: "host[:port]" (port when not 80), "localhost" for unix
    std::string proxy_port; // $proxy_port: "80" ("443" for https) by default
    std::string url;        // "http[s]://host[:port]": the prefix proxy_redirect default matches
    std::string host;       // the host alone (no port, brackets kept): the TLS name
    bool has_uri = false;   // "http://a/" has a URI part ("/"); "http://a" has none
    std::string uri;        // the URI part
};

// nullptr or a message for the directive. Also used per request on the
// evaluated URL when proxy_pass has variables, so the authority is held to
// the bytes a host name or address can have: it becomes the Host field.
const char *parse_pass(std::string_view text, PassTarget &out);

// A URI that came out of variables goes on the request line as is (nginx's
// rule); it must not be able to end that line or start another field.
bool valid_request_target(std::string_view uri);

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
