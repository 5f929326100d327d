// The request to the upstream is written from the parsed request, never
// relayed: one request line, the client's header fields that the host's
// shared policy lets through (hop-by-hop, Connection-listed, Proxy, Host and
// framing fields never are) minus the ones proxy_set_header replaces, and
// exactly one framing: the Content-Length of the buffered body.
#include "proxy.h"
#include "target.h"

#include <event2/buffer.h>

#include <cstring>
#include <vector>

namespace portico::proxy {

bool idempotent(std::string_view m) {
    return m == "GET" || m == "HEAD" || m == "PUT" || m == "DELETE" || m == "OPTIONS" || m == "TRACE";
}

namespace {
bool valid_field_value(std::string_view v) {
    for (unsigned char ch : v)
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f) return false;
    return true;
}

bool method_wants_length(std::string_view m) { return m == "POST" || m == "PUT" || m == "PATCH"; }
} // namespace

int build_request(pt_request *r, const ProxyConf *c, const PassTarget *dynamic, std::string &out) {
    std::string_view method = sv(H->req_field(r, PT_F_METHOD));
    pt_str mv{};
    if (c->method) {
        if (H->eval(r, c->method, &mv) != PT_OK || mv.len == 0) return 500;
        method = sv(mv);
    }
    pt_str location{}, changed{};
    std::string uri;
    if (dynamic && dynamic->has_uri) {
        // nginx: with variables, a URI part is sent as evaluated, replacing
        // the whole request URI (args included: $request_uri carries them)
        if (!valid_request_target(dynamic->uri)) {
            H->log(PT_LOG_ERR, r, "invalid URI \"%.*s\" in proxy_pass after variables",
                   int(dynamic->uri.size()), dynamic->uri.data());
            return 500;
        }
        uri = dynamic->uri;
    } else {
        bool has_uri = !dynamic && c->has_uri;
        // variables looked up by name: only the ones this proxy_pass needs
        bool have_location = has_uri && H->variable(r, PT_STR("portico_location"), &location) == 1;
        H->variable(r, PT_STR("portico_uri_changed"), &changed);
        if (has_uri && !have_location) {
            // nginx refuses this at configuration time; the ABI does not tell a
            // module its location, so it is refused here (logged once per request)
            H->log(PT_LOG_ERR, r, "\"proxy_pass\" cannot have URI part in location given by regular "
                                  "expression, or inside named location (or $portico_location is "
                                  "not available)");
            return 500;
        }
        uri = upstream_uri(has_uri, sv(c->uri_part), sv(location), sv(H->req_field(r, PT_F_URI)),
                           sv(H->req_field(r, PT_F_ARGS)), sv(H->req_field(r, PT_F_REQUEST_URI)),
                           changed.len > 0);
    }
    out.clear();
    out.reserve(512); // a typical request head in one allocation
    out.append(method);
    out += ' ';
    out += uri;
    out += c->http_version == 10 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n";

    // proxy_set_header first, in configuration order; empty values send nothing
    for (int i = 0; i < c->nset; i++) {
        pt_str v = c->set[i].literal;
        if (!c->set[i].is_literal && H->eval(r, c->set[i].value, &v) != PT_OK) continue;
        if (v.len == 0) continue;
        if (!valid_field_value(sv(v))) {
            H->log(PT_LOG_ERR, r, "proxy_set_header \"%.*s\": the value holds control characters",
                   int(c->set[i].name.len), c->set[i].name.data);
            return 500;
        }
        out.append(sv(c->set[i].name));
        out += ": ";
        out.append(sv(v));
        out += "\r\n";
    }
    if (c->pass_request_headers != 0) {
        size_t n = H->req_header_count(r);
        for (size_t i = 0; i < n; i++) {
            pt_str name, value;
            H->req_header_at(r, i, &name, &value);
            std::string_view nm = sv(name);
            if (!H->header_forwardable(r, name)) continue;
            // the body is read before we connect: the upstream has nothing to
            // wait for, and its 100 would only be skipped
            if (ieq(nm, "Expect")) continue;
            bool replaced = false;
            for (int k = 0; k < c->nset && !replaced; k++) replaced = ieq(nm, sv(c->set[k].name));
            if (replaced) continue;
            out.append(nm);
            out += ": ";
            out.append(sv(value));
            out += "\r\n";
        }
    }

    // the body: proxy_set_body, or the client's (read completely by the host)
    size_t body_len = 0;
    bool has_body = false;
    pt_str set_body{};
    if (c->set_body) {
        if (H->eval(r, c->set_body, &set_body) != PT_OK) return 500;
        body_len = set_body.len;
        has_body = true;
    } else if (c->pass_request_body != 0) {
        if (auto *body = static_cast<evbuffer *>(H->req_body(r))) {
            body_len = evbuffer_get_length(body);
            has_body = true;
        }
    }
    if (has_body || method_wants_length(method)) {
        out += "Content-Length: ";
        out += std::to_string(body_len);
        out += "\r\n";
    }
    out += "\r\n";
    if (set_body.len) {
        out.append(sv(set_body));
    } else if (has_body && body_len) {
        auto *body = static_cast<evbuffer *>(H->req_body(r));
        size_t at = out.size();
        out.resize(at + body_len);
        evbuffer_copyout(body, out.data() + at, body_len);
    }
    return 0;
}

} // namespace portico::proxy
