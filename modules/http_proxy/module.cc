// proxy_pass: the module descriptor and its directives (nginx's names and
// inheritance rules). The request is re-serialized (request_writer.cc), the
// response parsed by the host's strict parser (stream.cc).
//
// Differences from nginx, on purpose:
//  - proxy_http_version defaults to 1.1 (nginx: 1.0): keep-alive pools need
//    it, and an HTTP/1.1 upstream may answer chunked, which we decode
//    strictly rather than reading to close.
//  - "Connection: close" is sent by default only when the upstream{} keeps no
//    idle connections; with `keepalive N` nothing is sent (HTTP/1.1 keeps the
//    connection open), so `proxy_set_header Connection ""` is not needed.
//  - proxy_buffering, proxy_request_buffering, proxy_buffers,
//    proxy_busy_buffers_size, proxy_next_upstream*: accepted so nginx configs
//    load, without effect: the request body is always read first by the host
//    (request buffering on), the response streams as it arrives, and retries
//    belong to the upstream layer (a failed connect tries the next server; a
//    pooled connection that dies before answering an idempotent request is
//    retried on another).
//  - proxy_ignore_client_abort: accepted; a client that goes away ends the
//    upstream exchange (the connection is closed, never pooled).
#include "proxy.h"
#include "target.h"

#include <cstring>
#include <string_view>

using namespace portico::proxy;

