// Host-driven I/O on a plain upstream connection (pt_upstream_io): the read
// watch is made once per connection and stays registered whether the
// connection serves a request or waits in the keep-alive pool, so reusing a
// pooled connection changes nothing in the event loop's kernel set. Writes
// are tried at once; a write watch exists only while the socket is full.
// Reads go straight into the input with recv(), without bufferevent's
// FIONREAD probe.
#include "upstream/pool.h"

#include "base/clock.h"
#include "process/worker.h"

#include <cerrno>
#include <sys/socket.h>

namespace portico {
namespace {
// one recv() per readiness; the loop comes back while more is pending
constexpr size_t kReadSize = 16384;

timeval tv_of(int64_t ms) {
    return {time_t(ms / 1000), suseconds_t((ms % 1000) * 1000)};
}

// nginx's NGX_TIMER_LAZY_DELAY: a deadline that moved later by less than
// this keeps its armed timer, which then fires a little early and is armed
// again for the rest of the wait.
constexpr int64_t kLazyMs = 300;

void on_deadline(evutil_socket_t, short, void *arg);

void arm(pt_upstream_conn *c, int64_t now, int64_t ms) {
    timeval tv = tv_of(ms);
    event_add(c->deadline, &tv);
    c->armed_ms = now + ms;
}

// The current wait ends `ms` from now.
void set_deadline(pt_upstream_conn *c, event_base *base, int64_t ms) {
    int64_t now = clock::now_ms();
    c->due_ms = now + ms;
    c->span_ms = ms;
    if (c->armed_ms && c->armed_ms <= c->due_ms && c->due_ms - c->armed_ms < kLazyMs) return;
    if (!c->deadline) c->deadline = evtimer_new(base, on_deadline, c);
    arm(c, now, ms);
}

void on_deadline(evutil_socket_t, short, void *arg) {
    auto *c = static_cast<pt_upstream_conn *>(arg);
    clock::update();
    c->armed_ms = 0;
    int64_t now = clock::now_ms();
    if (now < c->due_ms) {
        // the wait was extended after arming; bounded by its length in case
        // the wall clock stepped back
        int64_t left = c->due_ms - now;
        arm(c, now, left < c->span_ms ? left : c->span_ms);
        return;
    }
    if (c->pooled) {
        pool_evict(c); // keepalive_timeout
        return;
    }
    // taken from the pool, its gateway not started yet: nothing to time
    if (c->io) c->io->event(c->io_data, PT_IO_READ_TIMEOUT);
}

void on_readable(evutil_socket_t fd, short what, void *arg) {
    auto *c = static_cast<pt_upstream_conn *>(arg);
    clock::update();
    if (c->pooled) {
        pool_evict(c);
        return;
    }
    if (!c->io) {
        // taken from the pool, its gateway not started yet: it will see
        // what arrived (a close, usually) once it starts
        if (what & EV_READ) {
            event_del(c->rev);
            c->rev_paused = true;
        }
        return;
    }
    // into the stack, then only what came into the input: a small answer
    // then costs a small chain (malloc's fast path), not a 16 KiB one
    char buf[kReadSize];
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n < 0) {
        if (errno != EAGAIN && errno != EINTR) c->io->event(c->io_data, PT_IO_ERROR);
        return;
    }
    if (n == 0) {
        c->io->event(c->io_data, PT_IO_EOF);
        return;
    }
    // the read timeout is between two successive reads (nginx)
    c->due_ms = clock::now_ms() + c->read_timeout_ms;
    if (evbuffer_add(c->in, buf, size_t(n)) != 0) {
        errno = ENOMEM;
        c->io->event(c->io_data, PT_IO_ERROR);
        return;
    }
    c->io->read(c->io_data, c->in); // may release c
}

void on_writable(evutil_socket_t fd, short what, void *arg) {
    auto *c = static_cast<pt_upstream_conn *>(arg);
    clock::update();
    if (!c->io) return;
    if (what & EV_TIMEOUT) {
        c->io->event(c->io_data, PT_IO_WRITE_TIMEOUT);
        return;
    }
    if (evbuffer_write(c->out, fd) < 0 && errno != EAGAIN && errno != EINTR) {
        c->io->event(c->io_data, PT_IO_ERROR);
        return;
    }
    if (evbuffer_get_length(c->out) == 0) event_del(c->wev);
}

void watch_reads(pt_upstream_conn *c, event_base *base, int64_t ms) {
    if (!c->rev) {
        c->rev = event_new(base, c->fd, EV_READ | EV_PERSIST, on_readable, c);
        event_add(c->rev, nullptr);
    } else if (c->rev_paused) {
        event_add(c->rev, nullptr);
    }
    c->rev_paused = false;
    set_deadline(c, base, ms);
}
} // namespace

void io_watch_idle(pt_upstream_conn *c, event_base *base, int64_t idle_ms) {
    c->io = nullptr;
    c->io_data = nullptr;
    if (c->wev) event_del(c->wev);
    watch_reads(c, base, idle_ms);
}

void io_stop(pt_upstream_conn *c) {
    if (c->rev) event_free(c->rev);
    if (c->wev) event_free(c->wev);
    if (c->deadline) event_free(c->deadline);
    c->rev = c->wev = c->deadline = nullptr;
    c->armed_ms = 0;
    c->io = nullptr;
}

void io_free(pt_upstream_conn *c) {
    io_stop(c);
    if (c->in) evbuffer_free(c->in);
    if (c->out) evbuffer_free(c->out);
    c->in = c->out = nullptr;
}

bool io_clean(const pt_upstream_conn *c) {
    return (!c->in || evbuffer_get_length(c->in) == 0) &&
           (!c->out || evbuffer_get_length(c->out) == 0);
}

void upstream_io_start(pt_upstream_conn *c, const pt_upstream_io *io, void *data,
                       int64_t read_timeout_ms, int64_t send_timeout_ms) {
    c->io = io;
    c->io_data = data;
    c->read_timeout_ms = read_timeout_ms > 0 ? read_timeout_ms : 60000;
    c->send_timeout_ms = send_timeout_ms > 0 ? send_timeout_ms : 60000;
    if (!c->in) c->in = evbuffer_new();
    if (!c->out) c->out = evbuffer_new();
    watch_reads(c, current_worker()->base, c->read_timeout_ms);
}

void upstream_io_write(pt_upstream_conn *c, const void *data, size_t len) {
    auto *p = static_cast<const char *>(data);
    if (len && evbuffer_get_length(c->out) == 0) {
        ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
        // an error is left for the write watch to find and report
        if (n > 0) {
            p += n;
            len -= size_t(n);
        }
    }
    if (!len) return;
    evbuffer_add_reference(c->out, p, len, nullptr, nullptr);
    if (!c->wev) c->wev = event_new(current_worker()->base, c->fd, EV_WRITE | EV_PERSIST, on_writable, c);
    timeval tv = tv_of(c->send_timeout_ms);
    event_add(c->wev, &tv);
}

size_t upstream_io_unsent(pt_upstream_conn *c) {
    return c->out ? evbuffer_get_length(c->out) : 0;
}

void *upstream_io_input(pt_upstream_conn *c) {
    return c->in;
}
} // namespace portico
