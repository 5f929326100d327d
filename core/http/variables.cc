// Variables ($uri, $http_host, ...): a table of names → getters appending
// to an output string, plus nginx's prefix families ($http_, $arg_,
// $cookie_, $sent_http_). Values are computed on demand, never stored.
#include "base/ascii.h"
#include "base/clock.h"
#include "base/version.h"
#include "cgi/cgi_conf.h"
#include "http/rewrite.h"
#include "event/tls.h"
#include "module/module_vars.h"
#include "http/request.h"
#include "http/uri.h"
#include "process/worker.h"

#include <algorithm>
#include <cstring>
#include <unordered_map>

namespace portico {
namespace {
using Getter = bool (*)(Request *r, std::string &out);

// ASCII case-insensitive, '_' equal to '-' ($http_x_real_ip names X-Real-IP);
// inline and locale-free: modules look headers up several times per request
inline bool ieq(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); i++) {
        char x = ascii::to_lower(a[i]), y = ascii::to_lower(b[i]);
        if (x != y && !((x == '_' || x == '-') && (y == '_' || y == '-'))) return false;
    }
    return true;
}

void append_num(std::string &out, int64_t v) { out += std::to_string(v); }

bool v_uri(Request *r, std::string &o) { o += r->uri; return true; }
bool v_request_uri(Request *r, std::string &o) { o += request_uri(r); return true; }
bool v_args(Request *r, std::string &o) { o += r->args; return true; }
bool v_is_args(Request *r, std::string &o) { if (!r->args.empty()) o += '?'; return true; }
bool v_host(Request *r, std::string &o) {
    if (!r->host.empty()) o += r->host;
    else if (r->srv && !r->srv->names.empty()) o += r->srv->names[0];
    return true;
}
bool v_method(Request *r, std::string &o) { o += r->head.method; return true; }
bool v_protocol(Request *r, std::string &o) {
    o += r->head.version == 10 ? "HTTP/1.0" : "HTTP/1.1";
    return true;
}
bool v_request(Request *r, std::string &o) {
    o += r->head.method;
    o += ' ';
    o += r->head.target;
    o += ' ';
    return v_protocol(r, o);
}
bool v_remote_addr(Request *r, std::string &o) { o += r->c->peer_addr; return true; }
bool v_remote_port(Request *r, std::string &o) {
    if (r->c->peer_port) append_num(o, r->c->peer_port);
    return true;
}
bool v_server_addr(Request *r, std::string &o) { o += r->c->local_addr; return true; }
bool v_server_port(Request *r, std::string &o) {
    if (r->c->local_port) append_num(o, r->c->local_port);
    return true;
}
bool v_server_name(Request *r, std::string &o) {
    if (r->srv && !r->srv->names.empty()) o += r->srv->names[0];
    return true;
}
bool v_scheme(Request *r, std::string &o) {
    o += r->c->group && r->c->group->listen.ssl ? "https" : "http";
    return true;
}
bool v_https(Request *r, std::string &o) {
    if (r->c->group && r->c->group->listen.ssl) o += "on";
    return true;
}
bool v_document_root(Request *r, std::string &o) { o += r->document_root; return true; }
bool v_realpath_root(Request *r, std::string &o) {
    char buf[PATH_MAX];
    if (!realpath(r->document_root.c_str(), buf)) return false;
    o += buf;
    return true;
}
bool v_request_filename(Request *r, std::string &o) { o += r->filename; return true; }
bool v_content_type(Request *r, std::string &o) {
    o += header_in(r, "content-type");
    return true;
}
bool v_content_length(Request *r, std::string &o) {
    if (r->head.content_length >= 0) append_num(o, r->head.content_length);
    else if (r->head.chunked && r->body && !r->chunked) append_num(o, r->body_received);
    return true;
}
bool v_request_id(Request *r, std::string &o) {
    if (!r->request_id[0]) make_request_id(r);
    o += r->request_id;
    return true;
}
bool v_status(Request *r, std::string &o) {
    char b[4];
    snprintf(b, sizeof b, "%03d", r->status ? r->status : 0);
    o += b;
    return true;
}
bool v_body_bytes_sent(Request *r, std::string &o) { append_num(o, r->body_sent); return true; }
bool v_bytes_sent(Request *r, std::string &o) { append_num(o, r->bytes_sent); return true; }
bool v_request_time(Request *r, std::string &o) {
    int64_t ms = clock::now_ms() - r->start_ms;
    if (ms < 0) ms = 0;
    char b[32];
    snprintf(b, sizeof b, "%lld.%03lld", (long long)(ms / 1000), (long long)(ms % 1000));
    o += b;
    return true;
}
bool v_time_local(Request *, std::string &o) { o += clock::local_time(); return true; }
bool v_time_iso8601(Request *, std::string &o) { o += clock::iso8601(); return true; }
bool v_msec(Request *, std::string &o) {
    int64_t ms = clock::now_ms();
    char b[32];
    snprintf(b, sizeof b, "%lld.%03lld", (long long)(ms / 1000), (long long)(ms % 1000));
    o += b;
    return true;
}
bool v_connection(Request *r, std::string &o) { append_num(o, int64_t(r->c->id)); return true; }
bool v_connection_requests(Request *r, std::string &o) {
    append_num(o, int64_t(r->c->requests));
    return true;
}
bool v_remote_user(Request *, std::string &o) { o += "-"; return false; }
bool v_query_string(Request *r, std::string &o) { return v_args(r, o); }
bool v_document_uri(Request *r, std::string &o) { return v_uri(r, o); }
// nginx configs print $nginx_version in SERVER_SOFTWARE: both name our version
bool v_nginx_version(Request *, std::string &o) { o += PT_VERSION; return true; }
bool v_hostname(Request *, std::string &o) {
    char b[256];
    if (gethostname(b, sizeof b) == 0) o += b;
    return true;
}
bool v_pid(Request *, std::string &o) { append_num(o, getpid()); return true; }
bool v_server_protocol(Request *r, std::string &o) { return v_protocol(r, o); }
bool v_request_length(Request *r, std::string &o) {
    append_num(o, int64_t(r->head.head_len) + r->body_received);
    return true;
}
bool v_request_body(Request *r, std::string &o) {
    if (!r->body) return false;
    size_t n = evbuffer_get_length(r->body);
    size_t at = o.size();
    o.resize(at + n);
    evbuffer_copyout(r->body, o.data() + at, n);
    return true;
}

