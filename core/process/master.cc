#include "process/master.h"

#include "base/clock.h"
#include "config/load.h"
#include "http/conf.h"
#include "log/error_log.h"
#include "process/listen_sockets.h"
#include "process/worker.h"
#include "http/request.h"

#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <grp.h>
#include <map>
#include <pwd.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

namespace portico {
namespace {
volatile sig_atomic_t g_reload, g_quit, g_term, g_reopen, g_child;

void on_signal(int sig) {
    switch (sig) {
    case SIGHUP: g_reload = 1; break;
    case SIGQUIT: g_quit = 1; break;
    case SIGTERM:
    case SIGINT: g_term = 1; break;
    case SIGUSR1: g_reopen = 1; break;
    case SIGCHLD: g_child = 1; break;
    }
}

struct WorkerProc {
    int slot;
    uint64_t generation;
    bool exiting;
};
std::map<pid_t, WorkerProc> g_workers;
uint64_t g_generation = 0;

// The user and group workers run as, from `user name [group]`; false when
// they keep the master's (not root, or no `user`).
bool worker_identity(const Cycle &c, std::string &user, uid_t &uid, gid_t &gid) {
    if (c.user.empty() || getuid() != 0) return false;
    user = c.user;
    std::string group;
    if (auto sp = user.find(' '); sp != std::string::npos) {
        group = user.substr(sp + 1);
        user.resize(sp);
    }
    passwd *pw = getpwnam(user.c_str());
    if (!pw) {
        PT_LOG(log::Emerg, 0, "getpwnam(\"%s\") failed", user.c_str());
        _exit(2);
    }
    uid = pw->pw_uid;
    gid = pw->pw_gid;
    if (!group.empty()) {
        if (struct group *gr = getgrnam(group.c_str())) gid = gr->gr_gid;
    }
    return true;
}

void drop_privileges(const Cycle &c) {
    std::string user;
    uid_t uid;
    gid_t gid;
    if (!worker_identity(c, user, uid, gid)) return;
    if (setgid(gid) || initgroups(user.c_str(), gid) || setuid(uid)) {
        PT_LOG(log::Emerg, 0, "cannot switch to user \"%s\" (%s)", user.c_str(), strerror(errno));
        _exit(2);
    }
}

pid_t spawn_worker(Cycle *c, int slot) {
    pid_t pid = fork();
    if (pid < 0) {
        PT_LOG(log::Alert, 0, "fork() failed (%d: %s)", errno, strerror(errno));
        return -1;
    }
    if (pid == 0) {
        // The master's handlers go while the signals are still blocked: a TERM
        // sent to this pid before the worker has its own handlers stays pending
        // for them (worker_run unblocks). Unblocking first let the inherited
        // master handler swallow it, and the worker outlived its master.
        for (int s : {SIGHUP, SIGQUIT, SIGTERM, SIGINT, SIGUSR1, SIGCHLD}) signal(s, SIG_DFL);
        drop_privileges(*c);
        _exit(worker_run(c, slot));
    }
    g_workers[pid] = {slot, g_generation, false};
    return pid;
}

// USR1 after a rotation: the files were renamed away, and workers that no
// longer run as root could not create them in a root-owned directory. So the
// master creates each log file first and hands it to the workers' user, as
// nginx does, then the workers reopen their own descriptors.
void prepare_log_files(const Cycle &c) {
    std::vector<std::string> paths;
    if (c.error_log != "stderr") paths.push_back(resolve_path(c, c.error_log));
    if (c.http)
        for (auto &al : c.http->access_logs) paths.push_back(al->path);
    std::string user;
    uid_t uid = 0;
    gid_t gid = 0;
    bool chown_to_worker = worker_identity(c, user, uid, gid);
    for (auto &p : paths) {
        int fd = ::open(p.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) {
            PT_LOG(log::Alert, 0, "open() \"%s\" failed (%d: %s)", p.c_str(), errno, strerror(errno));
            continue;
        }
        if (chown_to_worker && fchown(fd, uid, gid) != 0)
            PT_LOG(log::Alert, 0, "fchown(\"%s\", %s) failed (%d: %s)", p.c_str(), user.c_str(),
                   errno, strerror(errno));
        ::close(fd);
    }
}

void signal_workers(int sig, bool only_old) {
    for (auto &[pid, w] : g_workers) {
        if (only_old && w.generation == g_generation) continue;
        if (sig == SIGQUIT || sig == SIGTERM) w.exiting = true;
        kill(pid, sig);
    }
}

bool write_pid(const std::string &path) {
    std::ofstream f(path, std::ios::trunc);
    if (!f) {
        PT_LOG(log::Emerg, 0, "open() \"%s\" failed (%d: %s)", path.c_str(), errno, strerror(errno));
        return false;
    }
    f << getpid() << "\n";
    return true;
}

void reap(Cycle *c) {
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        auto it = g_workers.find(pid);
        if (it == g_workers.end()) continue;
        WorkerProc w = it->second;
        g_workers.erase(it);
        if (WIFSIGNALED(status))
            PT_LOG(log::Alert, 0, "worker process %d exited on signal %d", int(pid), WTERMSIG(status));
        else
            PT_LOG(log::Notice, 0, "worker process %d exited with code %d", int(pid),
                   WEXITSTATUS(status));
        // A crashed worker of the current generation is replaced; the others
        // were told to go.
        if (!w.exiting && w.generation == g_generation && !g_quit && !g_term) {
            pid_t np = spawn_worker(c, w.slot);
            if (np > 0) PT_LOG(log::Notice, 0, "start worker process %d", int(np));
        }
    }
}

int resolve_workers(int n) {
    if (n > 0) return n;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    return cpus > 0 ? int(cpus) : 1;
}
} // namespace

