/*
 * Portico module ABI — the only header a module includes.
 *
 * Pure C99: fixed-width types, opaque handles, no C++ across the boundary.
 * A module exports one symbol, `pt_module_entry`, returning its descriptor.
 * The loader checks abi_major (must be equal), abi_minor (module's must not
 * exceed the host's) and the signature string before touching anything else.
 *
 * The host hands its services through `pt_host`, a table of function
 * pointers whose first field is its own size: entries are only ever
 * appended (minor bump), so a module built against an older minor keeps
 * working. Changing or removing an entry is a major bump.
 */
#ifndef PORTICO_MODULE_H
#define PORTICO_MODULE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PT_ABI_MAJOR 1
#define PT_ABI_MINOR 1
/* Guards against a module built for another layout of these structs
 * (pointer size, struct packing) even when the numbers happen to agree. */
#define PT_ABI_SIGNATURE "portico-abi:1:lp64:c99"

#define PT_EXPORT __attribute__((visibility("default")))

/* A byte string that is not NUL-terminated. Views handed out by the host are
 * valid for the life of the request (request data) or the configuration
 * generation (config data). */
typedef struct pt_str {
    const char *data;
    size_t len;
} pt_str;

#define PT_STR(lit) ((pt_str){(lit), sizeof(lit) - 1})

/* Return codes shared by every hook. */
typedef enum pt_rc {
    PT_OK = 0,
    PT_ERROR = -1,
    PT_AGAIN = -2,    /* the module will call host->finalize() later */
    PT_DECLINED = -5, /* not mine: next handler */
    PT_DONE = -4
} pt_rc;

/* Log levels, as nginx's error_log. */
enum {
    PT_LOG_EMERG = 0,
    PT_LOG_ALERT,
    PT_LOG_CRIT,
    PT_LOG_ERR,
    PT_LOG_WARN,
    PT_LOG_NOTICE,
    PT_LOG_INFO,
    PT_LOG_DEBUG
};

/* Contexts a directive may appear in (bit mask). */
enum {
    PT_CTX_MAIN = 1u << 0,
    PT_CTX_EVENTS = 1u << 1,
    PT_CTX_HTTP = 1u << 2,
    PT_CTX_SERVER = 1u << 3,
    PT_CTX_LOCATION = 1u << 4,
    PT_CTX_UPSTREAM = 1u << 5,
    PT_CTX_IF = 1u << 6
};

/* Argument counts a directive accepts (bit mask, nginx-style).
 * PT_ARGS(n) for exactly n arguments after the name. */
#define PT_ARGS(n) (1u << (n))
enum {
    PT_ARGS_1MORE = 1u << 12,
    PT_ARGS_2MORE = 1u << 13,
    PT_ARGS_BLOCK = 1u << 14, /* takes a { } block */
    PT_ARGS_FLAG = 1u << 15,  /* exactly one argument: on | off */
    PT_ARGS_MULTI = 1u << 16  /* may be repeated at one level */
};

/* Which configuration object of the module a directive's setter receives. */
typedef enum pt_conf_level {
    PT_CONF_MAIN = 0, /* one per http{} */
    PT_CONF_SRV = 1,  /* one per server{} */
    PT_CONF_LOC = 2   /* one per location{} (and server/http level defaults) */
} pt_conf_level;

typedef struct pt_conf pt_conf;       /* opaque: the directive being parsed */
typedef struct pt_request pt_request; /* opaque: one HTTP request */
typedef struct pt_value pt_value;     /* opaque: a compiled "$var text" value */
typedef struct pt_host pt_host;
typedef struct pt_cgi pt_cgi;                     /* opaque: a location's CGI settings */
typedef struct pt_upstream pt_upstream;           /* opaque: a backend group */
typedef struct pt_upstream_conn pt_upstream_conn; /* opaque: one connection to a backend */

/* One header field, views into a buffer the caller owns. */
typedef struct pt_http_header {
    pt_str name;
    pt_str value;
} pt_http_header;

/* An HTTP/1.1 response head parsed by the host's strict parser (the same
 * one that reads client requests). The caller provides the header array. */
typedef struct pt_http_response {
    int version; /* 10 or 11 */
    int status;
    pt_str reason;
    pt_http_header *headers; /* caller's array of max_headers entries */
    size_t max_headers;
    size_t nheaders;
    int64_t content_length; /* -1: none */
    int chunked, close_delimited, keep_alive, no_body, upgrade;
    size_t head_len; /* bytes of the head, final CRLF included */
    const char *error; /* why it was refused (static text) */
} pt_http_response;

typedef struct pt_chunked pt_chunked; /* opaque: a strict chunked decoder */

/* A body filter sees every piece of the response body (last = 1 on the
 * final call, possibly with no data) and passes its output on with
 * host->body_next(). Filters run in load order. */
