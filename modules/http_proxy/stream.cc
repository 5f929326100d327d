// One request's exchange with an HTTP upstream: connect through the host's
// upstream layer (or, for an address that came out of variables, directly),
// wrap the connection in TLS for https://, write the re-serialized request,
// read the response with the host's strict parser, stream the body to the
// client (the host frames it again), and return the connection to the pool
// only after a complete, well-framed exchange with nothing left over.
//
// A TLS connection is never returned to the host's keep-alive pool: the pool
// holds file descriptors, and the TLS state on top of one cannot go with it
// (a later plain or new-handshake user of the fd would read garbage). It is
// released with keep = 0; proxy_ssl_session_reuse makes the next handshake
// an abbreviated one instead.
#include "proxy.h"
#include "target.h"
#include "tls_client.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <new>
#include <string>
#include <vector>

namespace portico::proxy {

const pt_host *H;
const pt_module *g_module;

namespace {
constexpr size_t kMaxHeaders = 100;
// 100 and 103 are skipped; a peer that sends more than this many before its
// final answer is stalling us, not informing
constexpr int kMaxInformational = 8;
// pooled connections that turn out dead are replaced; bounded all the same
constexpr int kMaxStaleRetries = 4;

enum class Phase { Head, Body };
enum class BodyMode { None, Length, Chunked, Close };

// a TLS location handed a pooled (plain) fd drops it and asks again; the
// pool holds at most `keepalive` of them
constexpr int kMaxPooledSkips = 64;

struct Stream {
    pt_request *r = nullptr;
    const ProxyConf *conf = nullptr;
    pt_upstream *upstream = nullptr; // through the host's layer; nullptr: direct
    PassTarget dynamic;              // proxy_pass with variables, evaluated
    sockaddr_storage direct_addr{};
    socklen_t direct_len = 0;
    int direct_fd = -1;
    event *connect_ev = nullptr;
    pt_upstream_conn *uc = nullptr;
    bufferevent *bev = nullptr;
    SSL *ssl = nullptr;
    bool handshaking = false;
    std::string peer;        // "127.0.0.1:8443": logs and the session key
    std::string tls_name;    // SNI and the certificate's name
    std::string session_key; // see tls_client.cc
    int pooled_skips = 0;
    std::string out; // the request bytes; a retry sends them again
    bool sent_head_method = false;
    Phase phase = Phase::Head;
    BodyMode mode = BodyMode::None;
    int64_t remaining = 0;
    pt_chunked *chunked = nullptr;
    bool got_bytes = false;
    bool upstream_keep_alive = false;
    int informational = 0;
    int retries = 0;
    pt_http_header headers[kMaxHeaders];
};

void shutdown_backend(Stream *s, bool keep, bool failed) {
    if (s->connect_ev) {
        event_free(s->connect_ev);
        s->connect_ev = nullptr;
    }
    if (s->bev) {
        // the SSL bufferevent runs its callbacks deferred, so libevent is not
        // inside SSL_read() here; without BEV_OPT_CLOSE_ON_FREE it neither
        // closes the fd nor frees the SSL: both are ours
        bufferevent_free(s->bev);
        s->bev = nullptr;
    }
    if (s->ssl) {
        SSL_free(s->ssl);
        s->ssl = nullptr;
        keep = false; // see the top of the file
    }
    if (s->uc) {
        H->upstream_release(s->uc, keep, failed);
        s->uc = nullptr;
    }
    if (s->direct_fd >= 0) {
        close(s->direct_fd);
        s->direct_fd = -1;
    }
}

// The upstream's bytes: a bufferevent of ours (TLS, or a direct
// connection), else the host's I/O on a pooled plain connection.
evbuffer *input(Stream *s) {
    return s->bev ? bufferevent_get_input(s->bev) : static_cast<evbuffer *>(H->upstream_io_input(s->uc));
}
size_t unsent(Stream *s) {
    return s->bev ? evbuffer_get_length(bufferevent_get_output(s->bev)) : H->upstream_io_unsent(s->uc);
}

// The host's log appends the client, request line and host to every line
// about a request: only the upstream is added here.
void log_error(Stream *s, const char *reason) {
    pt_str up = !s->peer.empty() ? ps(s->peer) : s->uc ? H->upstream_name(s->uc) : PT_STR("-");
    H->log(PT_LOG_ERR, s->r, "%s, upstream: \"%s%.*s\"", reason, s->conf->ssl ? "https://" : "http://",
           int(up.len), up.data);
}

// Ends the request with a status of ours (before the response head went
// out) or cuts it (after): the client sees an error or an incomplete
// response, never a wrong one. s is gone afterwards.
// `counted`: a failure against the server (max_fails), as nginx's default
// proxy_next_upstream "error timeout"; an invalid answer is not one.
void fail(Stream *s, int status, const char *reason, bool counted = false) {
    log_error(s, reason);
    shutdown_backend(s, false, counted);
    H->finalize(s->r, s->phase == Phase::Body ? PT_ERROR : status);
}

// The response is complete. s is gone afterwards.
void complete(Stream *s) {
    size_t left_in = evbuffer_get_length(input(s));
    size_t left_out = unsent(s);
    bool keep = s->upstream_keep_alive && s->mode != BodyMode::Close && left_in == 0 && left_out == 0;
    if (left_in)
        log_error(s, "upstream sent more data than specified, the connection is discarded");
    pt_request *r = s->r;
    // close_notify after a good exchange (best effort, non-blocking). It also
    // keeps the session: OpenSSL marks the session of an SSL freed without
    // it as not resumable, and that is the one proxy_ssl_session_reuse kept.
    if (s->ssl) SSL_shutdown(s->ssl);
    shutdown_backend(s, keep, false);
    H->finish(r);
}

int start_exchange(Stream *s);

// 101: the upstream accepted the client's Upgrade (nginx's WebSocket recipe
// forwards it with proxy_set_header Upgrade/Connection). Only a protocol the
// client asked for is accepted; then both connections become a tunnel.
bool switch_protocols(Stream *s, evbuffer *in, const pt_http_response &resp) {
    if (s->ssl) {
        // the host's tunnel relays the plain fd; TLS records would go raw
        fail(s, 502, "upstream sent 101 Switching Protocols over TLS, which cannot be tunnelled yet");
        return false;
    }
    pt_request *r = s->r;
    pt_str asked;
    std::string_view offered;
    for (size_t i = 0; i < resp.nheaders; i++)
        if (ieq(sv(resp.headers[i].name), "Upgrade")) offered = sv(resp.headers[i].value);
    if (!H->req_header(r, PT_STR("Upgrade"), &asked) || offered.empty() ||
        !ieq(offered, sv(asked))) {
        fail(s, 502, "upstream sent 101 Switching Protocols to a protocol the client did not ask for");
        return false;
    }
    std::string upgrade(offered);
    // the 101 head is ours: only Upgrade and the end-to-end fields pass
    apply_response_head(r, s->conf, resp);
    H->resp_header_set(r, PT_STR("Upgrade"), pt_str{upgrade.data(), upgrade.size()});
    H->set_status(r, 101);
    H->set_content_length(r, -1);
    H->send_header(r);
    evbuffer_drain(in, resp.head_len);
    std::string pending(evbuffer_get_length(in), '\0');
    evbuffer_remove(in, pending.data(), pending.size());
    pt_upstream_conn *uc = s->uc;
    s->uc = nullptr; // the host owns it now
    if (s->bev) bufferevent_free(s->bev);
    s->bev = nullptr;
    if (H->tunnel(r, uc, pt_str{pending.data(), pending.size()}, s->conf->read_timeout) != PT_OK) {
        H->upstream_release(uc, 0, 0);
        H->finalize(r, PT_ERROR);
    }
    return false;
}

// Returns false when the request has been finalized (s is gone).
bool on_head(Stream *s, evbuffer *in) {
    for (;;) {
        size_t len = evbuffer_get_length(in);
        if (len == 0) return true;
        size_t take = std::min(len, size_t(s->conf->buffer_size));
        const char *data = reinterpret_cast<const char *>(evbuffer_pullup(in, ssize_t(take)));
        pt_http_response resp{};
        resp.headers = s->headers;
        resp.max_headers = kMaxHeaders;
        int rc = H->http_parse_response({data, take}, s->sent_head_method, &resp);
        if (rc == PT_AGAIN) {
            if (take >= size_t(s->conf->buffer_size)) {
                fail(s, 502, "upstream sent too big header while reading response header from upstream");
                return false;
            }
            return true;
        }
        if (rc != PT_OK) {
            std::string why = std::string("upstream sent invalid response: ") +
                              (resp.error ? resp.error : "?") +
                              " while reading response header from upstream";
            fail(s, 502, why.c_str());
            return false;
        }
        if (resp.status == 101) return switch_protocols(s, in, resp);
        if (resp.status < 200) {
            if (++s->informational > kMaxInformational) {
                fail(s, 502, "upstream sent too many informational (1xx) responses");
                return false;
            }
            evbuffer_drain(in, resp.head_len);
            continue;
        }
        pt_request *r = s->r;
        if (s->conf->intercept_errors == 1 && resp.status >= 300) {
            // the connection is closed rather than drained: cheap and safe
            shutdown_backend(s, false, false);
            H->finalize(r, resp.status);
            return false;
        }
        apply_response_head(r, s->conf, resp);
        s->upstream_keep_alive = resp.keep_alive;
        if (resp.no_body) {
            s->mode = BodyMode::None;
            // HEAD: the length the upstream announced is the client's too
            int64_t announced = -1;
            if (s->sent_head_method) {
                // the parser reports no body for HEAD; the field tells the length
                for (size_t i = 0; i < resp.nheaders; i++)
                    if (ieq(sv(resp.headers[i].name), "Content-Length")) {
                        std::string v(sv(resp.headers[i].value));
                        char *end = nullptr;
                        long long n = strtoll(v.c_str(), &end, 10);
                        if (end && *end == '\0' && n >= 0 && !v.empty() && v[0] != '-') announced = n;
                    }
            }
            H->set_content_length(r, announced);
        } else if (resp.chunked) {
            s->mode = BodyMode::Chunked;
            s->chunked = H->chunked_new(r, -1);
            H->set_content_length(r, -1);
        } else if (resp.content_length >= 0) {
            s->mode = BodyMode::Length;
            s->remaining = resp.content_length;
            H->set_content_length(r, resp.content_length);
        } else {
            s->mode = BodyMode::Close;
            H->set_content_length(r, -1);
        }
        evbuffer_drain(in, resp.head_len);
        s->phase = Phase::Body;
        H->send_header(r);
        if (s->mode == BodyMode::None || (s->mode == BodyMode::Length && s->remaining == 0)) {
            complete(s);
            return false;
        }
        return true;
    }
}

// Returns false when the request has been finalized (s is gone).
bool on_body(Stream *s, evbuffer *in) {
    while (evbuffer_get_length(in) > 0) {
        evbuffer_iovec vec;
        if (evbuffer_peek(in, -1, nullptr, &vec, 1) < 1) return true;
        const char *p = static_cast<const char *>(vec.iov_base);
        size_t n = vec.iov_len;
        switch (s->mode) {
        case BodyMode::Length: {
            size_t use = size_t(std::min<int64_t>(s->remaining, int64_t(n)));
            H->send_data(s->r, p, use);
            evbuffer_drain(in, use);
            s->remaining -= int64_t(use);
            if (s->remaining == 0) {
                complete(s);
                return false;
            }
            break;
        }
        case BodyMode::Close:
            H->send_data(s->r, p, n);
            evbuffer_drain(in, n);
            break;
        case BodyMode::Chunked: {
            size_t consumed = 0;
            pt_str data{};
            int rc = H->chunked_feed(s->chunked, {p, n}, &consumed, &data);
            if (data.len) H->send_data(s->r, data.data, data.len);
            evbuffer_drain(in, consumed);
            if (rc == PT_OK) {
                complete(s);
                return false;
            }
            if (rc != PT_AGAIN) {
                fail(s, 502, "upstream sent invalid chunked response while reading upstream");
                return false;
            }
            if (consumed == 0) {
                // a size line split across buffer segments: join them and retry
                if (evbuffer_get_length(in) > n) {
                    evbuffer_pullup(in, -1);
                    continue;
                }
                return true;
            }
            break;
        }
        case BodyMode::None:
            return true;
        }
    }
    return true;
}

void on_input(Stream *s, evbuffer *in) {
    if (evbuffer_get_length(in) == 0) return;
    s->got_bytes = true;
    if (s->phase == Phase::Head && !on_head(s, in)) return;
    if (s->phase == Phase::Body) on_body(s, in);
}

void on_read(bufferevent *bev, void *arg) {
    on_input(static_cast<Stream *>(arg), bufferevent_get_input(bev));
}

void on_io_read(void *arg, void *in) {
    on_input(static_cast<Stream *>(arg), static_cast<evbuffer *>(in));
}

timeval ms_to_tv(int64_t ms) { return {time_t(ms / 1000), suseconds_t((ms % 1000) * 1000)}; }

// nginx's checks once the TLS handshake is over; then the exchange's own timeouts
void handshake_done(Stream *s) {
    s->handshaking = false;
    std::string why = verify_peer(s->ssl, s->conf, s->tls_name);
    if (!why.empty()) {
        fail(s, 502, why.c_str(), true);
        return;
    }
    timeval rt = ms_to_tv(s->conf->read_timeout), wt = ms_to_tv(s->conf->send_timeout);
    bufferevent_set_timeouts(s->bev, &rt, &wt);
}

// A timeout, the upstream's close or an error (PT_IO_* bits).
void on_end(Stream *s, int what) {
    if (what & PT_IO_READ_TIMEOUT) {
        fail(s, 504, s->phase == Phase::Head
                         ? "upstream timed out (110: Connection timed out) while reading response header from upstream"
                         : "upstream timed out (110: Connection timed out) while reading upstream",
             true);
        return;
    }
    if (what & PT_IO_WRITE_TIMEOUT) {
        fail(s, 504, "upstream timed out (110: Connection timed out) while sending request to upstream", true);
        return;
    }
    // EOF or error: whatever arrived before it is handled first
    evbuffer *in = input(s);
    if (evbuffer_get_length(in) > 0) {
        s->got_bytes = true;
        if (s->phase == Phase::Head && !on_head(s, in)) return;
        if (s->phase == Phase::Body && !on_body(s, in)) return;
    }
    if (s->phase == Phase::Body && s->mode == BodyMode::Close && (what & PT_IO_EOF) &&
        !(what & PT_IO_ERROR)) {
        complete(s);
        return;
    }
    if (s->phase == Phase::Head && !s->got_bytes && s->uc && H->upstream_reused(s->uc) &&
        s->retries < kMaxStaleRetries && idempotent(sv(H->req_field(s->r, PT_F_METHOD)))) {
        // a pooled connection the upstream had closed: the request never
        // reached it, so it is sent again on another connection
        s->retries++;
        shutdown_backend(s, false, false);
        if (int rc = start_exchange(s); rc != PT_AGAIN) H->finalize(s->r, rc);
        return;
    }
    if (s->phase == Phase::Head)
        fail(s, 502, (what & PT_IO_ERROR)
                         ? "upstream reset the connection while reading response header from upstream"
                         : "upstream prematurely closed connection while reading response header from upstream",
             true);
    else
        fail(s, 502, "upstream prematurely closed connection while reading upstream", true);
}

void on_io_event(void *arg, int what) {
    on_end(static_cast<Stream *>(arg), what);
}

void on_event(bufferevent *bev, short what, void *arg) {
    auto *s = static_cast<Stream *>(arg);
    if (what & BEV_EVENT_CONNECTED) {
        handshake_done(s);
        return;
    }
    if (s->handshaking) {
        if (what & BEV_EVENT_TIMEOUT) {
            fail(s, 504, "upstream timed out (110: Connection timed out) while SSL handshaking to upstream", true);
            return;
        }
        unsigned long e = bufferevent_get_openssl_error(bev);
        std::string why = e || (what & BEV_EVENT_ERROR)
                              ? "SSL_do_handshake() failed (SSL: " + openssl_errors(e) +
                                    ") while SSL handshaking to upstream"
                              : std::string("upstream prematurely closed connection while SSL handshaking to upstream");
        fail(s, 502, why.c_str(), true);
        return;
    }
    int io = (what & BEV_EVENT_TIMEOUT)
                 ? ((what & BEV_EVENT_READING) ? PT_IO_READ_TIMEOUT : PT_IO_WRITE_TIMEOUT)
                 : ((what & BEV_EVENT_ERROR) ? PT_IO_ERROR : 0) | ((what & BEV_EVENT_EOF) ? PT_IO_EOF : 0);
    on_end(s, io);
}

// The connection is ready (either way it was made): TLS or not on top.
void attach(Stream *s) {
    const ProxyConf *c = s->conf;
    auto *base = static_cast<event_base *>(H->event_base(s->r));
    s->phase = Phase::Head;
    s->got_bytes = false;
    s->informational = 0;
    if (!c->ssl && s->uc) {
        // full duplex: an early answer (413, 401) is read while the body still goes out
        static const pt_upstream_io io = {on_io_read, on_io_event};
        H->upstream_io_start(s->uc, &io, s, c->read_timeout, c->send_timeout);
        H->upstream_io_write(s->uc, s->out.data(), s->out.size());
        return;
    }
    int fd = s->uc ? H->upstream_fd(s->uc) : s->direct_fd; // I/O of our own from here
    timeval rt = ms_to_tv(c->read_timeout), wt = ms_to_tv(c->send_timeout);
    if (c->ssl) {
        s->session_key = std::to_string(reinterpret_cast<uintptr_t>(c->ssl_ctx)) + '|' + s->peer + '|' +
                         s->tls_name;
        s->ssl = new_client_ssl(c, s->tls_name, &s->session_key);
        if (s->ssl)
            s->bev = bufferevent_openssl_socket_new(base, fd, s->ssl, BUFFEREVENT_SSL_CONNECTING,
                                                    BEV_OPT_DEFER_CALLBACKS);
        if (!s->bev) {
            fail(s, 502, ("cannot start TLS to upstream: " + openssl_errors(0)).c_str());
            return;
        }
        // many servers close without close_notify after a close-delimited
        // body; that end is the body's end, as for plain HTTP
        bufferevent_openssl_set_allow_dirty_shutdown(s->bev, 1);
        s->handshaking = true;
        // the handshake is part of connecting (nginx: proxy_connect_timeout)
        rt = wt = ms_to_tv(c->connect_timeout);
    } else {
        s->bev = bufferevent_socket_new(base, fd, 0);
    }
    bufferevent_setcb(s->bev, on_read, nullptr, on_event, s);
    // queued before the handshake ends: the TLS layer sends it right after
    evbuffer_add_reference(bufferevent_get_output(s->bev), s->out.data(), s->out.size(), nullptr,
                           nullptr);
    bufferevent_set_timeouts(s->bev, &rt, &wt);
    // full duplex: an early answer (413, 401) is read while the body still goes out
    bufferevent_enable(s->bev, EV_READ | EV_WRITE);
}

void on_connected(void *data, pt_upstream_conn *uc, int status) {
    auto *s = static_cast<Stream *>(data);
    if (status) {
        H->finalize(s->r, status);
        return;
    }
    s->uc = uc;
    if (s->conf->ssl && H->upstream_reused(uc)) {
        // a plain connection pooled by an http:// location of the same
        // upstream{}: TLS cannot start in the middle of one
        H->upstream_release(uc, 0, 0);
        s->uc = nullptr;
        if (++s->pooled_skips > kMaxPooledSkips) {
            fail(s, 502, "no fresh connection for TLS to upstream");
            return;
        }
        if (int rc = start_exchange(s); rc != PT_AGAIN) H->finalize(s->r, rc);
        return;
    }
    pt_str name = H->upstream_name(uc);
    s->peer.assign(name.data, name.len);
    attach(s);
}

void on_direct_connected(evutil_socket_t fd, short what, void *arg) {
    auto *s = static_cast<Stream *>(arg);
    event_free(s->connect_ev);
    s->connect_ev = nullptr;
    if (what & EV_TIMEOUT) {
        fail(s, 504, "upstream timed out (110: Connection timed out) while connecting to upstream", true);
        return;
    }
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    if (err) {
        char why[160];
        snprintf(why, sizeof why, "connect() failed (%d: %s) while connecting to upstream", err, strerror(err));
        fail(s, 502, why, true);
        return;
    }
    attach(s);
}

// An address that came out of variables and is not one of the configured
// upstreams: no pool, no balancing, as nginx's implicit upstream for it.
int connect_direct(Stream *s) {
    int fd = socket(s->direct_addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        log_error(s, (std::string("socket() failed: ") + strerror(errno)).c_str());
        return 502;
    }
    s->direct_fd = fd;
    if (connect(fd, reinterpret_cast<sockaddr *>(&s->direct_addr), s->direct_len) != 0 &&
        errno != EINPROGRESS) {
        int err = errno;
        char why[160];
        snprintf(why, sizeof why, "connect() failed (%d: %s) while connecting to upstream", err, strerror(err));
        log_error(s, why);
        return err == ETIMEDOUT ? 504 : 502;
    }
    // writable means connected (or failed: SO_ERROR says which), also for
    // a connect() that completed at once
    auto *base = static_cast<event_base *>(H->event_base(s->r));
    s->connect_ev = event_new(base, fd, EV_WRITE, on_direct_connected, s);
    timeval ct = ms_to_tv(s->conf->connect_timeout);
    if (!s->connect_ev || event_add(s->connect_ev, &ct) != 0) return 500;
    return PT_AGAIN;
}

// PT_AGAIN, or a status to end the request with (logged).
int start_exchange(Stream *s) {
    if (!s->upstream) return connect_direct(s);
    if (H->upstream_connect(s->r, s->upstream, s->conf->connect_timeout, on_connected, s) != PT_OK)
        return 502;
    return PT_AGAIN;
}

// "127.0.0.1:80", "[::1]:80", "unix:/path" into a socket address; false for
// anything else (a host name: nothing here resolves names at request time).
bool parse_address(std::string_view a, sockaddr_storage &ss, socklen_t &len) {
    ss = {};
    if (a.substr(0, 5) == "unix:") {
        auto *un = reinterpret_cast<sockaddr_un *>(&ss);
        std::string_view path = a.substr(5);
        if (path.empty() || path.size() >= sizeof un->sun_path) return false;
        un->sun_family = AF_UNIX;
        memcpy(un->sun_path, path.data(), path.size());
        len = socklen_t(offsetof(sockaddr_un, sun_path) + path.size() + 1);
        return true;
    }
    size_t colon = a.rfind(':');
    if (colon == std::string_view::npos) return false;
    std::string host(a.substr(0, colon));
    int port = atoi(std::string(a.substr(colon + 1)).c_str());
    if (port <= 0 || port > 65535) return false;
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
        auto *in6 = reinterpret_cast<sockaddr_in6 *>(&ss);
        if (inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(), &in6->sin6_addr) != 1) return false;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(uint16_t(port));
        len = sizeof *in6;
        return true;
    }
    auto *in4 = reinterpret_cast<sockaddr_in *>(&ss);
    if (inet_pton(AF_INET, host.c_str(), &in4->sin_addr) != 1) return false;
    in4->sin_family = AF_INET;
    in4->sin_port = htons(uint16_t(port));
    len = sizeof *in4;
    return true;
}

