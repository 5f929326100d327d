#include "config/load.h"

#include "config.h"

#include "config/directive.h"
#include "event/tls.h"
#include "http/rewrite.h"
#include "http/core_directives.h"
#include "http/realip.h"
#include "log/error_log.h"
#include "module/loader.h"

#include <climits>
#include <cstdio>
#include <unistd.h>

namespace portico {

std::string resolve_path(const Cycle &c, const std::string &p) {
    if (p.empty() || p[0] == '/' || p == "stderr") return p;
    return c.prefix + "/" + p;
}

static std::string dir_of(const std::string &path) {
    auto pos = path.rfind('/');
    return pos == std::string::npos ? "." : pos == 0 ? "/" : path.substr(0, pos);
}

bool load_cycle(const Options &o, std::unique_ptr<Cycle> &out, std::string &err, bool for_signal) {
    auto c = std::make_unique<Cycle>();
    c->prefix = o.prefix.empty() ? PT_PREFIX : o.prefix;
    while (c->prefix.size() > 1 && c->prefix.back() == '/') c->prefix.pop_back();
    c->conf_file = o.conf_file.empty() ? "conf/portico.conf" : o.conf_file;
    c->conf_file = resolve_path(*c, c->conf_file);
    c->conf_dir = dir_of(c->conf_file);

    config::Error perr;
    // nginx reads -g first: a directive also in the file is the duplicate
    if (!o.globals.empty() &&
        !config::parse_text(o.globals, "command line", c->conf_dir, c->doc, perr)) {
        err = perr.text();
        return false;
    }
    if (!config::parse_file(c->conf_file, c->conf_dir, c->doc, perr)) {
        err = perr.text();
        return false;
    }

    config::Registry reg;
    reg.add(core_directives(), nullptr);
    reg.add(upstream_directives(), nullptr);
    reg.add(tls_directives(), nullptr);
    reg.add(rewrite_directives(), nullptr);
    reg.add(realip_directives(), nullptr);
    if (!for_signal) {
        if (!load_modules(*c, err)) return false;
        for (auto &m : c->modules) reg.add(m->mod->directives, m.get());
    }

    pt_conf cf;
    cf.cycle = c.get();
    cf.ctx = PT_CTX_MAIN;
    if (for_signal) {
        for (auto &n : c->doc.nodes)
            if (n.args[0] == "pid" && n.args.size() == 2) c->pid_path = n.args[1];
        out = std::move(c);
        return true;
    }
    if (!config::dispatch(reg, cf, c->doc.nodes, perr)) {
        err = perr.text();
        return false;
    }
    if (!c->http) {
        const char *e = ensure_http(cf);
        if (e) {
            err = e;
            return false;
        }
    }
    if (!finish_http(cf, err)) return false;
    out = std::move(c);
    return true;
}

void dump_config(const Cycle &c) {
    for (auto &f : c.doc.files) {
        printf("# configuration file %s:\n%s", f.path.c_str(), f.text.c_str());
        if (!f.text.empty() && f.text.back() != '\n') printf("\n");
        printf("\n");
    }
}
} // namespace portico
