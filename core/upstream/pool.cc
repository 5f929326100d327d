#include "upstream/pool.h"

#include <unistd.h>

namespace portico {
namespace {
void erase_at(Upstream &u, std::deque<IdleConn>::iterator it) {
    it->c->server->idle--;
    it->c->pooled = false;
    u.idle.erase(it);
}

void evict(Upstream &u, std::deque<IdleConn>::iterator it) {
    pt_upstream_conn *c = it->c;
    erase_at(u, it);
    conn_free(c);
}
} // namespace

// an idle connection became readable (the backend closed it, or sent bytes
// nobody asked for) or reached keepalive_timeout: not reusable
void pool_evict(pt_upstream_conn *c) {
    Upstream &u = *c->u;
    for (auto it = u.idle.begin(); it != u.idle.end(); ++it)
        if (it->c == c) {
            evict(u, it);
            return;
        }
}

void conn_free(pt_upstream_conn *c) {
    if (c->ev) event_free(c->ev);
    if (c->deliver) event_free(c->deliver);
    io_free(c);
    if (c->fd >= 0) close(c->fd);
    delete c;
}

int idle_cap(const Upstream &u) {
    return u.keepalive;
}

pt_upstream_conn *pool_take(Upstream &u, const UpstreamServer &s) {
    if (!s.idle) return nullptr;
    for (auto it = u.idle.end(); it != u.idle.begin();) {
        --it;
        pt_upstream_conn *c = it->c;
        if (c->server != &s) continue;
        // its read watch stays registered: the gateway's I/O takes it over
        erase_at(u, it);
        return c;
    }
    return nullptr;
}

void pool_put(Upstream &u, pt_upstream_conn *c, event_base *base, int64_t now_ms) {
    if (c->server->idle >= idle_cap(u)) {
        for (auto it = u.idle.begin(); it != u.idle.end(); ++it)
            if (it->c->server == c->server) {
                evict(u, it);
                break;
            }
    }
    if (int(u.idle.size()) >= u.keepalive) evict(u, u.idle.begin());
    c->reused = false;
    c->r = nullptr;
    c->pooled = true;
    io_watch_idle(c, base, u.keepalive_timeout_ms);
    u.idle.push_back(IdleConn{c, now_ms});
    c->server->idle++;
}
} // namespace portico
