#include "process/worker.h"

#include "base/clock.h"
#include "config.h"
#include "http/request.h"
#include "log/error_log.h"
#include "module/loader.h"

#include <csignal>
#include <sys/socket.h>
#include <fcntl.h>
#include <cerrno>
#include <cstring>
#include <unistd.h>

#if PT_WITH_LSAN
#include <sanitizer/lsan_interface.h>
#endif

namespace portico {
namespace {
Worker *g_worker;

// EMFILE/ENFILE and kin: pause this listener for a moment instead of
// spinning on a socket that stays readable (nginx disables accept events
// likewise).
void pause_listener(Worker *w, int fd, int err) {
    if (log::rate_ok(1, 1)) PT_LOG(log::Alert, 0, "accept() failed (%d: %s)", err, strerror(err));
    event *ev = nullptr;
    for (event *l : w->listeners)
        if (event_get_fd(l) == fd) ev = l;
    if (!ev) return;
    event_del(ev);
    static timeval tv{0, 200000};
    event_base_once(g_worker->base, -1, EV_TIMEOUT,
                    [](evutil_socket_t, short, void *arg) {
                        // draining: worker_stop_accepting freed the event
                        if (!g_worker->draining) event_add(static_cast<event *>(arg), nullptr);
                    },
                    ev, &tv);
}

// A listening socket is readable. `multi_accept off` (nginx's default):
// one connection per readiness report; the socket stays readable, so epoll
// reports it again next pass, after the connections already served had
// their turn; a burst of new TLS connections (~1 ms of RSA each) then
// no longer queues ahead of every established one. `on`: accept until the
// backlog is empty. Either way no accept4() is spent just to see EAGAIN
// in the common case of one pending connection.
void on_listen(evutil_socket_t fd, short, void *arg) {
    clock::update();
    auto *g = static_cast<ListenGroup *>(arg);
    Worker *w = g_worker;
    do {
        sockaddr_storage ss;
        socklen_t len = sizeof ss;
        int cfd = accept4(fd, reinterpret_cast<sockaddr *>(&ss), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0) {
            int err = errno;
            if (err == EAGAIN || err == EWOULDBLOCK) return;
            // the client gave up before we took it; the next one may be there
            if (err == EINTR || err == ECONNABORTED) continue;
            if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM)
                return pause_listener(w, fd, err);
            if (log::rate_ok(1, 1))
                PT_LOG(log::Alert, 0, "accept() failed (%d: %s)", err, strerror(err));
            return;
        }
        connection_accept(w, g, cfd, reinterpret_cast<sockaddr *>(&ss), int(len));
    } while (w->cycle->multi_accept && !w->draining);
}

void check_drained(Worker *w) {
    if (w->draining && w->conns.empty()) event_base_loopbreak(w->base);
}

void on_signal(evutil_socket_t sig, short, void *arg) {
    auto *w = static_cast<Worker *>(arg);
    clock::update();
    switch (sig) {
    case SIGQUIT:
        if (w->draining) return;
        PT_LOG(log::Notice, 0, "gracefully shutting down");
        w->draining = true;
        worker_stop_accepting(w);
        {
            // copy: connection_drain may close and erase
            std::vector<Connection *> cs(w->conns.begin(), w->conns.end());
            for (Connection *c : cs) connection_drain(c);
        }
        {
            static timeval tick{0, 100000};
            w->drain_timer = event_new(w->base, -1, EV_PERSIST,
                                       [](evutil_socket_t, short, void *a) {
                                           check_drained(static_cast<Worker *>(a));
                                       },
                                       w);
            event_add(w->drain_timer, &tick);
        }
        check_drained(w);
        break;
    case SIGTERM:
    case SIGINT:
        PT_LOG(log::Notice, 0, "exiting");
        event_base_loopbreak(w->base);
        break;
    case SIGUSR1:
        // a file that cannot be reopened keeps its old descriptor: lines go
        // on to the renamed file rather than nowhere, and the reason is logged
        if (!log::reopen())
            PT_LOG(log::Alert, 0, "cannot reopen the error log (%d: %s)", errno, strerror(errno));
        for (auto &al : w->cycle->http->access_logs) {
            // same flags as at start: workers reopen their own descriptors
            int fd = ::open(al->path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
            if (fd < 0) {
                PT_LOG(log::Alert, 0, "open() \"%s\" failed (%d: %s)", al->path.c_str(), errno,
                       strerror(errno));
                continue;
            }
            dup2(fd, al->fd);
            ::close(fd);
        }
        PT_LOG(log::Notice, 0, "reopening logs");
        break;
    }
}
} // namespace

Worker *current_worker() { return g_worker; }

void worker_stop_accepting(Worker *w) {
    for (event *l : w->listeners) event_free(l);
    w->listeners.clear();
    // This process's copies of the listening sockets go too: once the master
    // and the other draining workers have closed theirs, the kernel refuses
    // new connections instead of queueing them where nobody accepts (QUIT).
    // On reload the master and the new workers still hold them open.
    // Closed in the next loop pass, once the epoll changelist has sent the
    // EPOLL_CTL_DEL: a socket the master still holds open outlives our
    // close() in the epoll set, and a connection queued on it would wake
    // this loop over and over for an fd libevent no longer knows.
    // (a zero timeout would run it in this very pass: 1 µs goes through
    // the timer heap, so after the next dispatch)
    static timeval next_pass{0, 1};
    event_base_once(w->base, -1, EV_TIMEOUT,
                    [](evutil_socket_t, short, void *arg) {
                        for (auto &g : static_cast<Worker *>(arg)->cycle->http->groups)
                            if (g->listen.fd >= 0) {
                                ::close(g->listen.fd);
                                g->listen.fd = -1;
                            }
                    },
                    w, &next_pass);
}

int worker_run(Cycle *cycle, int slot) {
    auto *w = new Worker;
    g_worker = w;
    w->cycle = cycle;
    w->slot = slot;
    event_config *cfg = event_config_new();
    event_config_set_flag(cfg, EVENT_BASE_FLAG_NOLOCK);
    // epoll_ctl calls wait for the end of the loop pass and coalesce per fd:
    // a response that arms and disarms the write event within one pass
    // (TLS: libevent's OpenSSL bufferevent does on every response) costs
    // none, a close after a read costs one DEL. libevent's caveat: a
    // watched fd whose open file is shared (dup(), fork()) stays in the
    // epoll set after close() if the DEL has not gone yet. Workers neither
    // dup nor fork; the listening sockets, shared with the master, are
    // closed a pass after their DEL (worker_stop_accepting). An fd closed
    // and reused within a pass is handled by libevent (MOD retried as ADD).
    event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    w->base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    if (!w->base) {
        PT_LOG(log::Emerg, 0, "event_base_new() failed");
        return 2;
    }
    for (int sig : {SIGQUIT, SIGTERM, SIGINT, SIGUSR1}) {
        event *ev = evsignal_new(w->base, sig, on_signal, w);
        event_add(ev, nullptr);
        w->signals.push_back(ev);
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    // blocked since the fork (spawn_worker): a signal that came meanwhile is
    // delivered now, to the handlers above
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    for (auto &g : cycle->http->groups) {
        event *l = event_new(w->base, g->listen.fd, EV_READ | EV_PERSIST, on_listen, g.get());
        if (!l || event_add(l, nullptr) != 0) {
            PT_LOG(log::Emerg, 0, "cannot listen on %s", g->listen.text.c_str());
            return 2;
        }
        w->listeners.push_back(l);
    }
    modules_init_worker(*cycle);
    event_base_dispatch(w->base);
    // fast stop or drained: close what is left
    std::vector<Connection *> cs(w->conns.begin(), w->conns.end());
    for (Connection *c : cs) connection_close(c);
    modules_exit_worker(*cycle);
#if PT_WITH_LSAN
    // Workers leave with _exit(), which skips LSan's atexit check: run it
    // here, after the connections and modules are gone, so that what a
    // worker lost is reported too (what is still reachable is not a leak).
    __lsan_do_leak_check();
#endif
    return 0;
}
} // namespace portico
