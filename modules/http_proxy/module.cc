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
//  - https:// upstreams are never kept alive (stream.cc says why); the
//    sessions are (proxy_ssl_session_reuse), so reconnecting is cheap.
//  - proxy_pass with variables: the scheme must be written out; the host
//    must evaluate to an address (IP:port, [IPv6]:port, unix:/path) or to a
//    name some literal proxy_pass of the configuration uses (an upstream{}
//    or an address): there is no `resolver`, and the ABI cannot look up an
//    upstream{} by name at request time. Other names: 502, as nginx without
//    a resolver.
//  - proxy_ssl_* file paths are used as written (nginx: relative to the
//    prefix); write them absolute.
#include "proxy.h"
#include "target.h"
#include "tls_client.h"

#include <cstring>
#include <string_view>

using namespace portico::proxy;

namespace {

pt_str copy_str(pt_conf *cf, std::string_view s) {
    char *p = static_cast<char *>(H->conf_alloc(cf, s.size() + 1));
    memcpy(p, s.data(), s.size());
    return {p, s.size()};
}

int var_proxy_host(pt_request *r, void *loc_conf, pt_str *out) {
    auto *c = static_cast<const ProxyConf *>(loc_conf);
    if (c && c->pass_value) return dynamic_proxy_var(r, false, out) ? 1 : 0;
    if (!c || !c->upstream) return 0;
    *out = c->proxy_host;
    return 1;
}

int var_proxy_port(pt_request *r, void *loc_conf, pt_str *out) {
    auto *c = static_cast<const ProxyConf *>(loc_conf);
    if (c && c->pass_value) return dynamic_proxy_var(r, true, out) ? 1 : 0;
    if (!c || !c->upstream) return 0;
    *out = c->proxy_port;
    return 1;
}

// The main conf of the http{} being read: its locations register and look
// up upstreams there (create_loc_conf has no other way to reach it).
ProxyMain *g_reading_main;

void *create_main_conf(pt_conf *cf) {
    H->conf_add_variable(cf, "proxy_host", var_proxy_host);
    H->conf_add_variable(cf, "proxy_port", var_proxy_port);
    g_reading_main = static_cast<ProxyMain *>(H->conf_alloc(cf, sizeof(ProxyMain)));
    return g_reading_main;
}

void *create_loc_conf(pt_conf *cf) {
    auto *c = static_cast<ProxyConf *>(H->conf_alloc(cf, sizeof(ProxyConf)));
    c->main = g_reading_main;
    c->ssl_verify = c->ssl_verify_depth = c->ssl_server_name = c->ssl_session_reuse = c->ssl_protocols = -1;
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
    inherit(c->ssl_verify, p->ssl_verify, -1, 0);
    inherit(c->ssl_verify_depth, p->ssl_verify_depth, -1, 1);
    inherit(c->ssl_server_name, p->ssl_server_name, -1, 0);
    inherit(c->ssl_session_reuse, p->ssl_session_reuse, -1, 1);
    inherit(c->ssl_protocols, p->ssl_protocols, -1, int(kProtoTLSv1_2 | kProtoTLSv1_3));
    for (auto field : {&ProxyConf::ssl_trusted_certificate, &ProxyConf::ssl_ciphers,
                       &ProxyConf::ssl_certificate, &ProxyConf::ssl_certificate_key})
        if (!(c->*field).data) c->*field = p->*field;
    if (!c->ssl_name) c->ssl_name = p->ssl_name;
    if (c->ssl && !c->ssl_ctx)
        if (const char *e = create_client_ctx(c)) return e;
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
    if (!has("Host")) {
        // $proxy_host of a literal proxy_pass is known now (var_proxy_host)
        bool fixed = c->upstream && !c->pass_value;
        c->set[c->nset++] = {PT_STR("Host"), H->conf_value(cf, PT_STR("$proxy_host"), &err), fixed,
                             fixed ? c->proxy_host : pt_str{}};
    }
    bool pooled = !c->ssl && c->upstream && H->upstream_keepalive(c->upstream) > 0 && c->http_version == 11;
    if (!has("Connection") && !pooled)
        c->set[c->nset++] = {PT_STR("Connection"), H->conf_value(cf, PT_STR("close"), &err), 1,
                             PT_STR("close")};
    for (int i = 0; i < c->nset; i++)
        if (!c->set[i].value) return err ? err : "!cannot compile a default proxy header";
    return nullptr;
}

// nginx's proxy_pass: a literal URL is resolved now (upstream_ref); one
// with variables is compiled and evaluated per request (stream.cc).
const char *set_pass(pt_conf *cf, void *conf, const pt_str *a, size_t) {
    auto *c = static_cast<ProxyConf *>(conf);
    if (c->upstream || c->pass_value) return "is duplicate";
    std::string_view text = sv(a[1]);
    const char *err = nullptr;
    if (text.find('$') != std::string_view::npos) {
        size_t skip = text.substr(0, 8) == "https://" ? 8 : text.substr(0, 7) == "http://" ? 7 : 0;
        if (!skip) return "!invalid URL prefix in proxy_pass (with variables the scheme must be written out)";
        c->ssl = skip == 8;
        c->pass_value = H->conf_value(cf, ps(text.substr(skip)), &err);
        if (!c->pass_value) return err;
        H->conf_set_handler(cf, handler);
        return nullptr;
    }
    PassTarget t;
    if (const char *e = parse_pass(text, t)) return e;
    c->upstream = H->upstream_ref(cf, ps(t.upstream), &err);
    if (!c->upstream) return err;
    c->ssl = t.ssl;
    c->has_uri = t.has_uri;
    c->uri_part = copy_str(cf, t.uri);
    c->url = copy_str(cf, t.url);
    c->proxy_host = copy_str(cf, t.proxy_host);
    c->proxy_port = copy_str(cf, t.proxy_port);
    if (ProxyMain *m = c->main) {
        bool known = false;
        for (int i = 0; i < m->nknown && !known; i++) known = sv(m->known[i].name) == t.upstream;
        if (!known && m->nknown < ProxyMain::kMaxKnown)
            m->known[m->nknown++] = {copy_str(cf, t.upstream), c->upstream};
    }
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
    bool literal = sv(a[2]).find('$') == std::string_view::npos;
    c->user[c->nuser++] = {copy_str(cf, name), v, literal, literal ? copy_str(cf, sv(a[2])) : pt_str{}};
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

const char *set_ssl_flag(pt_conf *, void *conf, const pt_str *a, size_t) {
    auto *c = static_cast<ProxyConf *>(conf);
    int v;
    if (const char *e = H->conf_parse_flag(a[1], &v)) return e;
    std::string_view name = sv(a[0]);
    if (name == "proxy_ssl_verify") c->ssl_verify = v;
    else if (name == "proxy_ssl_server_name") c->ssl_server_name = v;
    else c->ssl_session_reuse = v;
    return nullptr;
}

const char *set_ssl_file(pt_conf *cf, void *conf, const pt_str *a, size_t) {
    auto *c = static_cast<ProxyConf *>(conf);
    std::string_view name = sv(a[0]);
    pt_str v = copy_str(cf, sv(a[1]));
    if (name == "proxy_ssl_trusted_certificate") c->ssl_trusted_certificate = v;
    else if (name == "proxy_ssl_ciphers") c->ssl_ciphers = v;
    else if (name == "proxy_ssl_certificate") c->ssl_certificate = v;
    else c->ssl_certificate_key = v;
    return nullptr;
}

const char *set_ssl_verify_depth(pt_conf *, void *conf, const pt_str *a, size_t) {
    std::string_view v = sv(a[1]);
    if (v.empty() || v.size() > 3 || v.find_first_not_of("0123456789") != v.npos) return "!invalid value in \"proxy_ssl_verify_depth\"";
    static_cast<ProxyConf *>(conf)->ssl_verify_depth = std::stoi(std::string(v));
    return nullptr;
}

const char *set_ssl_protocols(pt_conf *, void *conf, const pt_str *a, size_t n) {
    return parse_protocols(a, n, &static_cast<ProxyConf *>(conf)->ssl_protocols);
}

const char *set_ssl_name(pt_conf *cf, void *conf, const pt_str *a, size_t) {
    const char *err = nullptr;
    pt_value *v = H->conf_value(cf, a[1], &err);
    if (!v) return err;
    static_cast<ProxyConf *>(conf)->ssl_name = v;
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
    {"proxy_ssl_verify", HSL, PT_ARGS_FLAG, PT_CONF_LOC, set_ssl_flag},
    {"proxy_ssl_server_name", HSL, PT_ARGS_FLAG, PT_CONF_LOC, set_ssl_flag},
    {"proxy_ssl_session_reuse", HSL, PT_ARGS_FLAG, PT_CONF_LOC, set_ssl_flag},
    {"proxy_ssl_trusted_certificate", HSL, PT_ARGS(1), PT_CONF_LOC, set_ssl_file},
    {"proxy_ssl_ciphers", HSL, PT_ARGS(1), PT_CONF_LOC, set_ssl_file},
    {"proxy_ssl_certificate", HSL, PT_ARGS(1), PT_CONF_LOC, set_ssl_file},
    {"proxy_ssl_certificate_key", HSL, PT_ARGS(1), PT_CONF_LOC, set_ssl_file},
    {"proxy_ssl_verify_depth", HSL, PT_ARGS(1), PT_CONF_LOC, set_ssl_verify_depth},
    {"proxy_ssl_protocols", HSL, PT_ARGS_1MORE, PT_CONF_LOC, set_ssl_protocols},
    {"proxy_ssl_name", HSL, PT_ARGS(1), PT_CONF_LOC, set_ssl_name},
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
