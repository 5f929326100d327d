// One request's exchange with an HTTP upstream: connect through the host's
// upstream layer, write the re-serialized request, read the response with
// the host's strict parser, stream the body to the client (the host frames
// it again), and return the connection to the pool only after a complete,
// well-framed exchange with nothing left over.
#include "proxy.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include <algorithm>
#include <cstring>
#include <string>

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

struct Stream {
    pt_request *r = nullptr;
    const ProxyConf *conf = nullptr;
    pt_upstream_conn *uc = nullptr;
    bufferevent *bev = nullptr;
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
    if (s->bev) {
        bufferevent_free(s->bev);
        s->bev = nullptr;
    }
    if (s->uc) {
        H->upstream_release(s->uc, keep, failed);
        s->uc = nullptr;
    }
}

void log_error(Stream *s, const char *reason) {
    pt_str up = s->uc ? H->upstream_name(s->uc) : PT_STR("-");
    pt_str req = H->req_field(s->r, PT_F_REQUEST_URI);
    pt_str method = H->req_field(s->r, PT_F_METHOD);
    pt_str host = H->req_field(s->r, PT_F_HOST);
    pt_str addr = H->req_field(s->r, PT_F_REMOTE_ADDR);
    H->log(PT_LOG_ERR, s->r, "%s, client: %.*s, request: \"%.*s %.*s\", upstream: \"http://%.*s\", host: \"%.*s\"",
           reason, int(addr.len), addr.data, int(method.len), method.data, int(req.len), req.data,
           int(up.len), up.data, int(host.len), host.data);
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
    size_t left_in = evbuffer_get_length(bufferevent_get_input(s->bev));
    size_t left_out = evbuffer_get_length(bufferevent_get_output(s->bev));
    bool keep = s->upstream_keep_alive && s->mode != BodyMode::Close && left_in == 0 && left_out == 0;
    if (left_in)
        log_error(s, "upstream sent more data than specified, the connection is discarded");
    pt_request *r = s->r;
    shutdown_backend(s, keep, false);
    H->finish(r);
}

void start_exchange(Stream *s);

// 101: the upstream accepted the client's Upgrade (nginx's WebSocket recipe
// forwards it with proxy_set_header Upgrade/Connection). Only a protocol the
// client asked for is accepted; then both connections become a tunnel.
bool switch_protocols(Stream *s, evbuffer *in, const pt_http_response &resp) {
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
    bufferevent_free(s->bev);
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

void on_read(bufferevent *bev, void *arg) {
    auto *s = static_cast<Stream *>(arg);
    evbuffer *in = bufferevent_get_input(bev);
    if (evbuffer_get_length(in) == 0) return;
    s->got_bytes = true;
    if (s->phase == Phase::Head && !on_head(s, in)) return;
    if (s->phase == Phase::Body) on_body(s, in);
}

void on_event(bufferevent *bev, short what, void *arg) {
    auto *s = static_cast<Stream *>(arg);
    if (what & BEV_EVENT_TIMEOUT) {
        if (what & BEV_EVENT_READING)
            fail(s, 504, s->phase == Phase::Head
                             ? "upstream timed out (110: Connection timed out) while reading response header from upstream"
                             : "upstream timed out (110: Connection timed out) while reading upstream",
                 true);
        else
            fail(s, 504, "upstream timed out (110: Connection timed out) while sending request to upstream", true);
        return;
    }
    // EOF or error: whatever arrived before it is handled first
    evbuffer *in = bufferevent_get_input(bev);
    if (evbuffer_get_length(in) > 0) {
        s->got_bytes = true;
        if (s->phase == Phase::Head && !on_head(s, in)) return;
        if (s->phase == Phase::Body && !on_body(s, in)) return;
    }
    if (s->phase == Phase::Body && s->mode == BodyMode::Close && (what & BEV_EVENT_EOF) &&
        !(what & BEV_EVENT_ERROR)) {
        complete(s);
        return;
    }
    if (s->phase == Phase::Head && !s->got_bytes && s->uc && H->upstream_reused(s->uc) &&
        s->retries < kMaxStaleRetries && idempotent(sv(H->req_field(s->r, PT_F_METHOD)))) {
        // a pooled connection the upstream had closed: the request never
        // reached it, so it is sent again on another connection
        s->retries++;
        shutdown_backend(s, false, false);
        start_exchange(s);
        return;
    }
    if (s->phase == Phase::Head)
        fail(s, 502, (what & BEV_EVENT_ERROR)
                         ? "upstream reset the connection while reading response header from upstream"
                         : "upstream prematurely closed connection while reading response header from upstream",
             true);
    else
        fail(s, 502, "upstream prematurely closed connection while reading upstream", true);
}

void on_connected(void *data, pt_upstream_conn *uc, int status) {
    auto *s = static_cast<Stream *>(data);
    if (status) {
        H->finalize(s->r, status);
        return;
    }
    s->uc = uc;
    s->phase = Phase::Head;
    s->got_bytes = false;
    s->informational = 0;
    const ProxyConf *c = s->conf;
    auto *base = static_cast<event_base *>(H->event_base(s->r));
    s->bev = bufferevent_socket_new(base, H->upstream_fd(uc), 0);
    bufferevent_setcb(s->bev, on_read, nullptr, on_event, s);
    evbuffer_add_reference(bufferevent_get_output(s->bev), s->out.data(), s->out.size(), nullptr,
                           nullptr);
    timeval rt{time_t(c->read_timeout / 1000), suseconds_t((c->read_timeout % 1000) * 1000)};
    timeval wt{time_t(c->send_timeout / 1000), suseconds_t((c->send_timeout % 1000) * 1000)};
    bufferevent_set_timeouts(s->bev, &rt, &wt);
    // full duplex: an early answer (413, 401) is read while the body still goes out
    bufferevent_enable(s->bev, EV_READ | EV_WRITE);
}

void start_exchange(Stream *s) {
    if (H->upstream_connect(s->r, s->conf->upstream, s->conf->connect_timeout, on_connected, s) !=
        PT_OK)
        H->finalize(s->r, 502);
}

void cleanup(void *arg) {
    auto *s = static_cast<Stream *>(arg);
    // the request ended or the client went away: a connection still held is
    // mid-exchange and cannot be reused
    shutdown_backend(s, false, false);
    delete s;
}
} // namespace

int handler(pt_request *r, void *loc_conf) {
    auto *c = static_cast<const ProxyConf *>(loc_conf);
    if (!c || !c->upstream) return 500;
    auto *s = new Stream;
    s->r = r;
    s->conf = c;
    H->cleanup_add(r, cleanup, s);
    if (int rc = build_request(r, c, s->out)) return rc;
    s->sent_head_method = s->out.compare(0, 5, "HEAD ") == 0;
    start_exchange(s);
    return PT_AGAIN;
}

} // namespace portico::proxy
