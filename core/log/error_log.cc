#include "log/error_log.h"

#include "base/clock.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

namespace portico::log {
namespace {
int g_fd = 2;
std::string g_path = "stderr";
Level g_level = Err;
bool g_echo = false;
const char *const kNames[] = {"emerg", "alert", "crit", "error", "warn", "notice", "info", "debug"};
} // namespace

const char *level_name(int l) { return (l >= 0 && l <= 7) ? kNames[l] : "?"; }

bool parse_level(std::string_view s, Level &out) {
    for (int i = 0; i <= 7; i++)
        if (s == kNames[i]) { out = Level(i); return true; }
    return false;
}

bool open(const std::string &path, Level lvl, std::string &err) {
    int fd = 2;
    if (path != "stderr") {
        fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) {
            err = "open() \"" + path + "\" failed (" + std::to_string(errno) + ": " +
                  strerror(errno) + ")";
            return false;
        }
    }
    if (g_fd > 2) ::close(g_fd);
    g_fd = fd;
    g_path = path;
    g_level = lvl;
    return true;
}

bool reopen() {
    std::string err;
    return open(g_path, g_level, err);
}
void set_level(Level l) { g_level = l; }
Level level() { return g_level; }
void set_stderr_echo(bool on) { g_echo = on; }

namespace {
// Lines about one client (conn set, error..info) are capped per process: a
// flood of bad clients (slow heads, 404 scans) must not turn into a flood of
// log writes. Crit and above are never dropped; what was dropped is counted
// in one line when the next second's first client line comes.
constexpr int kClientLinesPerSec = 100;
int64_t g_client_sec;
int g_client_lines;
uint64_t g_client_dropped;
int g_client_dropped_level = Info;

bool client_line_ok(int lvl) {
    int64_t now = clock::now_sec();
    if (now != g_client_sec) {
        if (g_client_dropped) {
            uint64_t n = g_client_dropped;
            g_client_dropped = 0;
            log::write(g_client_dropped_level, 0,
                  "%llu client lines were not logged in the last second(s) (at most %d a second)",
                  (unsigned long long)n, kClientLinesPerSec);
        }
        g_client_sec = now;
        g_client_lines = 0;
        g_client_dropped_level = Info;
    }
    if (++g_client_lines <= kClientLinesPerSec) return true;
    g_client_dropped++;
    g_client_dropped_level = std::min(g_client_dropped_level, lvl);
    return false;
}
} // namespace

void vwrite(int lvl, uint64_t conn, const char *fmt, va_list ap) {
    if (conn && lvl >= Err && lvl <= Info && !client_line_ok(lvl)) return;
    char buf[4096];
    int n = snprintf(buf, sizeof buf, "%.*s [%s] %d#0: ", int(clock::log_time().size()),
                     clock::log_time().data(), level_name(lvl), int(getpid()));
    if (conn) n += snprintf(buf + n, sizeof buf - n, "*%llu ", (unsigned long long)conn);
    int head = n;
    va_list ap2;
    va_copy(ap2, ap);
    int m = vsnprintf(buf + n, sizeof buf - n - 1, fmt, ap2);
    va_end(ap2);
    if (m < 0) m = 0;
    n = std::min<int>(n + m, sizeof buf - 2);
    buf[n++] = '\n';
    ssize_t w = ::write(g_fd, buf, n);
    (void)w;
    if (g_echo && g_fd != 2) {
        char out[4200];
        int k = snprintf(out, sizeof out, "portico: [%s] %.*s", level_name(lvl), n - head,
                         buf + head);
        w = ::write(2, out, std::min<int>(k, sizeof out - 1));
    }
}

void write(int lvl, uint64_t conn, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vwrite(lvl, conn, fmt, ap);
    va_end(ap);
}

bool rate_ok(int kind, int per_sec) {
    static int64_t sec[64];
    static int count[64];
    kind &= 63;
    int64_t now = clock::now_sec();
    if (sec[kind] != now) { sec[kind] = now; count[kind] = 0; }
    return ++count[kind] <= per_sec;
}
} // namespace portico::log
