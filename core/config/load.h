#pragma once
// Reads a configuration into a new Cycle: parse, load modules, run every
// directive, merge levels, build the lookup structures. Nothing of the
// running server is touched, so a reload with a bad file changes nothing.
#include "http/conf.h"
#include "process/master.h"

#include <memory>
#include <string>

namespace portico {
// for_signal: only what `-s` needs (the pid path); no modules are loaded.
bool load_cycle(const Options &o, std::unique_ptr<Cycle> &out, std::string &err, bool for_signal);
void dump_config(const Cycle &c); // -T
} // namespace portico
