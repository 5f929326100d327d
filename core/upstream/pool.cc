#include "upstream/pool.h"

#include <unistd.h>

namespace portico {
namespace {
void erase_at(Upstream &u, std::deque<IdleConn *>::iterator it) {
    IdleConn *ic = *it;
    u.idle.erase(it);
    ic->c->server->idle--;
    delete ic;
}

void evict(Upstream &u, std::deque<IdleConn *>::iterator it) {
    pt_upstream_conn *c = (*it)->c;
    erase_at(u, it);
    conn_free(c);
}

void on_idle_event(evutil_socket_t, short, void *arg) {
    // an idle connection became readable (the backend closed it, or sent
    // bytes nobody asked for) or reached keepalive_timeout: not reusable
    auto *c = static_cast<pt_upstream_conn *>(arg);
    Upstream &u = *c->u;
    for (auto it = u.idle.begin(); it != u.idle.end(); ++it)
        if ((*it)->c == c) {
            evict(u, it);
            return;
        }
}
} // namespace

void conn_free(pt_upstream_conn *c) {
    if (c->ev) event_free(c->ev);
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
        pt_upstream_conn *c = (*it)->c;
        if (c->server != &s) continue;
        erase_at(u, it);
        event_free(c->ev);
        c->ev = nullptr;
        return c;
    }
    return nullptr;
}

void pool_put(Upstream &u, pt_upstream_conn *c, event_base *base, int64_t now_ms) {
    if (c->server->idle >= idle_cap(u)) {
        for (auto it = u.idle.begin(); it != u.idle.end(); ++it)
            if ((*it)->c->server == c->server) {
                evict(u, it);
                break;
            }
    }
    if (int(u.idle.size()) >= u.keepalive) evict(u, u.idle.begin());
    c->reused = false;
    c->r = nullptr;
    c->ev = event_new(base, c->fd, EV_READ, on_idle_event, c);
    timeval tv{time_t(u.keepalive_timeout_ms / 1000),
               suseconds_t((u.keepalive_timeout_ms % 1000) * 1000)};
    event_add(c->ev, &tv);
    u.idle.push_back(new IdleConn{c, now_ms});
    c->server->idle++;
}
} // namespace portico
