#include "http/location.h"

#include <algorithm>
#include <cstdint>
#include <optional>

#include "base/regex.h"

namespace portico::http {

namespace {

constexpr int kMaxPairs = 10; // $0..$9, the size of LocationMatch::ovector

} // namespace

// Byte trie over the prefix and exact locations of one level. A node marks
// where a location's string ends; children are kept sorted by byte.
class PrefixTrie {
  public:
    PrefixTrie() { nodes_.emplace_back(); }

    // false when the slot is taken (a duplicate location)
    bool insert(std::string_view key, bool exact, const LocationTree::Location *loc) {
        uint32_t n = 0;
        for (char ch : key) {
            auto c = static_cast<unsigned char>(ch);
            auto &next = nodes_[n].next;
            auto it = std::lower_bound(next.begin(), next.end(), c,
                                       [](const Edge &e, unsigned char b) { return e.byte < b; });
            if (it != next.end() && it->byte == c) {
                n = it->node;
                continue;
            }
            auto child = static_cast<uint32_t>(nodes_.size());
            next.insert(it, Edge{c, child});
            nodes_.emplace_back(); // invalidates `next`, not used after this
            n = child;
        }
        auto &slot = exact ? nodes_[n].exact : nodes_[n].prefix;
        if (slot != nullptr) return false;
        slot = loc;
        return true;
    }

    // Longest prefix location of uri, and the exact location equal to uri.
    void lookup(std::string_view uri, const LocationTree::Location *&exact,
                const LocationTree::Location *&prefix) const {
        exact = nullptr;
        prefix = nullptr;
        uint32_t n = 0;
        for (size_t depth = 0;; depth++) {
            const Node &node = nodes_[n];
            if (node.prefix != nullptr) prefix = node.prefix;
            if (depth == uri.size()) {
                exact = node.exact;
                return;
            }
            auto c = static_cast<unsigned char>(uri[depth]);
            auto it = std::lower_bound(node.next.begin(), node.next.end(), c,
                                       [](const Edge &e, unsigned char b) { return e.byte < b; });
            if (it == node.next.end() || it->byte != c) return;
            n = it->node;
        }
    }

