#pragma once
// One request's round trip to a FastCGI backend: connect (through the
// host's upstream layer), BEGIN_REQUEST + PARAMS + STDIN out, STDOUT /
// STDERR / END_REQUEST in, full duplex, the CGI head turned into our
// response head, the body streamed to the client. The records in and out
// travel either over a connection of the request's own (stream.cc) or, with
// `fastcgi_multiplex on`, over one shared with other requests (mux.cc).
#include <portico/module.h>

#include "cgi_response.h"
#include "record.h"

#include <cstdint>
#include <string>

struct event;

namespace portico::fastcgi {

extern const pt_host *H;
extern const pt_module *g_module;

// Location settings; plain data: the host allocates and zeroes it.
struct FcgiConf {
    pt_cgi *cgi;
    pt_upstream *upstream;
    int keep_conn;            // -1 unset
    int pass_request_body;    // -1 unset
    int intercept_errors;     // -1 unset
    int ignore_client_abort;  // -1 unset
    int multiplex;            // -1 unset
    int64_t connect_timeout;  // ms, -1 unset
    int64_t send_timeout;
    int64_t read_timeout;
    int64_t buffer_size;
    enum { kMaxNames = 16 };
    pt_str hide[kMaxNames];
    int nhide;
    pt_str pass[kMaxNames];
    int npass;
};

int handler(pt_request *r, void *loc_conf);

struct MuxConn;

// The state of one request's exchange with the backend.
struct Stream {
    pt_request *r = nullptr;
    const FcgiConf *conf = nullptr;
    // a connection of its own ...
    pt_upstream_conn *uc = nullptr;
    RecordReader reader;
    // ... or a request id on a shared one
    MuxConn *mux = nullptr;
    bool mux_waiting = false; // in mux->waiters: the connection is not ready yet
    bool mux_queued = false;  // waits for a free id (FCGI_MAX_CONNS x FCGI_MAX_REQS in use)
    event *timer = nullptr;   // multiplexed: queue wait, then this stream's read timeout
    std::uint16_t id = 1;
    CgiHeadParser head;
    bool head_done = false;
    bool ended = false;      // END_REQUEST seen: the id is free again
    bool done = false;       // the backend exchange is over (or abandoned)
    bool got_bytes = false;  // anything received from the backend
    bool got_stdout = false;
    int retries = 0;
    size_t unread_after_record = 0; // backend bytes buffered beyond the record being handled
    std::string out;                // the encoded request

    explicit Stream(size_t head_limit) : head(head_limit) {}
    // a recycled stream's buffers, emptied (stream_new)
    Stream(CgiHeadParser &&h, std::string &&o) : head(std::move(h)), out(std::move(o)) {
        head.reset();
        out.clear();
    }
};

// Streams are recycled per worker: the head parser's buffer and the encoded
// request keep their capacity, so a request allocates none of them.
Stream *stream_new(size_t head_limit);
void stream_delete(Stream *s);
void stream_exit_worker();

// ---- stream.cc, for the multiplexer ----
// Handles one record of this stream; false when the stream left the
// connection (finalized, or moved to a connection of its own).
bool stream_record(Stream *s, const Record &rec);
// Ends the request with a status we chose, logged with its reason.
void stream_fail(Stream *s, int status, const char *reason, bool backend_failed);
// Ends a request whose head is already out: only the log can tell why.
void stream_truncate(Stream *s, const char *reason);
// One request per connection: on `uc` when given, else on a new one.
void stream_run_single(Stream *s, pt_upstream_conn *uc);

// ---- mux.cc ----
void mux_submit(Stream *s);
// The stream leaves its shared connection: its id is freed after END_REQUEST,
// else ABORT_REQUEST is sent and the id stays reserved until the app ends it.
void mux_detach(Stream *s);
// FCGI_CANT_MPX_CONN: the stream's backend takes one request per connection.
void mux_mark_single(Stream *s);
pt_str mux_backend_name(const Stream *s);
void mux_exit_worker();

} // namespace portico::fastcgi
