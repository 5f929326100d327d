#include "upstream/upstream.h"

#include "base/clock.h"
#include "config/directive.h"
#include "config/setters.h"
#include "http/core_directives.h"
#include "http/request.h"
#include "log/error_log.h"
#include "process/listen_sockets.h"
#include "process/worker.h"
#include "upstream/pool.h"

#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <event2/event.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/un.h>
#include <unistd.h>

namespace portico {
namespace {
using config::fmt_error;
using config::sv;

// ---- configuration ---------------------------------------------------------

const char *resolve(std::string_view text, UpstreamServer &s, bool need_port) {
    Listen l;
    std::string t(text);
    if (t.rfind("unix:", 0) != 0) {
        size_t colon = t.rfind(':');
        bool has_port = colon != std::string::npos && t.find(']') < colon;
        if (colon != std::string::npos && t.find(']') == std::string::npos) has_port = true;
        if (!has_port) {
            if (need_port) return "no port in upstream";
            t += ":80";
        }
        colon = t.rfind(':');
        std::string host = t.substr(0, colon);
        if (!host.empty() && host[0] != '[') {
            in_addr a4;
            if (inet_pton(AF_INET, host.c_str(), &a4) != 1 && host != "*") {
                // a host name: resolved once at load, as nginx does without a resolver
                addrinfo hints{}, *res = nullptr;
                hints.ai_family = AF_INET;
                hints.ai_socktype = SOCK_STREAM;
                if (getaddrinfo(host.c_str(), nullptr, &hints, &res) != 0 || !res)
                    return "host not found in upstream";
                char buf[INET_ADDRSTRLEN];
                inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in *>(res->ai_addr)->sin_addr, buf,
                          sizeof buf);
                freeaddrinfo(res);
                t = std::string(buf) + t.substr(colon);
            }
        }
    }
    if (const char *e = parse_listen_address(t, l)) return e;
    s.addr = l.addr;
    s.addrlen = l.addrlen;
    s.name = l.text;
    return nullptr;
}

Upstream *find_named(Cycle &c, std::string_view name) {
    for (auto &u : c.http->upstreams)
        if (!u->implicit && u->name == name) return u.get();
    return nullptr;
}

const char *set_upstream(pt_conf *cf, void *, const pt_str *a, size_t) {
    Cycle &c = *cf->cycle;
    std::string name(sv(a[1]));
    Upstream *u = find_named(c, name);
    if (u && u->defined) return fmt_error("duplicate upstream \"%s\"", name.c_str());
    if (!u) {
        c.http->upstreams.push_back(std::make_unique<Upstream>());
        u = c.http->upstreams.back().get();
        u->name = name;
    }
    u->defined = true;
    void *outer = cf->block;
    cf->block = u;
    const char *rv = config::dispatch_block(*cf, PT_CTX_UPSTREAM);
    cf->block = outer;
    if (rv) return rv;
    if (u->servers.empty()) return fmt_error("no servers are inside upstream");
    for (auto &s : u->servers)
        s.effective_weight = s.weight;
    u->balancer = make_balancer(u->method);
    u->balancer->prepare(*u);
    return nullptr;
}

bool hashing(BalanceMethod m) {
    return m == BalanceMethod::IpHash || m == BalanceMethod::Hash ||
           m == BalanceMethod::ConsistentHash;
}

const char *set_server(pt_conf *cf, void *, const pt_str *a, size_t n) {
    auto *u = static_cast<Upstream *>(cf->block);
    UpstreamServer s;
    if (const char *e = resolve(sv(a[1]), s, false))
        return fmt_error("%s \"%.*s\"", e, int(a[1].len), a[1].data);
    s.server = std::string(sv(a[1]));
    for (size_t i = 2; i < n; i++) {
        std::string_view o = sv(a[i]);
        int64_t v;
        auto eq = o.find('=');
        std::string_view key = o.substr(0, eq), val = eq == o.npos ? "" : o.substr(eq + 1);
        if (o == "backup") {
            // nginx: hash and ip_hash map keys over the primaries only
            if (hashing(u->method))
                return fmt_error("balancing method does not support parameter \"backup\"");
            s.backup = true;
        } else if (o == "down")
            s.down = true;
        else if (key == "weight" && !config::parse_int(val, v) && v > 0)
            s.weight = int(v);
        else if (key == "max_fails" && !config::parse_int(val, v) && v >= 0)
            s.max_fails = int(v);
        else if (key == "max_conns" && !config::parse_int(val, v) && v >= 0)
            s.max_conns = int(v);
        else if (key == "fail_timeout" && !config::parse_msec(val, v))
            s.fail_timeout_ms = v;
        else
            return fmt_error("invalid parameter \"%.*s\"", int(o.size()), o.data());
    }
    u->servers.push_back(s);
    return nullptr;
}

const char *set_keepalive(pt_conf *cf, void *, const pt_str *a, size_t) {
    auto *u = static_cast<Upstream *>(cf->block);
    std::string_view name = sv(a[0]);
    int64_t v;
    if (name == "keepalive") {
        if (config::parse_int(sv(a[1]), v) || v < 1)
            return fmt_error("invalid value \"%.*s\" in \"keepalive\" directive", int(a[1].len),
                             a[1].data);
        u->keepalive = int(v);
    } else if (name == "keepalive_timeout") {
        if (config::parse_msec(sv(a[1]), v)) return "invalid value";
        u->keepalive_timeout_ms = v;
    } else if (name == "keepalive_requests") {
        if (config::parse_int(sv(a[1]), v) || v < 1) return "invalid value";
        u->keepalive_requests = v;
    }
    return nullptr;
}

const char *set_balancer(pt_conf *cf, void *, const pt_str *a, size_t n) {
    auto *u = static_cast<Upstream *>(cf->block);
    std::string_view name = sv(a[0]);
    BalanceMethod m = BalanceMethod::LeastConn;
    if (name == "ip_hash") m = BalanceMethod::IpHash;
    if (name == "hash") {
        m = BalanceMethod::Hash;
        if (n == 3) {
            if (sv(a[2]) != "consistent")
                return fmt_error("invalid parameter \"%.*s\"", int(a[2].len), a[2].data);
            m = BalanceMethod::ConsistentHash;
        }
        config::ComplexValue key;
        if (const char *e = compile_value(sv(a[1]), key)) return e;
        u->hash_key = std::move(key);
    }
    if (hashing(m))
        for (const auto &s : u->servers)
            // nginx takes `server ... backup; ip_hash;` and never uses the
            // backup while a primary lives: refused here instead of ignored
            if (s.backup)
                return fmt_error("balancing method does not support parameter \"backup\"");
    if (u->method_set) {
        std::string w = "load balancing method redefined";
        if (cf->node) w += " in " + cf->node->file + ":" + std::to_string(cf->node->line);
        cf->cycle->warnings.push_back(std::move(w));
    }
    u->method = m;
    u->method_set = true;
    return nullptr;
}

const char *set_ignore(pt_conf *, void *, const pt_str *, size_t) {
    return nullptr;
}

constexpr uint32_t U = PT_CTX_UPSTREAM;
const pt_directive kDirectives[] = {
    {"upstream", PT_CTX_HTTP, PT_ARGS(1) | PT_ARGS_BLOCK | PT_ARGS_MULTI, PT_CONF_MAIN,
     set_upstream},
    {"server", U, PT_ARGS_1MORE | PT_ARGS_MULTI, PT_CONF_MAIN, set_server},
    {"keepalive", U, PT_ARGS(1), PT_CONF_MAIN, set_keepalive},
    {"keepalive_timeout", U, PT_ARGS(1), PT_CONF_MAIN, set_keepalive},
    {"keepalive_requests", U, PT_ARGS(1), PT_CONF_MAIN, set_keepalive},
    {"least_conn", U, PT_ARGS(0), PT_CONF_MAIN, set_balancer},
    {"ip_hash", U, PT_ARGS(0), PT_CONF_MAIN, set_balancer},
    {"hash", U, PT_ARGS(1) | PT_ARGS(2), PT_CONF_MAIN, set_balancer},
    {"zone", U, PT_ARGS(1) | PT_ARGS(2), PT_CONF_MAIN, set_ignore},
    {nullptr, 0, 0, PT_CONF_MAIN, nullptr},
};

// ---- connections -----------------------------------------------------------

void detach_wait(pt_upstream_conn *c) {
    if (c->wait) {
        c->wait->c = nullptr;
        c->wait = nullptr;
    }
}

// The request ended while it waited for a connection (request cleanup).
void cancel_wait(void *arg) {
    auto *w = static_cast<ConnectWait *>(arg);
    if (pt_upstream_conn *c = w->c) {
        c->wait = nullptr;
        c->cancelled = true;
        c->r = nullptr;
        if (c->ev) {
            // still connecting: give the socket back now
            c->server->active--;
            conn_free(c);
        }
        // else a delivery is queued: it frees c when it runs
    }
}

// ", client: ..., request: ..." for upstream error lines (nginx's context)
std::string request_context(const pt_upstream_conn *c) {
    if (!c->r || !c->r->c) return {};
    const pt_request *r = c->r;
    std::string s = ", client: " + r->c->peer_addr + ", request: \"";
    s.append(r->head.method);
    s += ' ';
    s.append(r->head.target);
    s += r->head.version == 10 ? " HTTP/1.0\"" : " HTTP/1.1\""; // the request line, as nginx logs it
    return s;
}

void on_deliver(evutil_socket_t, short, void *arg) {
    auto *c = static_cast<pt_upstream_conn *>(arg);
    int status = c->deliver_status;
    clock::update();
    if (c->cancelled) {
        if (!status && c->server) c->server->active--;
        conn_free(c);
        return;
    }
    detach_wait(c);
    auto cb = c->cb;
    void *data = c->data;
    if (status) {
        conn_free(c);
        cb(data, nullptr, status);
    } else {
        cb(data, c, 0);
    }
}

void deliver_later(pt_upstream_conn *c, int status) {
    // callbacks never run inside upstream_connect(): the caller has not yet
    // returned PT_AGAIN. An active event runs in this same pass of the loop
    // (no extra epoll_wait), and it is the connection's own: no allocation.
    c->deliver_status = status;
    if (!c->deliver) c->deliver = event_new(current_worker()->base, -1, 0, on_deliver, c);
    event_active(c->deliver, EV_TIMEOUT, 1);
}

void count_failure(pt_upstream_conn *c, UpstreamServer *s) {
    if (report(*c->u, *s, true, clock::now_ms()))
        PT_LOG(
            log::Warn, c->conn_id,
            "upstream server temporarily disabled while connecting to upstream, upstream: \"%s\"",
            s->name.c_str());
}

void on_connect(evutil_socket_t fd, short what, void *arg);

// Starts a non-blocking connect to s. False when it failed at once (a unix
// socket refused or missing); the failure is logged and counted.
bool start_connect(pt_upstream_conn *c, UpstreamServer *s) {
    c->tries++;
    c->server = s;
    int fd = socket(s->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        PT_LOG(log::Alert, c->conn_id, "socket() failed (%d: %s)", errno, strerror(errno));
        return false;
    }
    if (s->addr.ss_family != AF_UNIX) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    s->active++;
    c->fd = fd;
    int rc = connect(fd, reinterpret_cast<sockaddr *>(&s->addr), s->addrlen);
    if (rc == 0) {
        // connected at once (a unix socket with room in its backlog): the
        // request goes out in this pass of the loop, no writability wait
        deliver_later(c, 0);
        return true;
    }
    if (errno == EINPROGRESS || errno == EAGAIN) {
        c->ev = event_new(current_worker()->base, fd, EV_WRITE, on_connect, c);
        timeval tv{time_t(c->timeout_ms / 1000), suseconds_t((c->timeout_ms % 1000) * 1000)};
        event_add(c->ev, &tv);
        return true;
    }
    int err = errno;
    // unix sockets fail at once: "socket permission denied", "no such file", refused
    if (log::rate_ok(5, 20))
        PT_LOG(log::Err, c->conn_id, "connect() to %s failed (%d: %s) while connecting to upstream%s",
               s->name.c_str(), err, strerror(err), request_context(c).c_str());
    close(fd);
    c->fd = -1;
    s->active--;
    count_failure(c, s);
    return false;
}

// The next server for this request (next_upstream after a failed connect),
// as long as there are servers left to try.
void connect_next(pt_upstream_conn *c) {
    while (c->tries < int(c->u->servers.size())) {
        UpstreamServer *s = c->u->balancer->pick(*c->u, c->pick, clock::now_ms());
        if (!s) break;
        if (start_connect(c, s)) return;
    }
    if (c->tries == 0)
        PT_LOG(log::Err, c->conn_id, "no live upstreams while connecting to upstream \"%s\"",
               c->u->name.c_str());
    deliver_later(c, c->fail_status);
}

// The client address ip_hash keys on, after realip. Connection::peer is
// only filled by realip today, so the text form (always set) is the fallback.
sockaddr_storage client_sockaddr(pt_request *r) {
    sockaddr_storage ss = r->c->peer;
    if (ss.ss_family != AF_UNSPEC) return ss;
    const std::string &text = r->c->peer_addr;
    auto *a4 = reinterpret_cast<sockaddr_in *>(&ss);
    auto *a6 = reinterpret_cast<sockaddr_in6 *>(&ss);
    if (inet_pton(AF_INET, text.c_str(), &a4->sin_addr) == 1)
        a4->sin_family = AF_INET;
    else if (inet_pton(AF_INET6, text.c_str(), &a6->sin6_addr) == 1)
        a6->sin6_family = AF_INET6;
    return ss;
}

void on_connect(evutil_socket_t fd, short what, void *arg) {
    auto *c = static_cast<pt_upstream_conn *>(arg);
    clock::update();
    int err = 0;
    socklen_t len = sizeof err;
    if (what & EV_TIMEOUT)
        err = ETIMEDOUT;
    else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        err = errno;
    event_free(c->ev);
    c->ev = nullptr;
    if (!err) {
        detach_wait(c);
        c->cb(c->data, c, 0);
        return;
    }
    if (log::rate_ok(5, 20))
        PT_LOG(log::Err, c->conn_id,
               "connect() failed (%d: %s) while connecting to upstream%s, upstream: \"%s\"", err,
               strerror(err), request_context(c).c_str(), c->server->name.c_str());
    close(c->fd);
    c->fd = -1;
    c->server->active--;
    count_failure(c, c->server);
    c->fail_status = err == ETIMEDOUT ? 504 : 502;
    connect_next(c);
}
} // namespace

