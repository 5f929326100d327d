// After a 101 (Upgrade, e.g. WebSocket) the client connection and the
// upstream connection become a byte tunnel with an idle timeout. Each side
// stops reading while the other side's output is above a high-water mark,
// so a slow peer never makes us buffer without bound.
#include "base/clock.h"
#include "http/request.h"
#include "log/error_log.h"
#include "process/worker.h"
#include "upstream/upstream.h"

namespace portico {
namespace {
constexpr size_t kHighWater = 256 * 1024;

struct Tunnel {
    Connection *c = nullptr;
    bufferevent *up = nullptr;
    pt_upstream_conn *uc = nullptr;
};

void pump(bufferevent *from, bufferevent *to) {
    evbuffer_add_buffer(bufferevent_get_output(to), bufferevent_get_input(from));
    if (evbuffer_get_length(bufferevent_get_output(to)) > kHighWater)
        bufferevent_disable(from, EV_READ);
}

void on_client_read(bufferevent *bev, void *arg) {
    auto *t = static_cast<Tunnel *>(arg);
    pump(bev, t->up);
}
void on_up_read(bufferevent *bev, void *arg) {
    auto *t = static_cast<Tunnel *>(arg);
    pump(bev, t->c->bev);
}
// the other side drained: read again
void on_client_write(bufferevent *, void *arg) {
    bufferevent_enable(static_cast<Tunnel *>(arg)->up, EV_READ);
}
void on_up_write(bufferevent *, void *arg) {
    bufferevent_enable(static_cast<Tunnel *>(arg)->c->bev, EV_READ);
}
void on_end(bufferevent *, short what, void *arg) {
    auto *t = static_cast<Tunnel *>(arg);
    clock::update();
    if (what & BEV_EVENT_CONNECTED) return;
    if (what & BEV_EVENT_TIMEOUT)
        PT_LOG(log::Info, t->c->id, "tunnel idle timeout, client: %s", t->c->peer_addr.c_str());
    connection_close(t->c); // frees the tunnel through tunnel_free()
}
} // namespace

void tunnel_free(Connection *c) {
    auto *t = static_cast<Tunnel *>(c->tunnel);
    if (!t) return;
    c->tunnel = nullptr;
    if (t->up) bufferevent_free(t->up);
    if (t->uc) upstream_release(t->uc, 0, 0);
    delete t;
}

int start_tunnel(Request *r, pt_upstream_conn *uc, std::string_view pending, int64_t idle_ms) {
    if (!r->header_sent || r->status != 101) return PT_ERROR;
    Connection *c = r->c;
    auto *t = new Tunnel;
    t->c = c;
    t->uc = uc;
    t->up = bufferevent_socket_new(c->worker->base, upstream_conn_fd(uc), 0);
    c->tunnel = t;
    // the request is over as far as HTTP goes: log it and let it go
    r->finished = true;
    log_request(r);
    c->req.reset();
    c->state = ConnState::Tunnel;
    evtimer_del(c->header_timer);
    c->header_timer_armed = false;
    c->timer_set_for = 0;
    out_spill(c); // the 101 head, when it was answered during process_input
    if (!pending.empty()) bufferevent_write(c->bev, pending.data(), pending.size());
    timeval idle{time_t(idle_ms / 1000), suseconds_t((idle_ms % 1000) * 1000)};
    bufferevent_setcb(c->bev, on_client_read, on_client_write, on_end, t);
    bufferevent_setcb(t->up, on_up_read, on_up_write, on_end, t);
    bufferevent_set_timeouts(c->bev, &idle, nullptr);
    bufferevent_set_timeouts(t->up, &idle, nullptr);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    bufferevent_enable(t->up, EV_READ | EV_WRITE);
    // bytes the client sent after its request head belong to the new protocol
    if (evbuffer_get_length(bufferevent_get_input(c->bev))) pump(c->bev, t->up);
    return PT_OK;
}
} // namespace portico
