// A client connection: reads request heads and bodies, hands complete
// requests to the phases, and decides keep-alive, pipelining and closing.
// Refused input is never read further: after an error response the read
// side only drains (lingering close) until the peer goes away.
#include "base/clock.h"
#include "event/tls.h"
#include "http/request.h"
#include "http/realip.h"
#include "http/server_lookup.h"
#include "http/uri.h"
#include "log/error_log.h"
#include "process/listen_sockets.h"
#include "process/worker.h"

#include <arpa/inet.h>
#include <cerrno>
#include <charconv>
#include <event2/bufferevent_ssl.h>
#include <openssl/ssl.h>
#include <cstring>
#include <netinet/tcp.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

pt_request::~pt_request() {
    for (auto &[fn, data] : cleanups) fn(data);
    if (body) evbuffer_free(body);
}

void pt_request::recycle() {
    // the same order as the destructor: cleanups first, they may look at the rest
    for (auto &[fn, data] : cleanups) fn(data);
    cleanups.clear();
    if (body) evbuffer_free(body);
    body = nullptr;
    c = nullptr;
    cycle = nullptr;
    srv = nullptr;
    loc = nullptr;
    head_buf.clear();
    {
        auto headers = std::move(head.headers);
        headers.clear();
        head = {};
        head.headers = std::move(headers);
    }
    uri.clear();
    args.clear();
    host.clear();
    filename.clear();
    document_root.clear();
    exten.clear();
    capture_subject.clear();
    memset(ovector, 0, sizeof ovector);
    ncaptures = 0;
    status = error_status = 0;
    out_headers.clear();
    content_length = -1;
    header_sent = chunked_out = finished = false;
    keep_alive = true;
    internal = last_written = error_page = false;
    redirects = 0;
    body_sent = bytes_sent = 0;
    body_received = 0;
    chunked.reset();
    start_ms = 0;
    memset(request_id, 0, sizeof request_id);
    pending = false;
    ctx.clear();
    split_uri.clear();
    split = {};
    split_status = 0;
    filter_pos = 0;
    filters_wanted = false;
    user_vars.clear();
    rewrite_return = nullptr;
    rewrite_break = false;
    arena.release(); // back to arena_buf (LWG 3120)
}

