#pragma once
// TLS termination (OpenSSL 3 through libevent's OpenSSL bufferevents).
// Lives in the core rather than a module (see LAYOUT.md note 1): it wraps
// the connection before any HTTP exists; the ssl_* directives keep nginx's
// names and contexts.
#include <portico/module.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;
struct bufferevent;
struct event_base;

namespace portico {
struct Cycle;
struct ServerConf;
struct ListenGroup;
class SessionZone;

struct TlsConf {
    std::vector<std::string> certificates, keys;
    std::optional<std::vector<std::string>> protocols;
    std::optional<std::string> ciphers, dhparam, ecdh_curve;
    std::optional<bool> prefer_server_ciphers, session_tickets;
    std::optional<int64_t> session_timeout_ms;
    // ssl_session_cache: off | none | builtin[:size] and/or shared:name:size
    struct SessionCache {
        bool off = false, none = false;
        int64_t builtin = -1; // OpenSSL's per-worker cache: -1 not used, 0 its default size
        std::string shared;   // the shared zone's name, "" none
        int64_t shared_size = 0;
    };
    std::optional<SessionCache> session_cache;
    std::shared_ptr<SessionZone> zone; // the shared cache, alive while a configuration names it
    const char *file = "";
    unsigned line = 0;
    SSL_CTX *ctx = nullptr; // built at load, inherited by the workers
    ~TlsConf();
};

const pt_directive *tls_directives();
// Builds every server's SSL_CTX and checks `listen ... ssl` has a certificate.
bool tls_finish(Cycle &c, std::string &err);
// A TLS bufferevent for an accepted socket on an ssl listener.
bufferevent *tls_accept(event_base *base, int fd, ListenGroup *g);
// Encrypts and writes the queued output in this loop turn (libevent's TLS
// bufferevent would only arm the write event and write on the next one).
void tls_flush(bufferevent *bev);
// Before a TLS bufferevent is freed: a connection that ends without our
// close_notify (the client closed, a timeout) keeps its session resumable,
// as nginx does and RFC 5246 §7.2.1 allows; a fatal alert already made
// OpenSSL drop it.
void tls_release(bufferevent *bev);
// $ssl_protocol, $ssl_cipher, $ssl_server_name, $ssl_session_reused
bool tls_variable(bufferevent *bev, std::string_view name, std::string &out);
} // namespace portico
