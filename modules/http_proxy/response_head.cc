// The upstream's response head, made ours: the status, the end-to-end
// fields (framing and hop-by-hop ones never pass: the host frames the body
// to the client itself), nginx's default hidden fields unless
// proxy_pass_header names them, proxy_hide_header, and proxy_redirect.
#include "proxy.h"

#include <string>
#include <string_view>

namespace portico::proxy {
namespace {

// fields the host writes itself or that describe only the upstream hop
// (views, not C strings: a compare then starts with the lengths, no strlen)
constexpr std::string_view kNeverPassed[] = {"Content-Length", "Transfer-Encoding", "Connection",
                                    "Keep-Alive", "Upgrade", "Proxy-Connection", "TE",
                                    "Trailer", "Date", "Server"};
// nginx hides these by default; proxy_pass_header lets them through
constexpr std::string_view kHiddenByDefault[] = {"X-Pad", "X-Accel-Expires", "X-Accel-Redirect",
                                        "X-Accel-Limit-Rate", "X-Accel-Buffering",
                                        "X-Accel-Charset"};

bool listed_in_connection(const pt_http_response &resp, std::string_view name) {
    for (size_t i = 0; i < resp.nheaders; i++) {
        if (!ieq(sv(resp.headers[i].name), "Connection")) continue;
        std::string_view v = sv(resp.headers[i].value);
        while (!v.empty()) {
            size_t comma = v.find(',');
            std::string_view tok = v.substr(0, comma);
            while (!tok.empty() && (tok.front() == ' ' || tok.front() == '\t')) tok.remove_prefix(1);
            while (!tok.empty() && (tok.back() == ' ' || tok.back() == '\t')) tok.remove_suffix(1);
            if (ieq(tok, name)) return true;
            if (comma == std::string_view::npos) break;
            v.remove_prefix(comma + 1);
        }
    }
    return false;
}

bool passes(const ProxyConf *c, const pt_http_response &resp, std::string_view name) {
    for (std::string_view h : kNeverPassed)
        if (ieq(name, h)) return false;
    if (listed_in_connection(resp, name)) return false;
    for (int i = 0; i < c->npass; i++)
        if (ieq(name, sv(c->pass[i]))) return true;
    for (std::string_view h : kHiddenByDefault)
        if (ieq(name, h)) return false;
    for (int i = 0; i < c->nhide; i++)
        if (ieq(name, sv(c->hide[i]))) return false;
    return true;
}

bool starts_with_nocase(std::string_view s, std::string_view prefix) {
    return s.size() >= prefix.size() && ieq(s.substr(0, prefix.size()), prefix);
}

// proxy_redirect: the first rule whose `from` starts the value rewrites it.
bool rewrite_location(pt_request *r, const ProxyConf *c, std::string_view value, std::string &out) {
    if (c->redirect_mode == 0) return false;
    // with variables in proxy_pass there is no URL to match (nginx)
    if (c->redirect_default && !c->pass_value) {
        std::string from(sv(c->url));
        std::string to;
        if (c->has_uri) {
            from.append(sv(c->uri_part));
            pt_str loc{};
            if (H->variable(r, PT_STR("portico_location"), &loc) == 1) to.assign(sv(loc));
            else from.clear(); // regex or named location: no default rule (nginx refuses it)
        } else {
            from += '/';
            to = "/";
        }
        if (!from.empty() && starts_with_nocase(value, from)) {
            out = to;
            out.append(value.substr(from.size()));
            return true;
        }
    }
    for (int i = 0; i < c->nredirects; i++) {
        std::string_view from = sv(c->redirects[i].from);
        if (!starts_with_nocase(value, from)) continue;
        pt_str to{};
        if (H->eval(r, c->redirects[i].to, &to) != PT_OK) return false;
        out.assign(sv(to));
        out.append(value.substr(from.size()));
        return true;
    }
    return false;
}
} // namespace

void apply_response_head(pt_request *r, const ProxyConf *c, const pt_http_response &resp) {
    H->set_status(r, resp.status);
    std::string rewritten;
    for (size_t i = 0; i < resp.nheaders; i++) {
        std::string_view name = sv(resp.headers[i].name);
        std::string_view value = sv(resp.headers[i].value);
        if (!passes(c, resp, name)) continue;
        if (ieq(name, "Location") && rewrite_location(r, c, value, rewritten)) {
            H->resp_header_add(r, resp.headers[i].name, ps(rewritten));
            continue;
        }
        H->resp_header_add(r, resp.headers[i].name, resp.headers[i].value);
    }
}

} // namespace portico::proxy
