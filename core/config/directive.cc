#include "config/directive.h"

#include "config/setters.h"

#include <cstdarg>
#include <cstdio>

namespace portico::config {
namespace {
// The error of a nested block, kept until the outer dispatch returns.
thread_local Error g_block_err;
thread_local const Registry *g_reg;
const char kBlockFailed[] = "\x01";
} // namespace

void Registry::add(const pt_directive *table, const ModuleInfo *mod) {
    for (const pt_directive *d = table; d && d->name; d++) by_name[d->name].push_back({d, mod});
}

const char *fmt_error(const char *fmt, ...) {
    thread_local char buf[1024];
    buf[0] = '!';
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + 1, sizeof buf - 1, fmt, ap);
    va_end(ap);
    return buf;
}

const char *block_failed() { return kBlockFailed; }

void *level_conf(pt_conf &cf, const ModuleInfo *mod, pt_conf_level level) {
    if (!mod) return nullptr;
    if (level == PT_CONF_MAIN)
        return cf.cycle->http ? cf.cycle->http->main_conf[mod->index] : nullptr;
    return cf.loc ? cf.loc->module_conf[mod->index] : nullptr;
}

static bool arity_ok(uint32_t arity, size_t n) {
    if (arity & PT_ARGS_FLAG) return n == 1;
    if ((arity & PT_ARGS_1MORE) && n >= 1) return true;
    if ((arity & PT_ARGS_2MORE) && n >= 2) return true;
    return n < 12 && (arity & PT_ARGS(n));
}

static bool fail(Error &err, const Node &n, std::string msg) {
    err.file = n.file;
    err.line = n.line;
    err.message = std::move(msg);
    return false;
}

const char *dispatch_block(pt_conf &cf, uint32_t ctx) {
    uint32_t outer = cf.ctx;
    cf.ctx = ctx;
    bool ok = dispatch(*g_reg, cf, cf.node->children, g_block_err);
    cf.ctx = outer;
    return ok ? nullptr : kBlockFailed;
}

bool dispatch(const Registry &reg, pt_conf &cf, const std::vector<Node> &nodes, Error &err) {
    const Registry *outer_reg = g_reg;
    g_reg = &reg;
    struct Restore {
        const Registry *r;
        ~Restore() { g_reg = r; }
    } restore{outer_reg};
    std::set<std::string> seen;
    for (const Node &n : nodes) {
        const std::string &name = n.args[0];
        auto it = reg.by_name.find(name);
        if (it == reg.by_name.end()) return fail(err, n, "unknown directive \"" + name + "\"");
        const Registry::Entry *e = nullptr;
        for (const auto &cand : it->second)
            if (cand.d->contexts & cf.ctx) {
                e = &cand;
                break;
            }
        if (!e) return fail(err, n, "\"" + name + "\" directive is not allowed here");
        const pt_directive *d = e->d;
        bool wants_block = d->arity & PT_ARGS_BLOCK;
        if (wants_block && !n.has_block)
            return fail(err, n, "directive \"" + name + "\" has no opening \"{\"");
        if (!wants_block && n.has_block)
            return fail(err, n, "directive \"" + name + "\" is not terminated by \";\"");
        if (!arity_ok(d->arity & ~uint32_t(PT_ARGS_BLOCK | PT_ARGS_MULTI), n.args.size() - 1))
            return fail(err, n, "invalid number of arguments in \"" + name + "\" directive");
        if (!(d->arity & PT_ARGS_MULTI) && !seen.insert(name).second)
            return fail(err, n, "\"" + name + "\" directive is duplicate");

        pt_str args[64];
        size_t na = std::min<size_t>(n.args.size(), 64);
        for (size_t i = 0; i < na; i++) args[i] = {n.args[i].data(), n.args[i].size()};
        const Node *outer = cf.node;
        const ModuleInfo *outer_mod = cf.module;
        cf.node = &n;
        cf.module = e->mod;
        const char *rv = d->set(&cf, level_conf(cf, e->mod, d->level), args, na);
        cf.node = outer;
        cf.module = outer_mod;
        if (rv) {
            if (rv == kBlockFailed) {
                if (&err != &g_block_err) err = g_block_err;
                return false;
            }
            if (rv[0] == '!') return fail(err, n, rv + 1);
            return fail(err, n, setter_error_text(name, n.args.size() > 1 ? n.args[1] : "", rv));
        }
    }
    return true;
}

} // namespace portico::config