namespace portico {

void SockAddr::set(const sockaddr *from) {
    *this = SockAddr();
    if (from->sa_family == AF_INET) in = *reinterpret_cast<const sockaddr_in *>(from);
    else if (from->sa_family == AF_INET6) in6 = *reinterpret_cast<const sockaddr_in6 *>(from);
    else sa.sa_family = from->sa_family;
}

SockAddr &SockAddr::operator=(const sockaddr_storage &ss) {
    set(reinterpret_cast<const sockaddr *>(&ss));
    return *this;
}

SockAddr::operator sockaddr_storage() const {
    sockaddr_storage ss{};
    if (sa.sa_family == AF_INET) memcpy(&ss, &in, sizeof in);
    else if (sa.sa_family == AF_INET6) memcpy(&ss, &in6, sizeof in6);
    else ss.ss_family = sa.sa_family;
    return ss;
}

// A plain connection's bufferevent with the connection using it: the output
// callback's argument, so the bufferevent can move between connections.
struct PlainBev {
    bufferevent *bev = nullptr;
    Connection *c = nullptr; // null while spare
    // between keep-alive requests, instead of the bufferevent's read: the
    // next request is read by on_idle_read with one recv (no FIONREAD). Here,
    // not in Connection: a parked connection holds no PlainBev.
    event *watch = nullptr;
    bool watching = false; // watch is added (kept here: event_pending costs a call)
};

namespace {

void on_read(bufferevent *, void *arg);
void on_write(bufferevent *, void *arg);
void on_event(bufferevent *, short what, void *arg);
void on_output_added(evbuffer *, const evbuffer_cb_info *info, void *arg);
void on_idle_read(evutil_socket_t, short what, void *arg);

// Per-worker spares (a worker is one process with one event base, never
// freed before exit). An idle connection gives its bufferevent and parser
// back; the next connection with bytes to read takes them, so neither is
// allocated per keep-alive request nor held per idle connection. Bounded so
// a burst does not pin memory; never destroyed, so LSan sees them reachable.
constexpr size_t kSpareMax = 16;
std::vector<PlainBev *> &spare_bevs() {
    static auto *v = new std::vector<PlainBev *>;
    return *v;
}
std::vector<http::RequestParser *> &spare_parsers() {
    static auto *v = new std::vector<http::RequestParser *>;
    return *v;
}
std::vector<Request *> &spare_requests() {
    static auto *v = new std::vector<Request *>;
    return *v;
}
// The last Host bytes seen, normalized, and the server they selected: a
// keep-alive client repeats its Host, and clients of one site share it.
struct HostCache {
    ListenGroup *group = nullptr;
    std::string raw, norm;
    ServerConf *srv = nullptr;
};
HostCache &host_cache() {
    static HostCache h;
    return h;
}

// A connection idle this long parks (gives its bufferevent and parser back).
// Not at once: a busy keep-alive client's next request comes within this,
// and parking and waking cost more than the keep-alive timer they replace.
constexpr int64_t kParkDelayMs = 20;

timeval ms_tv(int64_t ms) { return {time_t(ms / 1000), suseconds_t((ms % 1000) * 1000)}; }

http::Limits limits_of(const ServerConf *s) {
    http::Limits l;
    l.max_request_line = size_t(*s->large_client_header_buffers_size);
    l.max_header_line = size_t(*s->large_client_header_buffers_size);
    l.max_head = size_t(*s->large_client_header_buffers_size * *s->large_client_header_buffers_num);
    l.underscores_in_headers = *s->underscores_in_headers;
    l.ignore_invalid_headers = *s->ignore_invalid_headers;
    return l;
}

void take_parser(Connection *c) {
    auto &pool = spare_parsers();
    http::Limits l = limits_of(c->group->default_server);
    if (pool.empty()) {
        c->parser = std::make_unique<http::RequestParser>(l);
        return;
    }
    c->parser.reset(pool.back());
    pool.pop_back();
    c->parser->set_limits(l);
}

void release_parser(Connection *c) {
    if (!c->parser) return;
    auto &pool = spare_parsers();
    if (pool.size() >= kSpareMax) return c->parser.reset();
    c->parser->reset();
    pool.push_back(c->parser.release());
}

// Binds a plain bufferevent (a spare one if any) to the connection's socket,
// reading enabled. The connection owns the descriptor: bufferevents are
// reused, so none closes it on free.
void take_plain_bev(Connection *c) {
    auto &pool = spare_bevs();
    PlainBev *pb;
    if (!pool.empty()) {
        pb = pool.back();
        pool.pop_back();
        bufferevent_setfd(pb->bev, c->fd);
    } else {
        pb = new PlainBev{bufferevent_socket_new(c->worker->base, c->fd, 0), nullptr,
                          event_new(c->worker->base, -1, 0, on_idle_read, nullptr)};
        evbuffer_add_cb(bufferevent_get_output(pb->bev), on_output_added, pb);
    }
    event_assign(pb->watch, c->worker->base, c->fd, EV_READ | EV_PERSIST, on_idle_read, c);
    pb->watching = false;
    pb->c = c;
    c->plain = pb;
    c->bev = pb->bev;
    bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
    bufferevent_enable(c->bev, EV_READ);
}

void free_plain_bev(PlainBev *pb) {
    event_free(pb->watch);
    evbuffer_remove_cb(bufferevent_get_output(pb->bev), on_output_added, pb);
    bufferevent_free(pb->bev);
    delete pb;
}

void addr_to_text(const sockaddr *sa, std::string &out, int &port) {
    char buf[INET6_ADDRSTRLEN] = {};
    port = 0;
    if (sa->sa_family == AF_INET) {
        // glibc's inet_ntop formats IPv4 through sprintf (~1.7k instructions,
        // twice per connection: a sixth of a close-per-request request)
        auto *in = reinterpret_cast<const sockaddr_in *>(sa);
        const auto *b = reinterpret_cast<const unsigned char *>(&in->sin_addr);
        char *p = buf;
        for (int i = 0; i < 4; ++i) {
            if (i) *p++ = '.';
            p = std::to_chars(p, buf + sizeof buf, unsigned(b[i])).ptr;
        }
        out.assign(buf, size_t(p - buf));
        port = ntohs(in->sin_port);
        return;
    } else if (sa->sa_family == AF_INET6) {
        auto *in6 = reinterpret_cast<const sockaddr_in6 *>(sa);
        inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof buf);
        port = ntohs(in6->sin6_port);
    } else {
        out = "unix:";
        return;
    }
    out = buf;
}

int64_t mono_ms() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return int64_t(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

// The header timer is handed to libevent only when it must fire earlier
// than it is set to: a keep-alive request disarms it when its head arrives
// and re-arms it when its response is done, and doing both in libevent cost
// an event_del and an event_add (~350 instructions) per request. Disarming
// only clears header_timer_armed; a timer that fires before the deadline it
// now serves sets itself again for the rest, so every timeout still fires
// at its exact deadline, never earlier.
void arm_timer(Connection *c, int64_t ms, bool park = false) {
    int64_t due = mono_ms() + ms;
    c->timer_deadline = due;
    c->header_timer_armed = true;
    c->park_pending = park;
    if (c->timer_set_for != 0 && c->timer_set_for <= due) return;
    timeval tv = ms_tv(ms);
    evtimer_add(c->header_timer, &tv);
    c->timer_set_for = due;
}

void disarm_timer(Connection *c) { c->header_timer_armed = false; }

void park(Connection *c);

void on_header_timeout(evutil_socket_t, short, void *arg) {
    auto *c = static_cast<Connection *>(arg);
    c->timer_set_for = 0;
    if (!c->header_timer_armed) return; // disarmed since it was set
    if (int64_t left = c->timer_deadline - mono_ms(); left > 0) {
        timeval tv = ms_tv(left);
        evtimer_add(c->header_timer, &tv);
        c->timer_set_for = c->timer_deadline;
        return;
    }
    clock::update();
    if (c->park_pending) {
        // idle for kParkDelayMs: park, unless output is still draining
        c->header_timer_armed = c->park_pending = false;
        if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0 && !c->waiting_drain &&
            evbuffer_get_length(bufferevent_get_input(c->bev)) == 0)
            return park(c);
        return arm_timer(c, c->keepalive_ms);
    }
    if (c->state == ConnState::ReadingHead &&
        evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
        PT_LOG(log::Info, c->id, "client timed out (110: Connection timed out) while reading client "
                                 "request headers, client: %s", c->peer_addr.c_str());
    connection_close(c);
}

// Seeded per process on first use (workers fork before any request, so the
// master's never-used state is not shared): a fixed seed gave every worker
// and every start the same ids. The kernel's randomness, else time and pid.
uint64_t rng_state = 0;
uint64_t next_random() {
    // xorshift64*: request ids need to be unique, not secret
    while (rng_state == 0) {
        if (getrandom(&rng_state, sizeof rng_state, GRND_NONBLOCK) != ssize_t(sizeof rng_state)) {
            timespec ts{};
            clock_gettime(CLOCK_REALTIME, &ts);
            rng_state = (uint64_t(ts.tv_sec) << 32) ^ uint64_t(ts.tv_nsec) ^ (uint64_t(getpid()) << 16);
        }
    }
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ull;
}

void rebase(std::string_view &v, const char *from, const char *to, size_t len) {
    if (v.data() >= from && v.data() < from + len) v = {to + (v.data() - from), v.size()};
}

// Answers a refused request and closes: nothing after it is read as a request.
void refuse(Connection *c, int status, const char *reason, Request *r) {
    // Not rate-limited: each refusal is logged once with its reason (as nginx
    // does, at info), and the access log gets a line for it anyway.
    PT_LOG(log::Info, c->id, "client sent invalid request (%s), client: %s, status: %d",
           reason ? reason : "?", c->peer_addr.c_str(), status);
    RequestPtr owned;
    if (!r) {
        owned = new_request();
        r = owned.get();
        r->c = c;
        r->cycle = c->worker->cycle;
        r->srv = c->group->default_server;
        r->loc = r->srv->loc.get();
        r->start_ms = clock::now_ms();
        // response filters (gzip, ...) keep per-request state in these slots
        r->ctx.assign(r->cycle->modules.size(), nullptr);
        r->head.method = "-";
        c->req = std::move(owned);
    }
    r->keep_alive = false;
    c->close_after_write = true;
    c->linger = true; // the refused request's body may still be on its way
    bufferevent_disable(c->bev, EV_READ);
    send_special(r, status);
}

void start_request(Connection *c) {
    Request *r = c->req.get();
    Worker *w = c->worker;
    r->c = c;
    r->cycle = w->cycle;
    r->start_ms = clock::now_ms();
    r->ctx.assign(w->cycle->modules.size(), nullptr);
    r->request_id[0] = 0; // $request_id is made when first asked for
    c->requests++;

    ServerConf *srv = c->group->default_server;
    if (!r->head.host.empty()) {
        // the virtual server found for the same Host bytes last time is still
        // the answer (the config is fixed for the worker's life)
        HostCache &hc = host_cache();
        if (hc.srv && hc.group == c->group && r->head.host == hc.raw) {
            r->host = hc.norm;
            srv = hc.srv;
        } else {
            if (!http::normalize_host(r->head.host, r->host)) {
                r->srv = srv;
                r->loc = srv->loc.get();
                return refuse(c, 400, "invalid host", r);
            }
            int ov[20];
            int n = 0;
            const Regex *which = nullptr;
            if (void *s = c->group->names.find(r->host, ov, &n, &which))
                srv = static_cast<ServerConf *>(s);
            if (which && n > 0) {
                // a regex server_name: its captures are $1..$9 and its named
                // groups variables, as in nginx (not cached: they are per host)
                r->capture_subject = r->host;
                memcpy(r->ovector, ov, sizeof ov);
                r->ncaptures = n;
                for (const auto &[name, idx] : which->names())
                    if (idx < n && ov[2 * idx] >= 0)
                        r->user_vars.emplace_back(
                            name, r->host.substr(size_t(ov[2 * idx]), size_t(ov[2 * idx + 1] - ov[2 * idx])));
            } else {
                hc.group = c->group;
                hc.raw.assign(r->head.host);
                hc.norm = r->host;
                hc.srv = srv;
            }
        }
    } else if (void *s = c->group->names.find("")) {
        srv = static_cast<ServerConf *>(s);
    }
    r->srv = srv;
    r->loc = srv->loc.get();
    realip_apply(r);
    r->keep_alive = r->head.keep_alive;
    if (c->plain_on_tls) return refuse(c, 497, "plain HTTP request sent to HTTPS port", r);

    std::string_view path = r->head.path;
    if (path.empty() || path[0] != '/') {
        if (r->head.target == "*" && r->head.method == "OPTIONS") path = "*";
        else return refuse(c, 400, "invalid request target", r);
    }
    if (path != "*") {
        http::UriError e = http::normalize_path(path, *srv->merge_slashes, r->uri);
        if (e != http::UriError::None) return refuse(c, 400, http::to_string(e), r);
    } else {
        r->uri = "*";
    }
    r->args.assign(r->head.query);
    c->state = ConnState::Processing;
    run_request(r);
}

void process_input(Connection *c, std::string_view fresh = {});

} // namespace

void make_request_id(Request *r) {
    static const char hex[] = "0123456789abcdef";
    uint64_t v[2] = {next_random(), next_random()};
    for (int i = 0; i < 32; i++) r->request_id[i] = hex[(v[i / 16] >> (60 - 4 * (i % 16))) & 15];
    r->request_id[32] = 0;
}

// The parser writes into this per-connection scratch head, then the request
// takes a copy whose views are rebased into its own buffer.
static thread_local http::RequestHead t_head;

RequestPtr new_request() {
    static uint64_t serial = 0;
    auto &pool = spare_requests();
    Request *r;
    if (pool.empty()) {
        r = new Request;
    } else {
        r = pool.back();
        pool.pop_back();
    }
    r->serial = ++serial;
    return RequestPtr(r);
}

void RequestRelease::operator()(Request *r) const {
    auto &pool = spare_requests();
    if (pool.size() >= kSpareMax) {
        delete r;
        return;
    }
    r->recycle();
    pool.push_back(r);
}

static void take_head(Connection *c, std::string_view buffered) {
    RequestPtr r = new_request();
    size_t len = t_head.head_len;
    r->head_buf.assign(buffered.data(), len);
    const char *from = buffered.data(), *to = r->head_buf.data();
    http::RequestHead &h = r->head;
    h = t_head;
    for (std::string_view *v : {&h.method, &h.target, &h.path, &h.query, &h.scheme, &h.authority,
                                &h.host})
        rebase(*v, from, to, len);
    for (auto &hd : h.headers) {
        rebase(hd.name, from, to, len);
        rebase(hd.value, from, to, len);
    }
    c->req = std::move(r);
}

namespace {

void begin_body(Connection *c) {
    Request *r = c->req.get();
    r->body = evbuffer_new();
    if (r->head.chunked) r->chunked = std::make_unique<http::ChunkedDecoder>(
            *r->loc->client_max_body_size ? *r->loc->client_max_body_size : -1);
    c->state = ConnState::ReadingBody;
    int64_t ms = *r->loc->client_body_timeout;
    timeval rt{time_t(ms / 1000), suseconds_t((ms % 1000) * 1000)};
    int64_t sms = *r->loc->send_timeout;
    timeval wt{time_t(sms / 1000), suseconds_t((sms % 1000) * 1000)};
    bufferevent_set_timeouts(c->bev, &rt, &wt);
    bufferevent_enable(c->bev, EV_READ);
    if (r->head.expect_continue && r->head.version == 11 &&
        evbuffer_get_length(bufferevent_get_input(c->bev)) == 0) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        out_spill(c);
        bufferevent_write(c->bev, cont, sizeof cont - 1);
    }
}

// Moves body bytes from the connection into the request; true when complete.
bool read_body(Connection *c) {
    Request *r = c->req.get();
    evbuffer *in = bufferevent_get_input(c->bev);
    if (!r->chunked) {
        int64_t want = r->head.content_length - r->body_received;
        if (want > 0) {
            int moved = evbuffer_remove_buffer(in, r->body, size_t(want));
            if (moved > 0) r->body_received += moved;
        }
        return r->body_received >= r->head.content_length;
    }
    while (evbuffer_get_length(in) > 0) {
        evbuffer_iovec vec;
        if (evbuffer_peek(in, -1, nullptr, &vec, 1) < 1) break;
        std::string_view chunk(static_cast<const char *>(vec.iov_base), vec.iov_len);
        std::string_view data;
        auto step = r->chunked->feed(chunk, &data);
        if (!data.empty()) {
            evbuffer_add(r->body, data.data(), data.size());
            r->body_received += data.size();
        }
        evbuffer_drain(in, step.consumed);
        if (step.state == http::ParseState::Error) {
            refuse(c, step.status ? step.status : 400, step.reason, r);
            return false;
        }
        if (step.state == http::ParseState::Done) {
            r->chunked.reset();
            return true;
        }
        if (step.consumed == 0) break;
    }
    return false;
}

void body_complete(Connection *c) {
    Request *r = c->req.get();
    c->state = ConnState::Processing;
    bufferevent_set_timeouts(c->bev, nullptr, nullptr);
    continue_request_after_body(r);
}

size_t max_head_of(const Connection *c) {
    return size_t(*c->group->default_server->large_client_header_buffers_size *
                  *c->group->default_server->large_client_header_buffers_num);
}

// Bytes read_woken just read, parsed where they lie when they start a
// request head (the usual keep-alive case): a whole head never goes through
// the input evbuffer (a chain allocation, pullup and drain per request).
// Anything else (a partial head, a refusal, the bytes after the head) goes
// to the evbuffer and the loop as usual; the parser then sees the same bytes
// again, as its contract allows.
void head_from_fresh(Connection *c, std::string_view fresh) {
    evbuffer *in = bufferevent_get_input(c->bev);
    bool whole = false;
    std::string_view rest = fresh;
    if (c->state == ConnState::ReadingHead && !c->waiting_drain && !c->close_after_write &&
        !c->req && evbuffer_get_length(in) == 0) {
        if (!c->parser) take_parser(c);
        std::string_view buffered = fresh.substr(0, std::min(fresh.size(), max_head_of(c) + 1));
        if (c->parser->feed(buffered, t_head).state == http::ParseState::Done) {
            whole = true;
            disarm_timer(c);
            c->idle = false;
            take_head(c, buffered);
            rest.remove_prefix(c->req->head.head_len);
            c->parser->reset();
        }
    }
    if (!rest.empty()) {
        // the input's end is frozen against other writers (see read_woken)
        evbuffer_unfreeze(in, 0);
        evbuffer_add(in, rest.data(), rest.size());
        evbuffer_freeze(in, 0);
    }
    if (whole) start_request(c);
}

void process_input_loop(Connection *c, std::string_view fresh = {}) {
    if (!fresh.empty()) head_from_fresh(c, fresh);
    while (c->bev) {
        // A refused or last request ends the input: bytes behind it are never
        // read as another request (a refusal after the head was accepted,
        // e.g. a bad URI, leaves the state at ReadingHead).
        if (c->close_after_write) return;
        if (c->state == ConnState::ReadingBody) {
            if (read_body(c)) body_complete(c);
            if (c->state == ConnState::ReadingBody || !c->bev) return;
            continue;
        }
        if (c->state != ConnState::ReadingHead || c->waiting_drain) return;
        evbuffer *in = bufferevent_get_input(c->bev);
        size_t n = evbuffer_get_length(in);
        if (n == 0) return;
        if (!c->parser) take_parser(c);
        // the header timer runs from the first byte, but a head that came
        // whole (the usual case) never needs it armed
        size_t take = std::min(n, max_head_of(c) + 1);
        const char *data = reinterpret_cast<const char *>(evbuffer_pullup(in, ssize_t(take)));
        std::string_view buffered(data, take);
        http::ParseResult pr = c->parser->feed(buffered, t_head);
        if (pr.state != http::ParseState::Done) {
            // also bounds how long a refused client may take to read its answer
            if (!c->header_timer_armed || c->idle) {
                c->idle = false;
                arm_timer(c, *c->group->default_server->client_header_timeout);
            }
            if (pr.state == http::ParseState::Again) return;
            return refuse(c, pr.status, pr.reason, nullptr);
        }
        disarm_timer(c);
        c->idle = false;
        take_head(c, buffered);
        evbuffer_drain(in, c->req->head.head_len);
        c->parser->reset();
        start_request(c);
        // the request may have finished synchronously and left the next
        // pipelined one in the buffer, or wants its body: loop
    }
}

struct OutStash {
    Connection *owner = nullptr; // the connection whose bytes buf holds
    std::string buf;
};
OutStash &out_stash_state() {
    static auto *s = new OutStash; // never freed: LSan sees it reachable
    return *s;
}
// pipelined responses gather up to this much before the bufferevent takes over
constexpr size_t kStashMax = 64 * 1024;

// Plain connections write what the requests just answered at once, as nginx
// does, instead of arming the write event and writing on the next loop turn:
// that costs two epoll_ctl and one epoll_wait per keep-alive request. The
// write event is only armed for what the socket did not take (and by
// on_output_added for output added outside process_input, e.g. upstreams).
void flush_output(Connection *c) {
    evbuffer *out = bufferevent_get_output(c->bev);
    int fd = bufferevent_getfd(c->bev);
    OutStash &st = out_stash_state();
    if (st.owner == c) {
        st.owner = nullptr;
        std::string_view left = st.buf;
        // the stash was started on an empty output and nothing joined it since
        if (evbuffer_get_length(out) == 0) {
            ssize_t n = send(fd, left.data(), left.size(), MSG_NOSIGNAL);
            if (n > 0) left.remove_prefix(size_t(n));
            if (left.empty()) {
                // all out (the usual case): nothing for the bufferevent to do
                st.buf.clear();
                if (bufferevent_get_enabled(c->bev) & EV_WRITE) bufferevent_disable(c->bev, EV_WRITE);
                if (c->close_after_write || c->waiting_drain) on_write(c->bev, c);
                return;
            }
        }
        // the rest (a full socket, an error) takes the bufferevent's way,
        // which also reports the error; not seen by on_output_added
        if (!left.empty()) {
            bool was = c->in_process;
            c->in_process = true;
            evbuffer_add(out, left.data(), left.size());
            c->in_process = was;
        }
        st.buf.clear();
    }
    // the bufferevent keeps its output's start frozen against other drains;
    // its own write callback thaws it the same way around its write
    evbuffer_unfreeze(out, 1);
    while (evbuffer_get_length(out) > 0 && evbuffer_write(out, fd) > 0) {
    }
    evbuffer_freeze(out, 1);
    if (evbuffer_get_length(out) > 0) {
        bufferevent_enable(c->bev, EV_WRITE); // libevent finishes (or sees the error)
        return;
    }
    // cancels the write event the additions queued, if writing was enabled
    // (additions queue it only then; a disable costs an event_del)
    if (bufferevent_get_enabled(c->bev) & EV_WRITE) bufferevent_disable(c->bev, EV_WRITE);
    if (c->close_after_write || c->waiting_drain) on_write(c->bev, c);
}

// Output added outside process_input (an upstream's answer, a pumped body)
// is written at the end of this loop pass rather than after a writability
// wait: enabling EV_WRITE first cost two epoll_ctl and an epoll_wait per
// gateway response. Pieces added in one pass (head, body, end) still leave
// in one write; a full socket falls back to EV_WRITE in flush_output.
struct FlushQueue {
    event *ev = nullptr;
    bool armed = false;
    std::vector<Connection *> conns; // a closed connection's entry is nulled
};
FlushQueue &flush_queue() {
    static auto *q = new FlushQueue; // never freed: LSan sees it reachable
    return *q;
}

void on_flush(evutil_socket_t, short, void *) {
    auto &q = flush_queue();
    q.armed = false;
    clock::update();
    // by index: a flush may queue more (handled in this pass) or close others
    for (size_t i = 0; i < q.conns.size(); i++) {
        Connection *c = q.conns[i];
        if (!c) continue;
        c->flush_queued = false;
        q.conns[i] = nullptr;
        if (c->bev && c->state != ConnState::Closing) flush_output(c);
    }
    q.conns.clear();
}

void on_output_added(evbuffer *, const evbuffer_cb_info *info, void *arg) {
    Connection *c = static_cast<PlainBev *>(arg)->c;
    if (!c || info->n_added == 0 || c->in_process || !c->bev) return;
    if (c->direct_write && c->state != ConnState::Tunnel && c->state != ConnState::Closing) {
        if (c->flush_queued) return;
        auto &q = flush_queue();
        if (!q.ev) q.ev = event_new(c->worker->base, -1, 0, on_flush, nullptr);
        c->flush_queued = true;
        q.conns.push_back(c);
        if (!q.armed) {
            q.armed = true;
            event_active(q.ev, EV_TIMEOUT, 0);
        }
        return;
    }
    if (!(bufferevent_get_enabled(c->bev) & EV_WRITE)) bufferevent_enable(c->bev, EV_WRITE);
}

void on_parked(evutil_socket_t, short what, void *arg);

// An idle plain connection gives back everything a request needs and keeps
// only itself and one event: read-or-keepalive-timeout on its socket (as
// nginx frees its header buffer in ngx_http_set_keepalive). The event is
// added before the bufferevent lets go of the socket, so epoll sees no change.
void park(Connection *c) {
    release_parser(c);
    evtimer_del(c->header_timer);
    c->header_timer_armed = false;
    c->timer_set_for = 0;
    event_assign(c->header_timer, c->worker->base, c->fd, EV_READ | EV_PERSIST, on_parked, c);
    timeval tv = ms_tv(c->keepalive_ms);
    event_add(c->header_timer, &tv);
    PlainBev *pb = c->plain;
    event_del(pb->watch); // after ours is added: epoll sees no change
    pb->watching = false;
    bufferevent_setcb(pb->bev, nullptr, nullptr, nullptr, nullptr);
    bufferevent_setfd(pb->bev, -1);
    pb->c = nullptr;
    c->plain = nullptr;
    c->bev = nullptr;
    c->parked = true;
    auto &pool = spare_bevs();
    if (pool.size() < kSpareMax) pool.push_back(pb);
    else free_plain_bev(pb);
}

// Reads what woke an idle connection, then processes it: with one recv (the
// bufferevent's own read would first ask FIONREAD, one more syscall per
// keep-alive request), into a scratch buffer a whole head is parsed from
// (head_from_fresh). Never nested: only event callbacks call it.
void read_woken(Connection *c) {
    thread_local char buf[4096];
    ssize_t n = recv(c->fd, buf, sizeof buf, 0);
    if (n > 0) return process_input(c, std::string_view(buf, size_t(n)));
    // EAGAIN: the bufferevent's read event takes it from here
    if (n == 0 || (errno != EAGAIN && errno != EINTR)) connection_close(c);
}

// Bytes (or the end) arrived on a parked connection, or its keep-alive ran out.
void on_parked(evutil_socket_t, short what, void *arg) {
    auto *c = static_cast<Connection *>(arg);
    clock::update();
    if (what & EV_TIMEOUT) return connection_close(c);
    take_plain_bev(c); // its read event joins ours on the socket: no epoll change
    event_del(c->header_timer);
    event_assign(c->header_timer, c->worker->base, -1, 0, on_header_timeout, c);
    c->parked = false;
    read_woken(c);
}

// The socket of an idle, unparked connection became readable. The watch
// stays the reader while the connection keeps coming back to idle (a whole
// head answered at once, the usual keep-alive case): handing reading to the
// bufferevent and back cost two event_add and two event_del per request.
// Anything else (a partial head or pipelined bytes left in the input, a
// body, an asynchronous request) hands reading to the bufferevent, which
// joins the watch before the watch goes, so epoll sees no change.
Connection *t_woken = nullptr; // nulled by connection_close (not a field: idle bytes)
void on_idle_read(evutil_socket_t, short, void *arg) {
    auto *c = static_cast<Connection *>(arg);
    clock::update();
    t_woken = c;
    read_woken(c);
    if (!t_woken) return; // closed
    t_woken = nullptr;
    if (!c->plain || !c->plain->watching) return;
    // reading enabled by the request (a body, a tunnel), or disabled for good
    // (a refusal, a last response): the watch only goes
    if (!(bufferevent_get_enabled(c->bev) & EV_READ) && !c->close_after_write) {
        if (c->state == ConnState::ReadingHead && !c->req && !c->waiting_drain &&
            evbuffer_get_length(bufferevent_get_input(c->bev)) == 0)
            return;
        bufferevent_enable(c->bev, EV_READ);
    }
    event_del(c->plain->watch);
    c->plain->watching = false;
}

void process_input(Connection *c, std::string_view fresh) {
    if (!c->direct_write || c->in_process) {
        process_input_loop(c, fresh);
        // TLS answers go out in this loop turn too (last: it may close c)
        if (!c->direct_write && !c->plain && c->bev && c->state != ConnState::Closing)
            tls_flush(c->bev);
        return;
    }
    c->in_process = true;
    process_input_loop(c, fresh);
    c->in_process = false;
    if (!c->bev || c->state == ConnState::Closing) return;
    // A partial head (a slow client: one read per byte) wrote nothing and
    // has nothing to flush: skip the freeze/disable round of flush_output.
    if (out_pending(c) == 0 && !c->close_after_write &&
        !c->waiting_drain && !(bufferevent_get_enabled(c->bev) & EV_WRITE))
        return;
    flush_output(c);
}

void on_read(bufferevent *, void *arg) {
    clock::update();
    process_input(static_cast<Connection *>(arg));
}

void on_write(bufferevent *, void *arg) {
    auto *c = static_cast<Connection *>(arg);
    clock::update();
    if (c->close_after_write) {
        // A TLS bufferevent runs this callback deferred (BEV_OPT_DEFER_CALLBACKS):
        // it can arrive after more output was queued (a body pumped from the
        // event loop, a response behind a drained one); shutting down then
        // would cut that output.
        if (out_pending(c) > 0) return;
        int fd = bufferevent_getfd(c->bev);
        // Nothing unread and none expected (no refused or unread body): close
        // now, as nginx does without r->lingering_close. Lingering here cost
        // five syscalls and a loop turn per "Connection: close" request.
        char b;
        ssize_t unread = c->linger || evbuffer_get_length(bufferevent_get_input(c->bev)) > 0
                             ? 1 : recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
        if (unread == 0 || (unread < 0 && errno == EAGAIN)) {
            // close_notify (RFC 8446 §6.1): without it OpenSSL also drops the
            // session from the server cache, and session-ID resumption with it
            if (!c->plain) {
                if (SSL *ssl = bufferevent_openssl_get_ssl(c->bev)) SSL_shutdown(ssl);
            }
            return connection_close(c);
        }
        // Lingering close: stop sending, keep reading (and discarding) for a
        // moment so unread client bytes do not turn our last response into a
        // reset at the client.
        shutdown(fd, SHUT_WR);
        c->state = ConnState::Closing;
        bufferevent_setcb(c->bev,
                          [](bufferevent *bev, void *) {
                              evbuffer_drain(bufferevent_get_input(bev),
                                             evbuffer_get_length(bufferevent_get_input(bev)));
                          },
                          nullptr, on_event, c);
        timeval tv{2, 0};
        bufferevent_set_timeouts(c->bev, &tv, nullptr);
        bufferevent_enable(c->bev, EV_READ);
        return;
    }
    if (c->waiting_drain) {
        c->waiting_drain = false;
        process_input(c);
    }
}

void on_event(bufferevent *, short what, void *arg) {
    auto *c = static_cast<Connection *>(arg);
    clock::update();
    if (what & BEV_EVENT_CONNECTED) return; // the TLS handshake finished
    if ((what & BEV_EVENT_TIMEOUT) && c->state != ConnState::Closing)
        PT_LOG(log::Info, c->id, "client timed out while %s, client: %s",
               c->state == ConnState::ReadingBody ? "reading client request body"
                                                  : "sending to client",
               c->peer_addr.c_str());
    connection_close(c);
}
} // namespace

