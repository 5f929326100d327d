// Writing a response: status line and header section, body framing
// (Content-Length, chunked, or close-delimited), HEAD, the server's own
// small error pages, and Location made absolute as nginx does.
#include "base/clock.h"
#include "base/version.h"
#include "http/filters.h"
#include "http/request.h"
#include "log/error_log.h"
#include "process/worker.h"

#include <cerrno>
#include <charconv>
#include <cstring>
#include <deque>
#include <strings.h>
#include <unistd.h>

namespace portico {
namespace {

struct StatusText {
    int code;
    const char *text;
};
const StatusText kStatus[] = {
    {100, "Continue"}, {101, "Switching Protocols"}, {200, "OK"}, {201, "Created"},
    {202, "Accepted"}, {204, "No Content"}, {206, "Partial Content"},
    {301, "Moved Permanently"}, {302, "Moved Temporarily"}, {303, "See Other"},
    {304, "Not Modified"}, {307, "Temporary Redirect"}, {308, "Permanent Redirect"},
    {400, "Bad Request"}, {401, "Unauthorized"}, {402, "Payment Required"},
    {403, "Forbidden"}, {404, "Not Found"}, {405, "Not Allowed"}, {406, "Not Acceptable"},
    {408, "Request Time-out"}, {409, "Conflict"}, {410, "Gone"}, {411, "Length Required"},
    {412, "Precondition Failed"}, {413, "Request Entity Too Large"},
    {414, "Request-URI Too Large"}, {415, "Unsupported Media Type"},
    {416, "Requested Range Not Satisfiable"}, {417, "Expectation Failed"},
    {421, "Misdirected Request"}, {429, "Too Many Requests"},
    {431, "Request Header Fields Too Large"}, {494, "Request Header Or Cookie Too Large"},
    {500, "Internal Server Error"}, {501, "Not Implemented"}, {502, "Bad Gateway"},
    {503, "Service Temporarily Unavailable"}, {504, "Gateway Time-out"},
    {505, "HTTP Version Not Supported"}, {507, "Insufficient Storage"},
};

bool ieq(std::string_view a, std::string_view b) {
    return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

bool status_has_body(int s) { return !(s < 200 || s == 204 || s == 304); }

// add_header applies to these statuses unless "always" (nginx)
bool add_header_status(int s) {
    return s == 200 || s == 201 || s == 204 || s == 206 || s == 301 || s == 302 || s == 303 ||
           s == 304 || s == 307 || s == 308;
}

void absolute_location(Request *r, std::string &loc) {
    if (loc.empty() || loc[0] != '/' || !*r->loc->absolute_redirect) return;
    std::string prefix = r->c->group && r->c->group->listen.ssl ? "https://" : "http://";
    if (*r->loc->server_name_in_redirect && !r->srv->names.empty() && !r->srv->names[0].empty())
        prefix += r->srv->names[0];
    else if (!r->host.empty())
        prefix += r->host;
    else
        prefix += r->c->local_addr;
    int port = r->c->local_port;
    bool ssl = r->c->group && r->c->group->listen.ssl;
    if (*r->loc->port_in_redirect && port && port != (ssl ? 443 : 80))
        prefix += ":" + std::to_string(port);
    loc.insert(0, prefix);
}

void append_expires(Request *r, std::string &out) {
    int64_t e = *r->loc->expires;
    if (e == INT64_MIN) return;
    char date[30];
    if (e == INT64_MIN + 1) {
        out += "Expires: Thu, 01 Jan 1970 00:00:01 GMT\r\nCache-Control: no-cache\r\n";
        return;
    }
    if (e == INT64_MAX) {
        out += "Expires: Thu, 31 Dec 2037 23:55:55 GMT\r\nCache-Control: max-age=315360000\r\n";
        return;
    }
    clock::format_http_date(clock::now_sec() + e, date);
    out += "Expires: ";
    out += date;
    out += "\r\nCache-Control: ";
    out += e <= 0 ? "no-cache" : "max-age=" + std::to_string(e);
    out += "\r\n";
}
} // namespace

const char *status_line(int status) {
    for (const auto &s : kStatus)
        if (s.code == status) return s.text;
    return nullptr;
}

void set_header(Request *r, std::string_view name, std::string_view value, bool replace) {
    if (replace)
        for (auto &h : r->out_headers)
            if (ieq(h.first, name)) {
                h.second.assign(value);
                return;
            }
    r->out_headers.emplace_back(name, value); // built in place: no temporaries
}

int send_header(Request *r) {
    if (r->header_sent) return PT_OK;
    r->header_sent = true;
    if (r->error_status) r->status = r->error_status;
    if (!r->status) r->status = 200;
    if (!r->cycle->phases[PT_PHASE_HEADER_FILTER].empty()) run_header_filters(r);
    int status = r->status;
    bool head = r->head.method == "HEAD";
    bool body_allowed = status_has_body(status);

    // built in place in the connection's output stash when it takes it
    // (a small head always fits)
    using namespace std::string_view_literals;
    thread_local std::string own;
    std::string *stash = out_stash(r->c, 4096);
    std::string &out = stash ? *stash : own;
    if (!stash) out.clear();
    size_t start = out.size();
    const char *text = status_line(status);
    size_t text_len = text ? strlen(text) : 0;
    // Up to the Connection line the head is written into room sized once
    // (appending piece by piece to the string cost a capacity check and a
    // call per piece, ~900 instructions per head); the rarer tails
    // (expires, add_header) append as usual. The fixed lines (status code,
    // Server, Date, Content-Length, Connection) take less than 200 bytes.
    size_t need = 200 + sizeof PT_SERVER_NAME PT_VERSION + text_len + clock::http_date().size();
    for (auto &[name, value] : r->out_headers) {
        // made absolute before the room is counted (by length first: most names are not it)
        if (name.size() == 8 && ieq(name, "Location")) absolute_location(r, value);
        need += name.size() + value.size() + 4;
    }
    out.resize(start + need);
    char *p = out.data() + start;
    auto put = [&p](std::string_view v) {
        memcpy(p, v.data(), v.size());
        p += v.size();
    };
    if (status >= 100 && status <= 999) {
        char code[] = {'H', 'T', 'T', 'P', '/', '1', '.', '1', ' ', char('0' + status / 100),
                       char('0' + status / 10 % 10), char('0' + status % 10), ' '};
        put({code, sizeof code});
        put({text ? text : "", text_len});
        put("\r\n"sv);
    } else {
        char line[64];
        int n = snprintf(line, sizeof line, "HTTP/1.1 %03d %s\r\n", status, text ? text : "");
        put({line, size_t(n) < sizeof line ? size_t(n) : sizeof line - 1});
    }
    put(*r->loc->server_tokens ? "Server: " PT_SERVER_NAME "/" PT_VERSION "\r\nDate: "sv
                               : "Server: " PT_SERVER_NAME "\r\nDate: "sv);
    put(clock::http_date());
    put("\r\n"sv);
    for (auto &[name, value] : r->out_headers) {
        // framing is ours (by length first: most names are none of these)
        switch (name.size()) {
        case 14:
            if (ieq(name, "Content-Length")) continue;
            break;
        case 10:
            if (ieq(name, "Connection")) continue;
            break;
        case 17:
            if (ieq(name, "Transfer-Encoding")) continue;
            break;
        default:
            break;
        }
        put(name);
        put(": "sv);
        put(value);
        put("\r\n"sv);
    }
    if (body_allowed || head) {
        if (r->content_length >= 0) {
            put("Content-Length: "sv);
            p = std::to_chars(p, p + 24, r->content_length).ptr;
            put("\r\n"sv);
        } else if (!head && r->head.version == 11) {
            put("Transfer-Encoding: chunked\r\n"sv);
            r->chunked_out = true;
        } else if (!head) {
            r->keep_alive = false; // close-delimited
        }
    }
    if (r->c->worker->draining) r->keep_alive = false;
    // nginx decides these before the head goes out, so the last response a
    // connection carries says "close" rather than promising more
    if (int64_t(r->c->requests) >= *r->loc->keepalive_requests || *r->loc->keepalive_timeout <= 0)
        r->keep_alive = false;
    if (status == 101) {
        put("Connection: upgrade\r\n"sv); // a tunnel follows (tunnel.cc)
    } else if (r->keep_alive) {
        put("Connection: keep-alive\r\n"sv);
    } else {
        put("Connection: close\r\n"sv);
    }
    out.resize(size_t(p - out.data()));
    if (add_header_status(status)) append_expires(r, out); // nginx: the same statuses
    if (r->loc->add_headers) {
        std::string v;
        for (const AddHeader &h : *r->loc->add_headers) {
            if (!h.always && !add_header_status(status)) continue;
            eval(r, h.value, v);
            if (v.empty()) continue;
            out += h.name;
            out += ": ";
            out += v;
            out += "\r\n";
        }
    }
    out += "\r\n"sv;
    r->bytes_sent += int64_t(out.size() - start);
    if (!stash) bufferevent_write(r->c->bev, out.data(), out.size());
    return PT_OK;
}

// ---------------------------------------------------------------- body pump
// A file going through the body filters (gzip) is read in pieces, and only
// while the connection's output holds less than kPumpHigh: reading it all at
// once would put the whole (filtered) file in memory for a slow or distant
// client, 50 MiB for a 100 MiB text file. The rest waits until the client
// has taken the output down to kPumpLow. Bytes sent after a waiting file
// (multipart range boundaries) queue behind it, and so does the finish.
namespace {
constexpr size_t kPumpHigh = 256 * 1024, kPumpLow = 64 * 1024, kPumpPiece = 32 * 1024;

struct PumpSegment {
    int fd = -1; // -1: `bytes` instead of a file
    int64_t off = 0, len = 0;
    std::string bytes;
};

struct BodyPump {
    Request *r = nullptr;
    std::deque<PumpSegment> queue;
    bool finish_pending = false;
    bool waiting = false; // for the output to drain
    event *resume = nullptr;
    evbuffer *out = nullptr;
    evbuffer_cb_entry *watch = nullptr;
    ~BodyPump() {
        if (watch) evbuffer_remove_cb_entry(out, watch);
        if (resume) event_free(resume);
        for (auto &s : queue)
            if (s.fd >= 0) close(s.fd);
    }
};

void pump_release(void *p) { delete static_cast<BodyPump *>(p); }

BodyPump *pump_of(Request *r) {
    for (auto &[fn, data] : r->cleanups)
        if (fn == pump_release) return static_cast<BodyPump *>(data);
    return nullptr;
}

void pump_run(BodyPump *p);

void on_pump_resume(evutil_socket_t, short, void *arg) { pump_run(static_cast<BodyPump *>(arg)); }

void on_output_change(evbuffer *buf, const evbuffer_cb_info *info, void *arg) {
    auto *p = static_cast<BodyPump *>(arg);
    if (p->waiting && info->n_deleted && evbuffer_get_length(buf) <= kPumpLow) {
        p->waiting = false;
        event_active(p->resume, EV_WRITE, 0);
    }
}

// Feeds queued segments into the filters until the queue is empty or the
// output is full. Returns PT_OK, or PT_ERROR after a read error (the
// connection is then closed if the response was already in flight).
int pump_feed(BodyPump *p) {
    Request *r = p->r;
    char buf[kPumpPiece];
    while (!p->queue.empty()) {
        if (evbuffer_get_length(p->out) >= kPumpHigh) {
            p->waiting = true;
            return PT_OK;
        }
        PumpSegment &s = p->queue.front();
        if (s.fd < 0) {
            std::string bytes = std::move(s.bytes);
            p->queue.pop_front();
            if (int rc = filter_body(r, bytes, false); rc != PT_OK) return rc;
            continue;
        }
        ssize_t n = pread(s.fd, buf, size_t(std::min<int64_t>(s.len, kPumpPiece)), s.off);
        if (n <= 0) {
            PT_LOG(log::Crit, r->c->id, "pread() of a file being sent failed (%s)",
                   n < 0 ? strerror(errno) : "file shrank");
            return PT_ERROR;
        }
        s.off += n;
        s.len -= n;
        if (s.len == 0) {
            close(s.fd);
            p->queue.pop_front();
        }
        if (int rc = filter_body(r, {buf, size_t(n)}, false); rc != PT_OK) return rc;
    }
    return PT_OK;
}

void finish_now(Request *r) {
    filter_body(r, {}, true);
    request_done(r);
}

// From the event loop: more of a queued body, then the deferred finish.
void pump_run(BodyPump *p) {
    Request *r = p->r;
    if (pump_feed(p) != PT_OK) {
        connection_close(r->c); // a truncated response: the client must not see it complete
        return;
    }
    if (p->waiting || !p->queue.empty() || !p->finish_pending) return;
    p->finish_pending = false;
    finish_now(r); // may end the request and free p
}

BodyPump *pump_start(Request *r) {
    if (BodyPump *p = pump_of(r)) return p;
    auto *p = new BodyPump;
    p->r = r;
    out_spill(r->c); // the pump watches the bufferevent's output: what came before goes there first
    p->out = bufferevent_get_output(r->c->bev);
    p->resume = event_new(bufferevent_get_base(r->c->bev), -1, 0, on_pump_resume, p);
    p->watch = evbuffer_add_cb(p->out, on_output_change, p);
    r->cleanups.emplace_back(pump_release, p);
    return p;
}

bool pump_busy(Request *r) {
    BodyPump *p = pump_of(r);
    return p && !p->queue.empty();
}
} // namespace

int send_data(Request *r, const void *data, size_t len) {
    if (!r->header_sent) send_header(r);
    if (len == 0) return PT_OK;
    if (pump_busy(r)) { // behind a file still waiting: keep the order
        PumpSegment s;
        s.bytes.assign(static_cast<const char *>(data), len);
        pump_of(r)->queue.push_back(std::move(s));
        return PT_OK;
    }
    return filter_body(r, {static_cast<const char *>(data), len}, false);
}

// The end of the filter chain: framing onto the connection.
int write_body(Request *r, std::string_view piece, bool last) {
    const void *data = piece.data();
    size_t len = piece.size();
    if (last && r->chunked_out && r->head.method != "HEAD" && !r->last_written) {
        r->last_written = true;
        if (len) write_body(r, piece, false);
        if (std::string *st = out_stash(r->c, 5)) *st += "0\r\n\r\n";
        else bufferevent_write(r->c->bev, "0\r\n\r\n", 5);
        return PT_OK;
    }
    if (len == 0 || r->head.method == "HEAD" || !status_has_body(r->status)) return PT_OK;
    if (std::string *st = out_stash(r->c, len + 32)) {
        if (r->chunked_out) {
            char sz[24];
            int n = snprintf(sz, sizeof sz, "%zx\r\n", len);
            st->append(sz, size_t(n));
            st->append(static_cast<const char *>(data), len);
            *st += "\r\n";
        } else {
            st->append(static_cast<const char *>(data), len);
        }
    } else if (evbuffer *out = bufferevent_get_output(r->c->bev); r->chunked_out) {
        char sz[24];
        int n = snprintf(sz, sizeof sz, "%zx\r\n", len);
        evbuffer_add(out, sz, size_t(n));
        evbuffer_add(out, data, len);
        evbuffer_add(out, "\r\n", 2);
    } else {
        evbuffer_add(out, data, len);
    }
    r->body_sent += int64_t(len);
    r->bytes_sent += int64_t(len);
    return PT_OK;
}

int send_file(Request *r, int fd, int64_t off, int64_t len) {
    if (!r->header_sent) send_header(r);
    if (len <= 0 || r->head.method == "HEAD") {
        close(fd);
        return PT_OK;
    }
    if (has_body_filters(r)) {
        // filters need the bytes: read the file in pieces instead of
        // sendfile, as fast as the client takes them (the body pump above)
        BodyPump *p = pump_start(r);
        PumpSegment s;
        s.fd = fd;
        s.off = off;
        s.len = len;
        p->queue.push_back(std::move(s));
        return p->waiting ? PT_OK : pump_feed(p);
    }
    out_spill(r->c); // what came before goes first
    evbuffer *out = bufferevent_get_output(r->c->bev);
    if (r->chunked_out) {
        char sz[24];
        int n = snprintf(sz, sizeof sz, "%llx\r\n", (unsigned long long)len);
        evbuffer_add(out, sz, size_t(n));
    }
    if (!r->c->plain && len <= 32768) {
        // TLS cannot sendfile: libevent would mmap the segment (mmap, a page
        // fault and munmap per response); a small file is one pread, as nginx
        evbuffer_iovec v;
        ssize_t n = -1;
        if (evbuffer_reserve_space(out, len, &v, 1) == 1) n = pread(fd, v.iov_base, size_t(len), off);
        close(fd);
        if (n != len) {
            PT_LOG(log::Crit, r->c->id, "pread() of a file being sent failed (%s)",
                   n < 0 ? strerror(errno) : "file shrank");
            return PT_ERROR;
        }
        v.iov_len = size_t(n);
        evbuffer_commit_space(out, &v, 1);
    } else if (evbuffer_add_file(out, fd, off, len) != 0) {
        // evbuffer file segments use sendfile() on plain sockets
        close(fd);
        return PT_ERROR;
    }
    if (r->chunked_out) evbuffer_add(out, "\r\n", 2);
    r->body_sent += len;
    r->bytes_sent += len;
    return PT_OK;
}

int finish_response(Request *r) {
    if (r->finished) return PT_OK;
    if (!r->header_sent) send_header(r);
    r->finished = true;
    if (pump_busy(r)) {
        // the body is still being pumped: finish when it is out; the
        // connection resumes reading then, as after PT_AGAIN
        pump_of(r)->finish_pending = true;
        r->pending = true;
        return PT_OK;
    }
    finish_now(r);
    return PT_OK;
}

int send_special(Request *r, int status) {
    // nginx's small pages; the server is named only with server_tokens on
    // 497: nginx's code for plain HTTP on a TLS port, answered as a 400
    bool plain_on_tls = status == 497;
    if (plain_on_tls) status = 400;
    r->status = status;
    r->error_status = 0;
    const char *text = status_line(status);
    thread_local std::string page;
    page.clear();
    if (status >= 300) {
        char title[96];
        snprintf(title, sizeof title, "%d %s", status,
                 plain_on_tls ? "The plain HTTP request was sent to HTTPS port" : text ? text : "");
        page = "<html>\r\n<head><title>";
        page += title;
        page += "</title></head>\r\n<body>\r\n<center><h1>";
        page += title;
        page += "</h1></center>\r\n";
        if (r->loc && *r->loc->server_tokens)
            page += "<hr><center>" PT_SERVER_NAME "/" PT_VERSION "</center>\r\n";
        page += "</body>\r\n</html>\r\n";
    }
    // only Location (redirects) and Content-Range (416, RFC 9110 §15.5.17)
    // survive from what a handler may have set
    std::string location, content_range;
    for (auto &h : r->out_headers) {
        if (ieq(h.first, "Location")) location = h.second;
        if (ieq(h.first, "Content-Range")) content_range = h.second;
    }
    r->out_headers.clear();
    if (!location.empty() && status >= 300 && status < 400)
        r->out_headers.emplace_back("Location", location);
    if (!content_range.empty() && status == 416)
        r->out_headers.emplace_back("Content-Range", content_range);
    if (status == 405) r->out_headers.emplace_back("Allow", "GET, HEAD");
    if (!page.empty()) r->out_headers.emplace_back("Content-Type", "text/html");
    if (status == 400 || status == 408 || status == 413 || status == 414 || status == 431 ||
        status == 500 || status == 501 || status == 505)
        r->keep_alive = false; // nginx closes after these
    r->content_length = status_has_body(status) ? int64_t(page.size()) : -1;
    if (!status_has_body(status)) r->content_length = -1;
    send_header(r);
    send_data(r, page.data(), page.size());
    return finish_response(r);
}

} // namespace portico
