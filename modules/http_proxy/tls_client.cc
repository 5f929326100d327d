#include "tls_client.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>

#include <memory>
#include <unordered_map>
#include <vector>

namespace portico::proxy {
namespace {

template <auto fn> struct Free {
    template <class T> void operator()(T *p) const { fn(p); }
};
using CtxOwner = std::unique_ptr<SSL_CTX, Free<SSL_CTX_free>>;
using SessionOwner = std::unique_ptr<SSL_SESSION, Free<SSL_SESSION_free>>;

// Contexts live as long as the process: the ABI has no hook for the end of
// a configuration generation, so a reload leaves the old ones here (one
// small SSL_CTX per https:// location per reload, in the master only).
std::vector<CtxOwner> &contexts() {
    static std::vector<CtxOwner> all;
    return all;
}

// The last session per (context, upstream server, name), per worker: a
// worker is single-threaded, and sessions are not shared across workers
// (nginx keeps them per upstream peer in each worker too).
constexpr size_t kMaxSessions = 4096;
std::unordered_map<std::string, SessionOwner> &sessions() {
    static std::unordered_map<std::string, SessionOwner> all;
    return all;
}

int session_key_index() {
    static int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
    return index;
}

// With TLS 1.3 the session (ticket) arrives after the handshake, while the
// response is read: filing it from this callback rather than at
// BEV_EVENT_CONNECTED is what makes TLS 1.3 resumption work.
int on_new_session(SSL *ssl, SSL_SESSION *session) {
    auto *key = static_cast<const std::string *>(SSL_get_ex_data(ssl, session_key_index()));
    if (!key) return 0;
    auto &all = sessions();
    if (all.size() >= kMaxSessions && !all.count(*key)) all.clear();
    all[*key] = SessionOwner(session);
    return 1; // the reference is ours now
}

// The chain is judged after the handshake (verify_peer), as nginx does, so
// that the refusal is logged with its reason instead of a bare alert.
int accept_for_now(int, X509_STORE_CTX *) {
    return 1;
}

int min_version(int mask) {
    if (mask & kProtoTLSv1) return TLS1_VERSION;
    if (mask & kProtoTLSv1_1) return TLS1_1_VERSION;
    if (mask & kProtoTLSv1_2) return TLS1_2_VERSION;
    return TLS1_3_VERSION;
}
int max_version(int mask) {
    if (mask & kProtoTLSv1_3) return TLS1_3_VERSION;
    if (mask & kProtoTLSv1_2) return TLS1_2_VERSION;
    if (mask & kProtoTLSv1_1) return TLS1_1_VERSION;
    return TLS1_VERSION;
}
} // namespace

std::string openssl_errors(unsigned long first) {
    std::string out;
    char buf[256];
    for (unsigned long e = first ? first : ERR_get_error(); e; e = ERR_get_error()) {
        ERR_error_string_n(e, buf, sizeof buf);
        if (!out.empty()) out += ' ';
        out += buf;
    }
    return out.empty() ? "unknown error" : out;
}

const char *parse_protocols(const pt_str *args, size_t nargs, int *mask) {
    int m = 0;
    for (size_t i = 1; i < nargs; i++) {
        std::string_view v = sv(args[i]);
        if (v == "TLSv1")
            m |= kProtoTLSv1;
        else if (v == "TLSv1.1")
            m |= kProtoTLSv1_1;
        else if (v == "TLSv1.2")
            m |= kProtoTLSv1_2;
        else if (v == "TLSv1.3")
            m |= kProtoTLSv1_3;
        else if (v == "SSLv2" || v == "SSLv3")
            continue; // nginx accepts them; OpenSSL 3 has neither
        else
            return "!invalid value in \"proxy_ssl_protocols\" (TLSv1, TLSv1.1, TLSv1.2, TLSv1.3)";
    }
    if (!m) return "!no usable protocol in \"proxy_ssl_protocols\"";
    *mask = m;
    return nullptr;
}

bool is_ip_literal(std::string_view host) {
    if (!host.empty() && host.front() == '[') return true;
    in_addr a4;
    std::string h(host);
    return inet_pton(AF_INET, h.c_str(), &a4) == 1;
}

std::string tls_name(std::string_view name) {
    if (!name.empty() && name.front() == '[') {
        size_t close = name.find(']');
        return std::string(name.substr(0, close == name.npos ? name.npos : close + 1));
    }
    return std::string(name.substr(0, name.find(':')));
}

const char *create_client_ctx(ProxyConf *c) {
    thread_local std::string msg;
    CtxOwner ctx(SSL_CTX_new(TLS_client_method()));
    if (!ctx) return "!SSL_CTX_new() failed for an https upstream";
    int mask = c->ssl_protocols;
    SSL_CTX_set_min_proto_version(ctx.get(), min_version(mask));
    SSL_CTX_set_max_proto_version(ctx.get(), max_version(mask));
    // a protocol left out between the lowest and the highest stays off
    if (!(mask & kProtoTLSv1_1)) SSL_CTX_set_options(ctx.get(), SSL_OP_NO_TLSv1_1);
    if (!(mask & kProtoTLSv1_2)) SSL_CTX_set_options(ctx.get(), SSL_OP_NO_TLSv1_2);
    std::string ciphers(c->ssl_ciphers.data ? sv(c->ssl_ciphers) : "DEFAULT");
    if (!SSL_CTX_set_cipher_list(ctx.get(), ciphers.c_str())) {
        msg = "!SSL_CTX_set_cipher_list(\"" + ciphers + "\") failed: " + openssl_errors(0);
        return msg.c_str();
    }
    if (c->ssl_verify == 1) {
        if (!c->ssl_trusted_certificate.data)
            return "!no proxy_ssl_trusted_certificate for proxy_ssl_verify";
        std::string file(sv(c->ssl_trusted_certificate));
        if (!SSL_CTX_load_verify_locations(ctx.get(), file.c_str(), nullptr)) {
            msg =
                "!cannot load proxy_ssl_trusted_certificate \"" + file + "\": " + openssl_errors(0);
            return msg.c_str();
        }
        SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, accept_for_now);
        SSL_CTX_set_verify_depth(ctx.get(), c->ssl_verify_depth);
    } else {
        SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
    }
    if (c->ssl_certificate.data) {
        std::string cert(sv(c->ssl_certificate));
        std::string key(c->ssl_certificate_key.data ? sv(c->ssl_certificate_key)
                                                    : sv(c->ssl_certificate));
        if (!SSL_CTX_use_certificate_chain_file(ctx.get(), cert.c_str()) ||
            !SSL_CTX_use_PrivateKey_file(ctx.get(), key.c_str(), SSL_FILETYPE_PEM) ||
            !SSL_CTX_check_private_key(ctx.get())) {
            msg = "!cannot load proxy_ssl_certificate \"" + cert + "\" / key \"" + key +
                  "\": " + openssl_errors(0);
            return msg.c_str();
        }
    }
    if (c->ssl_session_reuse != 0) {
        // the client side keeps no internal cache: sessions are filed per
        // upstream server by on_new_session
        SSL_CTX_set_session_cache_mode(ctx.get(),
                                       SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
        SSL_CTX_sess_set_new_cb(ctx.get(), on_new_session);
    } else {
        SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);
        SSL_CTX_set_options(ctx.get(), SSL_OP_NO_TICKET);
    }
    // the request is written once the handshake is done; a partial write
    // may be retried from a moved buffer (evbuffer chains)
    SSL_CTX_set_mode(ctx.get(),
                     SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_ENABLE_PARTIAL_WRITE);
    c->ssl_ctx = ctx.get();
    contexts().push_back(std::move(ctx));
    return nullptr;
}