void connection_accept(Worker *w, ListenGroup *g, int fd, sockaddr *sa, int) {
    if (int(w->conns.size()) >= w->cycle->worker_connections) {
        if (log::rate_ok(3, 1))
            PT_LOG(log::Alert, 0, "%d worker_connections are not enough",
                   w->cycle->worker_connections);
        close(fd);
        return;
    }
    auto *c = new Connection;
    c->fd = fd;
    c->id = w->next_conn_id++;
    c->worker = w;
    c->group = g;
    addr_to_text(sa, c->peer_addr, c->peer_port);
    // the binary address, for allow/deny and ip_hash
    c->peer.set(sa);
    // The local address is the listener's unless it is a wildcard one, which
    // only getsockname() can resolve (nginx asks likewise, though lazily).
    // TCP_NODELAY comes from the listening socket (Linux copies it to the
    // accepted one) and O_NONBLOCK from accept4(): no syscall for them here.
    if (listen_is_wildcard(g->listen)) {
        sockaddr_storage local{};
        socklen_t llen = sizeof local;
        if (getsockname(fd, reinterpret_cast<sockaddr *>(&local), &llen) == 0)
            addr_to_text(reinterpret_cast<sockaddr *>(&local), c->local_addr, c->local_port);
    } else {
        addr_to_text(reinterpret_cast<const sockaddr *>(&g->listen.addr), c->local_addr, c->local_port);
    }
    if (sa->sa_family == AF_UNIX) c->peer_addr = "unix:";
    if (g->listen.ssl) {
        // A TLS record starts with 0x16 (handshake); anything else is plain
        // HTTP sent to the TLS port, answered with nginx's 400 page. The
        // first byte is normally here already (TCP_DEFER_ACCEPT).
        unsigned char first = 0x16;
        if (recv(fd, &first, 1, MSG_PEEK | MSG_DONTWAIT) == 1 && first != 0x16)
            c->plain_on_tls = true;
        else
            c->bev = tls_accept(w->base, fd, g);
    }
    if (!c->bev) {
        take_plain_bev(c);
        c->direct_write = !g->listen.ssl; // see flush_output
    } else {
        bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
        bufferevent_enable(c->bev, EV_READ);
    }
    c->header_timer = evtimer_new(w->base, on_header_timeout, c);
    w->conns.insert(c);
    arm_timer(c, *g->default_server->client_header_timeout);
}

