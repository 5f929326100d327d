#include "process/listen_sockets.h"

#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <map>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/un.h>
#include <unistd.h>

namespace portico {
namespace {
std::map<std::string, int> g_open; // address text → fd, across generations

bool parse_port(std::string_view s, int &port) {
    if (s.empty() || s.size() > 5) return false;
    port = 0;
    for (char ch : s) {
        if (ch < '0' || ch > '9') return false;
        port = port * 10 + (ch - '0');
    }
    return port >= 1 && port <= 65535;
}
} // namespace

const char *parse_listen_address(std::string_view s, Listen &l) {
    l.addr = {};
    if (s.substr(0, 5) == "unix:") {
        auto *un = reinterpret_cast<sockaddr_un *>(&l.addr);
        std::string_view path = s.substr(5);
        if (path.empty() || path.size() >= sizeof un->sun_path) return "invalid unix socket path";
        un->sun_family = AF_UNIX;
        memcpy(un->sun_path, path.data(), path.size());
        l.addrlen = sizeof(sockaddr_un);
        l.text = std::string(s);
        return nullptr;
    }
    std::string host;
    int port = 80;
    if (s.size() && s[0] == '[') {
        auto end = s.find(']');
        if (end == std::string_view::npos) return "invalid IPv6 address";
        host = std::string(s.substr(1, end - 1));
        std::string_view rest = s.substr(end + 1);
        if (!rest.empty()) {
            if (rest[0] != ':' || !parse_port(rest.substr(1), port)) return "invalid port";
        }
        auto *in6 = reinterpret_cast<sockaddr_in6 *>(&l.addr);
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
        if (inet_pton(AF_INET6, host.c_str(), &in6->sin6_addr) != 1) return "invalid IPv6 address";
        l.addrlen = sizeof(sockaddr_in6);
        l.text = "[" + host + "]:" + std::to_string(port);
        return nullptr;
    }
    auto colon = s.rfind(':');
    if (colon == std::string_view::npos) {
        if (parse_port(s, port)) host = "0.0.0.0";
        else host = std::string(s); // a bare address: port 80
    } else {
        host = std::string(s.substr(0, colon));
        if (!parse_port(s.substr(colon + 1), port)) return "invalid port";
    }
    if (host == "*" || host.empty()) host = "0.0.0.0";
    if (host == "localhost") host = "127.0.0.1";
    auto *in = reinterpret_cast<sockaddr_in *>(&l.addr);
    in->sin_family = AF_INET;
    in->sin_port = htons(port);
    if (inet_pton(AF_INET, host.c_str(), &in->sin_addr) != 1) return "host not found";
    l.addrlen = sizeof(sockaddr_in);
    l.text = host + ":" + std::to_string(port);
    return nullptr;
}

bool listen_is_wildcard(const Listen &l) {
    if (l.addr.ss_family == AF_INET)
        return reinterpret_cast<const sockaddr_in *>(&l.addr)->sin_addr.s_addr == htonl(INADDR_ANY);
    if (l.addr.ss_family == AF_INET6)
        return IN6_IS_ADDR_UNSPECIFIED(&reinterpret_cast<const sockaddr_in6 *>(&l.addr)->sin6_addr);
    return false;
}

bool open_listen_sockets(Cycle &c, std::string &err) {
    for (auto &g : c.http->groups) {
        Listen &l = g->listen;
        auto it = g_open.find(l.text);
        if (it != g_open.end()) {
            l.fd = it->second;
            continue;
        }
        int fam = l.addr.ss_family;
        int fd = socket(fam, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            err = "socket() " + l.text + " failed (" + strerror(errno) + ")";
            return false;
        }
        int one = 1;
        if (fam != AF_UNIX) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (l.reuseport) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
        if (fam == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
        // Linux hands TCP_NODELAY on to every accepted socket: one setsockopt
        // here instead of one per connection
        if (fam != AF_UNIX) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (fam == AF_UNIX) unlink(reinterpret_cast<sockaddr_un *>(&l.addr)->sun_path);
        if (bind(fd, reinterpret_cast<sockaddr *>(&l.addr), l.addrlen) != 0) {
            err = "bind() to " + l.text + " failed (" + std::to_string(errno) + ": " +
                  strerror(errno) + ")";
            close(fd);
            return false;
        }
        if (listen(fd, l.backlog) != 0) {
            err = "listen() to " + l.text + " failed (" + strerror(errno) + ")";
            close(fd);
            return false;
        }
        if (fam != AF_UNIX && (l.deferred || l.ssl)) {
            // When asked, as nginx, and on TLS ports, where the first byte
            // tells a handshake from plain HTTP at accept. Not by default: a
            // deferred connection lingers in the kernel unaccepted, and under
            // a connection flood the kernel drops them and falls back to
            // syncookies, stalling honest clients.
            int secs = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &secs, sizeof secs);
        }
        g_open[l.text] = fd;
        l.fd = fd;
    }
    return true;
}

void close_unused_listen_sockets(const Cycle &c) {
    for (auto it = g_open.begin(); it != g_open.end();) {
        bool used = false;
        for (auto &g : c.http->groups) used |= g->listen.text == it->first;
        if (!used) {
            close(it->second);
            it = g_open.erase(it);
        } else {
            ++it;
        }
    }
}

void close_all_listen_sockets() {
    for (auto &[text, fd] : g_open) close(fd);
    g_open.clear();
}
} // namespace portico
