#pragma once
// The upstream layer shared by the gateways: backend groups (`upstream {}`
// or an implicit one per address), smooth weighted round-robin, passive
// health (max_fails / fail_timeout), backup servers, and a per-worker
// keep-alive pool of idle connections. Workers inherit the configuration by
// fork(), so every counter and pool here is per worker, as in nginx.
#include <portico/module.h>

#include <cstdint>
#include <deque>
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
    std::string name; // "127.0.0.1:9000", "unix:/run/php.sock"
    int weight = 1, max_fails = 1, max_conns = 0;
    int64_t fail_timeout_ms = 10000;
    bool backup = false, down = false;
    // per worker
    int fails = 0;
    int64_t failed_until_ms = 0;
    int current_weight = 0;
    int active = 0;
};

struct IdleConn;

struct Upstream {
    std::string name;
    bool implicit = false, defined = false;
    std::string file; // where it was referenced, for "host not found in upstream"
    unsigned line = 0;
    std::vector<UpstreamServer> servers;
    int keepalive = 0;
    int64_t keepalive_timeout_ms = 60000;
    int64_t keepalive_requests = 1000;
    bool least_conn = false;
    std::deque<IdleConn *> idle; // most recently used at the back
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
} // namespace portico
