// Which request headers a backend may see: one table serves both gateways.
// FastCGI turns the passed ones into HTTP_* variables; the HTTP proxy re-sends
// them after removing what belongs to the client hop only.
#pragma once

#include "cgi/cgi_input.h"

#include <cstddef>
#include <span>
#include <string_view>

namespace portico::cgi {

enum class HeaderClass {
    end_to_end,          // passed to both gateways
    hop_by_hop,          // RFC 9110 7.6.1: Connection, Keep-Alive, TE, Trailer, Transfer-Encoding,
                         // Upgrade, Proxy-Connection; never passed
    httpoxy,             // Proxy: CVE-2016-5385, never passed anywhere
    underscore,          // a '_' in the name: dropped unless underscores_in_headers on
    invalid_name,        // not [A-Za-z0-9_-]: no CGI variable can carry it (nginx drops these at
                         // parse time under its default ignore_invalid_headers on)
    content_meta,        // Content-Type, Content-Length: CONTENT_TYPE / CONTENT_LENGTH, not HTTP_*
    host,                // Host: HTTP_HOST comes from the authority, not the raw header
    authorization,       // Authorization: passed unless configured off
    proxy_authorization, // Proxy-Authorization: credentials for us, passed only when configured
};

HeaderClass classify_header(std::string_view name);

struct HeaderPolicyConfig {
    bool underscores_in_headers = false;
    // Default on, as nginx: PHP under PHP-FPM builds PHP_AUTH_USER/PHP_AUTH_PW
    // and apps read bearer tokens from HTTP_AUTHORIZATION; dropping it would
    // break every app doing its own HTTP auth behind us. RFC 3875 4.1.18's
    // SHOULD-remove aims at servers that did the authentication themselves.
    bool pass_authorization = true;
    // Default off: Proxy-Authorization carries credentials for the proxy hop
    // (RFC 9110 11.7.2), not for the application.
    bool pass_proxy_authorization = false;
};

class HeaderPolicy {
  public:
    HeaderPolicy() = default;
    explicit HeaderPolicy(HeaderPolicyConfig config) : config_(config) {}

    const HeaderPolicyConfig &config() const { return config_; }

    // True when `name` may become an HTTP_* variable. `headers` is the whole
    // request header list, consulted for Connection's token list.
    bool pass_to_cgi(std::string_view name, std::span<const HeaderView> headers) const;

    // True when the HTTP proxy may re-send `name` upstream. Host and the
    // framing headers (Content-Length, Transfer-Encoding) are false: the proxy
    // writes its own, it never forwards client framing (request smuggling).
    bool forward_to_http_upstream(std::string_view name, std::span<const HeaderView> headers) const;

  private:
    bool passes_class(HeaderClass cls) const;
    HeaderPolicyConfig config_;
};

// True when a Connection header of `headers` lists `name` (RFC 9110 7.6.1).
bool listed_in_connection(std::string_view name, std::span<const HeaderView> headers);

// "HTTP_" + upper-cased name with '-' -> '_' (RFC 3875 4.1.18), written into
// `out` which must hold cgi_name_size(name) bytes. Returns the written view.
std::size_t cgi_name_size(std::string_view name);
std::string_view write_cgi_name(std::string_view name, char *out);

// Equality of two header names after the CGI mapping (case and '-' vs '_').
bool same_cgi_name(std::string_view a, std::string_view b);

} // namespace portico::cgi
