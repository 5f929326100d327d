#pragma once
// disable_symlinks: open a file without following symbolic links in the
// path (on), or following only links whose owner owns the target
// (if_not_owner), below an optional prefix that is trusted (from=).
#include <string_view>

namespace static_module {
enum class SymlinkPolicy { Off, On, IfNotOwner };

// Returns an fd opened O_RDONLY, or -1 with *err set (ELOOP: a link that
// the policy refuses, answered 403).
int open_checked(std::string_view path, size_t trusted_prefix, SymlinkPolicy policy, int *err);
} // namespace static_module