SSL *new_client_ssl(const ProxyConf *c, const std::string &name, const std::string *session_key) {
    SSL *ssl = SSL_new(c->ssl_ctx);
    if (!ssl) return nullptr;
    if (c->ssl_server_name == 1 && !name.empty() && !is_ip_literal(name))
        SSL_set_tlsext_host_name(ssl, name.c_str());
    if (session_key && c->ssl_session_reuse != 0) {
        SSL_set_ex_data(ssl, session_key_index(), const_cast<std::string *>(session_key));
        auto it = sessions().find(*session_key);
        if (it != sessions().end()) SSL_set_session(ssl, it->second.get());
    }
    return ssl;
}

std::string verify_peer(SSL *ssl, const ProxyConf *c, const std::string &name) {
    if (c->ssl_verify != 1) return {};
    long rc = SSL_get_verify_result(ssl);
    if (rc != X509_V_OK)
        return "upstream SSL certificate verify error: (" + std::to_string(rc) + ":" +
               X509_verify_cert_error_string(rc) + ") while SSL handshaking to upstream";
    X509 *cert = SSL_get1_peer_certificate(ssl);
    if (!cert) return "upstream sent no required SSL certificate while SSL handshaking to upstream";
    std::unique_ptr<X509, Free<X509_free>> owner(cert);
    bool match;
    if (is_ip_literal(name)) {
        std::string ip = name;
        if (!ip.empty() && ip.front() == '[') ip = ip.substr(1, ip.size() - 2);
        match = X509_check_ip_asc(cert, ip.c_str(), 0) == 1;
    } else {
        match = X509_check_host(cert, name.data(), name.size(), 0, nullptr) == 1;
    }
    if (!match)
        return "upstream SSL certificate does not match \"" + name +
               "\" while SSL handshaking to upstream";
    return {};
}

} // namespace portico::proxy
