#pragma once
// nginx's rewrite-module directives: set, rewrite, break, return (kept in
// phases.cc) and `if` limited to what belongs in it safely: a condition and
// a block of rewrite-module directives. Programs are compiled at load and
// run in order, at server level before the location is chosen and at
// location level after.
#include <portico/module.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

struct pt_request;

namespace portico {
struct RewriteOp;
using RewriteProgram = std::vector<std::shared_ptr<RewriteOp>>;

const pt_directive *rewrite_directives();
bool user_variable_declared(std::string_view name);
void declare_user_variable(std::string_view name); // `set` and named regex captures
bool get_user_variable(pt_request *r, std::string_view name, std::string &out);

// Result of running a program: go on, or end the request with a status
// (redirects have set Location), or restart location lookup (rewrite ... last).
enum class RewriteResult { Continue, Status, NewLocation };
RewriteResult run_rewrite(pt_request *r, const RewriteProgram &prog, int &status);
// A `return` that ended a program: its code and text (nullptr: none).
int rewrite_return_code(const RewriteOp *op);
const void *rewrite_return_text(const RewriteOp *op); // const ComplexValue*, or nullptr
} // namespace portico
