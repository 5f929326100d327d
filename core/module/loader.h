#pragma once
// Loading modules: the project's own ones from the modules directory (no
// load_module needed, `disable_module NAME;` switches one off) and extra
// ones named by `load_module path;`. A module built for another ABI is
// refused before any of its code beyond the entry point runs.
#include <portico/module.h>

#include "http/conf.h"

#include <string>
#include <vector>

namespace portico {
bool load_modules(Cycle &c, std::string &err);
// Checks and registers one module file; used by load_modules and tests.
bool load_module_file(Cycle &c, const std::string &path, std::string &err);
std::string modules_dir();
const std::vector<std::string> &builtin_module_names();
void modules_init_worker(Cycle &c);
void modules_exit_worker(Cycle &c);
void modules_abort(pt_request *r);
const pt_host *host_table();
} // namespace portico
