#pragma once
// Listening sockets are opened by the master and kept across reloads: a
// reload that keeps an address reuses the very same socket, so connections
// waiting in its backlog are served by the new workers.
#include "http/conf.h"

#include <string>

namespace portico {
bool open_listen_sockets(Cycle &c, std::string &err);
void close_unused_listen_sockets(const Cycle &c);
// graceful stop: the master lets go of every listening socket (nginx does the
// same on QUIT), so new connections are refused while workers drain
void close_all_listen_sockets();
// 0.0.0.0 or [::]: the local address of a connection needs getsockname()
bool listen_is_wildcard(const Listen &l);
// parses "127.0.0.1:80", "80", "*:80", "[::1]:80", "unix:/path" (nginx listen syntax)
const char *parse_listen_address(std::string_view s, Listen &l);
} // namespace portico
