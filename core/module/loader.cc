#include "module/loader.h"

#include "config.h"
#include "http/request.h"

#include <dlfcn.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

namespace portico {

const std::vector<std::string> &builtin_module_names() {
    // load order = content phase order: static serves files last
    static const std::vector<std::string> names = {"fastcgi", "http_proxy", "gzip", "static"};
    return names;
}

std::string modules_dir() {
    // The build tree's modules/ beside the binary wins over the installed
    // directory, so `build/portico` runs with the modules built with it.
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        std::string dir(exe);
        dir.resize(dir.rfind('/'));
        struct stat st;
        std::string cand = dir + "/modules";
        if (stat(cand.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return cand;
    }
    return PT_MODULES_DIR;
}

bool load_module_file(Cycle &c, const std::string &path, std::string &err) {
    void *dl = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!dl) {
        err = std::string("dlopen() \"") + path + "\" failed (" + dlerror() + ")";
        return false;
    }
    auto entry = reinterpret_cast<pt_module_entry_fn>(dlsym(dl, PT_MODULE_ENTRY));
    if (!entry) {
        err = "module \"" + path + "\" has no " PT_MODULE_ENTRY "() entry point";
        dlclose(dl);
        return false;
    }
    const pt_module *m = entry(host_table());
    if (!m) {
        err = "module \"" + path + "\" returned no descriptor";
        dlclose(dl);
        return false;
    }
    std::string theirs = std::to_string(m->abi_major) + "." + std::to_string(m->abi_minor);
    std::string ours = std::to_string(PT_ABI_MAJOR) + "." + std::to_string(PT_ABI_MINOR);
    if (m->abi_major != PT_ABI_MAJOR || m->abi_minor > PT_ABI_MINOR ||
        !m->signature || std::string(m->signature) != PT_ABI_SIGNATURE) {
        err = "module \"" + path + "\" is not binary compatible: built for ABI " + theirs +
              " (\"" + (m->signature ? m->signature : "") + "\"), this portico provides ABI " +
              ours + " (\"" PT_ABI_SIGNATURE "\")";
        dlclose(dl);
        return false;
    }
    for (auto &other : c.modules)
        if (std::string(other->mod->name) == m->name) {
            err = std::string("module \"") + m->name + "\" is already loaded";
            dlclose(dl);
            return false;
        }
    auto info = std::make_unique<ModuleInfo>();
    info->mod = m;
    info->dl = dl;
    info->path = path;
    info->index = c.modules.size();
    c.modules.push_back(std::move(info));
    return true;
}

bool load_modules(Cycle &c, std::string &err) {
    std::vector<std::string> disabled;
    for (auto &n : c.doc.nodes)
        if (n.args[0] == "disable_module")
            for (size_t i = 1; i < n.args.size(); i++) disabled.push_back(n.args[i]);
    std::string dir = modules_dir();
    for (auto &name : builtin_module_names()) {
        bool off = false;
        for (auto &d : disabled) off |= d == name;
        std::string path = dir + "/" + name + ".so";
        if (off || access(path.c_str(), R_OK) != 0) continue;
        if (!load_module_file(c, path, err)) return false;
    }
    for (auto &n : c.doc.nodes) {
        if (n.args[0] != "load_module" || n.args.size() != 2) continue;
        std::string path = n.args[1];
        if (path[0] != '/') path = c.prefix + "/" + path;
        if (!load_module_file(c, path, err)) {
            err += " in " + n.file + ":" + std::to_string(n.line);
            return false;
        }
    }
    for (auto &d : disabled) {
        bool known = false;
        for (auto &name : builtin_module_names()) known |= d == name;
        if (!known) {
            err = "unknown module \"" + d + "\" in \"disable_module\"";
            return false;
        }
    }
    return true;
}

void modules_init_worker(Cycle &c) {
    for (auto &m : c.modules)
        if (m->mod->init_worker) m->mod->init_worker(host_table());
}

void modules_exit_worker(Cycle &c) {
    for (auto &m : c.modules)
        if (m->mod->exit_worker) m->mod->exit_worker(host_table());
}

void modules_abort(pt_request *r) {
    auto list = std::move(r->cleanups);
    r->cleanups.clear();
    for (auto &[fn, data] : list) fn(data);
}
} // namespace portico
