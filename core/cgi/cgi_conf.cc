#include "cgi/cgi_conf.h"

#include "cgi/forwarded.h"
#include "http/realip.h"
#include "http/request.h"
#include "log/error_log.h"
#include "process/worker.h"

#include <array>
#include <charconv>
#include <span>
#include <strings.h>

namespace portico {
namespace {

// A decimal number in place (std::to_string is a string per call).
struct Decimal {
    char buf[24];
    std::size_t len = 0;
    std::string_view set(long long v) {
        len = std::size_t(std::to_chars(buf, buf + sizeof buf, v).ptr - buf);
        return view();
    }
    std::string_view view() const { return {buf, len}; }
};

struct InputStorage {
    Decimal server_port, remote_port, content_length;
    // the usual handful of headers without an allocation; more in `headers`
    std::array<cgi::HeaderView, 24> few;
    std::vector<cgi::HeaderView> headers;
};

// Everything the builder reads, as nginx's variables would give it.
void fill_input(Request *r, const CgiConf *c, cgi::CgiInput &in, InputStorage &st) {
    Connection *conn = r->c;
    in.method = r->head.method;
    in.request_uri = request_uri(r);
    in.uri = r->uri;
    in.args = r->args;
    in.document_root = r->document_root;
    in.fastcgi_index = c && c->index ? std::string_view(*c->index) : std::string_view();
    in.server_name = r->srv && !r->srv->names.empty() ? std::string_view(r->srv->names[0])
                                                     : std::string_view();
    in.server_addr = conn->local_addr;
    in.server_port = conn->local_port ? st.server_port.set(conn->local_port) : std::string_view();
    in.remote_addr = conn->peer_addr;
    in.remote_port = conn->peer_port ? st.remote_port.set(conn->peer_port) : std::string_view();
    in.host = r->host.empty() ? in.server_name : std::string_view(r->host);
    // the port the authority carried, for HTTP_HOST
    std::string_view h = r->head.host;
    if (!h.empty()) {
        size_t colon = h.rfind(':');
        size_t bracket = h.rfind(']');
        if (colon != std::string_view::npos && (bracket == std::string_view::npos || colon > bracket))
            in.request_port = h.substr(colon + 1);
    }
    in.https = conn->group && conn->group->listen.ssl;
    in.server_protocol = r->head.version == 10 ? "HTTP/1.0" : "HTTP/1.1";
    in.content_type = header_in(r, "content-type");
    if (r->head.content_length >= 0) in.content_length = st.content_length.set(r->head.content_length);
    else if (r->head.chunked && r->body && !r->chunked)
        in.content_length = st.content_length.set((long long)r->body_received);
    const auto &hs = r->head.headers;
    if (hs.size() <= st.few.size()) {
        for (size_t i = 0; i < hs.size(); i++) st.few[i] = {hs[i].name, hs[i].value};
        in.headers = std::span<const cgi::HeaderView>(st.few.data(), hs.size());
    } else {
        st.headers.clear();
        for (const auto &hd : hs) st.headers.push_back({hd.name, hd.value});
        in.headers = st.headers;
    }
    in.split = r->split;
}

// The split is computed once per request and kept across try_files and
// internal redirects (nginx recomputes it and loses PATH_INFO).
bool ensure_split(Request *r, const CgiConf *c, cgi::CgiInput &in) {
    if (r->split.done) {
        in.split = r->split;
        return true;
    }
    r->split_uri = r->uri;
    in.uri = r->split_uri;
    auto refusal = cgi::ensure_split(in, c ? c->split_effective : nullptr);
    in.uri = r->uri;
    if (refusal) {
        PT_LOG(log::Err, r->c->id, "%.*s: \"%.*s\", client: %s, request: \"%.*s %.*s\"",
               int(refusal->reason.size()), refusal->reason.data(), int(refusal->detail.size()),
               refusal->detail.data(), r->c->peer_addr.c_str(), int(r->head.method.size()),
               r->head.method.data(), int(r->head.target.size()), r->head.target.data());
        r->split_status = refusal->status;
        return false;
    }
    r->split = in.split;
    return true;
}

bool lookup_var(void *ctx, std::string_view name, std::string &out) {
    return get_variable(static_cast<Request *>(ctx), name, out);
}
} // namespace

// The forwarded values for HTTP gateways (proxy_set_header) and the
// location facts the proxy's URI rules need.
//   $proxy_add_x_forwarded_for: without set_real_ip_from, nginx's value (the
//     client's X-Forwarded-For lines, joined, + ", " + $remote_addr). With
//     set_real_ip_from, our safer rule (forwarded.h): the incoming chain is
//     kept only when the TCP peer is trusted, so a client cannot plant
//     addresses a backend would believe; the peer itself is always last.
//   $portico_forwarded: an RFC 7239 Forwarded value, incoming elements kept
//     only from a trusted peer. $portico_x_forwarded_host: $host[:port].
//   $portico_location: the name of a prefix or exact location (not found in
//     regex and named ones); $portico_uri_changed: "1" after an internal
//     redirect (nginx then sends $uri instead of the client's $request_uri).
static bool forwarded_variable(Request *r, std::string_view name, std::string &out) {
    if (name == "portico_location") {
        if (!r->loc || r->loc->name.empty() || r->loc->name[0] == '@') return false;
        if (r->loc->kind != http::LocKind::Prefix && r->loc->kind != http::LocKind::PrefixNoRegex &&
            r->loc->kind != http::LocKind::Exact)
            return false;
        out += r->loc->name;
        return true;
    }
    if (name == "portico_uri_changed") {
        if (r->internal) out += '1';
        return true;
    }
    if (name != "proxy_add_x_forwarded_for" && name != "portico_forwarded" &&
        name != "portico_x_forwarded_host")
        return false;
    cgi::CgiInput in;
    InputStorage st;
    fill_input(r, nullptr, in, st);
    in.peer_addr = realip_original_peer(r);
    const cgi::CidrSet *trusted = realip_trusted(r);
    static const cgi::CidrSet none;
    if (name == "portico_x_forwarded_host") {
        cgi::append_x_forwarded_host(in, out);
    } else if (name == "portico_forwarded") {
        cgi::append_forwarded(in, trusted ? *trusted : none, {}, out);
    } else if (trusted) {
        cgi::append_x_forwarded_for(in, *trusted, out);
    } else {
        bool any = false;
        for (const auto &h : in.headers)
            if (h.name.size() == 15 && strncasecmp(h.name.data(), "X-Forwarded-For", 15) == 0) {
                if (any) out += ", ";
                out += h.value;
                any = true;
            }
        if (any) out += ", ";
        out += in.remote_addr;
    }
    return true;
}

bool cgi_request_variable(Request *r, std::string_view name, std::string &out) {
    if (forwarded_variable(r, name, out)) return true;
    static const std::string_view names[] = {"fastcgi_script_name", "fastcgi_path_info",
                                             "fastcgi_path_translated"};
    bool ours = false;
    for (auto n : names) ours |= n == name;
    if (!ours) return false;
    const CgiConf *c = r->loc ? r->loc->cgi : nullptr;
    cgi::CgiInput in;
    InputStorage st;
    fill_input(r, c, in, st);
    if (!ensure_split(r, c, in)) return true; // refused: empty value, the gateway answers 400
    return cgi::cgi_variable(in, name, out);
}

int cgi_build_request(Request *r, const CgiConf &c,
                      void (*put)(void *, std::string_view, std::string_view), void *ctx) {
    cgi::CgiInput in;
    InputStorage st;
    fill_input(r, &c, in, st);
    if (!ensure_split(r, &c, in)) return r->split_status ? r->split_status : 400;
    cgi::EnvConfig conf;
    static const cgi::ParamList none;
    conf.params = c.effective ? c.effective : &none;
    conf.split = c.split_effective;
    cgi::HeaderPolicyConfig pc;
    pc.underscores_in_headers = r->srv && *r->srv->underscores_in_headers;
    pc.pass_authorization = c.pass_authorization.value_or(true);
    conf.policy = cgi::HeaderPolicy(pc);
    conf.pass_request_headers = c.pass_request_headers.value_or(true);
    struct Sink final : cgi::EnvSink {
        void (*fn)(void *, std::string_view, std::string_view);
        void *ctx;
        void put(std::string_view n, std::string_view v) override { fn(ctx, n, v); }
    };
    Sink sink;
    sink.fn = put;
    sink.ctx = ctx;
    thread_local std::string scratch;
    auto refusal = cgi::build_env(in, conf, {lookup_var, r}, sink, scratch);
    if (refusal) {
        PT_LOG(log::Err, r->c->id, "request refused by the CGI builder: %.*s \"%.*s\", client: %s",
               int(refusal->reason.size()), refusal->reason.data(), int(refusal->detail.size()),
               refusal->detail.data(), r->c->peer_addr.c_str());
        return refusal->status;
    }
    return 0;
}
} // namespace portico
