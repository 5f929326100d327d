#include "event/tls.h"

#include "event/tls_session_cache.h"

#include "config/directive.h"
#include "config/setters.h"
#include "http/conf.h"
#include "log/error_log.h"

#include <algorithm>
#include <event2/bufferevent.h>
#include <event2/bufferevent_struct.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <map>

namespace portico {
namespace {
using config::fmt_error;
using config::sv;

std::string openssl_error() {
    unsigned long e = ERR_get_error();
    char buf[256] = "unknown error";
    if (e) ERR_error_string_n(e, buf, sizeof buf);
    ERR_clear_error();
    return buf;
}

TlsConf &tls_of(pt_conf *cf) {
    ServerConf *s = cf->srv;
    if (!s->tls) {
        s->tls = std::make_shared<TlsConf>();
        s->tls->file = cf->node ? cf->node->file.c_str() : "";
        s->tls->line = cf->node ? cf->node->line : 0;
    }
    return *s->tls;
}

const char *set_cert(pt_conf *cf, void *, const pt_str *a, size_t) {
    TlsConf &t = tls_of(cf);
    std::string path(sv(a[1]));
    if (!path.empty() && path[0] != '/') path = cf->cycle->conf_dir + "/" + path; // nginx: conf prefix
    (sv(a[0]) == "ssl_certificate" ? t.certificates : t.keys).push_back(path);
    return nullptr;
}

const char *set_protocols(pt_conf *cf, void *, const pt_str *a, size_t n) {
    std::vector<std::string> list;
    for (size_t i = 1; i < n; i++) {
        std::string p(sv(a[i]));
        if (p != "SSLv2" && p != "SSLv3" && p != "TLSv1" && p != "TLSv1.1" && p != "TLSv1.2" &&
            p != "TLSv1.3")
            return fmt_error("invalid value \"%s\" in \"ssl_protocols\" directive", p.c_str());
        list.push_back(p);
    }
    tls_of(cf).protocols = list;
    return nullptr;
}

const char *set_string(pt_conf *cf, void *, const pt_str *a, size_t) {
    TlsConf &t = tls_of(cf);
    std::string_view name = sv(a[0]);
    std::string v(sv(a[1]));
    if (name == "ssl_ciphers") t.ciphers = v;
    else if (name == "ssl_ecdh_curve") t.ecdh_curve = v;
    else if (name == "ssl_dhparam") t.dhparam = v[0] == '/' ? v : cf->cycle->conf_dir + "/" + v;
    return nullptr;
}

const char *set_flag(pt_conf *cf, void *, const pt_str *a, size_t) {
    bool v;
    if (const char *e = config::parse_flag(sv(a[1]), v)) return e;
    TlsConf &t = tls_of(cf);
    if (sv(a[0]) == "ssl_prefer_server_ciphers") t.prefer_server_ciphers = v;
    else if (sv(a[0]) == "ssl_session_tickets") t.session_tickets = v;
    return nullptr;
}

const char *set_session_timeout(pt_conf *cf, void *, const pt_str *a, size_t) {
    int64_t ms;
    if (config::parse_msec(sv(a[1]), ms)) return "invalid value";
    tls_of(cf).session_timeout_ms = ms;
    return nullptr;
}

const char *set_session_cache(pt_conf *cf, void *, const pt_str *a, size_t n) {
    // nginx's grammar: "off" or "none" alone, else "builtin[:size]" and/or
    // "shared:name:size" (size as 10m; builtin's in sessions)
    TlsConf::SessionCache sc;
    for (size_t i = 1; i < n; i++) {
        std::string_view v = sv(a[i]);
        auto invalid = [&] { return fmt_error("invalid session cache \"%.*s\"", int(v.size()), v.data()); };
        if (v == "off" || v == "none") {
            if (n != 2) return invalid();
            (v == "off" ? sc.off : sc.none) = true;
        } else if (v == "builtin") {
            sc.builtin = 0;
        } else if (v.substr(0, 8) == "builtin:") {
            int64_t k = 0;
            for (char ch : v.substr(8)) {
                if (ch < '0' || ch > '9' || k > 100000000) return invalid();
                k = k * 10 + (ch - '0');
            }
            if (v.size() == 8 || k == 0) return invalid();
            sc.builtin = k;
        } else if (v.substr(0, 7) == "shared:") {
            std::string_view rest = v.substr(7);
            size_t colon = rest.find(':');
            if (colon == 0 || colon == std::string_view::npos) return invalid();
            int64_t size;
            if (config::parse_size(rest.substr(colon + 1), size) || size <= 0) return invalid();
            sc.shared = std::string(rest.substr(0, colon));
            sc.shared_size = size;
        } else {
            return invalid();
        }
    }
    tls_of(cf).session_cache = sc;
    return nullptr;
}

const char *set_ignore(pt_conf *, void *, const pt_str *, size_t) { return nullptr; }

constexpr uint32_t HS = PT_CTX_HTTP | PT_CTX_SERVER;
const pt_directive kDirectives[] = {
    {"ssl_certificate", HS, PT_ARGS(1) | PT_ARGS_MULTI, PT_CONF_MAIN, set_cert},
    {"ssl_certificate_key", HS, PT_ARGS(1) | PT_ARGS_MULTI, PT_CONF_MAIN, set_cert},
    {"ssl_protocols", HS, PT_ARGS_1MORE, PT_CONF_MAIN, set_protocols},
    {"ssl_ciphers", HS, PT_ARGS(1), PT_CONF_MAIN, set_string},
    {"ssl_ecdh_curve", HS, PT_ARGS(1), PT_CONF_MAIN, set_string},
    {"ssl_dhparam", HS, PT_ARGS(1), PT_CONF_MAIN, set_string},
    {"ssl_prefer_server_ciphers", HS, PT_ARGS_FLAG, PT_CONF_MAIN, set_flag},
    {"ssl_session_tickets", HS, PT_ARGS_FLAG, PT_CONF_MAIN, set_flag},
    {"ssl_session_timeout", HS, PT_ARGS(1), PT_CONF_MAIN, set_session_timeout},
    {"ssl_session_cache", HS, PT_ARGS(1) | PT_ARGS(2), PT_CONF_MAIN, set_session_cache},
    {"ssl_stapling", HS, PT_ARGS_FLAG, PT_CONF_MAIN, set_ignore},
    {"ssl_stapling_verify", HS, PT_ARGS_FLAG, PT_CONF_MAIN, set_ignore},
    {"ssl_buffer_size", HS, PT_ARGS(1), PT_CONF_MAIN, set_ignore},
    {nullptr, 0, 0, PT_CONF_MAIN, nullptr},
};

int proto_version(const std::string &p) {
    if (p == "TLSv1") return TLS1_VERSION;
    if (p == "TLSv1.1") return TLS1_1_VERSION;
    if (p == "TLSv1.2") return TLS1_2_VERSION;
    if (p == "TLSv1.3") return TLS1_3_VERSION;
    return SSL3_VERSION;
}

// SNI: the server{} whose server_name matches gets the handshake, with its
// certificate (RFC 6066 §3); unknown names stay on the default server.
int on_servername(SSL *ssl, int *, void *arg) {
    (void)arg;
    auto *g = static_cast<ListenGroup *>(SSL_get_app_data(ssl));
    if (!g) return SSL_TLSEXT_ERR_OK;
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (!name) return SSL_TLSEXT_ERR_OK;
    std::string host;
    if (!http::normalize_host(name, host)) return SSL_TLSEXT_ERR_OK;
    auto *s = static_cast<ServerConf *>(g->names.find(host));
    if (s && s->tls && s->tls->ctx) SSL_set_SSL_CTX(ssl, s->tls->ctx);
    return SSL_TLSEXT_ERR_OK;
}

int on_alpn(SSL *, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
            unsigned int inlen, void *) {
    static const unsigned char ours[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
    unsigned char *sel;
    if (SSL_select_next_proto(&sel, outlen, ours, sizeof ours, in, inlen) != OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

template <class T> void inherit(std::optional<T> &c, const std::optional<T> &p) {
    if (!c && p) c = p;
}

bool build_ctx(Cycle &c, TlsConf &t, std::string &err) {
    auto where = [&] { return std::string(" in ") + t.file + ":" + std::to_string(t.line); };
    if (t.certificates.empty()) {
        err = "no \"ssl_certificate\" is defined" + where();
        return false;
    }
    if (t.keys.size() != t.certificates.size()) {
        err = "no \"ssl_certificate_key\" is defined for certificate \"" + t.certificates.back() +
              "\"" + where();
        return false;
    }
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        err = "SSL_CTX_new() failed: " + openssl_error();
        return false;
    }
    t.ctx = ctx;
    // nginx ≥ 1.23.4's default (1.22 still enables TLS 1.0/1.1 and not 1.3:
    // compare handshakes/s with ssl_protocols set alike); TLS 1.0/1.1 only when asked
    std::vector<std::string> protos = t.protocols.value_or(std::vector<std::string>{"TLSv1.2", "TLSv1.3"});
    int lo = TLS1_3_VERSION, hi = TLS1_VERSION;
    for (auto &p : protos) {
        int v = proto_version(p);
        if (v < TLS1_VERSION) continue;
        lo = std::min(lo, v);
        hi = std::max(hi, v);
    }
    if (lo < TLS1_2_VERSION) SSL_CTX_set_security_level(ctx, 0); // old protocols need level 0 in OpenSSL 3
    SSL_CTX_set_min_proto_version(ctx, lo);
    SSL_CTX_set_max_proto_version(ctx, hi);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    // an idle connection gives its 16 KiB record buffers back (as nginx):
    // 32 -> 18 KB per idle TLS keep-alive connection, for ~2% more
    // instructions per request (the buffers are allocated per record again)
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (t.prefer_server_ciphers.value_or(false)) SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (!t.session_tickets.value_or(true)) SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    // nginx's default cipher list is "HIGH:!aNULL:!MD5"
    std::string ciphers = t.ciphers.value_or("HIGH:!aNULL:!MD5");
    if (!SSL_CTX_set_cipher_list(ctx, ciphers.c_str())) {
        err = "SSL_CTX_set_cipher_list(\"" + ciphers + "\") failed: " + openssl_error() + where();
        return false;
    }
    if (t.ecdh_curve && *t.ecdh_curve != "auto" && !SSL_CTX_set1_groups_list(ctx, t.ecdh_curve->c_str())) {
        err = "SSL_CTX_set1_groups_list(\"" + *t.ecdh_curve + "\") failed" + where();
        return false;
    }
    if (t.dhparam) {
        BIO *bio = BIO_new_file(t.dhparam->c_str(), "r");
        EVP_PKEY *dh = bio ? PEM_read_bio_Parameters(bio, nullptr) : nullptr;
        if (bio) BIO_free(bio);
        if (!dh || !SSL_CTX_set0_tmp_dh_pkey(ctx, dh)) {
            if (dh) EVP_PKEY_free(dh);
            err = "cannot load DH parameters \"" + *t.dhparam + "\"" + where();
            return false;
        }
    }
    SSL_CTX_set_timeout(ctx, long(t.session_timeout_ms.value_or(300000) / 1000));
    // nginx's default is "none": session IDs are given (clients that insist
    // on them keep working) but none is stored; tickets still resume
    TlsConf::SessionCache none;
    none.none = true;
    TlsConf::SessionCache sc = t.session_cache.value_or(none);
    bool stores = sc.builtin >= 0 || t.zone;
    if (sc.off) {
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    } else if (!stores) {
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER | SSL_SESS_CACHE_NO_AUTO_CLEAR |
                                                SSL_SESS_CACHE_NO_INTERNAL_STORE);
        SSL_CTX_sess_set_cache_size(ctx, 1);
    } else {
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER |
                                                (sc.builtin < 0 ? SSL_SESS_CACHE_NO_INTERNAL : 0));
        if (sc.builtin > 0) SSL_CTX_sess_set_cache_size(ctx, sc.builtin);
        if (t.zone) session_zone_attach(ctx, t.zone.get());
    }
    // TLS 1.3 tickets with neither tickets nor a cache to resume them from
    // are two records and writes per handshake for nothing
    if (!stores && !t.session_tickets.value_or(true)) SSL_CTX_set_num_tickets(ctx, 0);
    SSL_CTX_set_session_id_context(ctx, reinterpret_cast<const unsigned char *>("portico"), 7);
    // several certificates (RSA + ECDSA): OpenSSL picks by the client's signature algorithms
    for (size_t i = 0; i < t.certificates.size(); i++) {
        if (SSL_CTX_use_certificate_chain_file(ctx, t.certificates[i].c_str()) != 1) {
            err = "cannot load certificate \"" + t.certificates[i] + "\": " + openssl_error() + where();
            return false;
        }
        if (SSL_CTX_use_PrivateKey_file(ctx, t.keys[i].c_str(), SSL_FILETYPE_PEM) != 1) {
            err = "cannot load certificate key \"" + t.keys[i] + "\": " + openssl_error() + where();
            return false;
        }
    }
    SSL_CTX_set_alpn_select_cb(ctx, on_alpn, nullptr);
    (void)c;
    return true;
}
} // namespace

TlsConf::~TlsConf() {
    if (ctx) SSL_CTX_free(ctx);
}

const pt_directive *tls_directives() { return kDirectives; }

bool tls_finish(Cycle &c, std::string &err) {
    HttpConf &h = *c.http;
    const TlsConf *d = h.defaults.tls.get();
    std::map<std::string, std::shared_ptr<SessionZone>> zones;
    for (auto &sp : h.servers) {
        ServerConf &s = *sp;
        bool needs = false;
        for (auto &l : s.listens) needs |= l.ssl;
        if (!s.tls && !needs) continue;
        if (!s.tls) {
            s.tls = std::make_shared<TlsConf>();
            s.tls->file = s.file;
            s.tls->line = s.line;
        }
        TlsConf &t = *s.tls;
        if (d) {
            if (t.certificates.empty()) t.certificates = d->certificates;
            if (t.keys.empty()) t.keys = d->keys;
            inherit(t.protocols, d->protocols);
            inherit(t.ciphers, d->ciphers);
            inherit(t.dhparam, d->dhparam);
            inherit(t.ecdh_curve, d->ecdh_curve);
            inherit(t.prefer_server_ciphers, d->prefer_server_ciphers);
            inherit(t.session_tickets, d->session_tickets);
            inherit(t.session_timeout_ms, d->session_timeout_ms);
            inherit(t.session_cache, d->session_cache);
        }
        if (t.certificates.empty() && !needs) continue;
        if (t.session_cache && !t.session_cache->shared.empty()) {
            // one zone per name for the whole configuration (nginx)
            auto &sc = *t.session_cache;
            auto it = zones.find(sc.shared);
            if (it != zones.end() && session_zone_size(*it->second) != sc.shared_size) {
                err = "the size " + std::to_string(sc.shared_size) + " of shared memory zone \"" +
                      sc.shared + "\" conflicts with already declared size " +
                      std::to_string(session_zone_size(*it->second)) + " in " + t.file + ":" +
                      std::to_string(t.line);
                return false;
            }
            t.zone = it != zones.end() ? it->second : session_zone(sc.shared, sc.shared_size, err);
            if (!t.zone) return false;
            zones[sc.shared] = t.zone;
        }
        if (!build_ctx(c, t, err)) {
            if (t.certificates.empty())
                err = "no \"ssl_certificate\" is defined for the \"listen ... ssl\" directive in " +
                      std::string(s.file) + ":" + std::to_string(s.line);
            return false;
        }
    }
    for (auto &g : h.groups) {
        if (!g->listen.ssl) continue;
        ServerConf *s = g->default_server;
        if (!s->tls || !s->tls->ctx) {
            err = "no \"ssl_certificate\" is defined for the \"listen ... ssl\" directive in " +
                  std::string(s->file) + ":" + std::to_string(s->line);
            return false;
        }
        // the group (its server names) travels with each SSL object
        SSL_CTX_set_tlsext_servername_callback(s->tls->ctx, on_servername);
    }
    return true;
}

bufferevent *tls_accept(event_base *base, int fd, ListenGroup *g) {
    SSL *ssl = SSL_new(g->default_server->tls->ctx);
    if (!ssl) return nullptr;
    SSL_set_app_data(ssl, g);
    // The handshake runs inside the first SSL_read, from the bufferevent's
    // read event: libevent's own handshake state arms the write event too and
    // re-registers both events when it ends (8 epoll_ctl per connection, 1
    // here). A failed handshake surfaces as a read error. Made without a
    // socket, then given it: only the read enable below reaches epoll.
    // Callbacks run where the bufferevent's I/O happened, not deferred: a
    // deferred one waits for the next loop turn (one more epoll_wait, and
    // behind every handshake that turn brings, ~1.5 ms of RSA each).
    // libevent holds a reference around them, so freeing inside is safe.
    SSL_set_accept_state(ssl);
    bufferevent *bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_OPEN,
                                                      BEV_OPT_CLOSE_ON_FREE);
    if (!bev) {
        SSL_free(ssl);
        return nullptr;
    }
    bufferevent_setfd(bev, fd);
    return bev;
}