  private:
    struct Edge {
        unsigned char byte;
        uint32_t node;
    };
    struct Node {
        std::vector<Edge> next;
        const LocationTree::Location *exact = nullptr;
        const LocationTree::Location *prefix = nullptr;
    };
    std::vector<Node> nodes_;
};

struct LocationTree::Location {
    LocKind kind;
    std::string pattern;
    void *data;
    std::optional<Regex> regex;
    std::unique_ptr<Level> nested;
};

struct LocationTree::Level {
    PrefixTrie prefixes;
    std::vector<const Location *> regexes; // config order
};

namespace {

enum class Step { None, Prefix, Final };

bool is_regex_kind(LocKind k) {
    return k == LocKind::Regex || k == LocKind::RegexCaseless;
}

// One level of ngx_http_core_find_location(): Final = an exact or regex
// location decided; Prefix = a prefix location is remembered in m.
Step find_in(const LocationTree::Level &level, std::string_view uri, LocationMatch &m) {
    const LocationTree::Location *exact, *prefix;
    level.prefixes.lookup(uri, exact, prefix);
    if (exact != nullptr) {
        m.data = exact->data;
        return Step::Final;
    }

    Step rc = Step::None;
    bool noregex = false;
    if (prefix != nullptr) {
        m.data = prefix->data;
        noregex = prefix->kind == LocKind::PrefixNoRegex;
        rc = Step::Prefix;
        if (prefix->nested && find_in(*prefix->nested, uri, m) == Step::Final) return Step::Final;
    }
    if (noregex) return rc;

    for (const LocationTree::Location *loc : level.regexes) {
        int ov[2 * kMaxPairs];
        int n = loc->regex->match(uri, ov, kMaxPairs);
        if (n == 0) continue;
        if (n < 0) {
            m.error = true;
            return Step::Final;
        }
        m.data = loc->data;
        std::copy(ov, ov + 2 * kMaxPairs, m.ovector);
        m.ncaptures = n;
        if (loc->nested) find_in(*loc->nested, uri, m);
        return Step::Final;
    }
    return rc;
}

std::string quoted(std::string_view s) {
    std::string q = "\"";
    q += s;
    q += '"';
    return q;
}

} // namespace

LocationTree::LocationTree() : root_(std::make_unique<Level>()) {}
LocationTree::~LocationTree() = default;
LocationTree::LocationTree(LocationTree &&) noexcept = default;
LocationTree &LocationTree::operator=(LocationTree &&) noexcept = default;

bool LocationTree::build(std::vector<LocationSpec> specs, std::string &err) {
    root_ = std::make_unique<Level>();
    all_.clear();
    named_.clear();
    return add_level(*root_, specs, nullptr, err);
}

// The nesting checks are nginx's (ngx_http_core_location): nothing inside "="
// or "@name", "@name" only at server level, a nested non-regex location must
// start with its parent's string (for a regex parent, its source text).
bool LocationTree::add_level(Level &level, std::vector<LocationSpec> &specs, const Location *parent,
                             std::string &err) {
    for (LocationSpec &spec : specs) {
        if (parent != nullptr) {
            if (parent->kind == LocKind::Exact) {
                err = "location " + quoted(spec.pattern) + " cannot be inside the exact location " +
                      quoted(parent->pattern);
                return false;
            }
            if (spec.kind == LocKind::Named) {
                err = "named location " + quoted(spec.pattern) + " can be on the server level only";
                return false;
            }
            if (!is_regex_kind(spec.kind) &&
                std::string_view(spec.pattern).substr(0, parent->pattern.size()) !=
                    parent->pattern) {
                err = "location " + quoted(spec.pattern) + " is outside location " +
                      quoted(parent->pattern);
                return false;
            }
        }

        if (spec.kind == LocKind::Named) {
            std::string_view name = spec.pattern;
            if (!name.empty() && name[0] == '@') name.remove_prefix(1);
            if (!spec.children.empty()) {
                err = "location " + quoted(spec.children.front().pattern) +
                      " cannot be inside the named location " + quoted("@" + std::string(name));
                return false;
            }
            // nginx keeps duplicates and the first one in the config wins
            named_.emplace(std::string(name), spec.data);
            continue;
        }

        auto loc = std::make_unique<Location>();
        loc->kind = spec.kind;
        loc->pattern = std::move(spec.pattern);
        loc->data = spec.data;
        if (is_regex_kind(spec.kind)) {
            loc->regex = Regex::compile(loc->pattern, spec.kind == LocKind::RegexCaseless, err);
            if (!loc->regex) return false;
            level.regexes.push_back(loc.get());
        } else if (!level.prefixes.insert(loc->pattern, spec.kind == LocKind::Exact, loc.get())) {
            // "= /x" next to "/x" is fine; two "=", or "/x" with "^~ /x", are not
            err = "duplicate location " + quoted(loc->pattern);
            return false;
        }

        if (!spec.children.empty()) {
            loc->nested = std::make_unique<Level>();
            if (!add_level(*loc->nested, spec.children, loc.get(), err)) return false;
        }
        all_.push_back(std::move(loc));
    }
    return true;
}

bool LocationTree::find(std::string_view uri, LocationMatch &m) const {
    m.data = nullptr;
    m.ncaptures = 0;
    m.error = false;
    find_in(*root_, uri, m);
    if (m.error) m.data = nullptr;
    return m.data != nullptr;
}

void *LocationTree::find_named(std::string_view name) const {
    if (!name.empty() && name[0] == '@') name.remove_prefix(1); // stored without '@'
    auto it = named_.find(name);
    return it == named_.end() ? nullptr : it->second;
}

} // namespace portico::http
