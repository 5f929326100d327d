#include "cgi/env_builder.h"

#include "base/ascii.h"

#include <array>

namespace portico::cgi {

void append_fastcgi_script_name(const CgiInput &in, std::string &out) {
    out += in.split.script_name;
    out += in.split.index;
}

void append_path_translated(const CgiInput &in, std::string &out) {
    if (in.split.path_info.empty()) return;
    out += in.document_root;
    out += in.split.path_info;
}

void append_http_host(const CgiInput &in, std::string &out) {
    out += in.host;
    if (!in.request_port.empty()) {
        out += ':';
        out += in.request_port;
    }
}

namespace {

using Getter = void (*)(const CgiInput &, std::string &);

struct Builtin {
    std::string_view name;
    Getter get;
    BuiltinView view = nullptr;
};

#define PORTICO_VIEW(expr)                                                                         \
    [](const CgiInput &in, std::string &out) { out += (expr); },                                   \
        [](const CgiInput &in) -> std::string_view { return (expr); }

// nginx names, nginx values; names are matched case-insensitively as nginx does.
constexpr std::array<Builtin, 27> builtins{{
    {"fastcgi_script_name", append_fastcgi_script_name},
    {"fastcgi_path_info", PORTICO_VIEW(fastcgi_path_info(in))},
    {"fastcgi_path_translated", append_path_translated},
    {"document_uri", PORTICO_VIEW(document_uri(in))},
    {"uri", PORTICO_VIEW(in.uri)},
    {"request_uri", PORTICO_VIEW(request_uri(in))},
    {"query_string", PORTICO_VIEW(query_string(in))},
    {"args", PORTICO_VIEW(in.args)},
    {"is_args", PORTICO_VIEW(in.args.empty() ? "" : "?")},
    {"content_length", PORTICO_VIEW(content_length(in))},
    {"content_type", PORTICO_VIEW(in.content_type)},
    {"request_method", PORTICO_VIEW(in.method)},
    {"document_root", PORTICO_VIEW(in.document_root)},
    {"realpath_root", PORTICO_VIEW(in.realpath_root)},
    {"server_protocol", PORTICO_VIEW(in.server_protocol)},
    {"scheme", PORTICO_VIEW(scheme(in))},
    {"https", PORTICO_VIEW(https(in))},
    {"remote_addr", PORTICO_VIEW(in.remote_addr)},
    {"remote_port", PORTICO_VIEW(in.remote_port)},
    {"server_addr", PORTICO_VIEW(in.server_addr)},
    {"server_port", PORTICO_VIEW(in.server_port)},
    {"server_name", PORTICO_VIEW(in.server_name)},
    {"remote_user", PORTICO_VIEW(in.remote_user)},
    {"host", PORTICO_VIEW(in.host)},
    {"request_port", PORTICO_VIEW(in.request_port)},
    {"is_request_port", PORTICO_VIEW(in.request_port.empty() ? "" : ":")},
    {"auth_type", PORTICO_VIEW(in.auth_type)},
}};

#undef PORTICO_VIEW

void append_variable(const CgiInput &in, const config::Segment &seg, Variables vars,
                     std::string &out) {
    if (seg.capture < 0 && cgi_variable(in, seg.text, out)) return;
    if (vars.lookup != nullptr) vars.lookup(vars.ctx, seg.text, out);
}

bool header_passes(const CgiInput &in, const EnvConfig &conf, std::string_view name) {
    if (!conf.policy.pass_to_cgi(name, in.headers)) return false;
    // nginx: a user `fastcgi_param HTTP_X` hides the client's X header.
    return conf.params == nullptr || !conf.params->overrides_header(name);
}

// RFC 3875 4.1.18 asks for one variable per name. With underscores allowed,
// "X-A_B" and "X-A-B" are two headers but one HTTP_X_A_B: nginx sends both
// and the application keeps whichever it read last. Refuse instead.
std::optional<Refusal> find_collision(const CgiInput &in, const EnvConfig &conf) {
    if (!conf.policy.config().underscores_in_headers || !conf.pass_request_headers) return {};
    const auto &hs = in.headers;
    for (std::size_t i = 0; i < hs.size(); ++i) {
        for (std::size_t j = 0; j < i; ++j) {
            if (!same_cgi_name(hs[i].name, hs[j].name) || ascii::iequals(hs[i].name, hs[j].name))
                continue;
            if (header_passes(in, conf, hs[i].name) && header_passes(in, conf, hs[j].name))
                return Refusal{400, "two header names map to one HTTP_* variable", hs[i].name};
        }
    }
    return {};
}

void put_params(const CgiInput &in, const EnvConfig &conf, Variables vars, EnvSink &sink,
                std::string &scratch) {
    if (conf.params == nullptr) return;
    for (const Param &p : conf.params->params()) {
        std::string_view direct;
        if (p.is_literal)
            direct = p.value.segments.empty() ? std::string_view("") : p.value.segments[0].text;
        else if (p.view_builtin >= 0)
            direct = builtins[std::size_t(p.view_builtin)].view(in);
        if (p.is_literal || p.view_builtin >= 0) {
            if (p.if_not_empty && direct.empty()) continue;
            sink.put(p.name, direct);
            continue;
        }
        scratch.clear();
        const auto &segs = p.value.segments;
        for (std::size_t i = 0; i < segs.size(); ++i) {
            if (i < p.builtin.size() && p.builtin[i] >= 0)
                append_builtin(in, p.builtin[i], scratch);
            else if (segs[i].is_var)
                append_variable(in, segs[i], vars, scratch);
            else
                scratch += segs[i].text;
        }
        if (p.if_not_empty && scratch.empty()) continue;
        sink.put(p.name, scratch);
    }
}

void put_headers(const CgiInput &in, const EnvConfig &conf, EnvSink &sink, std::string &scratch) {
    const auto &hs = in.headers;
    for (std::size_t i = 0; i < hs.size(); ++i) {
        if (!header_passes(in, conf, hs[i].name)) continue;
        bool seen = false;
        for (std::size_t j = 0; j < i && !seen; ++j)
            seen = ascii::iequals(hs[j].name, hs[i].name);
        if (seen) continue; // joined into the first occurrence's variable
        scratch.clear();
        scratch.resize(cgi_name_size(hs[i].name));
        write_cgi_name(hs[i].name, scratch.data());
        std::size_t name_len = scratch.size();
        scratch += hs[i].value;
        // Same-name lines are one field (RFC 9110 5.3); Cookie's own list
        // separator is "; " (RFC 6265 5.4), as nginx joins it.
        std::string_view sep = ascii::iequals(hs[i].name, "cookie") ? "; " : ", ";
        for (std::size_t j = i + 1; j < hs.size(); ++j) {
            if (!ascii::iequals(hs[j].name, hs[i].name)) continue;
            scratch += sep;
            scratch += hs[j].value;
        }
        std::string_view all = scratch;
        sink.put(all.substr(0, name_len), all.substr(name_len));
    }
}

} // namespace

int builtin_index(std::string_view name) {
    for (std::size_t i = 0; i < builtins.size(); ++i)
        if (ascii::iequals(builtins[i].name, name)) return int(i);
    return -1;
}

BuiltinView builtin_view(int index) {
    return builtins[std::size_t(index)].view;
}

void append_builtin(const CgiInput &in, int index, std::string &out) {
    builtins[std::size_t(index)].get(in, out);
}

bool cgi_variable(const CgiInput &in, std::string_view name, std::string &out) {
    int i = builtin_index(name);
    if (i < 0) return false;
    append_builtin(in, i, out);
    return true;
}

std::optional<Refusal> ensure_split(CgiInput &in, const SplitPathInfo *split) {
    if (in.split.done) return {};
    SplitStatus status = split ? split->split(in.uri, in.fastcgi_index, in.split)
                               : split_without_regex(in.uri, in.fastcgi_index, in.split);
    switch (status) {
    case SplitStatus::ok:
        return {};
    case SplitStatus::refused_control_char:
        return Refusal{400, to_string(status), in.uri};
    case SplitStatus::match_error:
        return Refusal{500, to_string(status), in.uri};
    }
    return Refusal{500, "unknown split status", in.uri};
}

std::optional<Refusal> build_env(const CgiInput &in, const EnvConfig &conf, Variables vars,
                                 EnvSink &sink, std::string &scratch) {
    CgiInput req = in;
    // The current $uri is checked even when the split was kept from before an
    // internal redirect: a rewrite can decode a new %0a into it.
    if (!path_is_splittable(req.uri))
        return Refusal{400, to_string(SplitStatus::refused_control_char), req.uri};
    if (auto refused = ensure_split(req, conf.split)) return refused;
    if (auto refused = find_collision(req, conf)) return refused;

    put_params(req, conf, vars, sink, scratch);
    // nginx >= 1.29.5 adds this as a default param: HTTP/2, HTTP/3 and
    // absolute-form requests carry no Host line, PHP apps still need it.
    if (conf.params == nullptr || !conf.params->sets_http_host()) {
        scratch.clear();
        append_http_host(req, scratch);
        sink.put("HTTP_HOST", scratch);
    }
    if (conf.pass_request_headers) put_headers(req, conf, sink, scratch);
    return {};
}

} // namespace portico::cgi