void connection_close(Connection *c) {
    if (!c->bev && !c->parked) return;
    if (c == t_woken) t_woken = nullptr;
    if (OutStash &st = out_stash_state(); st.owner == c) {
        st.owner = nullptr;
        st.buf.clear();
    }
    Worker *w = c->worker;
    if (c->req && c->req->pending) abort_request(c->req.get());
    c->req.reset();
    if (c->flush_queued) {
        for (Connection *&q : flush_queue().conns)
            if (q == c) q = nullptr;
        c->flush_queued = false;
    }
    tunnel_free(c);
    event_free(c->header_timer); // deletes it first (parked: it watches the socket)
    bool own_fd = c->plain || c->parked; // a TLS bufferevent closes its socket
    if (c->plain) free_plain_bev(c->plain);
    else if (c->bev) {
        tls_release(c->bev);
        bufferevent_free(c->bev);
    }
    if (own_fd) close(c->fd);
    c->bev = nullptr;
    c->parked = false;
    c->parser.reset();
    w->conns.erase(c);
    delete c;
}

void connection_drain(Connection *c) {
    // An idle keep-alive connection gets a short grace period instead of an
    // immediate close: a request already on the wire is still answered (with
    // "Connection: close"), so a reload fails no request.
    if (c->parked) {
        timeval tv{1, 0};
        event_add(c->header_timer, &tv); // reschedules its timeout
        return;
    }
    if (c->state == ConnState::ReadingHead && !c->req &&
        evbuffer_get_length(bufferevent_get_input(c->bev)) == 0)
        arm_timer(c, 1000);
}

