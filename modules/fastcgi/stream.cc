#include "stream.h"

#include "cgi_response.h"
#include "params_writer.h"
#include "record.h"

#include <event2/buffer.h>
#include <event2/event.h>

#include <cstring>
#include <new>
#include <string>
#include <strings.h>
#include <vector>

namespace portico::fastcgi {

const pt_host *H;
const pt_module *g_module;

namespace {
constexpr uint16_t kRequestId = 1;

std::string_view sv(pt_str s) { return {s.data ? s.data : "", s.len}; }
pt_str ps(std::string_view s) { return {s.data(), s.size()}; }

bool ieq(std::string_view a, std::string_view b) {
    return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

void shutdown_backend(Stream *s, bool keep, bool failed) {
    mux_detach(s); // a no-op unless the stream is (or waits to be) multiplexed
    if (s->uc) {
        H->upstream_release(s->uc, keep, failed);
        s->uc = nullptr;
    }
    s->done = true;
}

// Ends the request with a status chosen here; the reason goes to the log
// with the request's context so nobody has to decode "Primary script unknown".
void fail(Stream *s, int status, const char *reason, bool backend_failed) {
    pt_str up = s->uc ? H->upstream_name(s->uc) : s->mux ? mux_backend_name(s) : PT_STR("-");
    pt_str id;
    H->variable(s->r, PT_STR("request_id"), &id);
    // the host's log appends client, request line and host
    H->log(PT_LOG_ERR, s->r, "%s, upstream: \"fastcgi://%.*s\", request_id: %.*s", reason,
           int(up.len), up.data, int(id.len), id.data);
    shutdown_backend(s, false, backend_failed);
    H->finalize(s->r, status);
}

void put_env(void *ctx, pt_str name, pt_str value) {
    static_cast<ParamsWriter *>(ctx)->put(sv(name), sv(value));
}

bool hidden(const Stream *s, std::string_view name) {
    // framing and hop-by-hop fields are ours; X-Accel-* is hidden by default (nginx)
    static const char *const always[] = {"Status", "Content-Length", "Transfer-Encoding",
                                         "Connection", "Keep-Alive", "Upgrade", "Date",
                                         "Server"};
    for (const char *h : always)
        if (ieq(name, h)) return true;
    const FcgiConf *c = s->conf;
    for (int i = 0; i < c->npass; i++)
        if (ieq(name, sv(c->pass[i]))) return false;
    if (name.size() >= 8 && ieq(name.substr(0, 8), "X-Accel-")) return true;
    for (int i = 0; i < c->nhide; i++)
        if (ieq(name, sv(c->hide[i]))) return true;
    return false;
}

// An internal redirect asked for by the app (RFC 3875 §6.2.2 local
// Location, or nginx's X-Accel-Redirect): the backend is done with.
void redirect(Stream *s, std::string_view target) {
    std::string uri(target), args;
    if (auto q = uri.find('?'); q != std::string::npos) {
        args = uri.substr(q + 1);
        uri.resize(q);
    }
    shutdown_backend(s, false, false);
    pt_request *r = s->r;
    int rc = H->internal_redirect(r, ps(uri), ps(args));
    if (rc != PT_DONE) H->finalize(r, rc); // PT_DONE: answered, r is gone
}

// Returns false when the request has been finalized.
bool on_head(Stream *s) {
    const CgiResponseHead &h = s->head.head();
    if (h.kind == ResponseKind::LocalRedirect) {
        redirect(s, h.location);
        return false;
    }
    if (h.has_x_accel_redirect) {
        redirect(s, h.x_accel_redirect);
        return false;
    }
    int status = h.effective_status();
    if (s->conf->intercept_errors == 1 && status >= 300) {
        shutdown_backend(s, false, false);
        H->finalize(s->r, status);
        return false;
    }
    pt_request *r = s->r;
    H->set_status(r, status);
    if (h.has_content_type) H->resp_header_set(r, PT_STR("Content-Type"), ps(h.content_type));
    if (h.location_kind != LocationKind::None) H->resp_header_set(r, PT_STR("Location"), ps(h.location));
    for (const auto &f : h.fields)
        if (!hidden(s, f.name)) H->resp_header_add(r, ps(f.name), ps(f.value));
    // We frame the body ourselves (chunked, or close for HTTP/1.0): an app's
    // Content-Length that disagrees with its output can then never desync
    // the client connection.
    H->set_content_length(r, -1);
    H->send_header(r);
    return true;
}

void on_stderr(Stream *s, std::string_view text) {
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.remove_suffix(1);
    if (text.empty()) return;
    // an app that floods stderr must not flood our log: 50 lines a second per
    // worker, then one line saying how many were dropped
    static int64_t second = 0;
    static int lines = 0, dropped = 0;
    int64_t now = H->now_sec();
    if (now != second) {
        if (dropped)
            H->log(PT_LOG_ERR, s->r, "FastCGI stderr: %d more lines dropped (rate limit)", dropped);
        second = now;
        lines = dropped = 0;
    }
    if (++lines > 50) {
        dropped++;
        return;
    }
    H->log(PT_LOG_ERR, s->r, "FastCGI sent in stderr: \"%.*s\"", int(std::min<size_t>(text.size(), 2048)),
           text.data());
}

// Returns false when the request has been finalized (s may be gone).
bool on_record(Stream *s, const Record &rec) {
    if (rec.request_id != s->id) {
        fail(s, 502, "upstream sent a record for an unknown request id", true);
        return false;
    }
    switch (rec.kind()) {
    case RecordType::Stdout: {
        std::string_view data = rec.content;
        s->got_stdout = true;
        if (!s->head_done && !data.empty()) {
            HeadResult hr = s->head.feed(data);
            if (hr.status == HeadStatus::Error) {
                std::string why = "upstream sent invalid header: " + std::string(hr.error) +
                                  " while reading response header from upstream";
                fail(s, 502, why.c_str(), true);
                return false;
            }
            if (hr.status == HeadStatus::Again) return true;
            s->head_done = true;
            if (!on_head(s)) return false;
            data = data.substr(hr.consumed);
        }
        if (s->head_done && !data.empty()) H->send_data(s->r, data.data(), data.size());
        return true;
    }
    case RecordType::Stderr:
        on_stderr(s, rec.content);
        return true;
    case RecordType::EndRequest: {
        s->ended = true;
        ProtocolStatus ps_ = rec.end_request.protocol_status;
        if (ps_ == ProtocolStatus::Overloaded) {
            fail(s, 503, "upstream answered END_REQUEST OVERLOADED", false);
            return false;
        }
        if (ps_ == ProtocolStatus::CantMpxConn && s->mux && !s->got_stdout) {
            // §5.5: the app takes one request per connection after all; it
            // saw nothing of this one, so it is sent again on a connection
            // of its own, and the backend is not offered another multiplex
            H->log(PT_LOG_WARN, s->r, "upstream \"%.*s\" answered END_REQUEST CANT_MPX_CONN: "
                                      "one request per connection from now on, request retried",
                   int(mux_backend_name(s).len), mux_backend_name(s).data);
            mux_mark_single(s);
            mux_detach(s);
            stream_run_single(s, nullptr);
            return false;
        }
        if (ps_ == ProtocolStatus::CantMpxConn) {
            fail(s, 502, "upstream answered END_REQUEST CANT_MPX_CONN", true);
            return false;
        }
        if (ps_ == ProtocolStatus::UnknownRole) {
            fail(s, 502, "upstream answered END_REQUEST UNKNOWN_ROLE", true);
            return false;
        }
        if (!s->head_done) {
            fail(s, 502, "upstream ended the request before sending a response header "
                         "(empty or incomplete CGI head)", true);
            return false;
        }
        // reusable only after a complete exchange with nothing left over
        // (END_REQUEST itself is still in the input buffer: on_read drains
        // a record after handling it)
        bool keep = s->conf->keep_conn == 1 && s->reader.at_record_boundary() &&
                    s->unread_after_record == 0;
        pt_request *r = s->r;
        shutdown_backend(s, keep, false);
        H->finish(r);
        return false;
    }
    default:
        return true; // UNKNOWN_TYPE and others: nothing to do for a responder
    }
}

void on_read(void *arg, void *input) {
    auto *s = static_cast<Stream *>(arg);
    auto *in = static_cast<evbuffer *>(input);
    while (!s->done && evbuffer_get_length(in) > 0) {
        s->got_bytes = true;
        evbuffer_iovec vec;
        if (evbuffer_peek(in, -1, nullptr, &vec, 1) < 1) return;
        std::string_view chunk(static_cast<const char *>(vec.iov_base), vec.iov_len);
        ReadResult res = s->reader.feed(chunk);
        if (res.status == ReadStatus::Error) {
            std::string why = "upstream sent an invalid FastCGI record: " + std::string(res.error);
            fail(s, 502, why.c_str(), true);
            return;
        }
        if (res.status == ReadStatus::Again) {
            evbuffer_drain(in, res.consumed);
            if (res.consumed == 0) return;
            continue;
        }
        Record rec = res.record;
        size_t consumed = res.consumed;
        s->unread_after_record = evbuffer_get_length(in) - consumed;
        if (rec.kind() == RecordType::EndRequest) {
            // decoded already (rec.end_request), and the input belongs to the
            // connection, which goes back to the pool only empty
            evbuffer_drain(in, consumed);
            on_record(s, rec);
            return;
        }
        // the record's views point into `in`: handle it before draining
        bool go_on = on_record(s, rec);
        if (!go_on) return; // finalized; s may be freed
        evbuffer_drain(in, consumed);
    }
}

void start_exchange(Stream *s);

void on_event(void *arg, int what) {
    auto *s = static_cast<Stream *>(arg);
    if (s->done) return;
    if (what & (PT_IO_READ_TIMEOUT | PT_IO_WRITE_TIMEOUT)) {
        fail(s, 504, (what & PT_IO_READ_TIMEOUT)
                         ? "upstream timed out (110: Connection timed out) while reading response "
                           "header from upstream"
                         : "upstream timed out (110: Connection timed out) while sending request "
                           "to upstream",
             true);
        return;
    }
    // EOF or error before END_REQUEST
    if (!s->got_bytes && H->upstream_reused(s->uc) && s->retries < 1) {
        // a pooled connection the backend had closed: retry once on a fresh one
        s->retries++;
        shutdown_backend(s, false, false);
        s->done = false;
        s->reader.reset();
        start_exchange(s);
        return;
    }
    if (s->head_done) {
        // the head is out: only the cause can still be told (a reset or a
        // plain close), in the log
        if (what & PT_IO_ERROR)
            H->log(PT_LOG_ERR, s->r, "upstream reset the connection (%s) while reading FastCGI stdout",
                   evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
        else
            H->log(PT_LOG_ERR, s->r, "upstream prematurely closed FastCGI stdout while reading upstream");
        shutdown_backend(s, false, true);
        H->finalize(s->r, PT_ERROR); // the client sees a truncated response, never a wrong one
        return;
    }
    fail(s, 502, (what & PT_IO_ERROR) ? "upstream connection error (app reset the connection) "
                                            "before END_REQUEST"
                                          : "app closed the connection before END_REQUEST",
         true);
}

void on_connected(void *data, pt_upstream_conn *uc, int status) {
    auto *s = static_cast<Stream *>(data);
    if (status) {
        s->done = true;
        H->finalize(s->r, status);
        return;
    }
    s->uc = uc;
    s->done = false;
    const FcgiConf *c = s->conf;
    static const pt_upstream_io io = {on_read, on_event};
    // full duplex: STDOUT is read while STDIN is still being written. The
    // request was encoded before connecting (build_request); a retry sends
    // the same bytes, so they stay ours until the stream ends.
    H->upstream_io_start(uc, &io, s, c->read_timeout, c->send_timeout);
    H->upstream_io_write(uc, s->out.data(), s->out.size());
}

// BEGIN_REQUEST + PARAMS + STDIN, encoded before any connection is made: a
// request the CGI builder refuses (CVE-2019-11043 %0a, a param collision)
// gets its status without the backend ever seeing a connection.
int build_request(Stream *s) {
    pt_request *r = s->r;
    const FcgiConf *c = s->conf;
    s->out.clear();
    s->out.reserve(1024); // a typical request's records in one allocation
    append_begin_request(s->out, kRequestId, Role::Responder, c->keep_conn == 1);
    ParamsWriter pw(s->out, kRequestId);
    if (int rc = H->cgi_build(r, c->cgi, put_env, &pw)) return rc;
    pw.finish();
    if (pw.failed()) {
        H->log(PT_LOG_ERR, r, "a FastCGI param could not be encoded (over 2 GiB)");
        return 500;
    }
    if (c->pass_request_body != 0) {
        if (auto *body = static_cast<evbuffer *>(H->req_body(r))) {
            int n = evbuffer_peek(body, -1, nullptr, nullptr, 0);
            std::vector<evbuffer_iovec> vecs(size_t(n > 0 ? n : 0));
            evbuffer_peek(body, -1, nullptr, vecs.data(), n);
            for (auto &v : vecs)
                append_stream(s->out, RecordType::Stdin, kRequestId,
                              {static_cast<const char *>(v.iov_base), v.iov_len});
        }
    }
    append_end_of_stream(s->out, RecordType::Stdin, kRequestId);
    return 0;
}

void start_exchange(Stream *s) {
    if (H->upstream_connect(s->r, s->conf->upstream, s->conf->connect_timeout, on_connected, s) !=
        PT_OK) {
        s->done = true;
        H->finalize(s->r, 502);
    }
}

constexpr size_t kMaxSpare = 64;
std::vector<Stream *> g_spare; // per worker (one thread)

void cleanup(void *arg) {
    auto *s = static_cast<Stream *>(arg);
    // the client went away or the request ended: the backend connection is
    // closed unless a complete exchange already returned it to the pool; a
    // multiplexed stream sends ABORT_REQUEST and leaves its siblings be.
    // A connect still pending for this request is cancelled by the upstream
    // layer (its own cleanup): no callback reaches s after this.
    shutdown_backend(s, false, false);
    stream_delete(s);
}
} // namespace

Stream *stream_new(size_t head_limit) {
    while (!g_spare.empty()) {
        Stream *old = g_spare.back();
        g_spare.pop_back();
        if (old->head.max_head_size() != head_limit) {
            delete old;
            continue;
        }
        CgiHeadParser head = std::move(old->head);
        std::string out = std::move(old->out);
        old->~Stream();
        return new (old) Stream(std::move(head), std::move(out));
    }
    return new Stream(head_limit);
}

void stream_delete(Stream *s) {
    if (g_spare.size() >= kMaxSpare) {
        delete s;
        return;
    }
    g_spare.push_back(s);
}

void stream_exit_worker() {
    for (Stream *s : g_spare) delete s;
    g_spare.clear();
}

int handler(pt_request *r, void *loc_conf) {
    auto *c = static_cast<const FcgiConf *>(loc_conf);
    if (!c || !c->upstream) return 500;
    auto *s = stream_new(size_t(c->buffer_size));
    s->r = r;
    s->conf = c;
    H->cleanup_add(r, cleanup, s);
    if (int rc = build_request(s)) {
        s->done = true;
        return rc;
    }
    if (c->multiplex == 1) mux_submit(s);
    else start_exchange(s);
    return PT_AGAIN;
}

bool stream_record(Stream *s, const Record &rec) { return on_record(s, rec); }

void stream_fail(Stream *s, int status, const char *reason, bool backend_failed) {
    fail(s, status, reason, backend_failed);
}

void stream_truncate(Stream *s, const char *reason) {
    H->log(PT_LOG_ERR, s->r, "%s", reason);
    shutdown_backend(s, false, true);
    H->finalize(s->r, PT_ERROR); // the client sees a truncated response, never a wrong one
}

void stream_run_single(Stream *s, pt_upstream_conn *uc) {
    // the request was encoded for a shared connection: back to id 1 and the
    // location's own keep-alive choice
    retarget_records(s->out, kRequestId, s->conf->keep_conn == 1);
    s->id = kRequestId;
    s->ended = s->done = false;
    s->reader.reset();
    if (uc) on_connected(s, uc, 0);
    else start_exchange(s);
}

} // namespace portico::fastcgi
