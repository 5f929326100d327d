#pragma once
// Variables computed by modules ($proxy_host, ...). Names are process-wide:
// the same module file serves every configuration generation.
#include <portico/module.h>

#include <string>
#include <string_view>

namespace portico {
void register_module_variable(std::string_view name, pt_var_fn fn, std::string_view module);
bool module_variable_exists(std::string_view name);
// Appends the value; false when not a module variable or not set.
bool get_module_variable(pt_request *r, std::string_view name, std::string &out);
} // namespace portico
