#include "cgi/params.h"

#include "base/ascii.h"
#include "cgi/env_builder.h"
#include "cgi/header_policy.h"

namespace portico::cgi {

namespace {

bool valid_param_name(std::string_view name) {
    if (name.empty()) return false;
    for (char c : name)
        if (ascii::is_ctl(c) || c == ' ' || c == '=')
            return false; // '=' would split a CGI env entry
    return true;
}

} // namespace

bool ParamList::add(std::string_view name, std::string_view value, bool if_not_empty,
                    std::string &err) {
    if (!valid_param_name(name)) {
        err = "invalid parameter name \"" + std::string(name) + "\"";
        return false;
    }
    Param param{std::string(name), {}, if_not_empty, {}};
    if (const char *bad = config::compile_complex_value(value, param.value)) {
        err = bad;
        return false;
    }
    for (const config::Segment &seg : param.value.segments)
        param.builtin.push_back(seg.is_var && seg.capture < 0 ? builtin_index(seg.text) : -1);
    const auto &segs = param.value.segments;
    param.is_literal = segs.empty() || (segs.size() == 1 && !segs[0].is_var);
    if (segs.size() == 1 && param.builtin[0] >= 0 && builtin_view(param.builtin[0]))
        param.view_builtin = param.builtin[0];
    if (param.name.size() > 5 && ascii::istarts_with(param.name, "HTTP_")) http_params_ = true;
    if (ascii::iequals(param.name, "HTTP_HOST")) sets_http_host_ = true;
    params_.push_back(std::move(param));
    return true;
}

bool ParamList::sets(std::string_view name) const {
    for (const Param &p : params_)
        if (ascii::iequals(p.name, name)) return true;
    return false;
}

bool ParamList::overrides_header(std::string_view header_name) const {
    if (!http_params_) return false; // asked per header per request: the usual answer is quick
    for (const Param &p : params_) {
        std::string_view name = p.name;
        if (name.size() > 5 && ascii::istarts_with(name, "HTTP_") &&
            same_cgi_name(name.substr(5), header_name))
            return true;
    }
    return false;
}

const ParamList &inherit_params(const ParamList &child, const ParamList &parent) {
    return child.empty() ? parent : child;
}

bool is_request_controlled_variable(std::string_view name) {
    static constexpr std::string_view prefixes[] = {"http_", "arg_", "cookie_"};
    static constexpr std::string_view exact[] = {"args",
                                                 "query_string",
                                                 "request_uri",
                                                 "uri",
                                                 "document_uri",
                                                 "request",
                                                 "request_body",
                                                 "request_method",
                                                 "host",
                                                 "content_type",
                                                 "content_length",
                                                 "remote_user",
                                                 "request_filename",
                                                 "fastcgi_script_name",
                                                 "fastcgi_path_info",
                                                 "fastcgi_path_translated"};
    for (std::string_view p : prefixes)
        if (ascii::istarts_with(name, p)) return true;
    for (std::string_view e : exact)
        if (ascii::iequals(name, e)) return true;
    // $1..$9 are captures of a location or rewrite regex run over the URI.
    return name.size() == 1 && ascii::is_digit(name[0]);
}

std::vector<LintFinding> lint_php_value_params(const ParamList &list) {
    std::vector<LintFinding> findings;
    for (const Param &p : list.params()) {
        if (!ascii::iequals(p.name, "PHP_VALUE") && !ascii::iequals(p.name, "PHP_ADMIN_VALUE"))
            continue;
        for (const config::Segment &s : p.value.segments)
            if (s.is_var && is_request_controlled_variable(s.text))
                findings.push_back({p.name, "$" + s.text});
    }
    return findings;
}

} // namespace portico::cgi