// proxy_pass with variables: evaluate, parse as a literal one would be, and
// find where to connect. 0 or a status (logged).
int resolve_dynamic(Stream *s) {
    pt_request *r = s->r;
    const ProxyConf *c = s->conf;
    pt_str v{};
    if (H->eval(r, c->pass_value, &v) != PT_OK) return 500;
    std::string url = (c->ssl ? "https://" : "http://") + std::string(sv(v));
    if (const char *e = parse_pass(url, s->dynamic)) {
        H->log(PT_LOG_ERR, r, "%s: \"%s\"", e + (*e == '!'), url.c_str());
        return 500;
    }
    s->peer = s->dynamic.upstream;
    for (int i = 0; c->main && i < c->main->nknown; i++)
        if (sv(c->main->known[i].name) == s->dynamic.upstream) {
            s->upstream = c->main->known[i].upstream;
            return 0;
        }
    if (parse_address(s->dynamic.upstream, s->direct_addr, s->direct_len)) return 0;
    // nginx would resolve the name with `resolver`; there is none here
    std::string why = "no resolver defined to resolve " + s->dynamic.host;
    log_error(s, why.c_str());
    return 502;
}

// What $proxy_host / $proxy_port read when proxy_pass has variables: copies
// in the request's memory, since variables may be read (access log) after
// the exchange's state is gone.
struct DynamicVars {
    pt_str proxy_host, proxy_port;
};

