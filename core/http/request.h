#pragma once
// One HTTP request and the connection it arrives on. The request's head is
// a copy of the bytes the parser accepted; every view (method, headers, ...)
// points into that copy, which lives as long as the request.
#include <portico/module.h>

#include "cgi/cgi_input.h"
#include "http/conf.h"
#include "http/chunked.h"
#include "http/parser.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include <memory>
#include <memory_resource>
#include <netinet/in.h>
#include <string>
#include <vector>

namespace portico {
struct Worker;
struct Connection;
} // namespace portico

struct pt_request {
    portico::Connection *c = nullptr;
    portico::Cycle *cycle = nullptr;
    portico::ServerConf *srv = nullptr;
    portico::LocationConf *loc = nullptr;
    uint64_t serial = 0; // unique per request in the worker (pooled objects are reused)

    std::string head_buf; // the accepted head bytes; views below point here
    portico::http::RequestHead head;
    std::string uri;  // normalized $uri
    std::string args; // $args
    std::string host; // normalized host ($host without port)
    std::string filename;
    std::string document_root;
    std::string exten;

    // captures of the last regex location match, over `capture_subject`
    std::string capture_subject;
    int ovector[20] = {};
    int ncaptures = 0;

    // response
    int status = 0;
    int error_status = 0; // error_page: the status the page is served with
    std::vector<std::pair<std::string, std::string>> out_headers;
    int64_t content_length = -1;
    bool header_sent = false, chunked_out = false, keep_alive = true, finished = false;
    bool internal = false;   // reached by an internal redirect
    bool last_written = false; // the chunked terminator went out
    bool error_page = false; // an error_page redirect already happened
    int redirects = 0;
    int64_t body_sent = 0;
    int64_t bytes_sent = 0;

    // request body (buffered in memory before the content phase)
    evbuffer *body = nullptr;
    int64_t body_received = 0;
    std::unique_ptr<portico::http::ChunkedDecoder> chunked;

    int64_t start_ms = 0;
    char request_id[33] = {}; // empty until $request_id is first used
    bool pending = false; // content handler returned PT_AGAIN
    std::vector<void *> ctx;
    std::vector<std::pair<void (*)(void *), void *>> cleanups;

    // SCRIPT_NAME / PATH_INFO split, computed once (core/cgi/cgi_conf.cc)
    std::string split_uri;
    portico::cgi::SplitResult split;
    int split_status = 0;
    size_t filter_pos = 0; // the body filter running (filters.cc)
    bool filters_wanted = false; // a header filter will transform the body

    // rewrite module (rewrite.cc): `set` variables, a `return` inside `if`
    std::vector<std::pair<std::string, std::string>> user_vars;
    const portico::RewriteOp *rewrite_return = nullptr;
    bool rewrite_break = false;

    // request-scoped memory (host->palloc); released with the request
    char arena_buf[2048];
    std::pmr::monotonic_buffer_resource arena{arena_buf, sizeof arena_buf};

    ~pt_request();
    // Back to the state of a new request, keeping the capacity of its strings
    // and vectors: requests are pooled per worker (http_connection.cc), so a
    // keep-alive request allocates nothing here. Every member above is reset.
    void recycle();
};

