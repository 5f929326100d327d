// Compiled `fastcgi_param NAME value [if_not_empty]` lists (the same shape
// serves scgi/uwsgi-style params later) and the `-t` lint over them.
#pragma once

#include "config/complex_value.h"

#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace portico::cgi {

struct Param {
    std::string name;
    config::ComplexValue value; // compiled once, nginx script syntax
    bool if_not_empty = false;
    // per segment: the CGI builder's own variable it names (builtin_index),
    // -1 for literals and every other variable; found once at load
    std::vector<int> builtin;
    // The value needs no assembly: a literal (or empty) value is `literal`
    // itself, a lone builder variable that is a plain view is `view_builtin`
    // (builtin_view). Put as they are, without a copy into the scratch buffer.
    bool is_literal = false;
    int view_builtin = -1;
};

class ParamList {
  public:
    // Compiles one directive. false + `err` for an empty or control-character
    // name, or a value compile_complex_value refuses.
    bool add(std::string_view name, std::string_view value, bool if_not_empty, std::string &err);

    bool empty() const { return params_.empty(); }
    std::span<const Param> params() const { return params_; }

    // True when a param of that exact name (ASCII case-insensitive) is set.
    bool sets(std::string_view name) const;
    bool sets_http_host() const { return sets_http_host_; } // sets("HTTP_HOST"), found once

    // True when a user param HTTP_X replaces the client header `header_name`
    // (compared after the CGI mapping, as nginx's ignored-headers hash does).
    bool overrides_header(std::string_view header_name) const;

  private:
    std::vector<Param> params_;
    bool http_params_ = false; // some name starts with HTTP_
    bool sets_http_host_ = false;
};

// nginx's rule: a level inherits its parent's list if and only if it defines
// no param itself (one fastcgi_param in a location drops all inherited ones).
const ParamList &inherit_params(const ParamList &child, const ParamList &parent);

// Variables whose value the client chooses, directly or through the URI.
bool is_request_controlled_variable(std::string_view name);

struct LintFinding {
    std::string param;    // PHP_VALUE or PHP_ADMIN_VALUE
    std::string variable; // the request-controlled variable it uses, "$http_x"
};

// `-t`: PHP_VALUE / PHP_ADMIN_VALUE set php.ini directives per request
// (auto_prepend_file, ...); client data there is code execution.
std::vector<LintFinding> lint_php_value_params(const ParamList &list);

} // namespace portico::cgi
