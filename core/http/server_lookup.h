// server{} selection by Host among the servers of one listen address, with
// nginx's server_name precedence:
//   1. exact name                      "example.com" (and "" for no Host)
//   2. longest leading wildcard        "*.example.com" (any depth: a.b.example.com)
//   3. longest trailing wildcard       "www.example.*" (www.example.com, www.example.co.uk)
//   4. first matching regex, config order  "~^(?<user>.+)\.example\.net$"
//   5. nullptr: the caller uses the address's default server
// ".example.com" is both "example.com" and "*.example.com" and conflicts with
// either. "_" is no special name, only a name no real Host ever has (a Host
// of "_" would match it, as in nginx).
// Exact and wildcard lookups are hash lookups on views of the host (one per
// label for wildcards), so their cost does not grow with the server count.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "base/regex.h"

namespace portico::http {

class ServerNames {
  public:
    static constexpr int kMaxCapturePairs = 10; // find()'s ovector holds 2 * this ints

    // nullptr = added. Otherwise a message in nginx's words; one that starts
    // with "conflicting server name" is a warning (nginx warns, keeps the
    // first server and goes on), anything else is a config error:
    //   server name "*" is invalid
    //   invalid server name or wildcard "www.*.com"
    //   empty regex in server name "~"
    //   pcre2_compile() failed: ...
    // Non-regex names are compared lowercased; a regex is compiled caseless
    // when it contains an upper-case letter, as nginx does.
    const char *add(std::string_view name, void *server);
    const char *finalize(); // nullptr; kept for the two-step config API

    // host as sent (may carry :port, a trailing dot, upper case); "" for a
    // request without Host. Invalid hosts find nothing. When a regex decided,
    // ovector gets its (start, end) pairs (offsets valid in the sent host and
    // in normalize_host()'s output: only the tail is ever cut), ncaptures the
    // pairs set ($0 included, 0 otherwise), which the regex (for its names()).
    void *find(std::string_view host, int *ovector = nullptr, int *ncaptures = nullptr,
               const Regex **which = nullptr) const;

  private:
    struct Hash {
        using is_transparent = void;
        size_t operator()(std::string_view s) const noexcept {
            return std::hash<std::string_view>{}(s);
        }
    };
    using Map = std::unordered_map<std::string, void *, Hash, std::equal_to<>>;

    Map exact_;
    Map head_; // "*.example.com" and ".example.com" keyed "example.com"
    Map tail_; // "www.example.*" keyed "www.example"
    std::vector<std::pair<Regex, void *>> regexes_;
    std::string message_;

    const char *say(std::string msg);
    const char *conflict(std::string_view name);
};

// Host header → name used for lookup and $host, following nginx's
// ngx_http_validate_host(): ":port" and one trailing dot removed, IPv6
// literals kept in brackets, lower-cased. false (a 400) for an empty name,
// "..", '/', NUL; we also refuse controls and space, which nginx lets
// through into $host and from there into logs and CGI variables.
bool normalize_host(std::string_view in, std::string &out);

} // namespace portico::http
