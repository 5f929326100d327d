// SCRIPT_NAME / PATH_INFO by `fastcgi_split_path_info regex`, done safely.
//
// CVE-2019-11043: with the common `^(.+\.php)(/.+)$`, a %0a in the path makes
// `.` stop at the newline, the regex fails, nginx passes SCRIPT_NAME = $uri
// and an empty PATH_INFO, and PHP-FPM's path arithmetic underflows. We refuse
// (400) every path containing CR, LF or NUL before any regex runs, whatever
// regex the user wrote. We do not add PCRE2_DOTALL instead: for every path we
// accept, DOTALL changes nothing, so the user's regex keeps nginx's meaning.
#pragma once

#include "base/regex.h"
#include "cgi/cgi_input.h"

#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace portico::cgi {

enum class SplitStatus {
    ok,
    refused_control_char, // CR, LF or NUL in the decoded path: 400
    match_error,          // PCRE2 failed (limits): 500, never a silent fallback
};

// Why a SplitStatus refused, for the error log.
std::string_view to_string(SplitStatus status);

// True when the decoded path holds none of CR, LF, NUL.
bool path_is_splittable(std::string_view uri);

// No split regex configured: script name = $uri, no PATH_INFO (nginx), plus
// fastcgi_index when $uri ends in '/'.
SplitStatus split_without_regex(std::string_view uri, std::string_view index, SplitResult &out);

class SplitPathInfo {
  public:
    // Compiled once at configuration load, JIT when available. Exactly two
    // capturing groups are required, as nginx requires; anything else is a
    // load-time error with the pattern named in `err`.
    static std::optional<SplitPathInfo> compile(std::string_view pattern, std::string &err);

    // nginx semantics: a match gives capture 1 / capture 2 (an unset group is
    // ""), no match gives $uri / "". fastcgi_index is appended to a script
    // name that ends in '/'. Matching is byte-wise on the decoded $uri (no
    // UTF mode: no Unicode case folding can make "x.PHP" differ from the
    // location's idea of it).
    SplitStatus split(std::string_view uri, std::string_view index, SplitResult &out) const;

    std::string_view pattern() const { return regex_.pattern(); }

  private:
    explicit SplitPathInfo(Regex regex) : regex_(std::move(regex)) {}
    Regex regex_;
};

} // namespace portico::cgi