pt_str palloc_copy(pt_request *r, const std::string &s) {
    char *p = static_cast<char *>(H->palloc(r, s.size() + 1));
    memcpy(p, s.data(), s.size());
    return {p, s.size()};
}

// The memory of ended streams, reused: a Stream is a few KiB (its header
// array), past malloc's per-thread cache, so a new/delete per request would
// go through malloc's slower bins. Bounded; objects are built fresh in it.
struct SpareStreams {
    std::vector<void *> memory;
    ~SpareStreams() {
        for (void *p : memory) ::operator delete(p);
    }
};
std::vector<void *> &spare_streams() {
    thread_local SpareStreams spare;
    return spare.memory;
}

Stream *stream_new() {
    auto &spare = spare_streams();
    if (spare.empty()) return new Stream;
    void *p = spare.back();
    spare.pop_back();
    return new (p) Stream;
}

void stream_delete(Stream *s) {
    s->~Stream();
    auto &spare = spare_streams();
    if (spare.size() < 64) spare.push_back(s);
    else ::operator delete(s);
}

void cleanup(void *arg) {
    auto *s = static_cast<Stream *>(arg);
    // the request ended or the client went away: a connection still held is
    // mid-exchange and cannot be reused
    shutdown_backend(s, false, false);
    stream_delete(s);
}
} // namespace

