// location{} selection with nginx's precedence. The rules, as nginx's
// documentation states them and ngx_http_core_find_location() runs them:
//
//  1. Among the prefix locations of a level ("=", plain, "^~"), the longest
//     prefix of the URI wins. An "=" location equal to the whole URI ends the
//     search at once (its regexes are never looked at; it cannot have nested
//     locations).
//  2. If the winning prefix location has nested locations, the search repeats
//     inside it (rules 1-4, on the whole URI): its nested prefixes first, then
//     its nested regexes. A nested regex match or nested "=" match ends the
//     search; otherwise the deepest prefix found so far is remembered.
//  3. Then, unless the level's winning prefix was "^~", the level's regex
//     locations ("~" case-sensitive, "~*" caseless) are tried in config
//     order; the first match wins and its own nested locations are searched
//     the same way. Note that "^~" only silences the regexes of the level it
//     sits on: a nested "^~" winner still lets the outer level's regexes run,
//     exactly as nginx does (its noregex flag is per level).
//  4. If no regex matched, the remembered prefix location applies; if nothing
//     matched at all, the server level applies (find() returns false).
//
// Prefix comparison is byte-wise and case-sensitive (nginx on Linux).
// Prefix lookup walks a byte trie: its cost depends on the URI length, not on
// the number of locations. Named "@name" locations are only reachable through
// find_named() (error_page, try_files fallbacks).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace portico::http {

enum class LocKind { Exact, Prefix, PrefixNoRegex, Regex, RegexCaseless, Named };

// pattern: the URI prefix, the regex source, or the name with or without '@'
struct LocationSpec {
    LocKind kind;
    std::string pattern;
    void *data;
    std::vector<LocationSpec> children;
};

struct LocationMatch {
    void *data = nullptr;
    // (start, end) pairs into the URI given to find(): pair 0 is the whole
    // match, pair k is $k; -1 for groups that did not take part. Only the
    // regex that decided the location leaves captures (nginx keeps the last
    // successful regex's captures).
    int ovector[20];
    int ncaptures = 0;  // pairs set in ovector, $0 included; 0 when no regex decided
    bool error = false; // a regex failed to run (match limit): nginx answers 500
};

class LocationTree {
  public:
    LocationTree();
    ~LocationTree();
    LocationTree(LocationTree &&) noexcept;
    LocationTree &operator=(LocationTree &&) noexcept;

    // Compiles every regex once. Errors use nginx's words:
    //   duplicate location "/x"
    //   location "/y" is outside location "/x"
    //   location "/x/y" cannot be inside the exact location "/x"
    //   named location "@a" can be on the server level only
    //   pcre2_compile() failed: ... in "..." at "..."
    bool build(std::vector<LocationSpec> specs, std::string &err);

    bool find(std::string_view uri, LocationMatch &m) const;
    void *find_named(std::string_view name) const; // "@fallback" (the '@' may be omitted)

    struct Level;
    struct Location;

  private:
    std::unique_ptr<Level> root_;
    std::vector<std::unique_ptr<Location>> all_;
    struct NameHash {
        using is_transparent = void;
        size_t operator()(std::string_view s) const noexcept {
            return std::hash<std::string_view>{}(s);
        }
    };
    std::unordered_map<std::string, void *, NameHash, std::equal_to<>> named_;

    bool add_level(Level &level, std::vector<LocationSpec> &specs, const Location *parent,
                   std::string &err);
};

} // namespace portico::http
