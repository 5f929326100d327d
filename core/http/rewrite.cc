#include "http/rewrite.h"

#include "base/regex.h"
#include "config/directive.h"
#include "config/setters.h"
#include "http/core_directives.h"
#include "http/request.h"

#include <cstring>
#include <set>
#include <sys/stat.h>
#include <unistd.h>

namespace portico {

enum class OpKind { Set, Rewrite, Break, Return, If };
enum class CondKind { Truthy, Equal, NotEqual, Match, NoMatch, File, NotFile, Dir, NotDir, Exists, NotExists, Exec, NotExec };

struct RewriteOp {
    OpKind kind;
    std::string name;         // Set: variable
    ComplexValue value;       // Set value, Rewrite replacement, Return text, If operand
    std::optional<Regex> regex;
    enum Flag { None, Last, Break, Redirect, Permanent } flag = None;
    int code = 0;             // Return
    bool has_text = false;
    CondKind cond = CondKind::Truthy;
    ComplexValue operand2;    // If: right-hand string
    RewriteProgram body;      // If
};

namespace {
using config::fmt_error;
using config::sv;

std::set<std::string, std::less<>> &declared() {
    static std::set<std::string, std::less<>> names;
    return names;
}

RewriteProgram &program_of(pt_conf *cf) {
    if (cf->ctx == PT_CTX_IF) return *static_cast<RewriteProgram *>(cf->block);
    if (cf->ctx == PT_CTX_SERVER) return cf->srv->rewrite;
    return cf->loc->rewrite;
}

const char *set_set(pt_conf *cf, void *, const pt_str *a, size_t) {
    std::string_view name = sv(a[1]);
    if (name.size() < 2 || name[0] != '$')
        return fmt_error("invalid variable name \"%.*s\"", int(name.size()), name.data());
    name.remove_prefix(1);
    declared().insert(std::string(name)); // known before the value compiles: `set $a $a;`
    auto op = std::make_shared<RewriteOp>();
    op->kind = OpKind::Set;
    op->name = std::string(name);
    if (const char *e = compile_value(sv(a[2]), op->value)) return e;
    program_of(cf).push_back(op);
    return nullptr;
}

const char *set_rewrite(pt_conf *cf, void *, const pt_str *a, size_t n) {
    auto op = std::make_shared<RewriteOp>();
    op->kind = OpKind::Rewrite;
    std::string err;
    op->regex = Regex::compile(sv(a[1]), false, err);
    if (!op->regex) return fmt_error("%s", err.c_str());
    if (const char *e = compile_value(sv(a[2]), op->value)) return e;
    if (n == 4) {
        std::string_view f = sv(a[3]);
        if (f == "last") op->flag = RewriteOp::Last;
        else if (f == "break") op->flag = RewriteOp::Break;
        else if (f == "redirect") op->flag = RewriteOp::Redirect;
        else if (f == "permanent") op->flag = RewriteOp::Permanent;
        else return fmt_error("invalid parameter \"%.*s\"", int(f.size()), f.data());
    }
    program_of(cf).push_back(op);
    return nullptr;
}

const char *set_break(pt_conf *cf, void *, const pt_str *, size_t) {
    auto op = std::make_shared<RewriteOp>();
    op->kind = OpKind::Break;
    program_of(cf).push_back(op);
    return nullptr;
}

const char *set_if_return(pt_conf *cf, void *, const pt_str *a, size_t n) {
    auto op = std::make_shared<RewriteOp>();
    op->kind = OpKind::Return;
    std::string_view first = sv(a[1]);
    int64_t code;
    if (n == 2 && (first.substr(0, 7) == "http://" || first.substr(0, 8) == "https://" ||
                   first.substr(0, 1) == "$")) {
        op->code = 302;
        op->has_text = true;
        if (const char *e = compile_value(first, op->value)) return e;
    } else {
        if (config::parse_int(first, code) || code < 0 || code > 999)
            return fmt_error("invalid return code \"%.*s\"", int(first.size()), first.data());
        op->code = int(code);
        if (n == 3) {
            op->has_text = true;
            if (const char *e = compile_value(sv(a[2]), op->value)) return e;
        }
    }
    program_of(cf).push_back(op);
    return nullptr;
}

// `if (condition) { ... }`: the condition arrives split on spaces.
const char *set_if(pt_conf *cf, void *, const pt_str *a, size_t n) {
    std::string text;
    for (size_t i = 1; i < n; i++) {
        if (i > 1) text += ' ';
        text += sv(a[i]);
    }
    if (text.size() < 2 || text.front() != '(' || text.back() != ')')
        return fmt_error("invalid condition \"%s\"", text.c_str());
    std::string_view c(text);
    c = c.substr(1, c.size() - 2);
    while (!c.empty() && c.front() == ' ') c.remove_prefix(1);
    while (!c.empty() && c.back() == ' ') c.remove_suffix(1);
    auto op = std::make_shared<RewriteOp>();
    op->kind = OpKind::If;
    size_t sp = c.find(' ');
    std::string_view left = c.substr(0, sp);
    std::string_view rest = sp == std::string_view::npos ? "" : c.substr(sp + 1);
    static const std::pair<std::string_view, CondKind> files[] = {
        {"-f", CondKind::File}, {"!-f", CondKind::NotFile}, {"-d", CondKind::Dir},
        {"!-d", CondKind::NotDir}, {"-e", CondKind::Exists}, {"!-e", CondKind::NotExists},
        {"-x", CondKind::Exec}, {"!-x", CondKind::NotExec}};
    bool is_file = false;
    for (auto &[tok, kind] : files)
        if (left == tok) {
            op->cond = kind;
            is_file = true;
            if (const char *e = compile_value(rest, op->value)) return e;
        }
    if (!is_file) {
        if (left.empty() || left[0] != '$') return fmt_error("invalid condition \"%s\"", text.c_str());
        if (const char *e = compile_value(left, op->value)) return e;
        if (!rest.empty()) {
            size_t sp2 = rest.find(' ');
            std::string_view oper = rest.substr(0, sp2);
            std::string_view right = sp2 == std::string_view::npos ? "" : rest.substr(sp2 + 1);
            if (right.size() >= 2 && (right.front() == '"' || right.front() == '\'') &&
                right.back() == right.front())
                right = right.substr(1, right.size() - 2);
            if (oper == "=" || oper == "!=") {
                op->cond = oper == "=" ? CondKind::Equal : CondKind::NotEqual;
                if (const char *e = compile_value(right, op->operand2)) return e;
            } else if (oper == "~" || oper == "~*" || oper == "!~" || oper == "!~*") {
                op->cond = oper[0] == '!' ? CondKind::NoMatch : CondKind::Match;
                std::string err;
                op->regex = Regex::compile(right, oper.back() == '*', err);
                if (!op->regex) return fmt_error("%s", err.c_str());
            } else {
                return fmt_error("unexpected \"%.*s\" in condition", int(oper.size()), oper.data());
            }
        }
    }
    RewriteProgram &outer = program_of(cf);
    void *outer_block = cf->block;
    cf->block = &op->body;
    const char *rv = config::dispatch_block(*cf, PT_CTX_IF);
    cf->block = outer_block;
    if (rv) return rv;
    outer.push_back(op);
    return nullptr;
}

constexpr uint32_t SL = PT_CTX_SERVER | PT_CTX_LOCATION | PT_CTX_IF;
const pt_directive kDirectives[] = {
    {"set", SL, PT_ARGS(2) | PT_ARGS_MULTI, PT_CONF_MAIN, set_set},
    {"rewrite", SL, PT_ARGS(2) | PT_ARGS(3) | PT_ARGS_MULTI, PT_CONF_MAIN, set_rewrite},
    {"break", SL, PT_ARGS(0) | PT_ARGS_MULTI, PT_CONF_MAIN, set_break},
    // inside `if` a return is one step of the program (outside, see phases.cc)
    {"return", PT_CTX_IF, PT_ARGS(1) | PT_ARGS(2), PT_CONF_MAIN, set_if_return},
    {"if", PT_CTX_SERVER | PT_CTX_LOCATION, PT_ARGS_1MORE | PT_ARGS_BLOCK | PT_ARGS_MULTI,
     PT_CONF_MAIN, set_if},
    {nullptr, 0, 0, PT_CONF_MAIN, nullptr},
};

void set_user_var(Request *r, const std::string &name, std::string value) {
    for (auto &kv : r->user_vars)
        if (kv.first == name) {
            kv.second = std::move(value);
            return;
        }
    r->user_vars.emplace_back(name, std::move(value));
}

bool is_redirect_url(std::string_view v) {
    return v.substr(0, 7) == "http://" || v.substr(0, 8) == "https://";
}

bool test(Request *r, const RewriteOp &op) {
    std::string v;
    eval(r, op.value, v);
    struct stat st;
    switch (op.cond) {
    case CondKind::Truthy: return !v.empty() && v != "0";
    case CondKind::Equal:
    case CondKind::NotEqual: {
        std::string w;
        eval(r, op.operand2, w);
        return (v == w) == (op.cond == CondKind::Equal);
    }
    case CondKind::Match:
    case CondKind::NoMatch: {
        int ov[20];
        int rc = op.regex->match(v, ov, 10);
        if (rc > 0 && op.cond == CondKind::Match) {
            r->capture_subject = v;
            memcpy(r->ovector, ov, sizeof ov);
            r->ncaptures = rc;
        }
        return (rc > 0) == (op.cond == CondKind::Match);
    }
    case CondKind::File: return stat(v.c_str(), &st) == 0 && S_ISREG(st.st_mode);
    case CondKind::NotFile: return !(stat(v.c_str(), &st) == 0 && S_ISREG(st.st_mode));
    case CondKind::Dir: return stat(v.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
    case CondKind::NotDir: return !(stat(v.c_str(), &st) == 0 && S_ISDIR(st.st_mode));
    case CondKind::Exists: return stat(v.c_str(), &st) == 0;
    case CondKind::NotExists: return stat(v.c_str(), &st) != 0;
    case CondKind::Exec: return access(v.c_str(), X_OK) == 0;
    case CondKind::NotExec: return access(v.c_str(), X_OK) != 0;
    }
    return false;
}

// Runs ops; `stop` set by break / last / a redirect.
RewriteResult run(Request *r, const RewriteProgram &prog, int &status, bool &stop, bool &changed) {
    for (const auto &opp : prog) {
        const RewriteOp &op = *opp;
        switch (op.kind) {
        case OpKind::Set: {
            std::string v;
            eval(r, op.value, v);
            set_user_var(r, op.name, std::move(v));
            break;
        }
        case OpKind::Break:
            stop = true;
            return RewriteResult::Continue;
        case OpKind::Return:
            r->rewrite_return = &op;
            status = op.code;
            stop = true;
            return RewriteResult::Status;
        case OpKind::If:
            if (test(r, op)) {
                RewriteResult res = run(r, op.body, status, stop, changed);
                if (res != RewriteResult::Continue || stop) return res;
            }
            break;
        case OpKind::Rewrite: {
            int ov[20];
            int rc = op.regex->match(r->uri, ov, 10);
            if (rc <= 0) break;
            r->capture_subject = r->uri;
            memcpy(r->ovector, ov, sizeof ov);
            r->ncaptures = rc;
            std::string target;
            eval(r, op.value, target);
            // "?" at the end drops the original arguments; a "?" inside replaces them
            bool drop_args = !target.empty() && target.back() == '?';
            if (drop_args) target.pop_back();
            std::string args = r->args;
            if (auto q = target.find('?'); q != std::string::npos) {
                std::string new_args = target.substr(q + 1);
                target.resize(q);
                args = drop_args ? new_args : new_args + (args.empty() ? "" : "&" + args);
            } else if (drop_args) {
                args.clear();
            }
            if (op.flag == RewriteOp::Redirect || op.flag == RewriteOp::Permanent ||
                is_redirect_url(target)) {
                std::string loc = target;
                if (!args.empty()) loc += "?" + args;
                set_header(r, "Location", loc, true);
                status = op.flag == RewriteOp::Permanent ? 301 : 302;
                stop = true;
                return RewriteResult::Status;
            }
            r->uri = target;
            r->args = args;
            changed = true;
            if (op.flag == RewriteOp::Last) {
                stop = true;
                return RewriteResult::NewLocation;
            }
            if (op.flag == RewriteOp::Break) {
                stop = true;
                return RewriteResult::Continue;
            }
            break;
        }
        }
    }
    return RewriteResult::Continue;
}
} // namespace

const pt_directive *rewrite_directives() { return kDirectives; }

int rewrite_return_code(const RewriteOp *op) { return op->code; }
const void *rewrite_return_text(const RewriteOp *op) { return op->has_text ? &op->value : nullptr; }

bool user_variable_declared(std::string_view name) { return declared().count(name) > 0; }
void declare_user_variable(std::string_view name) { declared().insert(std::string(name)); }

bool get_user_variable(Request *r, std::string_view name, std::string &out) {
    for (auto &kv : r->user_vars)
        if (kv.first == name) {
            out += kv.second;
            return true;
        }
    return false;
}

RewriteResult run_rewrite(Request *r, const RewriteProgram &prog, int &status) {
    if (prog.empty()) return RewriteResult::Continue;
    bool stop = false, changed = false;
    RewriteResult res = run(r, prog, status, stop, changed);
    if (res == RewriteResult::Continue && changed && !stop) return RewriteResult::NewLocation;
    if (res == RewriteResult::Continue && changed) r->rewrite_break = true;
    return res;
}
} // namespace portico