namespace portico {
using Request = ::pt_request;

struct ListenGroup;

enum class ConnState { ReadingHead, ReadingBody, Processing, Closing, Tunnel };

// A request going out of use goes back to the worker's pool (recycled)
// instead of being freed.
struct RequestRelease {
    void operator()(Request *r) const;
};
using RequestPtr = std::unique_ptr<Request, RequestRelease>;
RequestPtr new_request(); // a pooled one when there is one

// An IPv4 or IPv6 address in the room its family needs: sockaddr_storage
// (128 bytes, mostly unused) was held by every idle connection (issue 8).
// Converts to and from sockaddr_storage for code that wants one.
union SockAddr {
    sockaddr sa;
    sockaddr_in in;
    sockaddr_in6 in6;
    SockAddr() : in6{} {}
    SockAddr &operator=(const sockaddr_storage &ss);
    operator sockaddr_storage() const;
    void set(const sockaddr *from); // AF_INET or AF_INET6; anything else keeps only the family
};

struct PlainBev; // http_connection.cc: a plain bufferevent that outlives its connection's use

// Kept small: an idle keep-alive connection holds only this, its descriptor
// and one event (issue 8: bytes per idle connection ≤ nginx's). Everything a
// request needs (parser, bufferevent, buffers) is taken when bytes arrive and
// given back to per-worker pools when the connection goes idle.
struct Connection {
    uint64_t id = 0;
    Worker *worker = nullptr;
    ListenGroup *group = nullptr;
    bufferevent *bev = nullptr; // null while parked (idle, plain)
    PlainBev *plain = nullptr;  // owner record of a plain connection's bev
    // the header/keep-alive timer; while parked, the read-or-timeout event on fd
    event *header_timer = nullptr;
    int fd = -1;
    ConnState state = ConnState::ReadingHead;
    std::string peer_addr, local_addr;
    int peer_port = 0, local_port = 0;
    SockAddr peer;
    std::unique_ptr<http::RequestParser> parser; // only while a head is being read
    RequestPtr req;
    uint64_t requests = 0;
    // arm_timer's deadline, and when the libevent timer is set to fire (0: not
    // pending); see arm_timer (monotonic milliseconds). Among the 8-byte
    // fields: no padding around the bools below.
    int64_t timer_deadline = 0, timer_set_for = 0;
    uint32_t keepalive_ms = 0; // the idle wait the last request chose
    bool close_after_write = false;
    bool waiting_drain = false;  // pipelined input waits for the output to drain
    bool header_timer_armed = false;
    bool idle = false; // between requests on a keep-alive connection
    bool plain_on_tls = false; // plain HTTP arrived on a TLS listener
    bool parked = false;       // idle with its bufferevent given back (plain only)
    bool park_pending = false; // the header timer runs for parking, not a timeout
    bool linger = false;       // unread client bytes may follow: lingering close
    bool direct_write = false; // plain socket: process_input writes its output itself
    bool in_process = false;   // inside process_input (output is flushed at its end)
    bool flush_queued = false; // output added outside process_input: written at the pass's end
    void *tunnel = nullptr; // after a 101 (tunnel.cc)
};

// http_connection.cc
void connection_accept(Worker *w, ListenGroup *g, int fd, sockaddr *peer, int peerlen);
void connection_close(Connection *c);
void connection_drain(Connection *c); // graceful stop: close when idle
void request_done(Request *r);          // the response is complete
void start_body(Request *r);            // read the body, then continue_after_body()
void connection_resume(Connection *c);
// tunnel.cc: the connection becomes a byte tunnel to the upstream after a 101
int start_tunnel(Request *r, pt_upstream_conn *uc, std::string_view pending, int64_t idle_ms);
void tunnel_free(Connection *c);
void make_request_id(Request *r); // fills r->request_id ($request_id)

// phases.cc
void run_request(Request *r);
void continue_request_after_body(Request *r);
void abort_request(Request *r); // the client went away during PT_AGAIN
void finalize_request(Request *r, int rc);
int internal_redirect(Request *r, std::string_view uri, std::string_view args);
int named_redirect(Request *r, LocationConf *named);

// http_connection.cc: a plain connection's output made while process_input
// runs is gathered here and leaves in one send at its end (flush_output),
// without going through the bufferevent's output (a chain allocation, the
// copies, the callbacks and a drain per response). Bytes here always follow
// the bufferevent's: it is used only while that output is empty, and
// out_spill moves it there before anything else is added to it.
std::string *out_stash(Connection *c, size_t adding); // null: use the bufferevent
void out_spill(Connection *c);
size_t out_pending(Connection *c); // the output not yet written: bufferevent and stash

// response.cc
int send_header(Request *r);
int send_data(Request *r, const void *data, size_t len);
int send_file(Request *r, int fd, int64_t off, int64_t len);
int finish_response(Request *r);
int send_special(Request *r, int status); // the small error page (after error_page checks)
void set_header(Request *r, std::string_view name, std::string_view value, bool replace);
const char *status_line(int status);

// variables.cc
bool variable_exists(std::string_view name);
bool get_variable(Request *r, std::string_view name, std::string &out); // appends
bool eval(Request *r, const ComplexValue &v, std::string &out);         // replaces
std::string_view header_in(Request *r, std::string_view name);
std::string_view request_uri(Request *r); // $request_uri: origin-form even for absolute-form targets

// access_log.cc
void log_request(Request *r);
bool open_access_logs(Cycle &c, std::string &err);

} // namespace portico
