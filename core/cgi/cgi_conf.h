#pragma once
// A location's CGI settings, as the gateway modules configure them through
// the ABI (pt_cgi), and the glue that feeds a request to the builder.
#include "cgi/env_builder.h"
#include "cgi/params.h"
#include "cgi/split_path_info.h"

#include <optional>
#include <string>

struct pt_request;

namespace portico {
struct CgiConf {
    cgi::ParamList params; // this level's own params
    const cgi::ParamList *effective = nullptr; // after nginx's inheritance rule
    std::optional<cgi::SplitPathInfo> split;
    const cgi::SplitPathInfo *split_effective = nullptr;
    bool split_set = false;
    std::optional<std::string> index;
    std::optional<bool> pass_request_headers, pass_authorization;
};

// $fastcgi_script_name, $fastcgi_path_info, ...: the builder's variables for
// the request's current location. false when the name is not one of them.
bool cgi_request_variable(pt_request *r, std::string_view name, std::string &out);
// Builds the environment of r into put(); 0 or an HTTP status (logged).
int cgi_build_request(pt_request *r, const CgiConf &c, void (*put)(void *, std::string_view, std::string_view), void *ctx);
} // namespace portico