// the location's index list, evaluated, space-separated: for the static module
bool v_portico_index(Request *r, std::string &o) {
    if (!r->loc->index) return false;
    std::string one;
    for (const auto &cv : *r->loc->index) {
        eval(r, cv, one);
        if (!o.empty()) o += ' ';
        o += one;
    }
    return true;
}

const std::unordered_map<std::string_view, Getter> &table() {
    static const std::unordered_map<std::string_view, Getter> t = {
        {"uri", v_uri},
        {"document_uri", v_document_uri},
        {"request_uri", v_request_uri},
        {"args", v_args},
        {"query_string", v_query_string},
        {"is_args", v_is_args},
        {"host", v_host},
        {"request_method", v_method},
        {"server_protocol", v_server_protocol},
        {"request", v_request},
        {"remote_addr", v_remote_addr},
        {"binary_remote_addr", v_remote_addr},
        {"remote_port", v_remote_port},
        {"remote_user", v_remote_user},
        {"server_addr", v_server_addr},
        {"server_port", v_server_port},
        {"server_name", v_server_name},
        {"scheme", v_scheme},
        {"https", v_https},
        {"document_root", v_document_root},
        {"realpath_root", v_realpath_root},
        {"request_filename", v_request_filename},
        {"content_type", v_content_type},
        {"content_length", v_content_length},
        {"request_id", v_request_id},
        {"status", v_status},
        {"body_bytes_sent", v_body_bytes_sent},
        {"bytes_sent", v_bytes_sent},
        {"request_time", v_request_time},
        {"request_length", v_request_length},
        {"request_body", v_request_body},
        {"time_local", v_time_local},
        {"time_iso8601", v_time_iso8601},
        {"msec", v_msec},
        {"connection", v_connection},
        {"connection_requests", v_connection_requests},
        {"nginx_version", v_nginx_version},
        {"portico_version", v_nginx_version},
        {"hostname", v_hostname},
        {"pid", v_pid},
        {"portico_index", v_portico_index},
    };
    return t;
}

const char *const kPrefixes[] = {"http_", "arg_", "cookie_", "sent_http_"};
} // namespace