namespace {

pt_str copy_str(pt_conf *cf, std::string_view s) {
    char *p = static_cast<char *>(H->conf_alloc(cf, s.size() + 1));
    memcpy(p, s.data(), s.size());
    return {p, s.size()};
}

int var_proxy_host(pt_request *, void *loc_conf, pt_str *out) {
    auto *c = static_cast<const ProxyConf *>(loc_conf);
    if (!c || !c->upstream) return 0;
    *out = c->proxy_host;
    return 1;
}

int var_proxy_port(pt_request *, void *loc_conf, pt_str *out) {
    auto *c = static_cast<const ProxyConf *>(loc_conf);
    if (!c || !c->upstream) return 0;
    *out = c->proxy_port;
    return 1;
}

void *create_main_conf(pt_conf *cf) {
    H->conf_add_variable(cf, "proxy_host", var_proxy_host);
    H->conf_add_variable(cf, "proxy_port", var_proxy_port);
    return H->conf_alloc(cf, 1);
}

void *create_loc_conf(pt_conf *cf) {
    auto *c = static_cast<ProxyConf *>(H->conf_alloc(cf, sizeof(ProxyConf)));
    c->http_version = c->nuser = c->nhide = c->npass = c->redirect_mode = -1;
    c->pass_request_headers = c->pass_request_body = c->intercept_errors = c->ignore_client_abort = -1;
    c->connect_timeout = c->send_timeout = c->read_timeout = c->buffer_size = -1;
    return c;
}

template <class T> void inherit(T &child, T parent, T unset, T dflt) {
    if (child == unset) child = parent == unset ? dflt : parent;
}

const char *merge_loc_conf(pt_conf *cf, void *parent, void *child) {
    auto *p = static_cast<ProxyConf *>(parent);
    auto *c = static_cast<ProxyConf *>(child);
    inherit(c->http_version, p->http_version, -1, 11);
    inherit(c->pass_request_headers, p->pass_request_headers, -1, 1);
    inherit(c->pass_request_body, p->pass_request_body, -1, 1);
    inherit(c->intercept_errors, p->intercept_errors, -1, 0);
    inherit(c->ignore_client_abort, p->ignore_client_abort, -1, 0);
    inherit<int64_t>(c->connect_timeout, p->connect_timeout, -1, 60000);
    inherit<int64_t>(c->send_timeout, p->send_timeout, -1, 60000);
    inherit<int64_t>(c->read_timeout, p->read_timeout, -1, 60000);
    inherit<int64_t>(c->buffer_size, p->buffer_size, -1, 8192);
    if (!c->set_body) c->set_body = p->set_body;
    if (!c->method) c->method = p->method;
    // arrays: a level that sets none inherits the parent's list as a whole
    if (c->nuser < 0) {
        c->nuser = p->nuser < 0 ? 0 : p->nuser;
        memcpy(c->user, p->user, sizeof c->user);
    }
    if (c->nhide < 0) {
        c->nhide = p->nhide < 0 ? 0 : p->nhide;
        memcpy(c->hide, p->hide, sizeof c->hide);
    }
    if (c->npass < 0) {
        c->npass = p->npass < 0 ? 0 : p->npass;
        memcpy(c->pass, p->pass, sizeof c->pass);
    }
    if (c->redirect_mode < 0) {
        c->redirect_mode = p->redirect_mode < 0 ? 1 : p->redirect_mode;
        c->redirect_default = p->redirect_mode < 0 ? 1 : p->redirect_default;
        c->nredirects = p->nredirects;
        memcpy(c->redirects, p->redirects, sizeof c->redirects);
    }
    // a location without its own proxy_pass inherits nothing of it (nginx)
    c->nset = 0;
    for (int i = 0; i < c->nuser; i++) c->set[c->nset++] = c->user[i];
    auto has = [c](std::string_view n) {
        for (int i = 0; i < c->nuser; i++)
            if (ieq(sv(c->user[i].name), n)) return true;
        return false;
    };
    const char *err = nullptr;
    if (!has("Host")) c->set[c->nset++] = {PT_STR("Host"), H->conf_value(cf, PT_STR("$proxy_host"), &err)};
    bool pooled = c->upstream && H->upstream_keepalive(c->upstream) > 0 && c->http_version == 11;
    if (!has("Connection") && !pooled)
        c->set[c->nset++] = {PT_STR("Connection"), H->conf_value(cf, PT_STR("close"), &err)};
    for (int i = 0; i < c->nset; i++)
        if (!c->set[i].value) return err ? err : "!cannot compile a default proxy header";
    return nullptr;
}

const char *set_pass(pt_conf *cf, void *conf, const pt_str *a, size_t) {
    auto *c = static_cast<ProxyConf *>(conf);
    if (c->upstream) return "is duplicate";
    PassTarget t;
    if (const char *e = parse_pass(sv(a[1]), t)) return e;
    if (sv(a[1]).find('$') != std::string_view::npos)
        return "!variables in proxy_pass are not supported yet";
    const char *err = nullptr;
    c->upstream = H->upstream_ref(cf, ps(t.upstream), &err);
    if (!c->upstream) return err;
    c->has_uri = t.has_uri;
    c->uri_part = copy_str(cf, t.uri);
    c->url = copy_str(cf, t.url);
    c->proxy_host = copy_str(cf, t.proxy_host);
    c->proxy_port = copy_str(cf, t.proxy_port);
    H->conf_set_handler(cf, handler);
    return nullptr;
}

const char *set_http_version(pt_conf *, void *conf, const pt_str *a, size_t) {
    std::string_view v = sv(a[1]);
    auto *c = static_cast<ProxyConf *>(conf);
    if (v == "1.0") c->http_version = 10;
    else if (v == "1.1") c->http_version = 11;
    else return "!invalid value in \"proxy_http_version\" directive, it must be \"1.0\" or \"1.1\"";
    return nullptr;
}

const char *set_header(pt_conf *cf, void *conf, const pt_str *a, size_t) {
    auto *c = static_cast<ProxyConf *>(conf);
    if (c->nuser < 0) c->nuser = 0;
    if (c->nuser >= ProxyConf::kMaxSet) return "!too many proxy_set_header directives";
    std::string_view name = sv(a[1]);
    if (name.empty() || name.find_first_of(" \t:\r\n") != std::string_view::npos)
        return "!invalid header name in \"proxy_set_header\"";
    const char *err = nullptr;
    pt_value *v = H->conf_value(cf, a[2], &err);
    if (!v) return err;
    c->user[c->nuser++] = {copy_str(cf, name), v};
    return nullptr;
}

const char *set_flag(pt_conf *, void *conf, const pt_str *a, size_t) {
    auto *c = static_cast<ProxyConf *>(conf);
    int v;
    if (const char *e = H->conf_parse_flag(a[1], &v)) return e;
    std::string_view name = sv(a[0]);
    if (name == "proxy_pass_request_headers") c->pass_request_headers = v;
    else if (name == "proxy_pass_request_body") c->pass_request_body = v;
    else if (name == "proxy_intercept_errors") c->intercept_errors = v;
    else if (name == "proxy_ignore_client_abort") c->ignore_client_abort = v;
    return nullptr;
}

const char *set_time(pt_conf *, void *conf, const pt_str *a, size_t) {
    auto *c = static_cast<ProxyConf *>(conf);
    int64_t v;
    if (const char *e = H->conf_parse_msec(a[1], &v)) return e;
    std::string_view name = sv(a[0]);
    if (name == "proxy_connect_timeout") c->connect_timeout = v;
    else if (name == "proxy_send_timeout") c->send_timeout = v;
    else c->read_timeout = v;
    return nullptr;
}

const char *set_buffer_size(pt_conf *, void *conf, const pt_str *a, size_t) {
    int64_t v;
    if (const char *e = H->conf_parse_size(a[1], &v)) return e;
    if (v < 512) return "!proxy_buffer_size must be at least 512";
    if (v > 64 * 1024) v = 64 * 1024; // the host's response parser reads heads up to 64k
    static_cast<ProxyConf *>(conf)->buffer_size = v;
    return nullptr;
}

const char *set_header_list(pt_conf *cf, void *conf, const pt_str *a, size_t) {
    auto *c = static_cast<ProxyConf *>(conf);
    bool hide = sv(a[0]) == "proxy_hide_header";
    int &n = hide ? c->nhide : c->npass;
    if (n < 0) n = 0;
    if (n >= ProxyConf::kMaxNames) return "!too many header names";
    (hide ? c->hide : c->pass)[n++] = copy_str(cf, sv(a[1]));
    return nullptr;
}

const char *set_redirect(pt_conf *cf, void *conf, const pt_str *a, size_t n) {
    auto *c = static_cast<ProxyConf *>(conf);
    if (c->redirect_mode < 0) {
        c->redirect_mode = 1;
        c->redirect_default = 0;
        c->nredirects = 0;
    }
    if (n == 2) {
        std::string_view v = sv(a[1]);
        if (v == "off") {
            c->redirect_mode = 0;
            return nullptr;
        }
        if (v == "default") {
            c->redirect_default = 1;
            return nullptr;
        }
        return "!invalid parameter in \"proxy_redirect\" (default, off, or \"from to\")";
    }
    if (sv(a[1]).size() && sv(a[1])[0] == '~')
        return "!regular expressions in proxy_redirect are not supported yet";
    if (c->nredirects >= ProxyConf::kMaxRedirects) return "!too many proxy_redirect rules";
    const char *err = nullptr;
    pt_value *to = H->conf_value(cf, a[2], &err);
    if (!to) return err;
    c->redirects[c->nredirects++] = {copy_str(cf, sv(a[1])), to};
    return nullptr;
}

const char *set_value(pt_conf *cf, void *conf, const pt_str *a, size_t) {
    auto *c = static_cast<ProxyConf *>(conf);
    const char *err = nullptr;
    pt_value *v = H->conf_value(cf, a[1], &err);
    if (!v) return err;
    if (sv(a[0]) == "proxy_set_body") c->set_body = v;
    else c->method = v;
    return nullptr;
}

const char *set_accepted(pt_conf *, void *, const pt_str *, size_t) { return nullptr; }

constexpr uint32_t HSL = PT_CTX_HTTP | PT_CTX_SERVER | PT_CTX_LOCATION;
const pt_directive kDirectives[] = {
    {"proxy_pass", PT_CTX_LOCATION | PT_CTX_IF, PT_ARGS(1), PT_CONF_LOC, set_pass},
    {"proxy_http_version", HSL, PT_ARGS(1), PT_CONF_LOC, set_http_version},
    {"proxy_set_header", HSL, PT_ARGS(2) | PT_ARGS_MULTI, PT_CONF_LOC, set_header},
    {"proxy_pass_request_headers", HSL, PT_ARGS_FLAG, PT_CONF_LOC, set_flag},
    {"proxy_pass_request_body", HSL, PT_ARGS_FLAG, PT_CONF_LOC, set_flag},
    {"proxy_intercept_errors", HSL, PT_ARGS_FLAG, PT_CONF_LOC, set_flag},
    {"proxy_ignore_client_abort", HSL, PT_ARGS_FLAG, PT_CONF_LOC, set_flag},
    {"proxy_connect_timeout", HSL, PT_ARGS(1), PT_CONF_LOC, set_time},
    {"proxy_send_timeout", HSL, PT_ARGS(1), PT_CONF_LOC, set_time},
    {"proxy_read_timeout", HSL, PT_ARGS(1), PT_CONF_LOC, set_time},
    {"proxy_buffer_size", HSL, PT_ARGS(1), PT_CONF_LOC, set_buffer_size},
    {"proxy_hide_header", HSL, PT_ARGS(1) | PT_ARGS_MULTI, PT_CONF_LOC, set_header_list},
    {"proxy_pass_header", HSL, PT_ARGS(1) | PT_ARGS_MULTI, PT_CONF_LOC, set_header_list},
    {"proxy_redirect", HSL, PT_ARGS(1) | PT_ARGS(2) | PT_ARGS_MULTI, PT_CONF_LOC, set_redirect},
    {"proxy_set_body", HSL, PT_ARGS(1), PT_CONF_LOC, set_value},
    {"proxy_method", HSL, PT_ARGS(1), PT_CONF_LOC, set_value},
    {"proxy_buffering", HSL, PT_ARGS_FLAG, PT_CONF_LOC, set_accepted},
    {"proxy_request_buffering", HSL, PT_ARGS_FLAG, PT_CONF_LOC, set_accepted},
    {"proxy_buffers", HSL, PT_ARGS(2), PT_CONF_LOC, set_accepted},
    {"proxy_busy_buffers_size", HSL, PT_ARGS(1), PT_CONF_LOC, set_accepted},
    {"proxy_next_upstream", HSL, PT_ARGS_1MORE, PT_CONF_LOC, set_accepted},
    {"proxy_next_upstream_tries", HSL, PT_ARGS(1), PT_CONF_LOC, set_accepted},
    {"proxy_next_upstream_timeout", HSL, PT_ARGS(1), PT_CONF_LOC, set_accepted},
    {nullptr, 0, 0, PT_CONF_MAIN, nullptr},
};

const pt_module kModule = {
    PT_ABI_MAJOR, PT_ABI_MINOR, PT_ABI_SIGNATURE, "http_proxy", "0.1.0", kDirectives,
    create_main_conf, create_loc_conf, merge_loc_conf, nullptr, nullptr, nullptr,
};
} // namespace

extern "C" PT_EXPORT const pt_module *pt_module_entry(const pt_host *host) {
    H = host;
    g_module = &kModule;
    return &kModule;
}