int send_signal(const Options &o) {
    static const std::map<std::string, int> sigs = {
        {"stop", SIGTERM}, {"quit", SIGQUIT}, {"reopen", SIGUSR1}, {"reload", SIGHUP}};
    auto it = sigs.find(o.signal);
    if (it == sigs.end()) {
        fprintf(stderr, "portico: invalid option: \"-s %s\"\n", o.signal.c_str());
        return 1;
    }
    std::unique_ptr<Cycle> c;
    std::string err;
    if (!load_cycle(o, c, err, /*for_signal=*/true)) {
        fprintf(stderr, "portico: [emerg] %s\n", err.c_str());
        return 1;
    }
    std::string pidfile = resolve_path(*c, c->pid_path);
    std::ifstream f(pidfile);
    long pid = 0;
    if (!(f >> pid) || pid <= 0) {
        fprintf(stderr, "portico: [error] invalid PID number in \"%s\"\n", pidfile.c_str());
        return 1;
    }
    if (kill(pid_t(pid), it->second) != 0) {
        fprintf(stderr, "portico: [alert] kill(%ld, %d) failed (%d: %s)\n", pid, it->second, errno,
                strerror(errno));
        return 1;
    }
    return 0;
}

int master_run(const Options &o) {
    std::unique_ptr<Cycle> cycle;
    std::string err;
    if (!load_cycle(o, cycle, err, false)) {
        fprintf(stderr, "portico: [emerg] %s\n", err.c_str());
        return 1;
    }
    Cycle *c = cycle.get();
    if (!o.error_log.empty()) c->error_log = o.error_log;
    if (!log::open(resolve_path(*c, c->error_log), log::Level(c->error_level), err)) {
        fprintf(stderr, "portico: [emerg] %s\n", err.c_str());
        return 1;
    }
    for (auto &w : c->warnings) PT_LOG(log::Warn, 0, "%s", w.c_str());
    if (!open_access_logs(*c, err) || !open_listen_sockets(*c, err)) {
        PT_LOG(log::Emerg, 0, "%s", err.c_str());
        fprintf(stderr, "portico: [emerg] %s\n", err.c_str());
        return 1;
    }
    if (c->daemon) {
        pid_t p = fork();
        if (p < 0) return 1;
        if (p > 0) _exit(0);
        setsid();
        int fd = ::open("/dev/null", O_RDWR);
        if (fd >= 0) {
            dup2(fd, 0);
            dup2(fd, 1);
            if (c->error_log != "stderr") dup2(fd, 2);
            if (fd > 2) close(fd);
        }
    }
    std::string pidfile = resolve_path(*c, c->pid_path);
    if (c->master_process && !write_pid(pidfile)) return 1;
    signal(SIGPIPE, SIG_IGN);

    if (!c->master_process) {
        // single process mode, for debugging and benchmarks of one core
        write_pid(pidfile);
        int rc = worker_run(c, 0);
        unlink(pidfile.c_str());
        return rc;
    }

    sigset_t block, none;
    sigemptyset(&block);
    for (int s : {SIGHUP, SIGQUIT, SIGTERM, SIGINT, SIGUSR1, SIGCHLD}) {
        sigaddset(&block, s);
        struct sigaction sa{};
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(s, &sa, nullptr);
    }
    sigprocmask(SIG_BLOCK, &block, nullptr);
    sigemptyset(&none);

    PT_LOG(log::Notice, 0, "portico started, master process %d", int(getpid()));
    int nworkers = resolve_workers(c->worker_processes);
    for (int i = 0; i < nworkers; i++) spawn_worker(c, i);

    int64_t term_deadline = 0;
    for (;;) {
        if (g_workers.empty() && (g_quit || g_term)) break;
        if (g_term && term_deadline) {
            // fast stop: children that ignore TERM are killed after 5 s
            timespec ts{0, 100 * 1000 * 1000};
            sigprocmask(SIG_UNBLOCK, &block, nullptr);
            nanosleep(&ts, nullptr);
            sigprocmask(SIG_BLOCK, &block, nullptr);
            clock::update();
            if (clock::now_ms() > term_deadline) signal_workers(SIGKILL, false);
        } else {
            sigsuspend(&none);
        }
        clock::update();
        if (g_child) {
            g_child = 0;
            reap(c);
        }
        if (g_term && !term_deadline) {
            PT_LOG(log::Notice, 0, "signal %d received, exiting", SIGTERM);
            signal_workers(SIGTERM, false);
            term_deadline = clock::now_ms() + 5000;
            continue;
        }
        if (g_quit == 1) {
            g_quit = 2;
            PT_LOG(log::Notice, 0, "gracefully shutting down");
            signal_workers(SIGQUIT, false);
            close_all_listen_sockets();
        }
        if (g_reopen) {
            g_reopen = 0;
            PT_LOG(log::Notice, 0, "reopening logs");
            log::reopen();
            prepare_log_files(*c);
            signal_workers(SIGUSR1, false);
        }
        if (g_reload && !g_quit && !g_term) {
            g_reload = 0;
            PT_LOG(log::Notice, 0, "reconfiguring");
            std::unique_ptr<Cycle> next;
            std::string e;
            if (!load_cycle(o, next, e, false)) {
                PT_LOG(log::Emerg, 0, "%s", e.c_str());
                PT_LOG(log::Notice, 0, "reload refused, the old configuration keeps running");
                continue;
            }
            if (!open_access_logs(*next, e) || !open_listen_sockets(*next, e)) {
                PT_LOG(log::Emerg, 0, "%s", e.c_str());
                PT_LOG(log::Notice, 0, "reload refused, the old configuration keeps running");
                continue;
            }
            if (!o.error_log.empty()) next->error_log = o.error_log;
            log::open(resolve_path(*next, next->error_log), log::Level(next->error_level), e);
            for (auto &w : next->warnings) PT_LOG(log::Warn, 0, "%s", w.c_str());
            g_generation++;
            int n = resolve_workers(next->worker_processes);
            for (int i = 0; i < n; i++) spawn_worker(next.get(), i);
            // Old workers stop accepting and finish what they have; the
            // listening sockets stay open in the new ones, so nothing is lost.
            signal_workers(SIGQUIT, true);
            close_unused_listen_sockets(*next);
            cycle = std::move(next);
            c = cycle.get();
        }
    }
    unlink(pidfile.c_str());
    PT_LOG(log::Notice, 0, "exit");
    return 0;
}
} // namespace portico