bool dynamic_proxy_var(pt_request *r, bool port, pt_str *out) {
    auto *d = static_cast<DynamicVars *>(H->get_ctx(r, g_module));
    if (!d) return false;
    *out = port ? d->proxy_port : d->proxy_host;
    return true;
}

int handler(pt_request *r, void *loc_conf) {
    auto *c = static_cast<const ProxyConf *>(loc_conf);
    if (!c || (!c->upstream && !c->pass_value)) return 500;
    auto *s = stream_new();
    s->r = r;
    s->conf = c;
    s->upstream = c->upstream;
    H->cleanup_add(r, cleanup, s);
    const PassTarget *dynamic = nullptr;
    if (c->pass_value) {
        if (int rc = resolve_dynamic(s)) return rc;
        dynamic = &s->dynamic;
        auto *d = static_cast<DynamicVars *>(H->palloc(r, sizeof(DynamicVars)));
        d->proxy_host = palloc_copy(r, s->dynamic.proxy_host);
        d->proxy_port = palloc_copy(r, s->dynamic.proxy_port);
        H->set_ctx(r, g_module, d);
    }
    if (c->ssl) {
        // proxy_ssl_name, else the proxy_pass host (nginx: $proxy_host)
        pt_str name{};
        if (c->ssl_name && H->eval(r, c->ssl_name, &name) == PT_OK && name.len)
            s->tls_name = tls_name(sv(name));
        else
            s->tls_name = tls_name(dynamic ? std::string_view(s->dynamic.proxy_host) : sv(c->proxy_host));
    }
    if (int rc = build_request(r, c, dynamic, s->out)) return rc;
    s->sent_head_method = s->out.compare(0, 5, "HEAD ") == 0;
    return start_exchange(s);
}

} // namespace portico::proxy