namespace {
// Runs the bufferevent's own handler for `ev` now, as if epoll had reported
// it: its state (a write OpenSSL wants retried, the reference it holds)
// stays libevent's.
void run_now(event *ev, short what) {
    if (event_callback_fn cb = event_get_callback(ev)) cb(event_get_fd(ev), what, event_get_callback_arg(ev));
}
} // namespace

void tls_flush(bufferevent *bev) {
    evbuffer *out = bufferevent_get_output(bev);
    size_t len = evbuffer_get_length(out);
    if (len == 0) return;
    SSL *ssl = bufferevent_openssl_get_ssl(bev);
    if (!ssl || !SSL_is_init_finished(ssl)) return;
    // libevent makes one SSL_write, so one TLS record and one write(), per
    // chain of the output: a response head and its body went out as two.
    // Up to a full record's payload, one contiguous chain is one record, one
    // write() and one record's MAC/tag fewer; a copy of 16 KiB at most.
    constexpr size_t kRecordPayload = 16384;
    if (evbuffer_get_contiguous_space(out) < std::min(len, kRecordPayload))
        evbuffer_pullup(out, ssize_t(std::min(len, kRecordPayload)));
    run_now(&bev->ev_write, EV_WRITE);
}

void tls_release(bufferevent *bev) {
    if (SSL *ssl = bufferevent_openssl_get_ssl(bev))
        SSL_set_shutdown(ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
}

// The context whose session cache a connection uses: the one it was made
// with, whichever server{} SNI then chose (as nginx).
SSL_CTX *tls_session_ctx(SSL *ssl) {
    auto *g = static_cast<ListenGroup *>(SSL_get_app_data(ssl));
    return g ? g->default_server->tls->ctx : SSL_get_SSL_CTX(ssl);
}

bool tls_variable(bufferevent *bev, std::string_view name, std::string &out) {
    SSL *ssl = bev ? bufferevent_openssl_get_ssl(bev) : nullptr;
    if (!ssl) return false;
    if (name == "ssl_protocol") out += SSL_get_version(ssl);
    else if (name == "ssl_cipher") out += SSL_get_cipher_name(ssl);
    else if (name == "ssl_server_name") {
        const char *n = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
        if (!n) return false;
        out += n;
    } else if (name == "ssl_session_reused") out += SSL_session_reused(ssl) ? "r" : ".";
    else return false;
    return true;
}
} // namespace portico
