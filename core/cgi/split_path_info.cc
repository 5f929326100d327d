#include "cgi/split_path_info.h"

namespace portico::cgi {

std::string_view to_string(SplitStatus status) {
    switch (status) {
    case SplitStatus::ok:
        return "ok";
    case SplitStatus::refused_control_char:
        return "CR, LF or NUL in the path (CVE-2019-11043 pattern)";
    case SplitStatus::match_error:
        return "fastcgi_split_path_info regex failed to run";
    }
    return "unknown";
}

bool path_is_splittable(std::string_view uri) {
    // a plain loop: find_first_of runs a memchr over the set per byte
    for (char c : uri)
        if (c == '\r' || c == '\n' || c == '\0') return false;
    return true;
}

static void set_index(std::string_view index, SplitResult &out) {
    // nginx appends fastcgi_index to $fastcgi_script_name, not to $uri.
    out.index = (!out.script_name.empty() && out.script_name.back() == '/') ? index : "";
    out.done = true;
}

SplitStatus split_without_regex(std::string_view uri, std::string_view index, SplitResult &out) {
    out = SplitResult{};
    if (!path_is_splittable(uri)) return SplitStatus::refused_control_char;
    out.script_name = uri;
    set_index(index, out);
    return SplitStatus::ok;
}

std::optional<SplitPathInfo> SplitPathInfo::compile(std::string_view pattern, std::string &err) {
    std::optional<Regex> re = Regex::compile(pattern, false, err);
    if (!re) return std::nullopt;
    if (re->capture_count() != 2) {
        err = "fastcgi_split_path_info \"" + std::string(pattern) +
              "\" must have exactly 2 capturing groups (script name, path info), it has " +
              std::to_string(re->capture_count());
        return std::nullopt;
    }
    return SplitPathInfo(std::move(*re));
}

SplitStatus SplitPathInfo::split(std::string_view uri, std::string_view index,
                                 SplitResult &out) const {
    out = SplitResult{};
    if (!path_is_splittable(uri)) return SplitStatus::refused_control_char;
    int ov[6];
    int rc = regex_.match(uri, ov, 3);
    if (rc < 0) return SplitStatus::match_error;
    if (rc == 0) {
        out.script_name = uri;
    } else {
        auto group = [&](int i) {
            if (ov[2 * i] < 0) return std::string_view{};
            return uri.substr(static_cast<std::size_t>(ov[2 * i]),
                              static_cast<std::size_t>(ov[2 * i + 1] - ov[2 * i]));
        };
        out.script_name = group(1);
        out.path_info = group(2);
    }
    set_index(index, out);
    return SplitStatus::ok;
}

} // namespace portico::cgi
