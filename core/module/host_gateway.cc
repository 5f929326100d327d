#include "module/host_gateway.h"

#include "cgi/cgi_conf.h"
#include "config/directive.h"
#include "config/setters.h"
#include "http/request.h"
#include "upstream/upstream.h"
#include "cgi/header_policy.h"
#include "http/chunked.h"
#include "http/parser.h"
#include "module/module_vars.h"
#include "base/ascii.h"

namespace portico::hostfn {
namespace {
CgiConf *cgi_of(pt_cgi *c) { return reinterpret_cast<CgiConf *>(c); }
const CgiConf *cgi_of(const pt_cgi *c) { return reinterpret_cast<const CgiConf *>(c); }
Upstream *up_of(pt_upstream *u) { return reinterpret_cast<Upstream *>(u); }
std::string_view sv(pt_str s) { return {s.data ? s.data : "", s.len}; }
} // namespace

void *req_body(pt_request *r) { return r->body; }

pt_cgi *cgi_create(pt_conf *cf) {
    auto c = std::make_shared<CgiConf>();
    CgiConf *raw = c.get();
    cf->cycle->owned.push_back(std::move(c));
    return reinterpret_cast<pt_cgi *>(raw);
}

const char *cgi_directive(pt_conf *cf, pt_cgi *pc, const pt_str *a, size_t n) {
    CgiConf *c = cgi_of(pc);
    std::string_view name = sv(a[0]);
    std::string_view key = name.substr(name.find('_') + 1);
    if (key == "param") {
        if (n != 3 && n != 4) return "!invalid number of arguments";
        if (n == 4 && sv(a[3]) != "if_not_empty")
            return config::fmt_error("invalid parameter \"%.*s\"", int(a[3].len), a[3].data);
        std::string err;
        if (!c->params.add(sv(a[1]), sv(a[2]), n == 4, err)) return config::fmt_error("%s", err.c_str());
        // -t: client data in php.ini settings is code execution
        cgi::ParamList one;
        one.add(sv(a[1]), sv(a[2]), n == 4, err);
        for (auto &f : cgi::lint_php_value_params(one)) {
            std::string w = "\"" + f.param + "\" takes its value from the request (" + f.variable +
                            "): a client could set php.ini directives";
            if (cf->node) w += " in " + cf->node->file + ":" + std::to_string(cf->node->line);
            cf->cycle->warnings.push_back(w);
        }
        return nullptr;
    }
    if (key == "split_path_info") {
        if (n != 2) return "!invalid number of arguments";
        std::string err;
        c->split = cgi::SplitPathInfo::compile(sv(a[1]), err);
        if (!c->split) return config::fmt_error("%s", err.c_str());
        c->split_set = true;
        return nullptr;
    }
    if (key == "index") {
        if (n != 2) return "!invalid number of arguments";
        c->index = std::string(sv(a[1]));
        return nullptr;
    }
    if (key == "pass_request_headers" || key == "pass_authorization") {
        bool v;
        if (n != 2) return "!invalid number of arguments";
        if (const char *e = config::parse_flag(sv(a[1]), v)) return e;
        (key == "pass_request_headers" ? c->pass_request_headers : c->pass_authorization) = v;
        return nullptr;
    }
    return config::fmt_error("unknown CGI setting \"%.*s\"", int(name.size()), name.data());
}

const char *cgi_merge(pt_conf *cf, pt_cgi *pp, pt_cgi *pcc) {
    CgiConf *p = cgi_of(pp), *c = cgi_of(pcc);
    const cgi::ParamList &parent_params = p->effective ? *p->effective : p->params;
    c->effective = &cgi::inherit_params(c->params, parent_params);
    if (!c->params.empty() && !parent_params.empty()) {
        // nginx's rule: one *_param at a level drops every inherited one. A
        // level that redefines only some of them is the classic trap.
        size_t dropped = 0;
        for (const auto &param : parent_params.params())
            if (!c->params.sets(param.name)) dropped++;
        if (dropped && cf->loc) {
            std::string w = "a CGI param set in the location \"" + cf->loc->name + "\" drops " +
                            std::to_string(dropped) +
                            " inherited param(s) (nginx's inheritance rule): repeat the "
                            "include there";
            w += std::string(" in ") + cf->loc->file + ":" + std::to_string(cf->loc->line);
            cf->cycle->warnings.push_back(w);
        }
    }
    if (c->split_set) c->split_effective = &*c->split;
    else c->split_effective = p->split_effective ? p->split_effective : (p->split ? &*p->split : nullptr);
    if (!c->index) c->index = p->index;
    if (!c->pass_request_headers) c->pass_request_headers = p->pass_request_headers;
    if (!c->pass_authorization) c->pass_authorization = p->pass_authorization;
    if (cf->loc) cf->loc->cgi = c;
    return nullptr;
}

int cgi_has_param(const pt_cgi *pc, pt_str name) {
    const CgiConf *c = cgi_of(pc);
    const cgi::ParamList &l = c->effective ? *c->effective : c->params;
    return l.sets(sv(name));
}

int cgi_build(pt_request *r, const pt_cgi *pc, pt_env_fn put, void *ctx) {
    struct Adapter {
        pt_env_fn put;
        void *ctx;
    } ad{put, ctx};
    return cgi_build_request(
        r, *cgi_of(pc),
        [](void *a, std::string_view n, std::string_view v) {
            auto *ad = static_cast<Adapter *>(a);
            ad->put(ad->ctx, pt_str{n.data(), n.size()}, pt_str{v.data(), v.size()});
        },
        &ad);
}

pt_upstream *upstream_ref(pt_conf *cf, pt_str target, const char **err) {
    std::string e;
    Upstream *u = portico::upstream_ref(*cf->cycle, sv(target), e);
    if (!u) {
        thread_local std::string msg;
        msg = e;
        if (err) *err = msg.c_str();
        return nullptr;
    }
    if (!u->defined && u->file.empty() && cf->node) {
        u->file = cf->node->file;
        u->line = cf->node->line;
    }
    return reinterpret_cast<pt_upstream *>(u);
}

int upstream_keepalive(const pt_upstream *u) {
    return reinterpret_cast<const Upstream *>(u)->keepalive;
}
int upstream_connect(pt_request *r, pt_upstream *u, int64_t ms, pt_connect_fn cb, void *data) {
    return portico::upstream_connect(r, up_of(u), ms, cb, data);
}
int upstream_fd(pt_upstream_conn *c) { return portico::upstream_conn_fd(c); }
int upstream_reused(pt_upstream_conn *c) { return portico::upstream_conn_reused(c); }
pt_str upstream_name(pt_upstream_conn *c) { return portico::upstream_conn_name(c); }
void upstream_release(pt_upstream_conn *c, int keep, int failed) {
    portico::upstream_release(c, keep, failed);
}
int http_parse_response(pt_str buffered, int request_was_head, pt_http_response *out) {
    // Stateless for the caller: a fresh parser over the whole buffered head
    // (bounded by the caller's buffer size), so a module needs no C++ state.
    thread_local http::ResponseHead head;
    http::Limits limits;
    limits.max_head = 64 * 1024;
    http::ResponseParser parser(limits);
    http::ParseResult pr = parser.feed(sv(buffered), head, request_was_head);
    if (pr.state == http::ParseState::Again) return PT_AGAIN;
    if (pr.state == http::ParseState::Error) {
        out->error = pr.reason ? pr.reason : "invalid response";
        return 502;
    }
    out->version = head.version;
    out->status = head.status;
    out->reason = {head.reason.data(), head.reason.size()};
    out->nheaders = 0;
    for (const auto &h : head.headers) {
        if (out->nheaders >= out->max_headers) {
            out->error = "too many header fields";
            return 502;
        }
        out->headers[out->nheaders++] = {{h.name.data(), h.name.size()},
                                         {h.value.data(), h.value.size()}};
    }
    out->content_length = head.content_length;
    out->chunked = head.chunked;
    out->close_delimited = head.close_delimited;
    out->keep_alive = head.keep_alive;
    out->no_body = head.no_body;
    out->upgrade = head.upgrade;
    out->head_len = head.head_len;
    out->error = nullptr;
    return PT_OK;
}

pt_chunked *chunked_new(pt_request *r, int64_t max_body) {
    auto *d = new http::ChunkedDecoder(max_body);
    r->cleanups.emplace_back([](void *p) { delete static_cast<http::ChunkedDecoder *>(p); }, d);
    return reinterpret_cast<pt_chunked *>(d);
}

int chunked_feed(pt_chunked *pd, pt_str in, size_t *consumed, pt_str *data) {
    auto *d = reinterpret_cast<http::ChunkedDecoder *>(pd);
    std::string_view out;
    auto step = d->feed(sv(in), &out);
    *consumed = step.consumed;
    *data = {out.data(), out.size()};
    if (step.state == http::ParseState::Done) return PT_OK;
    if (step.state == http::ParseState::Again) return PT_AGAIN;
    return step.status ? step.status : 502;
}

int header_forwardable(pt_request *r, pt_str name) {
    // the header list only matters for Connection's tokens: without a
    // Connection line it is not copied (asked per header per request)
    thread_local std::vector<cgi::HeaderView> headers;
    headers.clear();
    for (const auto &h : r->head.headers)
        if (ascii::iequals(h.name, "connection")) {
            for (const auto &hh : r->head.headers) headers.push_back({hh.name, hh.value});
            break;
        }
    cgi::HeaderPolicyConfig pc;
    pc.underscores_in_headers = r->srv && *r->srv->underscores_in_headers;
    pc.pass_proxy_authorization = false;
    cgi::HeaderPolicy policy(pc);
    return policy.forward_to_http_upstream(sv(name), headers);
}

void conf_add_variable(pt_conf *cf, const char *name, pt_var_fn fn) {
    if (cf->module) register_module_variable(name, fn, cf->module->mod->name);
}
} // namespace portico::hostfn
