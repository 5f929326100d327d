// access_log: each request's line, formatted by its log_format and written
// with one write() per log (O_APPEND keeps lines whole across workers).
#include "http/request.h"

#include <unistd.h>

namespace portico {
namespace {
// nginx's default escaping: '"', '\' and bytes outside printable ASCII as \xHH
void escape(std::string_view in, bool json, std::string &out) {
    static const char hex[] = "0123456789ABCDEF";
    for (unsigned char ch : in) {
        if (json) {
            if (ch == '"' || ch == '\\') { out += '\\'; out += char(ch); }
            else if (ch < 0x20) { out += "\\u00"; out += hex[ch >> 4]; out += hex[ch & 15]; }
            else out += char(ch);
        } else if (ch == '"' || ch == '\\' || ch < 0x20 || ch >= 0x7f) {
            out += "\\x";
            out += hex[ch >> 4];
            out += hex[ch & 15];
        } else {
            out += char(ch);
        }
    }
}
} // namespace

void log_request(Request *r) {
    if (!r->loc || !r->loc->access_logs) return;
    thread_local std::string line, value;
    for (AccessLog *al : *r->loc->access_logs) {
        if (al->fd < 0) continue;
        line.clear();
        for (const auto &seg : al->format->value.segments) {
            if (!seg.is_var) {
                line += seg.text;
                continue;
            }
            value.clear();
            bool found = seg.capture > 0 ? false : get_variable(r, seg.text, value);
            if (!found || value.empty()) {
                if (!al->format->escape_json) line += '-';
                continue;
            }
            if (al->format->escape_none) line += value;
            else escape(value, al->format->escape_json, line);
        }
        line += '\n';
        ssize_t w = ::write(al->fd, line.data(), line.size());
        (void)w;
    }
}
} // namespace portico

#include <cerrno>
#include <cstring>
#include <fcntl.h>

namespace portico {
AccessLog::~AccessLog() {
    if (fd >= 0) ::close(fd);
}

bool open_access_logs(Cycle &c, std::string &err) {
    for (auto &al : c.http->access_logs) {
        if (al->fd >= 0) continue;
        al->fd = ::open(al->path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (al->fd < 0) {
            err = "open() \"" + al->path + "\" failed (" + std::to_string(errno) + ": " +
                  strerror(errno) + ")";
            return false;
        }
    }
    return true;
}
} // namespace portico
