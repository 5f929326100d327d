#pragma once
// Directive registry and dispatch: every directive, the core's and the
// modules', is a pt_directive (name, contexts, arity, setter). Context,
// arity and duplicate checks are done here once, so a module adds
// directives without touching the core.
#include <portico/module.h>

#include "config/parser.h"
#include "http/conf.h"

#include <set>
#include <string>
#include <unordered_map>
#include <vector>

// The C ABI's opaque parse context.
struct pt_conf {
    portico::Cycle *cycle = nullptr;
    const portico::config::Node *node = nullptr;
    uint32_t ctx = PT_CTX_MAIN;
    portico::ServerConf *srv = nullptr;
    portico::LocationConf *loc = nullptr;
    void *block = nullptr; // upstream{} etc.
    const portico::ModuleInfo *module = nullptr;
};

namespace portico::config {

struct Registry {
    struct Entry {
        const pt_directive *d;
        const ModuleInfo *mod; // nullptr: core
    };
    std::unordered_map<std::string, std::vector<Entry>> by_name;
    void add(const pt_directive *table, const ModuleInfo *mod);
};

// Runs every node of a block in context `cf.ctx`. On error fills err and
// returns false.
bool dispatch(const Registry &reg, pt_conf &cf, const std::vector<Node> &nodes, Error &err);
// For block setters: run the node's children in context `ctx` with the
// current cf levels; errors propagate (the setter returns block_failed()).
const char *dispatch_block(pt_conf &cf, uint32_t ctx);
const char *block_failed();

// The conf object a directive at `level` writes to (module conf slots).
void *level_conf(pt_conf &cf, const ModuleInfo *mod, pt_conf_level level);

inline std::string_view sv(const pt_str &s) { return {s.data, s.len}; }
// A "!"-prefixed full message in a per-thread buffer (setters return const char*).
const char *fmt_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

} // namespace portico::config
