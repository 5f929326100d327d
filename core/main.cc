// portico command line, nginx's flags: -c -p -t -T -g -e -V -s -h.
#include "base/version.h"
#include "config.h"
#include "config/load.h"
#include "log/error_log.h"
#include "module/loader.h"
#include "process/master.h"

#include <cstdio>
#include <cstring>
#include <string>
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
    fprintf(stderr, "modules:");
    for (auto &n : builtin_module_names()) {
        std::string p = dir + "/" + n + ".so";
        if (access(p.c_str(), R_OK) == 0) fprintf(stderr, " %s", n.c_str());
    }
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
        std::string file = c ? c->conf_file : (o.conf_file.empty() ? "conf/portico.conf" : o.conf_file);
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