Upstream::Upstream() : balancer(make_balancer(BalanceMethod::RoundRobin)) {}
Upstream::~Upstream() = default;

const pt_directive *upstream_directives() {
    return kDirectives;
}

Upstream *upstream_ref(Cycle &c, std::string_view target, std::string &err) {
    bool address = target.rfind("unix:", 0) == 0 || target.find(':') != std::string_view::npos;
    if (!address) {
        if (Upstream *u = find_named(c, target)) return u;
        c.http->upstreams.push_back(std::make_unique<Upstream>());
        Upstream *u = c.http->upstreams.back().get();
        u->name = std::string(target);
        return u; // defined later in the file, or an error at upstream_finish()
    }
    for (auto &u : c.http->upstreams)
        if (u->implicit && u->name == target) return u.get();
    UpstreamServer s;
    if (const char *e = resolve(target, s, true)) {
        err = std::string(e) + " \"" + std::string(target) + "\"";
        return nullptr;
    }
    s.server = std::string(target);
    c.http->upstreams.push_back(std::make_unique<Upstream>());
    Upstream *u = c.http->upstreams.back().get();
    u->name = std::string(target);
    u->implicit = u->defined = true;
    u->servers.push_back(s);
    return u;
}

bool upstream_finish(Cycle &c, std::string &err) {
    for (auto &u : c.http->upstreams)
        if (!u->defined) {
            err = "host not found in upstream \"" + u->name + "\"";
            if (!u->file.empty()) err += " in " + u->file + ":" + std::to_string(u->line);
            return false;
        }
    return true;
}