void request_done(Request *r) {
    Connection *c = r->c;
    log_request(r);
    // Once the head is out, its "Connection:" line is a promise (send_header
    // decides it from r->keep_alive): closing after "keep-alive" makes the
    // client's next request, possibly already on the wire, fail (wrk counts
    // a read error per such close). So a sent head decides; limits it did not
    // account for (keepalive_requests reached, a drain that began while the
    // response was in flight) wait for the next request's head.
    bool within_limits = !c->worker->draining &&
                         int64_t(c->requests) < *r->loc->keepalive_requests;
    bool keep = r->keep_alive && *r->loc->keepalive_timeout > 0 &&
                (r->header_sent || within_limits);
    // a draining worker keeps the connection only for the grace period
    // connection_drain gives idle ones
    int64_t keepalive_ms = c->worker->draining ? 1000 : *r->loc->keepalive_timeout;
    bool was_async = r->pending;
    bool had_body = r->head.content_length > 0 || r->head.chunked;
    c->req.reset(); // r is gone from here on
    if (!keep) {
        // a body the request did not read may still be arriving: linger
        if (had_body) c->linger = true;
        c->close_after_write = true;
        bufferevent_disable(c->bev, EV_READ);
        if (out_pending(c) == 0) on_write(c->bev, c);
        return;
    }
    c->state = ConnState::ReadingHead;
    evbuffer *in = bufferevent_get_input(c->bev);
    c->idle = true; // the next request's header timer starts with its first byte
    if (evbuffer_get_length(in) == 0) {
        if (c->direct_write && keepalive_ms > kParkDelayMs) {
            c->keepalive_ms = uint32_t(std::min<int64_t>(keepalive_ms - kParkDelayMs, UINT32_MAX));
            arm_timer(c, kParkDelayMs, true);
            if (!c->plain->watching) {
                // the watch reads the next request instead of the bufferevent
                // (added first: epoll sees no change; the bufferevent kept
                // reading during an asynchronous request too)
                event_add(c->plain->watch, nullptr);
                c->plain->watching = true;
                bufferevent_disable(c->bev, EV_READ);
            }
        } else {
            arm_timer(c, keepalive_ms);
        }
    }
    // Pipelined requests wait while much output is pending, so a client
    // that does not read cannot make us buffer without bound.
    if (out_pending(c) > 256 * 1024) {
        c->waiting_drain = true;
        return;
    }
    // a synchronous request returns into process_input's loop; an
    // asynchronous one resumes reading here
    if (was_async) {
        if (!c->plain || !c->plain->watching)
            bufferevent_enable(c->bev, EV_READ);
        process_input(c);
    }
}

std::string *out_stash(Connection *c, size_t adding) {
    OutStash &st = out_stash_state();
    if (st.owner == c) {
        if (st.buf.size() + adding <= kStashMax) return &st.buf;
        out_spill(c);
        return nullptr;
    }
    if (!c->direct_write || !c->in_process || st.owner || adding > kStashMax ||
        evbuffer_get_length(bufferevent_get_output(c->bev)) != 0)
        return nullptr;
    st.owner = c;
    return &st.buf;
}

void out_spill(Connection *c) {
    OutStash &st = out_stash_state();
    if (st.owner != c) return;
    st.owner = nullptr;
    evbuffer_add(bufferevent_get_output(c->bev), st.buf.data(), st.buf.size());
    st.buf.clear();
}

size_t out_pending(Connection *c) {
    const OutStash &st = out_stash_state();
    return evbuffer_get_length(bufferevent_get_output(c->bev)) + (st.owner == c ? st.buf.size() : 0);
}

void connection_resume(Connection *c) { process_input(c); }
void start_body(Request *r) { begin_body(r->c); }

} // namespace portico
