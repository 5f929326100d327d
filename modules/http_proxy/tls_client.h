#pragma once
// The TLS client of https:// upstreams: one SSL_CTX per location built from
// the proxy_ssl_* directives at configuration time, the sessions offered
// again (per worker, per upstream server), and the checks nginx makes after
// the handshake (chain, then name).
#include "proxy.h"

#include <openssl/ssl.h>

#include <string>
#include <string_view>

namespace portico::proxy {

enum { kProtoTLSv1 = 1, kProtoTLSv1_1 = 2, kProtoTLSv1_2 = 4, kProtoTLSv1_3 = 8 };

// proxy_ssl_protocols' arguments: nullptr or a message for the directive.
const char *parse_protocols(const pt_str *args, size_t nargs, int *mask);

// c->ssl_ctx from the merged settings: nullptr or a message (files that do
// not load are configuration errors, as in nginx).
const char *create_client_ctx(ProxyConf *c);

// The name SNI sends and the certificate must match: proxy_ssl_name (or
// the proxy_pass host) without its port. Empty for IP literals when used
// for SNI (RFC 6066 §3: literal addresses are not permitted in SNI).
std::string tls_name(std::string_view name_or_authority);
bool is_ip_literal(std::string_view host);

// A new client SSL for one connection: SNI when configured, and the last
// session of `session_key` offered when proxy_ssl_session_reuse is on.
// `session_key` must outlive the SSL (new sessions are filed under it).
SSL *new_client_ssl(const ProxyConf *c, const std::string &name, const std::string *session_key);

// After the handshake: empty, or why the peer is refused (for the log).
std::string verify_peer(SSL *ssl, const ProxyConf *c, const std::string &name);

// The queued OpenSSL errors as text ("error:0A000086:SSL routines::...").
std::string openssl_errors(unsigned long first);

} // namespace portico::proxy