typedef int (*pt_body_filter_fn)(pt_request *r, void *loc_conf, pt_str data, int last);

/* A request variable computed by a module (e.g. $proxy_host). */
typedef int (*pt_var_fn)(pt_request *r, void *loc_conf, pt_str *out);

/* Called once a backend connection is ready (status 0) or could not be made
 * (status 502/503/504; the host has logged why). */
typedef void (*pt_connect_fn)(void *data, pt_upstream_conn *c, int status);
/* Host-driven I/O on a plain upstream connection (ABI 1.1): one read watch
 * for the connection's whole life, pooled or in use, so a reused keep-alive
 * connection costs no event-loop registration; writes go out at once (a
 * write watch only while the socket is full); reads need no FIONREAD.
 * `in` is the connection's input, a struct evbuffer*: drain what you used.
 * Either callback may release the connection (upstream_release). */
typedef struct pt_upstream_io {
    void (*read)(void *data, void *in);
    void (*event)(void *data, int what); /* PT_IO_* bits; errno is kept for ERROR */
} pt_upstream_io;
#define PT_IO_EOF 1
#define PT_IO_ERROR 2
#define PT_IO_READ_TIMEOUT 4
#define PT_IO_WRITE_TIMEOUT 8

/* Receives one CGI variable; views valid during the call only. */
typedef void (*pt_env_fn)(void *ctx, pt_str name, pt_str value);

/* Directive setter: returns NULL on success or a message, which the host
 * prints as `"name" directive <message> in file:line`; a message starting
 * with '!' is printed as is (without the '!'), for complete sentences.
 * args[0] is the directive name. */
typedef const char *(*pt_set_fn)(pt_conf *cf, void *conf, const pt_str *args, size_t nargs);

typedef struct pt_directive {
    const char *name;
    uint32_t contexts;
    uint32_t arity;
    pt_conf_level level;
    pt_set_fn set;
} pt_directive;

/* A content handler: produce the response of a request. Returns an HTTP
 * status (>= 100) to have the host send its own page for it, PT_OK when the
 * response was fully produced, PT_AGAIN when it will call finalize(). */
typedef int (*pt_handler_fn)(pt_request *r, void *loc_conf);

/* Phases a module may hook (nginx's order). CONTENT handlers run, in load
 * order, for a location that has no handler of its own (static files). */
enum {
    PT_PHASE_REWRITE = 0,
    PT_PHASE_ACCESS = 1,
    PT_PHASE_LOG = 2,
    PT_PHASE_CONTENT = 3,
    /* header filters run just before the response head is written, in load
     * order; they may change status and headers (PT_OK to go on) */
    PT_PHASE_HEADER_FILTER = 4
};
/* A phase handler: PT_DECLINED to go on, or an HTTP status to end with. */
typedef int (*pt_phase_fn)(pt_request *r, void *loc_conf);

/* Request fields readable by host->req_field(). */
typedef enum pt_field {
    PT_F_METHOD = 0,
    PT_F_URI,          /* normalized, decoded path ($uri) */
    PT_F_ARGS,         /* query string without '?' ($args) */
    PT_F_REQUEST_URI,  /* the original target ($request_uri) */
    PT_F_PROTOCOL,     /* "HTTP/1.1" */
    PT_F_HOST,         /* $host */
    PT_F_FILENAME,     /* $request_filename (root/alias + uri) */
    PT_F_DOCUMENT_ROOT,
    PT_F_REMOTE_ADDR,
    PT_F_SERVER_NAME,
    PT_F_EXTEN         /* file extension of $uri, for MIME lookup */
} pt_field;

typedef struct pt_module {
    uint32_t abi_major;
    uint32_t abi_minor;
    const char *signature; /* PT_ABI_SIGNATURE */
    const char *name;
    const char *version;
    const pt_directive *directives; /* terminated by an entry with name NULL */

    /* Configuration lifecycle. Objects come from host->conf_alloc and live
     * as long as the configuration generation. Any hook may be NULL. */
    void *(*create_main_conf)(pt_conf *cf);
    void *(*create_loc_conf)(pt_conf *cf);
    /* child inherits from parent what it did not set; NULL or an error */
    const char *(*merge_loc_conf)(pt_conf *cf, void *parent, void *child);
    /* after the whole configuration is read: register phase handlers */
    const char *(*postconfig)(pt_conf *cf);

    /* Worker lifecycle. */
    int (*init_worker)(const pt_host *host);
    void (*exit_worker)(const pt_host *host);
} pt_module;

/* The services of the host. Append only. */
struct pt_host {
    size_t size; /* sizeof(pt_host) of the host: check before using an entry */
    uint32_t abi_major;
    uint32_t abi_minor;

