// fastcgi_pass: the module descriptor and its directives (nginx's names).
// The CGI settings (fastcgi_param, fastcgi_split_path_info, fastcgi_index,
// fastcgi_pass_request_headers) are handed to the host's shared builder;
// this module only speaks the FastCGI protocol (stream.cc, record.cc).
#include "stream.h"

#include <cstring>
#include <new>
#include <string_view>

using namespace portico::fastcgi;

namespace {
std::string_view sv(pt_str s) { return {s.data ? s.data : "", s.len}; }

void *create_loc_conf(pt_conf *cf) {
    auto *c = static_cast<FcgiConf *>(H->conf_alloc(cf, sizeof(FcgiConf)));
    c->cgi = H->cgi_create(cf);
    c->keep_conn = c->pass_request_body = c->intercept_errors = c->ignore_client_abort =
        c->multiplex = -1;
    c->connect_timeout = c->send_timeout = c->read_timeout = c->buffer_size = -1;
    return c;
}

template <class T> void inherit(T &child, T parent, T unset, T dflt) {
    if (child == unset) child = parent == unset ? dflt : parent;
}

const char *merge_loc_conf(pt_conf *cf, void *parent, void *child) {
    auto *p = static_cast<FcgiConf *>(parent);
    auto *c = static_cast<FcgiConf *>(child);
    inherit(c->keep_conn, p->keep_conn, -1, 0);
    inherit(c->pass_request_body, p->pass_request_body, -1, 1);
    inherit(c->intercept_errors, p->intercept_errors, -1, 0);
    inherit(c->ignore_client_abort, p->ignore_client_abort, -1, 0);
    inherit(c->multiplex, p->multiplex, -1, 0);
    inherit<int64_t>(c->connect_timeout, p->connect_timeout, -1, 60000);
    inherit<int64_t>(c->send_timeout, p->send_timeout, -1, 60000);
    inherit<int64_t>(c->read_timeout, p->read_timeout, -1, 60000);
    // nginx: one memory page (4k); 8k keeps typical PHP frameworks' cookies in
    inherit<int64_t>(c->buffer_size, p->buffer_size, -1, 8192);
    if (!c->nhide) {
        memcpy(c->hide, p->hide, sizeof c->hide);
        c->nhide = p->nhide;
    }
    if (!c->npass) {
        memcpy(c->pass, p->pass, sizeof c->pass);
        c->npass = p->npass;
    }
    if (const char *e = H->cgi_merge(cf, p->cgi, c->cgi)) return e;
    if (c->upstream && !H->cgi_has_param(c->cgi, PT_STR("SCRIPT_FILENAME")))
        H->conf_warn(cf, "fastcgi_pass without a SCRIPT_FILENAME param: PHP-FPM will answer "
                         "\"Primary script unknown\" (include fastcgi.conf)");
    if (c->upstream && H->upstream_keepalive(c->upstream) && c->keep_conn != 1)
        H->conf_warn(cf, "the upstream of this fastcgi_pass keeps idle connections (keepalive) "
                         "but fastcgi_keep_conn is off: the backend closes them after each request");
    return nullptr;
}

const char *set_pass(pt_conf *cf, void *conf, const pt_str *a, size_t) {
    auto *c = static_cast<FcgiConf *>(conf);
    if (c->upstream) return "is duplicate";
    const char *err = nullptr;
    c->upstream = H->upstream_ref(cf, a[1], &err);
    if (!c->upstream) return err;
    H->conf_set_handler(cf, handler);
    return nullptr;
}

const char *set_cgi(pt_conf *cf, void *conf, const pt_str *a, size_t n) {
    return H->cgi_directive(cf, static_cast<FcgiConf *>(conf)->cgi, a, n);
}

const char *set_flag(pt_conf *, void *conf, const pt_str *a, size_t) {
    auto *c = static_cast<FcgiConf *>(conf);
    int v;
    if (const char *e = H->conf_parse_flag(a[1], &v)) return e;
    std::string_view name = sv(a[0]);
    if (name == "fastcgi_keep_conn") c->keep_conn = v;
    else if (name == "fastcgi_pass_request_body") c->pass_request_body = v;
    else if (name == "fastcgi_intercept_errors") c->intercept_errors = v;
    else if (name == "fastcgi_ignore_client_abort") c->ignore_client_abort = v;
    else if (name == "fastcgi_multiplex") c->multiplex = v;
    return nullptr;
}

const char *set_time(pt_conf *, void *conf, const pt_str *a, size_t) {
    auto *c = static_cast<FcgiConf *>(conf);
    int64_t v;
    if (const char *e = H->conf_parse_msec(a[1], &v)) return e;
    std::string_view name = sv(a[0]);
    if (name == "fastcgi_connect_timeout") c->connect_timeout = v;
    else if (name == "fastcgi_send_timeout") c->send_timeout = v;
    else c->read_timeout = v;
    return nullptr;
}

const char *set_buffer_size(pt_conf *, void *conf, const pt_str *a, size_t) {
    int64_t v;
    if (const char *e = H->conf_parse_size(a[1], &v)) return e;
    if (v < 512) return "!fastcgi_buffer_size must be at least 512";
    static_cast<FcgiConf *>(conf)->buffer_size = v;
    return nullptr;
}

const char *set_header_list(pt_conf *cf, void *conf, const pt_str *a, size_t) {
    auto *c = static_cast<FcgiConf *>(conf);
    bool hide = sv(a[0]) == "fastcgi_hide_header";
    int &n = hide ? c->nhide : c->npass;
    if (n >= FcgiConf::kMaxNames) return "!too many header names";
    char *copy = static_cast<char *>(H->conf_alloc(cf, a[1].len + 1));
    memcpy(copy, a[1].data, a[1].len);
    (hide ? c->hide : c->pass)[n++] = pt_str{copy, a[1].len};
    return nullptr;
}

const char *set_accepted(pt_conf *, void *, const pt_str *, size_t) {
    // nginx directives whose job our design does differently (buffering is
    // bounded by the event loop, retries by the upstream layer): accepted so
    // that nginx configurations load unchanged
    return nullptr;
}

constexpr uint32_t HSL = PT_CTX_HTTP | PT_CTX_SERVER | PT_CTX_LOCATION;
const pt_directive kDirectives[] = {
    {"fastcgi_pass", PT_CTX_LOCATION, PT_ARGS(1), PT_CONF_LOC, set_pass},
    {"fastcgi_param", HSL, PT_ARGS(2) | PT_ARGS(3) | PT_ARGS_MULTI, PT_CONF_LOC, set_cgi},
    {"fastcgi_split_path_info", PT_CTX_LOCATION, PT_ARGS(1), PT_CONF_LOC, set_cgi},
    {"fastcgi_index", HSL, PT_ARGS(1), PT_CONF_LOC, set_cgi},
    {"fastcgi_pass_request_headers", HSL, PT_ARGS_FLAG, PT_CONF_LOC, set_cgi},
    {"fastcgi_pass_authorization", HSL, PT_ARGS_FLAG, PT_CONF_LOC, set_cgi},
    {"fastcgi_pass_request_body", HSL, PT_ARGS_FLAG, PT_CONF_LOC, set_flag},
    {"fastcgi_keep_conn", HSL, PT_ARGS_FLAG, PT_CONF_LOC, set_flag},
    {"fastcgi_intercept_errors", HSL, PT_ARGS_FLAG, PT_CONF_LOC, set_flag},
    {"fastcgi_ignore_client_abort", HSL, PT_ARGS_FLAG, PT_CONF_LOC, set_flag},
    // several requests per backend connection, for apps that say
    // FCGI_MPXS_CONNS=1 (mux.cc); nginx never shipped it
    {"fastcgi_multiplex", HSL, PT_ARGS_FLAG, PT_CONF_LOC, set_flag},
    {"fastcgi_connect_timeout", HSL, PT_ARGS(1), PT_CONF_LOC, set_time},
    {"fastcgi_send_timeout", HSL, PT_ARGS(1), PT_CONF_LOC, set_time},
    {"fastcgi_read_timeout", HSL, PT_ARGS(1), PT_CONF_LOC, set_time},
    {"fastcgi_buffer_size", HSL, PT_ARGS(1), PT_CONF_LOC, set_buffer_size},
    {"fastcgi_hide_header", HSL, PT_ARGS(1) | PT_ARGS_MULTI, PT_CONF_LOC, set_header_list},
    {"fastcgi_pass_header", HSL, PT_ARGS(1) | PT_ARGS_MULTI, PT_CONF_LOC, set_header_list},
    {"fastcgi_buffers", HSL, PT_ARGS(2), PT_CONF_LOC, set_accepted},
    {"fastcgi_busy_buffers_size", HSL, PT_ARGS(1), PT_CONF_LOC, set_accepted},
    {"fastcgi_buffering", HSL, PT_ARGS_FLAG, PT_CONF_LOC, set_accepted},
    {"fastcgi_request_buffering", HSL, PT_ARGS_FLAG, PT_CONF_LOC, set_accepted},
    {"fastcgi_max_temp_file_size", HSL, PT_ARGS(1), PT_CONF_LOC, set_accepted},
    {"fastcgi_temp_file_write_size", HSL, PT_ARGS(1), PT_CONF_LOC, set_accepted},
    {"fastcgi_temp_path", HSL, PT_ARGS_1MORE, PT_CONF_LOC, set_accepted},
    {"fastcgi_next_upstream", HSL, PT_ARGS_1MORE, PT_CONF_LOC, set_accepted},
    {"fastcgi_next_upstream_tries", HSL, PT_ARGS(1), PT_CONF_LOC, set_accepted},
    {"fastcgi_next_upstream_timeout", HSL, PT_ARGS(1), PT_CONF_LOC, set_accepted},
    {"fastcgi_catch_stderr", HSL, PT_ARGS(1) | PT_ARGS_MULTI, PT_CONF_LOC, set_accepted},
    {nullptr, 0, 0, PT_CONF_MAIN, nullptr},
};

// the shared connections and what each backend said live per worker
void exit_worker(const pt_host *) {
    mux_exit_worker();
    stream_exit_worker();
}

const pt_module kModule = {
    PT_ABI_MAJOR, PT_ABI_MINOR, PT_ABI_SIGNATURE, "fastcgi", "0.1.0", kDirectives,
    nullptr, create_loc_conf, merge_loc_conf, nullptr, nullptr, exit_worker,
};
} // namespace

extern "C" PT_EXPORT const pt_module *pt_module_entry(const pt_host *host) {
    H = host;
    g_module = &kModule;
    return &kModule;
}
