// The core's own directives (main, events, http, server, location), declared
// as data exactly like a module's, so they go through the same context,
// arity and duplicate checks.
#include "http/core_directives.h"

#include "config/directive.h"
#include "config/setters.h"
#include "event/tls.h"
#include "http/request.h"
#include "log/error_log.h"
#include "module/loader.h"
#include "process/listen_sockets.h"

#include <arpa/inet.h>
#include <climits>
#include <cstring>

namespace portico {
using config::fmt_error;
using config::sv;

namespace {

std::string str(const pt_str &s) { return {s.data, s.len}; }

// ---- main context ----------------------------------------------------------

const char *set_worker_processes(pt_conf *cf, void *, const pt_str *a, size_t) {
    if (sv(a[1]) == "auto") {
        cf->cycle->worker_processes = 0;
        return nullptr;
    }
    int64_t n;
    if (config::parse_int(sv(a[1]), n) || n < 1 || n > 1024) return "invalid value";
    cf->cycle->worker_processes = int(n);
    return nullptr;
}

const char *set_error_log(pt_conf *cf, void *, const pt_str *a, size_t n) {
    // One error log per process here; nginx's per-server error logs are
    // accepted and the first main/http one wins (documented difference).
    if (cf->ctx != PT_CTX_MAIN && cf->ctx != PT_CTX_HTTP) return nullptr;
    cf->cycle->error_log = str(a[1]);
    if (n > 2) {
        log::Level l;
        if (!log::parse_level(sv(a[2]), l))
            return fmt_error("invalid log level \"%.*s\"", int(a[2].len), a[2].data);
        cf->cycle->error_level = l;
    }
    return nullptr;
}

const char *set_pid(pt_conf *cf, void *, const pt_str *a, size_t) {
    cf->cycle->pid_path = str(a[1]);
    return nullptr;
}

const char *set_main_flag(pt_conf *cf, void *, const pt_str *a, size_t) {
    bool v;
    if (const char *e = config::parse_flag(sv(a[1]), v)) return e;
    std::string_view name = sv(a[0]);
    if (name == "daemon") cf->cycle->daemon = v;
    else if (name == "master_process") cf->cycle->master_process = v;
    else if (name == "multi_accept") cf->cycle->multi_accept = v;
    return nullptr;
}

const char *set_user(pt_conf *cf, void *, const pt_str *a, size_t n) {
    cf->cycle->user = str(a[1]) + (n > 2 ? " " + str(a[2]) : "");
    return nullptr;
}

const char *set_ignore(pt_conf *, void *, const pt_str *, size_t) { return nullptr; }

const char *set_load_module(pt_conf *, void *, const pt_str *, size_t) {
    return nullptr; // done before dispatch (module/loader.cc)
}

const char *set_events(pt_conf *cf, void *, const pt_str *, size_t) {
    return config::dispatch_block(*cf, PT_CTX_EVENTS);
}

const char *set_worker_connections(pt_conf *cf, void *, const pt_str *a, size_t) {
    int64_t n;
    if (config::parse_int(sv(a[1]), n) || n < 1)
        return fmt_error("invalid number \"%.*s\"", int(a[1].len), a[1].data);
    cf->cycle->worker_connections = int(n);
    return nullptr;
}

// ---- http / server / location blocks ----------------------------------------

void attach_module_confs(pt_conf &cf, LocationConf *l) {
    l->module_conf.resize(cf.cycle->modules.size());
    for (auto &m : cf.cycle->modules)
        if (m->mod->create_loc_conf) {
            const ModuleInfo *outer = cf.module;
            cf.module = m.get();
            l->module_conf[m->index] = m->mod->create_loc_conf(&cf);
            cf.module = outer;
        }
}

const char *set_http(pt_conf *cf, void *, const pt_str *, size_t) {
    if (cf->cycle->http) return "is duplicate";
    if (const char *e = ensure_http(*cf)) return e;
    cf->loc = cf->cycle->http->loc.get();
    cf->srv = &cf->cycle->http->defaults;
    const char *rv = config::dispatch_block(*cf, PT_CTX_HTTP);
    cf->loc = nullptr;
    cf->srv = nullptr;
    return rv;
}

const char *set_server(pt_conf *cf, void *, const pt_str *, size_t) {
    auto s = std::make_unique<ServerConf>();
    s->file = cf->node->file.c_str();
    s->line = cf->node->line;
    s->loc = std::make_unique<LocationConf>();
    s->loc->server = s.get();
    s->loc->parent = cf->cycle->http->loc.get();
    attach_module_confs(*cf, s->loc.get());
    ServerConf *srv = s.get();
    cf->cycle->http->servers.push_back(std::move(s));
    ServerConf *outer_srv = cf->srv;
    LocationConf *outer_loc = cf->loc;
    cf->srv = srv;
    cf->loc = srv->loc.get();
    const char *rv = config::dispatch_block(*cf, PT_CTX_SERVER);
    cf->srv = outer_srv;
    cf->loc = outer_loc;
    return rv;
}

const char *set_location(pt_conf *cf, void *, const pt_str *a, size_t n) {
    LocationConf *parent = cf->loc;
    if (cf->ctx == PT_CTX_LOCATION &&
        (parent->kind == http::LocKind::Exact || parent->kind == http::LocKind::Named))
        return fmt_error("location \"%.*s\" cannot be inside the %s location \"%s\"",
                         int(a[n - 1].len), a[n - 1].data,
                         parent->kind == http::LocKind::Exact ? "exact" : "named",
                         parent->name.c_str());
    LocationConf *l = new_location(*cf, parent);
    std::string_view mod, pat;
    if (n == 3) {
        mod = sv(a[1]);
        pat = sv(a[2]);
    } else {
        pat = sv(a[1]);
        if (pat.size() > 1 && pat[0] == '=') {
            mod = "=";
            pat.remove_prefix(1);
        } else if (pat.size() > 1 && pat[0] == '~') {
            mod = pat[1] == '*' ? "~*" : "~";
            pat.remove_prefix(mod.size());
        } else if (pat.size() > 2 && pat.substr(0, 2) == "^~") {
            mod = "^~";
            pat.remove_prefix(2);
        }
    }
    if (mod.empty()) l->kind = pat.size() && pat[0] == '@' ? http::LocKind::Named : http::LocKind::Prefix;
    else if (mod == "=") l->kind = http::LocKind::Exact;
    else if (mod == "~") l->kind = http::LocKind::Regex;
    else if (mod == "~*") l->kind = http::LocKind::RegexCaseless;
    else if (mod == "^~") l->kind = http::LocKind::PrefixNoRegex;
    else return fmt_error("invalid location modifier \"%.*s\"", int(mod.size()), mod.data());
    if (l->kind == http::LocKind::Named && cf->ctx == PT_CTX_LOCATION)
        return fmt_error("named location \"%.*s\" can be on the server level only",
                         int(pat.size()), pat.data());
    l->name = std::string(pat);
    // checked here, not when the tree is built, so the message names this line
    for (auto &sib : parent->children)
        if (sib.get() != l && sib->name == l->name &&
            (sib->kind == l->kind ||
             (sib->kind == http::LocKind::Prefix && l->kind == http::LocKind::PrefixNoRegex) ||
             (sib->kind == http::LocKind::PrefixNoRegex && l->kind == http::LocKind::Prefix)))
            return fmt_error("duplicate location \"%s\"", l->name.c_str());
    if (l->kind == http::LocKind::Regex || l->kind == http::LocKind::RegexCaseless) {
        std::string rerr;
        if (!Regex::compile(l->name, l->kind == http::LocKind::RegexCaseless, rerr)) {
            // nginx names the failing offset only when it is inside the pattern
            if (rerr.size() > 6 && rerr.compare(rerr.size() - 6, 6, " at \"\"") == 0)
                rerr.resize(rerr.size() - 6);
            return fmt_error("%s", rerr.c_str());
        }
    }
    l->file = cf->node->file.c_str();
    l->line = cf->node->line;
    LocationConf *outer = cf->loc;
    cf->loc = l;
    const char *rv = config::dispatch_block(*cf, PT_CTX_LOCATION);
    cf->loc = outer;
    return rv;
}

// ---- server-level ------------------------------------------------------------

const char *set_listen(pt_conf *cf, void *, const pt_str *a, size_t n) {
    Listen l;
    if (const char *e = parse_listen_address(sv(a[1]), l))
        return fmt_error("%s in \"%.*s\" of the \"listen\" directive", e, int(a[1].len), a[1].data);
    for (size_t i = 2; i < n; i++) {
        std::string_view o = sv(a[i]);
        if (o == "default_server" || o == "default") l.default_server = true;
        else if (o == "reuseport") l.reuseport = true;
        else if (o == "ssl") l.ssl = true;
        else if (o == "deferred") l.deferred = true;
        else if (o == "http2" || o == "bind" || o.substr(0, 5) == "ipv6o" ||
                 o.substr(0, 6) == "rcvbuf" || o.substr(0, 6) == "sndbuf" ||
                 o.substr(0, 7) == "so_keep" || o.substr(0, 8) == "fastopen")
            ; // accepted for compatibility: no effect here
        else if (o.substr(0, 8) == "backlog=") {
            int64_t b;
            if (config::parse_int(o.substr(8), b) || b < 1 || b > INT_MAX)
                return fmt_error("invalid backlog \"%.*s\"", int(o.size() - 8), o.data() + 8);
            l.backlog = int(b);
        } else
            return fmt_error("invalid parameter \"%.*s\"", int(o.size()), o.data());
    }
    for (auto &other : cf->srv->listens)
        if (other.text == l.text)
            return fmt_error("duplicate listen %s", l.text.c_str());
    cf->srv->listens.push_back(l);
    return nullptr;
}

const char *set_server_name(pt_conf *cf, void *, const pt_str *a, size_t n) {
    for (size_t i = 1; i < n; i++) {
        std::string name = str(a[i]);
        if (name.size() > 1 && name[0] == '~') {
            // named captures become variables: known before any value uses them
            std::string err;
            if (auto re = Regex::compile(std::string_view(name).substr(1), false, err))
                for (const auto &[var, idx] : re->names()) declare_user_variable(var);
        }
        cf->srv->names.push_back(std::move(name));
    }
    return nullptr;
}

const char *set_srv_num(pt_conf *cf, void *, const pt_str *a, size_t n) {
    std::string_view name = sv(a[0]);
    int64_t v;
    ServerConf *s = cf->srv;
    if (name == "client_header_timeout") {
        if (config::parse_msec(sv(a[1]), v)) return "invalid value";
        s->client_header_timeout = v;
    } else if (name == "client_header_buffer_size") {
        if (config::parse_size(sv(a[1]), v) || v < 1) return "invalid value";
        s->client_header_buffer_size = v;
    } else if (name == "large_client_header_buffers") {
        int64_t num;
        if (n != 3 || config::parse_int(sv(a[1]), num) || num < 1) return "invalid value";
        if (config::parse_size(sv(a[2]), v) || v < 64) return "invalid value";
        s->large_client_header_buffers_num = num;
        s->large_client_header_buffers_size = v;
    }
    return nullptr;
}

const char *set_srv_flag(pt_conf *cf, void *, const pt_str *a, size_t) {
    bool v;
    if (const char *e = config::parse_flag(sv(a[1]), v)) return e;
    std::string_view name = sv(a[0]);
    if (name == "underscores_in_headers") cf->srv->underscores_in_headers = v;
    else if (name == "ignore_invalid_headers") cf->srv->ignore_invalid_headers = v;
    else if (name == "merge_slashes") cf->srv->merge_slashes = v;
    return nullptr;
}

// ---- location-level ----------------------------------------------------------

const char *set_root(pt_conf *cf, void *, const pt_str *a, size_t) {
    bool alias = sv(a[0]) == "alias";
    LocationConf *l = cf->loc;
    if (l->root)
        return fmt_error("\"%s\" directive is duplicate, \"%s\" directive was specified earlier",
                         alias ? "alias" : "root", l->root_is_alias ? "alias" : "root");
    if (alias && l->kind == http::LocKind::Named)
        return fmt_error("\"alias\" directive cannot be used inside the named location");
    ComplexValue v;
    if (const char *e = compile_value(sv(a[1]), v)) return e;
    l->root = std::move(v);
    l->root_is_alias = alias;
    return nullptr;
}

const char *set_index(pt_conf *cf, void *, const pt_str *a, size_t n) {
    std::vector<ComplexValue> list;
    for (size_t i = 1; i < n; i++) {
        if (a[i].len == 0) return fmt_error("index \"\" in \"index\" directive is invalid");
        ComplexValue v;
        if (const char *e = compile_value(sv(a[i]), v)) return e;
        list.push_back(std::move(v));
    }
    cf->loc->index = std::move(list);
    return nullptr;
}

const char *set_try_files(pt_conf *cf, void *, const pt_str *a, size_t n) {
    for (size_t i = 1; i < n; i++) {
        ComplexValue v;
        if (const char *e = compile_value(sv(a[i]), v)) return e;
        cf->loc->try_files.push_back(std::move(v));
    }
    std::string_view last = sv(a[n - 1]);
    if (last[0] == '=') {
        int64_t code;
        if (config::parse_int(last.substr(1), code) || code < 100 || code > 999)
            return fmt_error("invalid code \"%.*s\"", int(last.size()), last.data());
    }
    return nullptr;
}

const char *set_return(pt_conf *cf, void *, const pt_str *a, size_t n) {
    int64_t code = 0;
    ComplexValue text;
    std::string_view first = sv(a[1]);
    if (n == 2 && (first.substr(0, 7) == "http://" || first.substr(0, 8) == "https://" ||
                   first.substr(0, 1) == "$")) {
        code = 302;
        if (const char *e = compile_value(first, text)) return e;
    } else {
        if (config::parse_int(first, code) || code < 0 || code > 999)
            return fmt_error("invalid return code \"%.*s\"", int(first.size()), first.data());
        if (n == 3) {
            if (const char *e = compile_value(sv(a[2]), text)) return e;
        }
    }
    if (cf->ctx == PT_CTX_SERVER) {
        cf->srv->return_code = int(code);
        if (n == 3 || (code == 302 && n == 2)) cf->srv->return_text = std::move(text);
    } else {
        cf->loc->return_code = int(code);
        if (n == 3 || (code == 302 && n == 2 && !text.segments.empty()))
            cf->loc->return_text = std::move(text);
    }
    return nullptr;
}

const char *set_error_page(pt_conf *cf, void *, const pt_str *a, size_t n) {
    std::string_view uri = sv(a[n - 1]);
    int overwrite = 0;
    size_t last_code = n - 1;
    std::string_view maybe = sv(a[n - 2]);
    if (maybe.size() && maybe[0] == '=') {
        last_code = n - 2;
        if (maybe.size() == 1) overwrite = -1;
        else {
            int64_t c;
            if (config::parse_int(maybe.substr(1), c) || c < 100 || c > 999)
                return fmt_error("invalid value \"%.*s\"", int(maybe.size()), maybe.data());
            overwrite = int(c);
        }
    }
    if (last_code < 2) return "invalid number of arguments";
    if (!cf->loc->error_pages) cf->loc->error_pages.emplace();
    for (size_t i = 1; i < last_code; i++) {
        int64_t c;
        if (config::parse_int(sv(a[i]), c) || c < 300 || c > 599)
            return fmt_error("value \"%.*s\" must be between 300 and 599", int(a[i].len), a[i].data);
        ErrorPage ep{int(c), overwrite, {}};
        if (const char *e = compile_value(uri, ep.uri)) return e;
        cf->loc->error_pages->push_back(std::move(ep));
    }
    return nullptr;
}

const char *set_loc_flag(pt_conf *cf, void *, const pt_str *a, size_t) {
    bool v;
    if (const char *e = config::parse_flag(sv(a[1]), v)) return e;
    std::string_view name = sv(a[0]);
    LocationConf *l = cf->loc;
    if (name == "server_tokens") l->server_tokens = v;
    else if (name == "absolute_redirect") l->absolute_redirect = v;
    else if (name == "port_in_redirect") l->port_in_redirect = v;
    else if (name == "server_name_in_redirect") l->server_name_in_redirect = v;
    else if (name == "sendfile") l->sendfile = v;
    else if (name == "tcp_nodelay") l->tcp_nodelay = v;
    else if (name == "log_not_found") l->log_not_found = v;
    else if (name == "recursive_error_pages") l->recursive_error_pages = v;
    return nullptr;
}

const char *set_server_tokens(pt_conf *cf, void *, const pt_str *a, size_t) {
    // nginx also has "build"; it shows the version like "on" here
    if (sv(a[1]) == "build") {
        cf->loc->server_tokens = true;
        return nullptr;
    }
    return set_loc_flag(cf, nullptr, a, 2);
}

const char *set_loc_num(pt_conf *cf, void *, const pt_str *a, size_t) {
    std::string_view name = sv(a[0]);
    int64_t v;
    LocationConf *l = cf->loc;
    if (name == "client_max_body_size" || name == "client_body_buffer_size") {
        if (config::parse_size(sv(a[1]), v)) return "invalid value";
        (name == "client_max_body_size" ? l->client_max_body_size : l->client_body_buffer_size) = v;
    } else if (name == "keepalive_requests") {
        if (config::parse_int(sv(a[1]), v) || v < 0) return "invalid value";
        l->keepalive_requests = v;
    } else {
        if (config::parse_msec(sv(a[1]), v)) return "invalid value";
        if (name == "client_body_timeout") l->client_body_timeout = v;
        else if (name == "send_timeout") l->send_timeout = v;
        else if (name == "keepalive_timeout") l->keepalive_timeout = v;
    }
    return nullptr;
}

const char *set_internal(pt_conf *cf, void *, const pt_str *, size_t) {
    cf->loc->internal = true;
    return nullptr;
}

const char *set_default_type(pt_conf *cf, void *, const pt_str *a, size_t) {
    cf->loc->default_type = str(a[1]);
    return nullptr;
}

const char *set_types(pt_conf *cf, void *, const pt_str *, size_t) {
    // types{} holds "mime ext ext;" lines, not directives
    auto t = std::make_shared<MimeTypes>();
    for (const config::Node &line : cf->node->children) {
        if (line.has_block || line.args.size() < 2)
            return fmt_error("invalid types line in %s:%u", line.file.c_str(), line.line);
        for (size_t i = 1; i < line.args.size(); i++) {
            std::string ext = line.args[i];
            for (char &ch : ext) ch = char(tolower((unsigned char)ch));
            t->by_ext[ext] = line.args[0];
        }
    }
    cf->loc->types = std::move(t);
    return nullptr;
}

const char *set_add_header(pt_conf *cf, void *, const pt_str *a, size_t n) {
    if (n == 4 && sv(a[3]) != "always")
        return fmt_error("invalid parameter \"%.*s\"", int(a[3].len), a[3].data);
    AddHeader h{str(a[1]), {}, n == 4};
    if (const char *e = compile_value(sv(a[2]), h.value)) return e;
    if (!cf->loc->add_headers) cf->loc->add_headers.emplace();
    cf->loc->add_headers->push_back(std::move(h));
    return nullptr;
}

const char *set_expires(pt_conf *cf, void *, const pt_str *a, size_t) {
    std::string_view v = sv(a[1]);
    if (v == "off") cf->loc->expires = INT64_MIN;
    else if (v == "epoch") cf->loc->expires = INT64_MIN + 1;
    else if (v == "max") cf->loc->expires = INT64_MAX;
    else {
        bool neg = v.size() && v[0] == '-';
        if (neg || (v.size() && v[0] == '+')) v.remove_prefix(1);
        int64_t ms;
        if (config::parse_msec(v, ms)) return "invalid value";
        cf->loc->expires = (neg ? -ms : ms) / 1000;
    }
    return nullptr;
}

const char *set_access_rule(pt_conf *cf, void *, const pt_str *a, size_t) {
    AccessRule r{sv(a[0]) == "allow", false, {}, 0, 0};
    std::string v = str(a[1]);
    if (v == "all") r.all = true;
    else if (v.substr(0, 5) == "unix:") r.family = AF_UNIX;
    else {
        std::string addr = v;
        int prefix = -1;
        if (auto slash = v.find('/'); slash != std::string::npos) {
            addr = v.substr(0, slash);
            int64_t p;
            if (config::parse_int(std::string_view(v).substr(slash + 1), p) || p < 0 || p > 128)
                return fmt_error("invalid parameter \"%s\"", v.c_str());
            prefix = int(p);
        }
        auto *in = reinterpret_cast<sockaddr_in *>(&r.net);
        auto *in6 = reinterpret_cast<sockaddr_in6 *>(&r.net);
        if (inet_pton(AF_INET, addr.c_str(), &in->sin_addr) == 1) {
            r.family = AF_INET;
            r.prefix = prefix < 0 ? 32 : prefix;
            if (r.prefix > 32) return fmt_error("invalid parameter \"%s\"", v.c_str());
        } else if (inet_pton(AF_INET6, addr.c_str(), &in6->sin6_addr) == 1) {
            r.family = AF_INET6;
            r.prefix = prefix < 0 ? 128 : prefix;
        } else
            return fmt_error("invalid parameter \"%s\"", v.c_str());
    }
    if (!cf->loc->access_rules) cf->loc->access_rules.emplace();
    cf->loc->access_rules->push_back(r);
    return nullptr;
}

const char *set_log_format(pt_conf *cf, void *, const pt_str *a, size_t n) {
    auto &formats = cf->cycle->http->log_formats;
    std::string name = str(a[1]);
    if (formats.count(name)) return fmt_error("duplicate \"log_format\" name \"%s\"", name.c_str());
    auto f = std::make_unique<LogFormat>();
    f->name = name;
    size_t i = 2;
    if (sv(a[2]).substr(0, 7) == "escape=") {
        std::string_view e = sv(a[2]).substr(7);
        if (e == "json") f->escape_json = true;
        else if (e == "none") f->escape_none = true;
        else if (e != "default")
            return fmt_error("unknown log format escaping \"%.*s\"", int(e.size()), e.data());
        i = 3;
    }
    std::string text;
    for (; i < n; i++) text += str(a[i]);
    if (const char *e = compile_value(text, f->value)) return e;
    formats[name] = std::move(f);
    return nullptr;
}

const char *set_access_log(pt_conf *cf, void *, const pt_str *a, size_t n) {
    LocationConf *l = cf->loc;
    if (!l->access_logs) l->access_logs.emplace();
    if (sv(a[1]) == "off") {
        l->access_logs->clear();
        return nullptr;
    }
    auto &formats = cf->cycle->http->log_formats;
    std::string fmt = n > 2 ? str(a[2]) : "combined";
    if (n > 2 && fmt.find('=') != std::string::npos) fmt = "combined"; // "buffer=..." first
    auto it = formats.find(fmt);
    if (it == formats.end()) return fmt_error("unknown log format \"%s\"", fmt.c_str());
    auto al = std::make_unique<AccessLog>();
    al->path = resolve_path(*cf->cycle, str(a[1]));
    al->format = it->second.get();
    // logs with the same file share one descriptor
    for (auto &existing : cf->cycle->http->access_logs)
        if (existing->path == al->path && existing->format == al->format) {
            l->access_logs->push_back(existing.get());
            return nullptr;
        }
    l->access_logs->push_back(al.get());
    cf->cycle->http->access_logs.push_back(std::move(al));
    return nullptr;
}

constexpr uint32_t M = PT_CTX_MAIN, E = PT_CTX_EVENTS, H = PT_CTX_HTTP, S = PT_CTX_SERVER,
                   L = PT_CTX_LOCATION;
constexpr uint32_t HSL = H | S | L;

const pt_directive kCore[] = {
    {"worker_processes", M, PT_ARGS(1), PT_CONF_MAIN, set_worker_processes},
    {"error_log", M | HSL, PT_ARGS(1) | PT_ARGS(2), PT_CONF_MAIN, set_error_log},
    {"pid", M, PT_ARGS(1), PT_CONF_MAIN, set_pid},
    {"daemon", M, PT_ARGS_FLAG, PT_CONF_MAIN, set_main_flag},
    {"master_process", M, PT_ARGS_FLAG, PT_CONF_MAIN, set_main_flag},
    {"user", M, PT_ARGS(1) | PT_ARGS(2), PT_CONF_MAIN, set_user},
    {"load_module", M, PT_ARGS(1) | PT_ARGS_MULTI, PT_CONF_MAIN, set_load_module},
    {"disable_module", M, PT_ARGS_1MORE | PT_ARGS_MULTI, PT_CONF_MAIN, set_load_module},
    {"worker_rlimit_nofile", M, PT_ARGS(1), PT_CONF_MAIN, set_ignore},
    {"worker_cpu_affinity", M, PT_ARGS_1MORE, PT_CONF_MAIN, set_ignore},
    {"pcre_jit", M, PT_ARGS_FLAG, PT_CONF_MAIN, set_ignore},
    {"events", M, PT_ARGS(0) | PT_ARGS_BLOCK, PT_CONF_MAIN, set_events},
    {"worker_connections", E, PT_ARGS(1), PT_CONF_MAIN, set_worker_connections},
    {"use", E, PT_ARGS(1), PT_CONF_MAIN, set_ignore},
    {"multi_accept", E, PT_ARGS_FLAG, PT_CONF_MAIN, set_main_flag},
    {"accept_mutex", E, PT_ARGS_FLAG, PT_CONF_MAIN, set_ignore},
    {"http", M, PT_ARGS(0) | PT_ARGS_BLOCK, PT_CONF_MAIN, set_http},
    {"server", H, PT_ARGS(0) | PT_ARGS_BLOCK | PT_ARGS_MULTI, PT_CONF_MAIN, set_server},
    {"location", S | L, PT_ARGS(1) | PT_ARGS(2) | PT_ARGS_BLOCK | PT_ARGS_MULTI, PT_CONF_MAIN,
     set_location},
    {"listen", S, PT_ARGS_1MORE | PT_ARGS_MULTI, PT_CONF_MAIN, set_listen},
    {"server_name", S, PT_ARGS_1MORE | PT_ARGS_MULTI, PT_CONF_MAIN, set_server_name},
    {"client_header_timeout", H | S, PT_ARGS(1), PT_CONF_MAIN, set_srv_num},
    {"client_header_buffer_size", H | S, PT_ARGS(1), PT_CONF_MAIN, set_srv_num},
    {"large_client_header_buffers", H | S, PT_ARGS(2), PT_CONF_MAIN, set_srv_num},
    {"underscores_in_headers", H | S, PT_ARGS_FLAG, PT_CONF_MAIN, set_srv_flag},
    {"ignore_invalid_headers", H | S, PT_ARGS_FLAG, PT_CONF_MAIN, set_srv_flag},
    {"merge_slashes", H | S, PT_ARGS_FLAG, PT_CONF_MAIN, set_srv_flag},
    {"server_names_hash_bucket_size", H, PT_ARGS(1), PT_CONF_MAIN, set_ignore},
    {"server_names_hash_max_size", H, PT_ARGS(1), PT_CONF_MAIN, set_ignore},
    {"types_hash_max_size", HSL, PT_ARGS(1), PT_CONF_MAIN, set_ignore},
    {"types_hash_bucket_size", HSL, PT_ARGS(1), PT_CONF_MAIN, set_ignore},
    {"tcp_nopush", HSL, PT_ARGS_FLAG, PT_CONF_MAIN, set_ignore},
    {"charset", HSL, PT_ARGS(1), PT_CONF_MAIN, set_ignore},
    {"root", HSL, PT_ARGS(1), PT_CONF_MAIN, set_root},
    {"alias", L, PT_ARGS(1), PT_CONF_MAIN, set_root},
    {"index", HSL, PT_ARGS_1MORE, PT_CONF_MAIN, set_index},
    {"try_files", S | L, PT_ARGS_2MORE, PT_CONF_MAIN, set_try_files},
    {"return", S | L, PT_ARGS(1) | PT_ARGS(2), PT_CONF_MAIN, set_return},
    {"error_page", HSL, PT_ARGS_2MORE | PT_ARGS_MULTI, PT_CONF_MAIN, set_error_page},
    {"internal", L, PT_ARGS(0), PT_CONF_MAIN, set_internal},
    {"default_type", HSL, PT_ARGS(1), PT_CONF_MAIN, set_default_type},
    {"types", HSL, PT_ARGS(0) | PT_ARGS_BLOCK, PT_CONF_MAIN, set_types},
    {"add_header", HSL, PT_ARGS(2) | PT_ARGS(3) | PT_ARGS_MULTI, PT_CONF_MAIN, set_add_header},
    {"expires", HSL, PT_ARGS(1), PT_CONF_MAIN, set_expires},
    {"allow", HSL, PT_ARGS(1) | PT_ARGS_MULTI, PT_CONF_MAIN, set_access_rule},
    {"deny", HSL, PT_ARGS(1) | PT_ARGS_MULTI, PT_CONF_MAIN, set_access_rule},
    {"server_tokens", HSL, PT_ARGS(1), PT_CONF_MAIN, set_server_tokens},
    {"absolute_redirect", HSL, PT_ARGS_FLAG, PT_CONF_MAIN, set_loc_flag},
    {"port_in_redirect", HSL, PT_ARGS_FLAG, PT_CONF_MAIN, set_loc_flag},
    {"server_name_in_redirect", HSL, PT_ARGS_FLAG, PT_CONF_MAIN, set_loc_flag},
    {"sendfile", HSL, PT_ARGS_FLAG, PT_CONF_MAIN, set_loc_flag},
    {"tcp_nodelay", HSL, PT_ARGS_FLAG, PT_CONF_MAIN, set_loc_flag},
    {"log_not_found", HSL, PT_ARGS_FLAG, PT_CONF_MAIN, set_loc_flag},
    {"recursive_error_pages", HSL, PT_ARGS_FLAG, PT_CONF_MAIN, set_loc_flag},
    {"client_max_body_size", HSL, PT_ARGS(1), PT_CONF_MAIN, set_loc_num},
    {"client_body_buffer_size", HSL, PT_ARGS(1), PT_CONF_MAIN, set_loc_num},
    {"client_body_timeout", HSL, PT_ARGS(1), PT_CONF_MAIN, set_loc_num},
    {"send_timeout", HSL, PT_ARGS(1), PT_CONF_MAIN, set_loc_num},
    {"keepalive_timeout", HSL, PT_ARGS(1) | PT_ARGS(2), PT_CONF_MAIN, set_loc_num},
    {"keepalive_requests", HSL, PT_ARGS(1), PT_CONF_MAIN, set_loc_num},
    {"log_format", H, PT_ARGS_2MORE | PT_ARGS_MULTI, PT_CONF_MAIN, set_log_format},
    {"access_log", HSL, PT_ARGS_1MORE | PT_ARGS_MULTI, PT_CONF_MAIN, set_access_log},
    {nullptr, 0, 0, PT_CONF_MAIN, nullptr},
};

// ---- merging -----------------------------------------------------------------

template <class T> void inherit(std::optional<T> &child, const std::optional<T> &parent) {
    if (!child && parent) child = parent;
}

bool merge_location(pt_conf &cf, LocationConf *parent, LocationConf *l, std::string &err) {
    if (!l->root && parent->root) {
        l->root = parent->root;
        l->root_is_alias = parent->root_is_alias;
    }
    inherit(l->index, parent->index);
    inherit(l->error_pages, parent->error_pages);
    inherit(l->default_type, parent->default_type);
    inherit(l->types, parent->types);
    inherit(l->add_headers, parent->add_headers);
    inherit(l->expires, parent->expires);
    inherit(l->client_max_body_size, parent->client_max_body_size);
    inherit(l->client_body_timeout, parent->client_body_timeout);
    inherit(l->client_body_buffer_size, parent->client_body_buffer_size);
    inherit(l->send_timeout, parent->send_timeout);
    inherit(l->keepalive_timeout, parent->keepalive_timeout);
    inherit(l->keepalive_requests, parent->keepalive_requests);
    inherit(l->server_tokens, parent->server_tokens);
    inherit(l->absolute_redirect, parent->absolute_redirect);
    inherit(l->port_in_redirect, parent->port_in_redirect);
    inherit(l->server_name_in_redirect, parent->server_name_in_redirect);
    inherit(l->sendfile, parent->sendfile);
    inherit(l->tcp_nodelay, parent->tcp_nodelay);
    inherit(l->log_not_found, parent->log_not_found);
    inherit(l->recursive_error_pages, parent->recursive_error_pages);
    inherit(l->access_rules, parent->access_rules);
    inherit(l->access_logs, parent->access_logs);
    if (!l->handler && parent->handler && l->kind != http::LocKind::Named && false) {
        // nginx does not inherit content handlers into nested locations
    }
    LocationConf *outer_loc = cf.loc;
    cf.loc = l; // module merges may attach settings to the location (pt_cgi)
    for (auto &m : cf.cycle->modules) {
        if (!m->mod->merge_loc_conf) continue;
        cf.module = m.get();
        const char *e = m->mod->merge_loc_conf(&cf, parent->module_conf[m->index],
                                               l->module_conf[m->index]);
        cf.module = nullptr;
        if (e) {
            err = std::string(e[0] == '!' ? e + 1 : e) + " in " + l->file + ":" +
                  std::to_string(l->line);
            cf.loc = outer_loc;
            return false;
        }
    }
    cf.loc = outer_loc;
    return true;
}

void set_defaults(LocationConf &l) {
    // nginx's documented defaults
    if (!l.root) {
        ComplexValue v;
        compile_complex_value("html", v);
        l.root = v;
    }
    if (!l.index) {
        ComplexValue v;
        compile_complex_value("index.html", v);
        l.index = std::vector<ComplexValue>{v};
    }
    if (!l.default_type) l.default_type = "text/plain";
    if (!l.types) {
        auto t = std::make_shared<MimeTypes>();
        t->by_ext = {{"html", "text/html"}, {"gif", "image/gif"}, {"jpg", "image/jpeg"}};
        l.types = t;
    }
    if (!l.client_max_body_size) l.client_max_body_size = 1 << 20;
    if (!l.client_body_timeout) l.client_body_timeout = 60000;
    if (!l.client_body_buffer_size) l.client_body_buffer_size = 16384;
    if (!l.send_timeout) l.send_timeout = 60000;
    if (!l.keepalive_timeout) l.keepalive_timeout = 75000;
    if (!l.keepalive_requests) l.keepalive_requests = 1000;
    if (!l.server_tokens) l.server_tokens = true;
    if (!l.absolute_redirect) l.absolute_redirect = true;
    if (!l.port_in_redirect) l.port_in_redirect = true;
    if (!l.server_name_in_redirect) l.server_name_in_redirect = false;
    if (!l.sendfile) l.sendfile = false;
    if (!l.tcp_nodelay) l.tcp_nodelay = true;
    if (!l.log_not_found) l.log_not_found = true;
    if (!l.recursive_error_pages) l.recursive_error_pages = false;
    if (!l.expires) l.expires = INT64_MIN;
}

// Merges every location with its parent and collects the nested specs: the
// server has one tree, which applies nginx's nested-location rules itself.
bool collect_specs(pt_conf &cf, LocationConf *parent, std::vector<http::LocationSpec> &specs,
                   std::string &err) {
    for (auto &k : parent->children) {
        if (!merge_location(cf, parent, k.get(), err)) return false;
        http::LocationSpec spec{k->kind, k->name, k.get(), {}};
        if (!collect_specs(cf, k.get(), spec.children, err)) return false;
        specs.push_back(std::move(spec));
    }
    return true;
}

bool build_tree(pt_conf &cf, ServerConf &s, std::string &err) {
    std::vector<http::LocationSpec> specs;
    if (!collect_specs(cf, s.loc.get(), specs, err)) return false;
    std::string e;
    if (!s.locations.build(std::move(specs), e)) {
        err = e + " in " + s.file + ":" + std::to_string(s.line);
        return false;
    }
    return true;
}

} // namespace

const pt_directive *core_directives() { return kCore; }

const char *compile_value(std::string_view text, ComplexValue &out) {
    if (const char *e = compile_complex_value(text, out)) return fmt_error("%s", e);
    for (const auto &seg : out.segments)
        if (seg.is_var && seg.capture < 0 && !variable_exists(seg.text))
            return fmt_error("unknown \"%s\" variable", seg.text.c_str());
    return nullptr;
}

LocationConf *new_location(pt_conf &cf, LocationConf *parent) {
    auto l = std::make_unique<LocationConf>();
    l->parent = parent;
    l->server = cf.srv;
    attach_module_confs(cf, l.get());
    LocationConf *raw = l.get();
    parent->children.push_back(std::move(l));
    return raw;
}

const char *ensure_http(pt_conf &cf) {
    auto h = std::make_unique<HttpConf>();
    h->loc = std::make_unique<LocationConf>();
    h->main_conf.resize(cf.cycle->modules.size());
    cf.cycle->http = std::move(h);
    for (auto &m : cf.cycle->modules)
        if (m->mod->create_main_conf) {
            cf.module = m.get();
            cf.cycle->http->main_conf[m->index] = m->mod->create_main_conf(&cf);
            cf.module = nullptr;
        }
    attach_module_confs(cf, cf.cycle->http->loc.get());
    auto combined = std::make_unique<LogFormat>();
    combined->name = "combined";
    compile_complex_value("$remote_addr - $remote_user [$time_local] \"$request\" $status "
                          "$body_bytes_sent \"$http_referer\" \"$http_user_agent\"",
                          combined->value);
    cf.cycle->http->log_formats["combined"] = std::move(combined);
    return nullptr;
}

bool finish_http(pt_conf &cf, std::string &err) {
    HttpConf &h = *cf.cycle->http;
    set_defaults(*h.loc);
    ServerConf &d = h.defaults;
    if (!h.loc->access_logs) {
        // nginx's default: logs/access.log combined
        auto al = std::make_unique<AccessLog>();
        al->path = resolve_path(*cf.cycle, "logs/access.log");
        al->format = h.log_formats["combined"].get();
        h.loc->access_logs = std::vector<AccessLog *>{al.get()};
        h.access_logs.push_back(std::move(al));
    }
    for (auto &sp : h.servers) {
        ServerConf &s = *sp;
        inherit(s.client_header_timeout, d.client_header_timeout);
        inherit(s.client_header_buffer_size, d.client_header_buffer_size);
        inherit(s.large_client_header_buffers_num, d.large_client_header_buffers_num);
        inherit(s.large_client_header_buffers_size, d.large_client_header_buffers_size);
        inherit(s.underscores_in_headers, d.underscores_in_headers);
        inherit(s.ignore_invalid_headers, d.ignore_invalid_headers);
        inherit(s.merge_slashes, d.merge_slashes);
        if (!s.client_header_timeout) s.client_header_timeout = 60000;
        if (!s.client_header_buffer_size) s.client_header_buffer_size = 1024;
        if (!s.large_client_header_buffers_num) s.large_client_header_buffers_num = 4;
        if (!s.large_client_header_buffers_size) s.large_client_header_buffers_size = 8192;
        if (!s.underscores_in_headers) s.underscores_in_headers = false;
        if (!s.ignore_invalid_headers) s.ignore_invalid_headers = true;
        if (!s.merge_slashes) s.merge_slashes = true;
        if (s.listens.empty()) {
            // nginx: *:80 when root, *:8000 otherwise
            Listen l;
            parse_listen_address(getuid() == 0 ? "80" : "8000", l);
            s.listens.push_back(l);
        }
        if (!merge_location(cf, h.loc.get(), s.loc.get(), err)) return false;
        if (!build_tree(cf, s, err)) return false;

        for (const Listen &l : s.listens) {
            ListenGroup *g = nullptr;
            for (auto &cand : h.groups)
                if (cand->listen.text == l.text) g = cand.get();
            if (!g) {
                h.groups.push_back(std::make_unique<ListenGroup>());
                g = h.groups.back().get();
                g->listen = l;
                g->default_server = &s;
            }
            if (l.default_server) {
                if (g->listen.default_server && g->default_server != &s) {
                    err = "a duplicate default server for " + l.text + " in " + s.file + ":" +
                          std::to_string(s.line);
                    return false;
                }
                g->listen.default_server = true;
                g->listen.backlog = l.backlog;
                g->listen.reuseport |= l.reuseport;
                g->default_server = &s;
            }
            g->listen.ssl |= l.ssl;
            std::vector<std::string> names = s.names;
            if (names.empty()) names.push_back("");
            for (auto &n : names)
                if (const char *e = g->names.add(n, &s)) {
                    std::string msg = e;
                    if (msg.rfind("conflicting", 0) == 0)
                        cf.cycle->warnings.push_back(msg + " on " + l.text + ", ignored");
                    else {
                        err = msg + " in " + s.file + ":" + std::to_string(s.line);
                        return false;
                    }
                }
        }
    }
    if (!upstream_finish(*cf.cycle, err)) return false;
    if (!tls_finish(*cf.cycle, err)) return false;
    for (auto &g : h.groups)
        if (const char *e = g->names.finalize()) {
            err = e;
            return false;
        }
    for (auto &m : cf.cycle->modules)
        if (m->mod->postconfig) {
            cf.module = m.get();
            const char *e = m->mod->postconfig(&cf);
            cf.module = nullptr;
            if (e) {
                err = e;
                return false;
            }
        }
    return true;
}

} // namespace portico
