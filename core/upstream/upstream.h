#pragma once
// The upstream layer shared by the gateways: backend groups (`upstream {}`
// or an implicit one per address), balancing (balancer.h), passive health
// (max_fails / fail_timeout), backup servers, and a per-worker keep-alive
// pool of idle connections (pool.cc). Workers inherit the configuration by
// fork(), so every counter and pool here is per worker, as in nginx.
#include <portico/module.h>

#include "config/complex_value.h"
#include "upstream/balancer.h"

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <sys/socket.h>
#include <vector>

struct event;
struct pt_request;

namespace portico {
struct Cycle;

struct UpstreamServer {
    sockaddr_storage addr{};
    socklen_t addrlen = 0;
    std::string name;   // "127.0.0.1:9000", "unix:/run/php.sock": logs, $upstream_addr
    std::string server; // as written in `server`: the consistent-hash identity, as nginx
    int weight = 1, max_fails = 1, max_conns = 0;
    int64_t fail_timeout_ms = 10000;
    bool backup = false, down = false;
    // per worker (nginx's ngx_http_upstream_rr_peer_t without a zone)
    int current_weight = 0, effective_weight = 1;
    int fails = 0;
    int64_t accessed_ms = 0; // the last failure
    int64_t checked_ms = 0;  // the start of the current fail_timeout window
    int active = 0;          // connections in use (least_conn, max_conns)
    int idle = 0;            // connections of this server in the keep-alive pool
};

// a connection in the keep-alive pool
struct IdleConn {
    pt_upstream_conn *c;
    int64_t since_ms;
};

// `keepalive N` keeps nginx's meaning: at most N idle connections per worker
// for the group (LRU). A PHP-FPM child is held by a kept-alive FastCGI
// connection even while idle: N times the worker count should stay below
// pm.max_children (`-t` cannot know the pool; the README says so). An earlier
// fixed per-server cap of 4 below N made a 64-client load open a connection
// per request (measured: 0.4x nginx), so N is honoured as written.

struct Upstream {
    std::string name;
    bool implicit = false, defined = false;
    std::string file; // where it was referenced, for "host not found in upstream"
    unsigned line = 0;
    std::vector<UpstreamServer> servers;
    int keepalive = 0;
    // nginx's default. Idle connections must be closed by us before the
    // backend's own idle timeout (Node and Apache: 5 s) or a reuse races the
    // backend's close; such configs set keepalive_timeout below it.
    int64_t keepalive_timeout_ms = 60000;
    int64_t keepalive_requests = 1000;
    BalanceMethod method = BalanceMethod::RoundRobin;
    bool method_set = false;
    config::ComplexValue hash_key; // `hash key [consistent]`, evaluated per request
    std::unique_ptr<Balancer> balancer;
    std::deque<IdleConn> idle; // most recently used at the back
    Upstream();
    ~Upstream();
};

const pt_directive *upstream_directives();
// "host:port" / "unix:/path" → implicit upstream; a bare name → the upstream{} of that name
Upstream *upstream_ref(Cycle &c, std::string_view target, std::string &err);
bool upstream_finish(Cycle &c, std::string &err); // every referenced name defined

int upstream_connect(pt_request *r, Upstream *u, int64_t timeout_ms, pt_connect_fn cb, void *data);
int upstream_conn_fd(pt_upstream_conn *c);
int upstream_conn_reused(pt_upstream_conn *c);
pt_str upstream_conn_name(pt_upstream_conn *c);
void upstream_release(pt_upstream_conn *c, int keep, int failed);
// host-driven I/O (conn_io.cc), pt_host's upstream_io_*
void upstream_io_start(pt_upstream_conn *c, const pt_upstream_io *io, void *data,
                       int64_t read_timeout_ms, int64_t send_timeout_ms);
void upstream_io_write(pt_upstream_conn *c, const void *data, size_t len);
size_t upstream_io_unsent(pt_upstream_conn *c);
void *upstream_io_input(pt_upstream_conn *c);
} // namespace portico
