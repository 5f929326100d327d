#pragma once
// The per-worker keep-alive cache of idle upstream connections, and the
// connection object the gateways hold (opaque to them: pt_upstream_conn).
#include "upstream/upstream.h"

#include <event2/event.h>

struct pt_upstream_conn {
    portico::Upstream *u = nullptr;
    portico::UpstreamServer *server = nullptr;
    int fd = -1;
    bool reused = false;
    int64_t requests = 0;
    event *ev = nullptr; // connect wait, or the idle watch while pooled
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
};

struct ConnectWait {
    pt_upstream_conn *c;
};

namespace portico {
struct IdleConn {
    pt_upstream_conn *c;
    int64_t since_ms;
};

void conn_free(pt_upstream_conn *c); // closes the socket and its event, frees c

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
