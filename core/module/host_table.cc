// The pt_host table: noexcept C trampolines from the module ABI into the
// core. Nothing here throws; every pointer a module passes is checked
// where a mistake would crash the worker.
#include "base/clock.h"
#include "config/directive.h"
#include "config/setters.h"
#include "http/core_directives.h"
#include "http/request.h"
#include "log/error_log.h"
#include "http/filters.h"
#include "module/host_gateway.h"
#include "module/loader.h"
#include "process/worker.h"
#include "upstream/upstream.h"

#include <cstdarg>
#include <cstring>
#include <unistd.h>

namespace portico {
namespace {

pt_str view(std::string_view s) { return {s.data(), s.size()}; }
std::string_view sv(pt_str s) { return {s.data ? s.data : "", s.len}; }

void h_log(int level, pt_request *r, const char *fmt, ...) {
    if (level > log::level()) return;
    va_list ap;
    va_start(ap, fmt);
    if (!r || !r->c) {
        log::vwrite(level, 0, fmt, ap);
        va_end(ap);
        return;
    }
    // nginx's request context after a module's message, so an operator can
    // tie the line to a client and a request: ", client: ..., request: ..."
    char msg[2048];
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    std::string request, host;
    get_variable(r, "request", request);
    get_variable(r, "host", host);
    log::write(level, r->c->id, "%s, client: %s, request: \"%s\", host: \"%s\"", msg,
               r->c->peer_addr.c_str(), request.c_str(), host.c_str());
}

void *h_conf_alloc(pt_conf *cf, size_t size) {
    auto mem = std::make_unique<char[]>(size ? size : 1);
    memset(mem.get(), 0, size);
    void *p = mem.get();
    cf->cycle->allocations.push_back(std::move(mem));
    return p;
}

void h_conf_set_handler(pt_conf *cf, pt_handler_fn fn) {
    if (!cf->loc) return;
    cf->loc->handler = fn;
    cf->loc->handler_module = cf->module;
}

const char *h_parse_flag(pt_str v, int *out) {
    bool b;
    const char *e = config::parse_flag(sv(v), b);
    if (!e) *out = b;
    return e;
}
const char *h_parse_size(pt_str v, int64_t *out) { return config::parse_size(sv(v), *out); }
const char *h_parse_msec(pt_str v, int64_t *out) { return config::parse_msec(sv(v), *out); }

pt_value *h_conf_value(pt_conf *cf, pt_str text, const char **err) {
    auto owned = std::make_unique<ComplexValue>();
    if (const char *e = compile_value(sv(text), *owned)) {
        if (err) *err = e[0] == '!' ? e + 1 : e;
        return nullptr;
    }
    // values live as long as the configuration generation
    cf->cycle->values.push_back(std::move(owned));
    return reinterpret_cast<pt_value *>(cf->cycle->values.back().get());
}

void h_conf_add_phase(pt_conf *cf, int phase, pt_phase_fn fn, const pt_module *) {
    if (phase < 0 || phase > PT_PHASE_HEADER_FILTER || !cf->module) return;
    cf->cycle->phases[phase].push_back({fn, cf->module});
}

void h_conf_warn(pt_conf *cf, const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    std::string w = buf;
    if (cf->node) w += " in " + cf->node->file + ":" + std::to_string(cf->node->line);
    cf->cycle->warnings.push_back(w);
}

pt_str h_req_field(pt_request *r, pt_field f) {
    switch (f) {
    case PT_F_METHOD: return view(r->head.method);
    case PT_F_URI: return view(r->uri);
    case PT_F_ARGS: return view(r->args);
    case PT_F_REQUEST_URI: return view(r->head.target);
    case PT_F_PROTOCOL: return view(r->head.version == 10 ? "HTTP/1.0" : "HTTP/1.1");
    case PT_F_HOST: return view(r->host);
    case PT_F_FILENAME: return view(r->filename);
    case PT_F_DOCUMENT_ROOT: return view(r->document_root);
    case PT_F_REMOTE_ADDR: return view(r->c->peer_addr);
    case PT_F_SERVER_NAME:
        return r->srv->names.empty() ? pt_str{"", 0} : view(r->srv->names[0]);
    case PT_F_EXTEN: return view(r->exten);
    }
    return {"", 0};
}

int h_req_header(pt_request *r, pt_str name, pt_str *value) {
    std::string_view v = header_in(r, sv(name));
    if (!v.data()) return 0;
    *value = view(v);
    return 1;
}
size_t h_req_header_count(pt_request *r) { return r->head.headers.size(); }
void h_req_header_at(pt_request *r, size_t i, pt_str *name, pt_str *value) {
    if (i >= r->head.headers.size()) {
        *name = *value = {"", 0};
        return;
    }
    *name = view(r->head.headers[i].name);
    *value = view(r->head.headers[i].value);
}

void *h_palloc(pt_request *r, size_t size) {
    void *p = r->arena.allocate(size ? size : 1, alignof(std::max_align_t));
    memset(p, 0, size);
    return p;
}

pt_str copy_to_request(pt_request *r, const std::string &s) {
    char *p = static_cast<char *>(h_palloc(r, s.size() + 1));
    memcpy(p, s.data(), s.size());
    return {p, s.size()};
}

int h_variable(pt_request *r, pt_str name, pt_str *value) {
    std::string out;
    if (!get_variable(r, sv(name), out)) return 0;
    *value = copy_to_request(r, out);
    return 1;
}

int h_eval(pt_request *r, const pt_value *v, pt_str *out) {
    std::string s;
    eval(r, *reinterpret_cast<const ComplexValue *>(v), s);
    *out = copy_to_request(r, s);
    return PT_OK;
}

void *h_get_ctx(pt_request *r, const pt_module *m) {
    for (auto &info : r->cycle->modules)
        if (info->mod == m) return r->ctx[info->index];
    return nullptr;
}
void h_set_ctx(pt_request *r, const pt_module *m, void *ctx) {
    for (auto &info : r->cycle->modules)
        if (info->mod == m) r->ctx[info->index] = ctx;
}
void *h_loc_conf(pt_request *r, const pt_module *m) {
    for (auto &info : r->cycle->modules)
        if (info->mod == m) return r->loc->module_conf[info->index];
    return nullptr;
}

void h_set_status(pt_request *r, int status) { r->status = status; }
int h_resp_header_set(pt_request *r, pt_str n, pt_str v) {
    set_header(r, sv(n), sv(v), true);
    return PT_OK;
}
int h_resp_header_add(pt_request *r, pt_str n, pt_str v) {
    set_header(r, sv(n), sv(v), false);
    return PT_OK;
}
int h_resp_header_get(pt_request *r, pt_str n, pt_str *v) {
    for (auto &h : r->out_headers)
        if (h.first.size() == n.len && strncasecmp(h.first.data(), n.data, n.len) == 0) {
            *v = view(h.second);
            return 1;
        }
    return 0;
}
void h_set_content_length(pt_request *r, int64_t len) { r->content_length = len; }
int h_send_header(pt_request *r) { return send_header(r); }
int h_send_data(pt_request *r, const void *d, size_t n) { return send_data(r, d, n); }
int h_send_file(pt_request *r, int fd, int64_t off, int64_t len) { return send_file(r, fd, off, len); }
int h_finish(pt_request *r) { return finish_response(r); }
void h_finalize(pt_request *r, int rc) {
    r->pending = false;
    finalize_request(r, rc);
}
// The new location's handler may answer synchronously, which frees r (and,
// after an async start, may even begin the next pipelined request on the
// connection). Then PT_DONE tells the caller r is gone: it must not call
// finalize or touch r again; a live request's PT_DONE becomes PT_OK.
int h_internal_redirect(pt_request *r, pt_str uri, pt_str args) {
    Connection *c = r->c;
    uint64_t serial = c->requests;
    int rc;
    if (uri.len && uri.data[0] == '@') {
        void *named = r->srv->locations.find_named(sv(uri));
        if (!named) return 500;
        rc = named_redirect(r, static_cast<LocationConf *>(named));
    } else {
        rc = internal_redirect(r, sv(uri), sv(args));
    }
    if (c->req.get() != r || c->requests != serial) return PT_DONE;
    return rc == PT_DONE ? PT_OK : rc;
}
int h_is_head(pt_request *r) { return r->head.method == "HEAD"; }
void *h_event_base(pt_request *) { return current_worker() ? current_worker()->base : nullptr; }
pt_str h_mime_type(pt_request *r, pt_str exten) {
    std::string ext(sv(exten));
    for (char &ch : ext) ch = char(tolower((unsigned char)ch));
    auto &types = (*r->loc->types)->by_ext;
    auto it = types.find(ext);
    if (it != types.end()) return view(it->second);
    return view(*r->loc->default_type);
}
void h_cleanup_add(pt_request *r, void (*fn)(void *), void *data) {
    r->cleanups.emplace_back(fn, data);
}
int64_t h_now_sec() { return clock::now_sec(); }
int h_tunnel(pt_request *r, pt_upstream_conn *uc, pt_str pending, int64_t idle_ms) {
    return start_tunnel(r, uc, sv(pending), idle_ms > 0 ? idle_ms : 60000);
}
int h_conf_location_kind(pt_conf *cf) {
    if (!cf->loc) return 0;
    switch (cf->loc->kind) {
    case http::LocKind::Exact: return 1;
    case http::LocKind::Regex:
    case http::LocKind::RegexCaseless: return 2;
    case http::LocKind::Named: return 3;
    default: return 0;
    }
}

const pt_host kHost = {
    sizeof(pt_host), PT_ABI_MAJOR, PT_ABI_MINOR,
    h_log,
    h_conf_alloc, h_conf_set_handler, h_parse_flag, h_parse_size, h_parse_msec, h_conf_value,
    h_conf_add_phase, h_conf_warn,
    h_req_field, h_req_header, h_req_header_count, h_req_header_at, h_variable, h_eval, h_palloc,
    h_get_ctx, h_set_ctx, h_loc_conf,
    h_set_status, h_resp_header_set, h_resp_header_add, h_resp_header_get, h_set_content_length,
    h_send_header, h_send_data, h_send_file, h_finish, h_finalize, h_internal_redirect, h_is_head,
    h_event_base, h_mime_type, h_cleanup_add, h_now_sec,
    hostfn::req_body,
    hostfn::cgi_create, hostfn::cgi_directive, hostfn::cgi_merge, hostfn::cgi_has_param,
    hostfn::cgi_build,
    hostfn::upstream_ref, hostfn::upstream_keepalive, hostfn::upstream_connect,
    hostfn::upstream_fd, hostfn::upstream_reused, hostfn::upstream_name,
    hostfn::upstream_release,
    hostfn::http_parse_response, hostfn::chunked_new, hostfn::chunked_feed,
    hostfn::header_forwardable, hostfn::conf_add_variable,
    hostfn::conf_add_body_filter, hostfn::body_next, hostfn::resp_status,
    hostfn::resp_content_length, hostfn::resp_header_del,
    h_tunnel, h_conf_location_kind, hostfn::body_filter_want,
    portico::upstream_io_start, portico::upstream_io_write, portico::upstream_io_unsent,
    portico::upstream_io_input,
};
} // namespace

const pt_host *host_table() { return &kHost; }
} // namespace portico