    /* ---- logging ---- */
    void (*log)(int level, pt_request *r, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

    /* ---- configuration (valid inside setters and postconfig) ---- */
    void *(*conf_alloc)(pt_conf *cf, size_t size); /* zeroed, lives with the config */
    void (*conf_set_handler)(pt_conf *cf, pt_handler_fn handler);
    const char *(*conf_parse_flag)(pt_str v, int *out);
    const char *(*conf_parse_size)(pt_str v, int64_t *out);
    const char *(*conf_parse_msec)(pt_str v, int64_t *out);
    pt_value *(*conf_value)(pt_conf *cf, pt_str text, const char **err);
    void (*conf_add_phase)(pt_conf *cf, int phase, pt_phase_fn fn, const pt_module *m);
    void (*conf_warn)(pt_conf *cf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

    /* ---- request ---- */
    pt_str (*req_field)(pt_request *r, pt_field f);
    int (*req_header)(pt_request *r, pt_str name, pt_str *value); /* 1 found */
    size_t (*req_header_count)(pt_request *r);
    void (*req_header_at)(pt_request *r, size_t i, pt_str *name, pt_str *value);
    int (*variable)(pt_request *r, pt_str name, pt_str *value); /* 1 found */
    int (*eval)(pt_request *r, const pt_value *v, pt_str *out);  /* PT_OK */
    void *(*palloc)(pt_request *r, size_t size); /* freed with the request */
    void *(*get_ctx)(pt_request *r, const pt_module *m);
    void (*set_ctx)(pt_request *r, const pt_module *m, void *ctx);
    void *(*loc_conf)(pt_request *r, const pt_module *m);

    /* ---- response ---- */
    void (*set_status)(pt_request *r, int status);
    int (*resp_header_set)(pt_request *r, pt_str name, pt_str value); /* replaces */
    int (*resp_header_add)(pt_request *r, pt_str name, pt_str value);
    int (*resp_header_get)(pt_request *r, pt_str name, pt_str *value);
    void (*set_content_length)(pt_request *r, int64_t len); /* -1: unknown */
    int (*send_header)(pt_request *r);
    int (*send_data)(pt_request *r, const void *data, size_t len);
    /* takes ownership of fd; sends [offset, offset+len) with sendfile when it can */
    int (*send_file)(pt_request *r, int fd, int64_t offset, int64_t len);
    int (*finish)(pt_request *r); /* the body is complete */
    /* after PT_AGAIN: end the request with rc (PT_OK or an HTTP status) */
    void (*finalize)(pt_request *r, int rc);
    /* restart processing at another URI (error_page, index, X-Accel-Redirect) */
    /* Returns what a content handler would (PT_OK, PT_AGAIN, a status), or
     * PT_DONE: the redirected request was answered and r no longer exists
     * (do not call finalize or touch r). */
    int (*internal_redirect)(pt_request *r, pt_str uri, pt_str args);
    int (*is_head)(pt_request *r);

    /* ---- event loop ---- */
    void *(*event_base)(pt_request *r); /* struct event_base* of the worker */
    pt_str (*mime_type)(pt_request *r, pt_str exten);
    /* fn(data) runs when the request ends, also when the client goes away
     * while the module holds it (PT_AGAIN): release what you hold there */
    void (*cleanup_add)(pt_request *r, void (*fn)(void *data), void *data);
    /* the cached clock (seconds), for conditional requests and Expires */
    int64_t (*now_sec)(void);

    /* ---- request body: read completely before content handlers run ---- */
    void *(*req_body)(pt_request *r); /* struct evbuffer*, NULL when there is none */

    /* ---- the CGI-environment builder, shared by every gateway ----
     * A gateway module creates one pt_cgi per location level and hands its
     * CGI directives (`<prefix>_param`, `_split_path_info`, `_index`,
     * `_pass_request_headers`, `_pass_authorization`) to cgi_directive; the
     * part of the name after the first '_' selects the setting. */
    pt_cgi *(*cgi_create)(pt_conf *cf);
    const char *(*cgi_directive)(pt_conf *cf, pt_cgi *c, const pt_str *args, size_t nargs);
    const char *(*cgi_merge)(pt_conf *cf, pt_cgi *parent, pt_cgi *child);
    int (*cgi_has_param)(const pt_cgi *c, pt_str name);
    /* The environment of r: 0, or an HTTP status when the request is refused
     * (the host has logged why). Nothing is emitted before a refusal. */
    int (*cgi_build)(pt_request *r, const pt_cgi *c, pt_env_fn put, void *ctx);

    /* ---- the upstream layer: backends, balancing, keep-alive pools ---- */
    /* "host:port", "unix:/path" or the name of an upstream{} block */
    pt_upstream *(*upstream_ref)(pt_conf *cf, pt_str target, const char **err);
    int (*upstream_keepalive)(const pt_upstream *u); /* idle connections kept, 0: none */
    /* Starts a connection (pooled idle one if any); cb runs later, never
     * from inside this call. Returns PT_OK or PT_ERROR. */
    int (*upstream_connect)(pt_request *r, pt_upstream *u, int64_t connect_timeout_ms,
                            pt_connect_fn cb, void *data);
    int (*upstream_fd)(pt_upstream_conn *c);
    int (*upstream_reused)(pt_upstream_conn *c); /* came from the keep-alive pool */
    pt_str (*upstream_name)(pt_upstream_conn *c);  /* "127.0.0.1:9000", for logs */
    /* keep: return to the pool (a complete, well-framed exchange only);
     * failed: count a failure against the server (max_fails). */
    void (*upstream_release)(pt_upstream_conn *c, int keep, int failed);

    /* ---- HTTP gateways (http_proxy): the host's strict HTTP/1.1 codecs ---- */
    /* Parses the whole buffered bytes so far: PT_OK (head complete, 1xx
     * included: skip head_len bytes and parse again), PT_AGAIN, or 502 with
     * out->error set (the connection must be discarded, never pooled). */
    int (*http_parse_response)(pt_str buffered, int request_was_head, pt_http_response *out);
    /* A chunked decoder living as long as the request; max_body -1: no limit. */
    pt_chunked *(*chunked_new)(pt_request *r, int64_t max_body);
    /* PT_OK: the body ended (trailers read); PT_AGAIN: more input needed;
     * else an HTTP status (malformed). *consumed bytes of in were used; *data
     * is body bytes decoded from them (a view into in, possibly empty). */
    int (*chunked_feed)(pt_chunked *d, pt_str in, size_t *consumed, pt_str *data);
    /* May this client request header be re-sent to an HTTP upstream? (false
     * for hop-by-hop, Connection-listed, Proxy, Host and framing fields) */
    int (*header_forwardable)(pt_request *r, pt_str name);
    /* Registers $name, computed by fn with the module's location conf.
     * Call from create_main_conf (before the configuration uses it). */
    void (*conf_add_variable)(pt_conf *cf, const char *name, pt_var_fn fn);

    /* ---- response filters (gzip, ...) ---- */
    void (*conf_add_body_filter)(pt_conf *cf, pt_body_filter_fn fn);
    int (*body_next)(pt_request *r, pt_str data, int last);
    int (*resp_status)(pt_request *r);
    int64_t (*resp_content_length)(pt_request *r); /* -1: unknown */
    int (*resp_header_del)(pt_request *r, pt_str name);

    /* ---- protocol upgrade (WebSocket) ----
     * After sending a 101 head (status 101, its Upgrade field set), hand the
     * upstream connection to the host: the client and upstream become a byte
     * tunnel with an idle timeout. `pending`: upstream bytes already read past
     * the 101 head. The request is over when this returns PT_OK; the module
     * must not touch r or uc again (its cleanup still runs). */
    int (*tunnel)(pt_request *r, pt_upstream_conn *uc, pt_str pending, int64_t idle_ms);
    /* kind of the location being configured: 0 prefix, 1 exact, 2 regex, 3 named */
    int (*conf_location_kind)(pt_conf *cf);
    /* A header filter that will transform this response's body says so;
     * without any, the body bypasses the filters (and files go out with
     * sendfile). */
    void (*body_filter_want)(pt_request *r);

    /* ---- upstream connection I/O (ABI 1.1; see pt_upstream_io) ----
     * After upstream_connect's callback: the host reads c for the module
     * until it is released. Not with upstream_fd: asking for the fd means
     * the module does its own I/O (TLS, multiplexing, tunnels). */
    void (*upstream_io_start)(pt_upstream_conn *c, const pt_upstream_io *io, void *data,
                              int64_t read_timeout_ms, int64_t send_timeout_ms);
    /* Writes what the socket takes now and queues the rest, which is NOT
     * copied: data must stay valid until sent or c is released. A write
     * error is reported through io->event, never from inside this call. */
    void (*upstream_io_write)(pt_upstream_conn *c, const void *data, size_t len);
    size_t (*upstream_io_unsent)(pt_upstream_conn *c);
    void *(*upstream_io_input)(pt_upstream_conn *c); /* struct evbuffer* */
};

/* The one symbol a module exports. It may keep `host` for later use, but must
 * not call through it before returning: the loader has not yet checked the
 * module's ABI. */
typedef const pt_module *(*pt_module_entry_fn)(const pt_host *host);
#define PT_MODULE_ENTRY "pt_module_entry"

#define PT_MODULE_INIT(name_, version_)                                                       \
    .abi_major = PT_ABI_MAJOR, .abi_minor = PT_ABI_MINOR, .signature = PT_ABI_SIGNATURE,      \
    .name = (name_), .version = (version_)

#ifdef __cplusplus
}
#endif
#endif /* PORTICO_MODULE_H */
