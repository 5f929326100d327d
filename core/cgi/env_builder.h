// The CGI environment of one request, built the nginx way: the configured
// param list in order, then HTTP_HOST from the authority (nginx >= 1.29.5),
// then the client's headers as HTTP_* through the header policy. Output goes
// to a sink as views that are valid only during put(); the FastCGI module
// encodes them straight into PARAMS records.
#pragma once

#include "cgi/cgi_input.h"
#include "cgi/header_policy.h"
#include "cgi/params.h"
#include "cgi/split_path_info.h"

#include <optional>
#include <string>
#include <string_view>

namespace portico::cgi {

class EnvSink {
  public:
    virtual void put(std::string_view name, std::string_view value) = 0;

  protected:
    ~EnvSink() = default;
};

// The server's variables ($http_*, $cookie_*, `set` variables, captures as
// "1".."9", $portico_version, ...). Appends the value to `out`; false when
// the variable is unknown or not found, which evaluates as "" (nginx).
struct Variables {
    bool (*lookup)(void *ctx, std::string_view name, std::string &out) = nullptr;
    void *ctx = nullptr;
};

struct EnvConfig {
    const ParamList *params = nullptr;    // after inherit_params; null = none
    const SplitPathInfo *split = nullptr; // fastcgi_split_path_info; null = none
    HeaderPolicy policy;
    bool pass_request_headers = true; // fastcgi_pass_request_headers
};

struct Refusal {
    int status = 400;
    std::string_view reason; // static text, for the error log
    std::string_view detail; // the offending header name or path, a view into the input
};

// Computes in.split when not yet done (the lead should do it once and store
// it on the request; see SplitResult). Refusals as in split_path_info.h.
std::optional<Refusal> ensure_split(CgiInput &in, const SplitPathInfo *split);

// Everything that can refuse a request is checked before the first put(), so
// a refused request never leaves a partial environment in the sink.
// `scratch` is the caller's reusable buffer (per connection); it is cleared
// and refilled per variable, never shrunk.
std::optional<Refusal> build_env(const CgiInput &in, const EnvConfig &conf, Variables vars,
                                 EnvSink &sink, std::string &scratch);

// The variables the builder computes itself, by nginx name, appended to out:
// fastcgi_script_name fastcgi_path_info fastcgi_path_translated document_uri
// uri request_uri query_string args is_args content_length content_type
// request_method document_root realpath_root server_protocol scheme https
// remote_addr remote_port server_addr server_port server_name remote_user
// host request_port is_request_port. false for any other name.
bool cgi_variable(const CgiInput &in, std::string_view name, std::string &out);
// The same lookup split in two, for values compiled once: the index of the
// builder's variable `name` (-1: not one of them), and its value.
int builtin_index(std::string_view name);
void append_builtin(const CgiInput &in, int index, std::string &out);
// For a builtin whose value is one view into the input (most of them), its
// getter; nullptr for the assembled ones ($fastcgi_script_name, ...).
using BuiltinView = std::string_view (*)(const CgiInput &);
BuiltinView builtin_view(int index);

// The named computations behind cgi_variable, for the lead to register as
// variables. Views point into `in`.
inline std::string_view query_string(const CgiInput &in) {
    return in.args;
}
inline std::string_view document_uri(const CgiInput &in) {
    return in.uri;
}
inline std::string_view request_uri(const CgiInput &in) {
    return in.request_uri;
}
inline std::string_view content_length(const CgiInput &in) {
    return in.content_length;
}
inline std::string_view fastcgi_path_info(const CgiInput &in) {
    return in.split.path_info;
}
inline std::string_view https(const CgiInput &in) {
    return in.https ? "on" : "";
}
inline std::string_view scheme(const CgiInput &in) {
    return in.https ? "https" : "http";
}
// $fastcgi_script_name: capture 1 (or $uri), + fastcgi_index after a '/'.
void append_fastcgi_script_name(const CgiInput &in, std::string &out);
// PATH_TRANSLATED (RFC 3875 4.1.6): document root + PATH_INFO, and "" when
// PATH_INFO is "" (the RFC requires it unset then; use it with if_not_empty).
void append_path_translated(const CgiInput &in, std::string &out);
// HTTP_HOST: $host$is_request_port$request_port.
void append_http_host(const CgiInput &in, std::string &out);

} // namespace portico::cgi
