// fastcgi_multiplex: several requests over one backend connection, each on
// its own request id (FastCGI §3.3), for apps that say FCGI_MPXS_CONNS=1.
//
// Per worker, this file keeps what each backend server said about itself
// (Backend) and the shared connections (MuxConn). The host's upstream layer
// only opens connections here; they never return to its keep-alive pool,
// and we close them ourselves (upstream_release(c, 0, ...)).
//
// A connection goes Connecting -> Handshaking (FCGI_GET_VALUES, §4.1, with
// a short timeout: some apps never answer, PHP-FPM answers and closes) ->
// Ready. Streams that arrive meanwhile wait on it, so a burst opens one
// connection rather than one each. A backend that says no (or nothing) is
// remembered as single-request and its streams run the one-connection path.
//
// Nothing on a shared connection may be ended by closing it while other
// streams live on it: a stream that stalls or whose client leaves is ended
// with ABORT_REQUEST alone (§5.4), its id reserved until the app's
// END_REQUEST. Only a connection-level fault (reset, close, garbage, the
// whole connection silent or unwritable) ends every stream on it, each with
// its status and log line.
#include "request_ids.h"
#include "stream.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include <algorithm>
#include <array>
#include <deque>
#include <memory>
#include <string>
#include <vector>

namespace portico::fastcgi {

namespace {
// Apps often say MPXS_CONNS without MAX_REQS (Go's net/http/fcgi does):
// HAProxy then assumes 1, which defeats the point; 32 keeps one slow app
// connection from carrying a whole worker's load.
constexpr std::size_t kDefaultMaxReqs = 32;
// Even an app that claims more gets no more than this per connection: the
// per-id bookkeeping and one connection's share of a worker stay small.
constexpr std::size_t kMaxReqsCap = 256;
// FCGI_GET_VALUES answer wait: local apps answer in well under a millisecond;
// an app that ignores management records should cost one request little.
constexpr int64_t kHandshakeMs = 1000;
// An idle shared connection is closed before typical app idle timeouts
// (PHP-FPM has none, uWSGI/flup minutes), so we never write to a dead one.
constexpr int64_t kIdleMs = 10000;

timeval tv_of(int64_t ms) {
    return {time_t(ms / 1000), suseconds_t((ms % 1000) * 1000)};
}

struct Backend {
    pt_upstream *upstream;
    std::string name;
    enum class Mode { Unknown, Multiplex, Single } mode = Mode::Unknown;
    std::size_t max_reqs = kDefaultMaxReqs;
    std::size_t max_conns = 0; // 0: the app did not say
    std::size_t conns = 0;     // shared connections open to it
};

} // namespace

struct MuxConn {
    enum class State { Connecting, Handshaking, Ready };
    State state = State::Connecting;
    pt_upstream *upstream = nullptr;
    event_base *base = nullptr;
    Backend *backend = nullptr;
    pt_upstream_conn *uc = nullptr;
    bufferevent *bev = nullptr;
    event *timer = nullptr; // handshake timeout, then idle timeout
    RecordReader reader;
    RequestIdTable ids{kDefaultMaxReqs};
    std::deque<Stream *> waiters;
    // the stream whose request upstream_connect() was called with: the host
    // cancels the connect when that request ends, so its leaving while we
    // connect ends this connection's life before it began
    Stream *opener = nullptr;
    int64_t read_timeout = 60000;
    int64_t send_timeout = 60000;
    bool draining = false; // no new streams (the backend said CANT_MPX_CONN)
    bool dead = false;     // failed or closed: streams detach without a word to the app
    int depth = 0;         // inside our own callbacks: destruction waits
    bool destroy_pending = false;
};

namespace {
std::vector<std::unique_ptr<Backend>> g_backends;
std::vector<MuxConn *> g_conns;
std::deque<Stream *> g_queue; // streams waiting for a free id

Backend *backend_for(pt_upstream *u, std::string_view name) {
    for (auto &b : g_backends)
        if (b->upstream == u && b->name == name) return b.get();
    g_backends.push_back(std::make_unique<Backend>(Backend{u, std::string(name)}));
    return g_backends.back().get();
}

void destroy(MuxConn *m) {
    m->dead = true;
    if (m->depth > 0) {
        m->destroy_pending = true;
        return;
    }
    std::erase(g_conns, m);
    if (m->timer) event_free(m->timer);
    if (m->bev) bufferevent_free(m->bev);
    if (m->uc) H->upstream_release(m->uc, 0, 0);
    if (m->backend && m->state != MuxConn::State::Connecting) m->backend->conns--;
    delete m;
}

// Closes a connection nobody uses (idle, or the handshake said no).
void close_conn(MuxConn *m) {
    m->dead = true;
    destroy(m);
}

void on_stream_timer(evutil_socket_t, short, void *arg);
void serve_queue();

void arm_stream_timer(Stream *s, int64_t ms) {
    if (!s->timer)
        s->timer = evtimer_new(static_cast<event_base *>(H->event_base(s->r)), on_stream_timer, s);
    timeval tv = tv_of(ms);
    evtimer_add(s->timer, &tv);
}

void free_stream_timer(Stream *s) {
    if (s->timer) event_free(s->timer);
    s->timer = nullptr;
}

void on_idle_timer(evutil_socket_t, short, void *arg) {
    auto *m = static_cast<MuxConn *>(arg);
    if (m->ids.in_use() == 0) close_conn(m);
}

// The connection's read timeout covers it as a whole: while it carries
// requests (aborted ones too), silence for read_timeout means the app is
// gone; idle, only the idle timer runs.
void update_idle(MuxConn *m) {
    if (m->dead || m->state != MuxConn::State::Ready) return;
    if (m->ids.in_use() > 0) {
        evtimer_del(m->timer);
        timeval rt = tv_of(m->read_timeout), wt = tv_of(m->send_timeout);
        bufferevent_set_timeouts(m->bev, &rt, &wt);
        return;
    }
    for (MuxConn *o : g_conns)
        if (o != m && !o->dead && o->upstream == m->upstream && o->ids.in_use() == 0 &&
            o->state == MuxConn::State::Ready) {
            close_conn(m); // one idle connection per upstream is enough
            return;
        }
    bufferevent_set_timeouts(m->bev, nullptr, nullptr);
    timeval tv = tv_of(kIdleMs);
    evtimer_add(m->timer, &tv);
}

void attach(MuxConn *m, Stream *s) {
    std::uint16_t id = m->ids.acquire(s);
    s->mux = m;
    s->mux_waiting = false;
    s->id = id;
    s->ended = false;
    retarget_records(s->out, id, true); // §3.3: a multiplexed request keeps the connection
    evbuffer_add(bufferevent_get_output(m->bev), s->out.data(), s->out.size());
    arm_stream_timer(s, s->conf->read_timeout);
    update_idle(m);
}

bool has_room(const MuxConn *m) {
    if (m->dead || m->draining) return false;
    if (m->state == MuxConn::State::Ready) return !m->ids.full();
    std::size_t guess = m->backend && m->backend->mode == Backend::Mode::Multiplex
                            ? m->backend->max_reqs
                            : kDefaultMaxReqs;
    return m->waiters.size() < guess;
}

// FCGI_MAX_CONNS: a new connection is not opened when every backend of the
// upstream that we know of has said how many it takes and has them.
bool at_conn_limit(pt_upstream *u) {
    bool any = false;
    for (auto &b : g_backends) {
        if (b->upstream != u) continue;
        if (b->mode != Backend::Mode::Multiplex || !b->max_conns || b->conns < b->max_conns)
            return false;
        any = true;
    }
    return any;
}

// ---- a connection-level fault: every stream on it ends ----
void fail_all(MuxConn *m, int status, const char *reason) {
    m->dead = true;
    m->depth++;
    std::vector<Stream *> streams;
    for (void *p : m->ids.streams())
        streams.push_back(static_cast<Stream *>(p));
    for (Stream *s : streams) {
        if (s->head_done)
            stream_truncate(s, reason);
        else
            stream_fail(s, status, reason, true);
    }
    m->depth--;
    if (m->uc) {
        H->upstream_release(m->uc, 0, 1); // counts against max_fails
        m->uc = nullptr;
    }
    destroy(m);
}

void handshake_done(MuxConn *m, const GetValuesResult *values, const char *why_not);

void on_mux_record(MuxConn *m, const Record &rec) {
    if (rec.request_id == FCGI_NULL_REQUEST_ID) {
        // management records (§4): the answer we wait for, or UNKNOWN_TYPE
        if (rec.kind() == RecordType::GetValuesResult && m->state == MuxConn::State::Handshaking) {
            GetValuesResult values;
            std::string_view err = decode_get_values_result(rec.content, values);
            if (!err.empty()) {
                std::string why = "invalid FCGI_GET_VALUES_RESULT: " + std::string(err);
                handshake_done(m, nullptr, why.c_str());
            } else {
                handshake_done(m, &values, nullptr);
            }
        }
        return;
    }
    switch (m->ids.state(rec.request_id)) {
    case IdState::Active: {
        auto *s = static_cast<Stream *>(m->ids.find(rec.request_id));
        s->got_bytes = true;
        arm_stream_timer(s, s->conf->read_timeout);
        stream_record(s, rec); // may finalize the request and free s
        return;
    }
    case IdState::Aborted:
        // what the app still says for a stream we abandoned goes nowhere;
        // its END_REQUEST makes the id usable again
        if (rec.kind() == RecordType::EndRequest) {
            m->ids.release(rec.request_id);
            update_idle(m);
            serve_queue();
        }
        return;
    case IdState::Free:
        return; // §3.3: records for an inactive request id are ignored
    }
}

void on_mux_read(bufferevent *bev, void *arg) {
    auto *m = static_cast<MuxConn *>(arg);
    evbuffer *in = bufferevent_get_input(bev);
    m->depth++;
    while (!m->dead && evbuffer_get_length(in) > 0) {
        evbuffer_iovec vec;
        if (evbuffer_peek(in, -1, nullptr, &vec, 1) < 1) break;
        ReadResult res = m->reader.feed({static_cast<const char *>(vec.iov_base), vec.iov_len});
        if (res.status == ReadStatus::Error) {
            std::string why = "upstream sent an invalid FastCGI record on a multiplexed "
                              "connection: " +
                              std::string(res.error);
            m->depth--;
            fail_all(m, 502, why.c_str());
            return;
        }
        if (res.status == ReadStatus::Again) {
            evbuffer_drain(in, res.consumed);
            if (res.consumed == 0) break;
            continue;
        }
        // the record's views point into `in`: handle it before draining
        on_mux_record(m, res.record);
        if (m->bev) evbuffer_drain(in, res.consumed);
    }
    m->depth--;
    if (m->destroy_pending) destroy(m);
}

void on_mux_event(bufferevent *, short what, void *arg) {
    auto *m = static_cast<MuxConn *>(arg);
    if (m->dead) return;
    if (m->state == MuxConn::State::Handshaking) {
        handshake_done(m, nullptr,
                       (what & BEV_EVENT_TIMEOUT) ? "timed out" : "closed the connection");
        return;
    }
    if (m->ids.in_use() == 0) { // idle: the app closed it, nobody to tell
        close_conn(m);
        return;
    }
    if (what & BEV_EVENT_TIMEOUT)
        fail_all(m, 504,
                 (what & BEV_EVENT_READING)
                     ? "upstream timed out (110: Connection timed out): the multiplexed "
                       "connection was silent for fastcgi_read_timeout"
                     : "upstream timed out (110: Connection timed out) while sending "
                       "requests on a multiplexed connection");
    else if (what & BEV_EVENT_ERROR)
        fail_all(m, 502, "upstream reset the multiplexed connection before END_REQUEST");
    else
        fail_all(m, 502, "app closed the multiplexed connection before END_REQUEST");
}

void on_handshake_timer(evutil_socket_t, short, void *arg) {
    auto *m = static_cast<MuxConn *>(arg);
    if (m->state == MuxConn::State::Handshaking)
        handshake_done(m, nullptr, "did not answer in 1 s");
    else
        on_idle_timer(-1, 0, arg);
}

void handshake_done(MuxConn *m, const GetValuesResult *values, const char *why_not) {
    evtimer_del(m->timer);
    Backend *b = m->backend;
    std::deque<Stream *> waiters;
    waiters.swap(m->waiters);
    if (values && values->mpxs_conns.value_or(false)) {
        b->mode = Backend::Mode::Multiplex;
        b->max_reqs = values->max_reqs ? std::clamp<std::size_t>(*values->max_reqs, 1, kMaxReqsCap)
                                       : kDefaultMaxReqs;
        b->max_conns = values->max_conns.value_or(0);
        m->ids.set_capacity(b->max_reqs);
        m->state = MuxConn::State::Ready;
        std::deque<Stream *> rest;
        for (Stream *s : waiters) {
            if (!m->ids.full())
                attach(m, s);
            else
                rest.push_back(s);
        }
        update_idle(m);
        for (Stream *s : rest) {
            s->mux = nullptr;
            s->mux_waiting = false;
            mux_submit(s);
        }
        return;
    }
    // an app that does not multiplex (PHP-FPM answers MPXS_CONNS=0 and
    // closes): remembered, so its next requests go straight to the
    // one-connection path without asking again
    if (b->mode != Backend::Mode::Single)
        H->log(PT_LOG_NOTICE, nullptr,
               "fastcgi_multiplex: upstream \"%s\" %s%s: one request per connection",
               b->name.c_str(), values ? "answered FCGI_MPXS_CONNS=" : "FCGI_GET_VALUES ",
               values ? (values->mpxs_conns ? "0" : "(none)") : why_not);
    b->mode = Backend::Mode::Single;
    close_conn(m);
    for (Stream *s : waiters) {
        s->mux = nullptr;
        s->mux_waiting = false;
        stream_run_single(s, nullptr);
    }
}

void on_conn_connected(void *data, pt_upstream_conn *uc, int status) {
    auto *m = static_cast<MuxConn *>(data);
    std::deque<Stream *> waiters;
    waiters.swap(m->waiters);
    if (status) {
        // the host has logged the cause once; every waiting request says it too
        close_conn(m);
        for (Stream *s : waiters) {
            s->mux = nullptr;
            s->mux_waiting = false;
            stream_fail(s, status, "no connection for multiplexed FastCGI requests", false);
        }
        return;
    }
    m->opener = nullptr;
    m->uc = uc;
    pt_str name = H->upstream_name(uc);
    m->backend = backend_for(m->upstream, {name.data, name.len});
    if (m->backend->mode == Backend::Mode::Single) {
        // known to take one request per connection: the first waiter gets
        // this one, the others their own
        m->uc = nullptr;
        close_conn(m);
        bool first = true;
        for (Stream *s : waiters) {
            s->mux = nullptr;
            s->mux_waiting = false;
            stream_run_single(s, first ? uc : nullptr);
            first = false;
        }
        if (first) H->upstream_release(uc, 0, 0);
        return;
    }
    m->backend->conns++;
    m->state = MuxConn::State::Handshaking;
    m->waiters.swap(waiters);
    m->bev = bufferevent_socket_new(m->base, H->upstream_fd(uc), 0);
    bufferevent_setcb(m->bev, on_mux_read, nullptr, on_mux_event, m);
    static constexpr std::array<std::string_view, 3> kNames{FCGI_MPXS_CONNS, FCGI_MAX_REQS,
                                                            FCGI_MAX_CONNS};
    std::string req;
    append_get_values(req, kNames);
    evbuffer_add(bufferevent_get_output(m->bev), req.data(), req.size());
    timeval wt = tv_of(m->send_timeout);
    bufferevent_set_timeouts(m->bev, nullptr, &wt);
    bufferevent_enable(m->bev, EV_READ | EV_WRITE);
    timeval hs = tv_of(kHandshakeMs);
    evtimer_add(m->timer, &hs);
}

void open_conn(Stream *s) {
    auto *m = new MuxConn;
    m->upstream = s->conf->upstream;
    m->base = static_cast<event_base *>(H->event_base(s->r));
    m->read_timeout = s->conf->read_timeout;
    m->send_timeout = s->conf->send_timeout;
    m->timer = evtimer_new(m->base, on_handshake_timer, m);
    m->waiters.push_back(s);
    m->opener = s;
    s->mux = m;
    s->mux_waiting = true;
    g_conns.push_back(m);
    if (H->upstream_connect(s->r, m->upstream, s->conf->connect_timeout, on_conn_connected, m) !=
        PT_OK) {
        m->waiters.clear();
        s->mux = nullptr;
        s->mux_waiting = false;
        close_conn(m);
        stream_fail(s, 502, "no connection for multiplexed FastCGI requests", false);
    }
}

void serve_queue() {
    std::deque<Stream *> queue;
    queue.swap(g_queue);
    for (Stream *s : queue) {
        s->mux_queued = false;
        free_stream_timer(s);
        mux_submit(s); // back in the queue if there is still no room
    }
}

void on_stream_timer(evutil_socket_t, short, void *arg) {
    auto *s = static_cast<Stream *>(arg);
    if (s->mux_queued) {
        std::erase(g_queue, s);
        s->mux_queued = false;
        stream_fail(s, 504,
                    "no free FastCGI request id within fastcgi_connect_timeout "
                    "(FCGI_MAX_CONNS x FCGI_MAX_REQS in use)",
                    false);
        return;
    }
    // one stream silent while the connection lives: it alone is aborted
    if (s->head_done)
        stream_truncate(s, "upstream timed out (110: Connection timed out) while reading a "
                           "multiplexed response: FCGI_ABORT_REQUEST sent");
    else
        stream_fail(s, 504,
                    "upstream timed out (110: Connection timed out) while reading response "
                    "header from upstream: FCGI_ABORT_REQUEST sent",
                    false);
}
} // namespace

void mux_submit(Stream *s) {
    pt_upstream *u = s->conf->upstream;
    MuxConn *pending = nullptr;
    for (MuxConn *m : g_conns) {
        if (m->upstream != u || !has_room(m)) continue;
        if (m->state == MuxConn::State::Ready) {
            attach(m, s);
            return;
        }
        if (!pending) pending = m;
    }
    if (pending) {
        pending->waiters.push_back(s);
        s->mux = pending;
        s->mux_waiting = true;
        return;
    }
    if (at_conn_limit(u)) {
        g_queue.push_back(s);
        s->mux_queued = true;
        arm_stream_timer(s, s->conf->connect_timeout);
        return;
    }
    open_conn(s);
}

void mux_detach(Stream *s) {
    MuxConn *m = s->mux;
    free_stream_timer(s);
    if (s->mux_queued) {
        std::erase(g_queue, s);
        s->mux_queued = false;
    }
    if (!m) return;
    s->mux = nullptr;
    if (s->mux_waiting) {
        s->mux_waiting = false;
        std::erase(m->waiters, s);
        if (m->opener == s && m->state == MuxConn::State::Connecting) {
            // the host drops the connect with s's request: the others start over
            std::deque<Stream *> waiters;
            waiters.swap(m->waiters);
            close_conn(m);
            for (Stream *w : waiters) {
                w->mux = nullptr;
                w->mux_waiting = false;
                mux_submit(w);
            }
        }
        return;
    }
    if (m->dead) {
        return;
    }
    if (s->ended) {
        m->ids.release(s->id);
    } else {
        // §5.4: the app is told to stop this request; the connection and
        // every sibling on it carry on
        m->ids.abandon(s->id);
        std::string abort;
        append_abort_request(abort, s->id);
        evbuffer_add(bufferevent_get_output(m->bev), abort.data(), abort.size());
        if (s->r)
            H->log(PT_LOG_INFO, s->r,
                   "FCGI_ABORT_REQUEST sent for request id %u on the multiplexed "
                   "connection to \"%s\"",
                   unsigned(s->id), m->backend->name.c_str());
    }
    m->depth++;
    update_idle(m);
    serve_queue();
    m->depth--;
    if (m->destroy_pending) destroy(m);
}

void mux_mark_single(Stream *s) {
    MuxConn *m = s->mux;
    if (!m || !m->backend) return;
    m->backend->mode = Backend::Mode::Single;
    for (MuxConn *o : g_conns)
        if (o->backend == m->backend) o->draining = true;
}

pt_str mux_backend_name(const Stream *s) {
    if (!s->mux || !s->mux->backend) return PT_STR("-");
    return {s->mux->backend->name.data(), s->mux->backend->name.size()};
}

void mux_exit_worker() {
    std::vector<MuxConn *> conns = g_conns;
    for (MuxConn *m : conns) {
        m->depth = 0;
        destroy(m);
    }
    g_backends.clear();
}

} // namespace portico::fastcgi