std::string_view request_uri(Request *r) {
    // absolute-form ("GET http://host/p?q"): nginx's $request_uri is "/p?q"
    std::string_view t = r->head.target;
    if (r->head.authority.empty() || r->head.path.empty()) return t;
    const char *p = r->head.path.data();
    if (p >= t.data() && p <= t.data() + t.size()) return t.substr(size_t(p - t.data()));
    return t;
}

std::string_view header_in(Request *r, std::string_view name) {
    for (const auto &h : r->head.headers)
        if (ieq(h.name, name)) return h.value;
    return {};
}

bool variable_exists(std::string_view name) {
    if (table().count(name) || module_variable_exists(name) || user_variable_declared(name))
        return true;
    for (const char *p : kPrefixes)
        if (name.size() > strlen(p) && name.substr(0, strlen(p)) == p) return true;
    // variables declared by modules through the ABI are resolved by name at
    // run time; the fastcgi/proxy ones are known here so configs check
    static const char *const known[] = {"fastcgi_script_name", "fastcgi_path_info", "fastcgi_path_translated",
                                        "proxy_host", "proxy_port", "proxy_add_x_forwarded_for",
                                        "upstream_addr", "upstream_status",
                                        "upstream_response_time", "gzip_ratio", "ssl_protocol",
                                        "ssl_cipher", "ssl_server_name", "ssl_session_reused", "portico_forwarded", "portico_x_forwarded_host",
                                        "portico_location", "portico_uri_changed",
                                        "realip_remote_addr", "limit_rate", "http2"};
    for (const char *k : known)
        if (name == k) return true;
    return false;
}

bool get_variable(Request *r, std::string_view name, std::string &out) {
    if (!r->user_vars.empty() && get_user_variable(r, name, out)) return true;
    auto it = table().find(name);
    if (it != table().end()) return it->second(r, out);
    if (name.substr(0, 5) == "http_") {
        std::string_view h = name.substr(5);
        bool cookie = h == "cookie";
        bool found = false;
        for (const auto &hd : r->head.headers)
            if (ieq(hd.name, h)) {
                // repeated fields are joined as nginx does: ", " or "; " for Cookie
                if (found) out += cookie ? "; " : ", ";
                out += hd.value;
                found = true;
            }
        return found;
    }
    if (name.substr(0, 4) == "arg_") {
        std::string_view v;
        if (!http::find_arg(r->args, name.substr(4), v)) return false;
        out += v;
        return true;
    }
    if (name.substr(0, 7) == "cookie_") {
        std::string_view want = name.substr(7);
        for (const auto &hd : r->head.headers) {
            if (!ieq(hd.name, "cookie")) continue;
            std::string_view c = hd.value;
            while (!c.empty()) {
                size_t semi = c.find(';');
                std::string_view pair = c.substr(0, semi);
                while (!pair.empty() && pair[0] == ' ') pair.remove_prefix(1);
                size_t eq = pair.find('=');
                if (eq != std::string_view::npos && pair.substr(0, eq) == want) {
                    out += pair.substr(eq + 1);
                    return true;
                }
                if (semi == std::string_view::npos) break;
                c.remove_prefix(semi + 1);
            }
        }
        return false;
    }
    if (name.substr(0, 8) == "fastcgi_" || name.substr(0, 8) == "portico_" ||
        name == "proxy_add_x_forwarded_for")
        return cgi_request_variable(r, name, out);
    if (get_module_variable(r, name, out)) return true;
    if (name.substr(0, 4) == "ssl_") return tls_variable(r->c->bev, name, out);
    if (name.substr(0, 10) == "sent_http_") {
        std::string_view h = name.substr(10);
        for (const auto &[n, v] : r->out_headers)
            if (ieq(n, h)) {
                out += v;
                return true;
            }
        if (ieq(h, "content_length") && r->content_length >= 0) {
            append_num(out, r->content_length);
            return true;
        }
        return false;
    }
    return false;
}

bool eval(Request *r, const ComplexValue &v, std::string &out) {
    out.clear();
    for (const auto &seg : v.segments) {
        if (!seg.is_var) {
            out += seg.text;
        } else if (seg.capture > 0) {
            int i = seg.capture;
            if (i < r->ncaptures && r->ovector[2 * i] >= 0)
                out.append(r->capture_subject, r->ovector[2 * i],
                           r->ovector[2 * i + 1] - r->ovector[2 * i]);
        } else {
            get_variable(r, seg.text, out);
        }
    }
    return true;
}
} // namespace portico
