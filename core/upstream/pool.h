#pragma once
// The per-worker keep-alive cache of idle upstream connections, and the
// connection object the gateways hold (opaque to them: pt_upstream_conn).
#include "upstream/upstream.h"

#include <event2/buffer.h>
#include <event2/event.h>

struct pt_upstream_conn {
    portico::Upstream *u = nullptr;
    portico::UpstreamServer *server = nullptr;
    int fd = -1;
    bool reused = false;
    bool pooled = false;
    int64_t requests = 0;
    event *ev = nullptr; // the connect wait
    pt_connect_fn cb = nullptr;
    void *data = nullptr;
    pt_request *r = nullptr;
    int tries = 0;
    int fail_status = 502; // when every try failed: 504 if the last one timed out
    int64_t timeout_ms = 60000;
    uint64_t conn_id = 0;
    portico::PickState pick; // the request's balancing state across attempts
    // while the gateway waits for this connection: the request may end
    // first (client gone), then the connection is dropped, never delivered
    struct ConnectWait *wait = nullptr;
    bool cancelled = false;
    event *deliver = nullptr; // runs cb in the next pass of the loop (conn_io.cc)
    int deliver_status = 0;
    // host-driven I/O (conn_io.cc): `rev` is the one read watch for the
    // connection's life, in use or pooled (then it is the idle watch)
    event *rev = nullptr;
    event *wev = nullptr; // only while output waits for a full socket
    // The read/idle deadline, kept apart from `rev` so that moving it is not
    // an event_add per request (and per read, which a timed EV_PERSIST event
    // costs): `deadline` is only armed again when the due time moved past
    // it by more than the lazy delay (conn_io.cc).
    event *deadline = nullptr;
    int64_t due_ms = 0;   // when the current read or idle wait times out
    int64_t armed_ms = 0; // when `deadline` fires; 0 = not armed
    int64_t span_ms = 0;  // the wait's full length
    bool rev_paused = false;
    evbuffer *in = nullptr, *out = nullptr;
    const pt_upstream_io *io = nullptr;
    void *io_data = nullptr;
    int64_t read_timeout_ms = 60000, send_timeout_ms = 60000;
};

struct ConnectWait {
    pt_upstream_conn *c;
};

namespace portico {
// conn_io.cc
void io_watch_idle(pt_upstream_conn *c, event_base *base, int64_t idle_ms);
void io_stop(pt_upstream_conn *c);       // the module takes the raw fd
void io_free(pt_upstream_conn *c);       // with the connection
bool io_clean(const pt_upstream_conn *c); // nothing unread, nothing unsent

void conn_free(pt_upstream_conn *c); // closes the socket and its events, frees c
void pool_evict(pt_upstream_conn *c); // an idle one: the backend spoke or it timed out

// The most recently used idle connection to s, or nullptr. Balancing picks
// the server first, then the cache is asked for it (nginx's keepalive
// module): reuse never overrides ip_hash, hash or weights.
pt_upstream_conn *pool_take(Upstream &u, const UpstreamServer &s);
// Keeps c idle, watched for the backend's close and keepalive_timeout;
// evicts the oldest of its server past idle_cap(), then the group's least
// recently used past `keepalive`.
void pool_put(Upstream &u, pt_upstream_conn *c, event_base *base, int64_t now_ms);
int idle_cap(const Upstream &u); // per server per worker: `keepalive N`
} // namespace portico
