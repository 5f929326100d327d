#pragma once
#include <string>

namespace portico {
struct Options {
    std::string prefix, conf_file, error_log, globals, signal;
    bool test = false, dump = false;
};
// Loads the configuration, opens listeners, forks workers and supervises
// them until told to stop. Returns the process exit status.
int master_run(const Options &o);
// -s stop|quit|reopen|reload: signals the running master named by the pid file.
int send_signal(const Options &o);
} // namespace portico
