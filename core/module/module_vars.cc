#include "module/module_vars.h"

#include "http/request.h"

#include <unordered_map>

namespace portico {
namespace {
struct ModuleVar {
    pt_var_fn fn;
    std::string module;
};
std::unordered_map<std::string, ModuleVar> &registry() {
    static std::unordered_map<std::string, ModuleVar> vars;
    return vars;
}
} // namespace

void register_module_variable(std::string_view name, pt_var_fn fn, std::string_view module) {
    registry()[std::string(name)] = {fn, std::string(module)};
}

bool module_variable_exists(std::string_view name) {
    return registry().count(std::string(name)) > 0;
}

bool get_module_variable(pt_request *r, std::string_view name, std::string &out) {
    auto it = registry().find(std::string(name));
    if (it == registry().end()) return false;
    for (auto &m : r->cycle->modules)
        if (it->second.module == m->mod->name) {
            pt_str v{"", 0};
            if (!it->second.fn(r, r->loc->module_conf[m->index], &v)) return false;
            out.append(v.data, v.len);
            return true;
        }
    return false;
}
} // namespace portico
