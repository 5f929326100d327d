// portico command line, nginx's flags: -c -p -t -T -g -e -V -s -h.
#include "base/version.h"
#include "config.h"
#include "config/load.h"
#include "log/error_log.h"
#include "module/loader.h"
#include "process/master.h"

#include <algorithm>
#include <cstdio>
#include <dirent.h>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>
#include <unistd.h>

using namespace portico;

static void usage() {
    fprintf(stderr,
            "Usage: portico [-?hvVtTq] [-s signal] [-p prefix] [-e filename] [-c filename] "
            "[-g directives]\n\n"
            "Options:\n"
            "  -?,-h         : this help\n"
            "  -v            : show version and exit\n"
            "  -V            : show version, configure options and modules, then exit\n"
            "  -t            : test configuration and exit\n"
            "  -T            : test configuration, dump it and exit\n"
            "  -q            : suppress non-error messages during configuration testing\n"
            "  -s signal     : send signal to a master process: stop, quit, reopen, reload\n"
            "  -p prefix     : set prefix path (default: " PT_PREFIX "/)\n"
            "  -e filename   : set error log file (default: logs/error.log)\n"
            "  -c filename   : set configuration file (default: conf/portico.conf)\n"
            "  -g directives : set global directives out of configuration file\n");
}

static void version(bool full) {
    fprintf(stderr, "portico version: " PT_SERVER_NAME "/" PT_VERSION "\n");
    if (!full) return;
    fprintf(stderr, "module ABI: %d.%d (%s)\n", PT_ABI_MAJOR, PT_ABI_MINOR, PT_ABI_SIGNATURE);
    fprintf(stderr, "built with: %s\n", PT_BUILD_FLAGS);
    fprintf(stderr, "configure arguments: %s\n", PT_CONFIGURE_LINE);
    std::string dir = modules_dir();
    fprintf(stderr, "modules directory: %s\n", dir.c_str());
    // Two lists, because they behave differently: the project's modules load
    // by themselves (disable_module turns one off), the others only when a
    // config names them with load_module.
    fprintf(stderr, "modules:");
    const auto &builtin = builtin_module_names();
    for (auto &n : builtin) {
        std::string p = dir + "/" + n + ".so";
        if (access(p.c_str(), R_OK) == 0) fprintf(stderr, " %s", n.c_str());
    }
    fprintf(stderr, "\n");
    std::vector<std::string> extra;
    if (DIR *d = opendir(dir.c_str())) {
        while (dirent *e = readdir(d)) {
            std::string_view f = e->d_name;
            if (f.size() <= 3 || f.substr(f.size() - 3) != ".so") continue;
            std::string name(f.substr(0, f.size() - 3));
            if (std::find(builtin.begin(), builtin.end(), name) == builtin.end())
                extra.push_back(std::move(name));
        }
        closedir(d);
    }
    std::sort(extra.begin(), extra.end());
    fprintf(stderr, "modules for load_module:");
    for (auto &n : extra) fprintf(stderr, " %s", n.c_str());
    fprintf(stderr, "\n");
}

int main(int argc, char **argv) {
    Options o;
    bool quiet = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-' || !a[1]) {
            fprintf(stderr, "portico: invalid option: \"%s\"\n", a);
            return 1;
        }
        for (const char *p = a + 1; *p; p++) {
            auto value = [&](std::string &dst, const char *what) -> bool {
                if (p[1]) {
                    dst = p + 1;
                } else if (i + 1 < argc) {
                    dst = argv[++i];
                } else {
                    fprintf(stderr, "portico: option \"-%c\" requires %s\n", *p, what);
                    return false;
                }
                return true;
            };
            switch (*p) {
            case '?':
            case 'h': usage(); return 0;
            case 'v': version(false); return 0;
            case 'V': version(true); return 0;
            case 't': o.test = true; break;
            case 'T': o.test = o.dump = true; break;
            case 'q': quiet = true; break;
            case 'c': if (!value(o.conf_file, "file name")) return 1; goto next;
            case 'p': if (!value(o.prefix, "directory name")) return 1; goto next;
            case 'e': if (!value(o.error_log, "file name")) return 1; goto next;
            case 'g': if (!value(o.globals, "directives")) return 1; goto next;
            case 's': if (!value(o.signal, "parameter")) return 1; goto next;
            default: fprintf(stderr, "portico: invalid option: \"%c\"\n", *p); return 1;
            }
        }
    next:;
    }
    if (!o.signal.empty()) return send_signal(o);
    if (o.test) {
        std::unique_ptr<Cycle> c;
        std::string err;
        bool ok = load_cycle(o, c, err, false);
        // a failed load leaves no cycle: name the file as load_cycle resolved it
        std::string file = o.conf_file.empty() ? "conf/portico.conf" : o.conf_file;
        if (c) {
            file = c->conf_file;
        } else if (file[0] != '/') {
            std::string prefix = o.prefix.empty() ? PT_PREFIX : o.prefix;
            while (prefix.size() > 1 && prefix.back() == '/') prefix.pop_back();
            file = prefix + "/" + file;
        }
        if (!ok) {
            fprintf(stderr, "portico: [emerg] %s\n", err.c_str());
            fprintf(stderr, "portico: configuration file %s test failed\n", file.c_str());
            return 1;
        }
        for (auto &w : c->warnings) fprintf(stderr, "portico: [warn] %s\n", w.c_str());
        if (!quiet || o.dump) {
            fprintf(stderr, "portico: the configuration file %s syntax is ok\n", c->conf_file.c_str());
            fprintf(stderr, "portico: configuration file %s test is successful\n",
                    c->conf_file.c_str());
        }
        if (o.dump) dump_config(*c);
        return 0;
    }
    return master_run(o);
}
