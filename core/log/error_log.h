#pragma once
// nginx-format error log: "2026/11/23 17:07:00 [error] 123#0: *5 message".
// One process-wide sink; levels as nginx's (debug..emerg). Before the
// configuration is read, messages go to stderr.
#include <cstdarg>
#include <cstdint>
#include <string>
#include <string_view>

namespace portico::log {
enum Level { Emerg = 0, Alert, Crit, Err, Warn, Notice, Info, Debug };
bool parse_level(std::string_view s, Level &out);
const char *level_name(int level);

// Opens (or reopens) the error log file; "stderr" logs to fd 2.
bool open(const std::string &path, Level level, std::string &err);
bool reopen();
void set_level(Level level);
Level level();
void set_stderr_echo(bool on); // -t: also print to stderr, nginx style "portico: [emerg] ..."

void write(int level, uint64_t conn_id, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void vwrite(int level, uint64_t conn_id, const char *fmt, va_list ap);
// Refusals of clients are logged at most `per_sec` times a second each kind.
bool rate_ok(int kind, int per_sec = 10);
} // namespace portico::log

#define PT_LOG(lvl_, conn_, ...)                                                              \
    do {                                                                                      \
        if ((lvl_) <= ::portico::log::level())                                                \
            ::portico::log::write((lvl_), (conn_), __VA_ARGS__);                              \
    } while (0)