static void watch(pt_request *r, pt_upstream_conn *c) {
    // in the request's arena: it lives exactly as long as the request
    auto *w = new (r->arena.allocate(sizeof(ConnectWait), alignof(ConnectWait))) ConnectWait{c};
    c->wait = w;
    r->cleanups.emplace_back(cancel_wait, w);
}

int upstream_connect(pt_request *r, Upstream *u, int64_t timeout_ms, pt_connect_fn cb, void *data) {
    PickState pick;
    switch (u->method) {
    case BalanceMethod::IpHash:
        pick.key = ip_hash_key(client_sockaddr(r));
        break;
    case BalanceMethod::Hash:
    case BalanceMethod::ConsistentHash:
        // an empty key (or one that failed to evaluate) balances round-robin, as nginx
        if (!eval(r, u->hash_key, pick.key)) pick.key.clear();
        break;
    default:
        break;
    }
    UpstreamServer *s = u->balancer->pick(*u, pick, clock::now_ms());
    pt_upstream_conn *c = s && u->keepalive ? pool_take(*u, *s) : nullptr;
    bool idle = c != nullptr;
    if (idle) {
        c->reused = true;
        c->tries = 1;
        s->active++;
    } else {
        c = new pt_upstream_conn;
        c->u = u;
    }
    c->cb = cb;
    c->data = data;
    c->r = r;
    c->timeout_ms = timeout_ms > 0 ? timeout_ms : 60000;
    c->conn_id = r->c->id;
    c->pick = std::move(pick);
    watch(r, c);
    if (idle) {
        deliver_later(c, 0);
        return PT_OK;
    }
    if (!s) {
        PT_LOG(log::Err, c->conn_id, "no live upstreams while connecting to upstream \"%s\"",
               u->name.c_str());
        deliver_later(c, 502);
        return PT_OK;
    }
    if (!start_connect(c, s)) connect_next(c);
    return PT_OK;
}

int upstream_conn_fd(pt_upstream_conn *c) {
    io_stop(c); // the caller does its own I/O on it
    return c->fd;
}
int upstream_conn_reused(pt_upstream_conn *c) {
    return c->reused;
}
pt_str upstream_conn_name(pt_upstream_conn *c) {
    return {c->server->name.data(), c->server->name.size()};
}

void upstream_release(pt_upstream_conn *c, int keep, int failed) {
    Upstream *u = c->u;
    UpstreamServer *s = c->server;
    s->active--;
    int64_t now = clock::now_ms();
    if (report(*u, *s, failed, now))
        PT_LOG(log::Warn, c->conn_id, "upstream server temporarily disabled, upstream: \"%s\"",
               s->name.c_str());
    c->requests++;
    Worker *w = current_worker();
    if (!keep || !io_clean(c) || !u->keepalive || c->requests >= u->keepalive_requests || !w || w->draining) {
        conn_free(c);
        return;
    }
    pool_put(*u, c, w->base, now);
}
} // namespace portico
