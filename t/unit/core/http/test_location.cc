// location selection: nginx's documented example (A-E) and the rules around it.
#include <algorithm>
#include <csetjmp>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include "http/location.h"

// cmocka last: its fail() macro breaks C++ headers included after it
extern "C" {
#include <cmocka.h>
}

using portico::http::LocationMatch;
using portico::http::LocationSpec;
using portico::http::LocationTree;
using portico::http::LocKind;

namespace {

// location data pointers are the names the tests expect back
void *tag(const char *name) {
    return const_cast<char *>(name);
}
const char *name_of(void *p) {
    return p ? static_cast<const char *>(p) : "(none)";
}

LocationSpec loc(LocKind k, std::string pattern, const char *name,
                 std::vector<LocationSpec> children = {}) {
    return LocationSpec{k, std::move(pattern), tag(name), std::move(children)};
}

struct Case {
    std::string_view uri;
    const char *want;          // nullptr: no location
    std::string_view capture1; // $1 when the winner is a regex with a group
};

int run_cases(const LocationTree &tree, const Case *cases, size_t n) {
    int failures = 0;
    for (size_t i = 0; i < n; i++) {
        const Case &c = cases[i];
        LocationMatch m;
        bool found = tree.find(c.uri, m);
        std::string_view got = found ? name_of(m.data) : "(none)";
        std::string_view want = c.want ? c.want : "(none)";
        bool ok = got == want && found == (c.want != nullptr);
        if (ok && !c.capture1.empty()) {
            ok = m.ncaptures >= 2 && m.ovector[2] >= 0 &&
                 c.uri.substr(m.ovector[2], m.ovector[3] - m.ovector[2]) == c.capture1;
        }
        if (!ok) {
            std::printf("FAIL %.*s: got %.*s want %.*s\n", int(c.uri.size()), c.uri.data(),
                        int(got.size()), got.data(), int(want.size()), want.data());
            failures++;
        }
    }
    return failures;
}

LocationTree build_ok(std::vector<LocationSpec> specs) {
    LocationTree tree;
    std::string err;
    bool ok = tree.build(std::move(specs), err);
    if (!ok) std::printf("build error: %s\n", err.c_str());
    assert_true(ok);
    return tree;
}

// nginx docs, "location": the A-E example, in config order and reversed
// ("the result does not depend on the order of prefix locations").
std::vector<LocationSpec> docs_example(bool reversed) {
    std::vector<LocationSpec> v;
    v.push_back(loc(LocKind::Exact, "/", "A"));
    v.push_back(loc(LocKind::Prefix, "/", "B"));
    v.push_back(loc(LocKind::Prefix, "/documents/", "C"));
    v.push_back(loc(LocKind::PrefixNoRegex, "/images/", "D"));
    v.push_back(loc(LocKind::RegexCaseless, "\\.(gif|jpg|jpeg)$", "E"));
    if (reversed) std::reverse(v.begin(), v.end());
    return v;
}

const Case docs_cases[] = {
    {"/", "A", ""},
    {"/index.html", "B", ""},
    {"/documents/document.html", "C", ""},
    {"/images/1.gif", "D", ""},
    {"/documents/1.jpg", "E", "jpg"},
    {"/documents/1.JPG", "E", "JPG"}, // ~* is caseless
    {"/1.Gif", "E", "Gif"},
    {"/images/", "D", ""},
    {"/images", "B", ""}, // shorter than "/images/": only "/" is a prefix
    {"/documents", "B", ""},
    {"/documents/", "C", ""},
    {"/Documents/x", "B", ""}, // prefixes are case-sensitive
    {"/images/a/b/c.jpg", "D", ""},
    {"/x.jpgx", "B", ""},
};

void test_docs_example(void **) {
    for (bool reversed : {false, true}) {
        LocationTree tree = build_ok(docs_example(reversed));
        assert_int_equal(run_cases(tree, docs_cases, std::size(docs_cases)), 0);
    }
}

// Longest prefix; "=" only on equality; regexes in config order; no "/".
void test_prefix_exact_regex_order(void **) {
    std::vector<LocationSpec> v;
    v.push_back(loc(LocKind::Prefix, "/a", "a"));
    v.push_back(loc(LocKind::Prefix, "/a/b", "ab"));
    v.push_back(loc(LocKind::Prefix, "/a/b/c", "abc"));
    v.push_back(loc(LocKind::Exact, "/a/b", "=ab"));
    v.push_back(loc(LocKind::Regex, "\\.php$", "php"));
    v.push_back(loc(LocKind::Regex, "^/a/b/(.+)\\.php$", "late"));
    v.push_back(loc(LocKind::Regex, "\\.PNG$", "png"));
    LocationTree tree = build_ok(std::move(v));
    const Case cases[] = {
        {"/a", "a", ""},
        {"/ax", "a", ""}, // prefix is a string prefix, not a path segment
        {"/a/b", "=ab", ""},
        {"/a/b/", "ab", ""},
        {"/a/bc", "ab", ""},
        {"/a/b/c/d", "abc", ""},
        {"/a/b/x.php", "php", ""}, // first regex in config order wins
        {"/z.php", "php", ""},
        {"/z", nullptr, ""},
        {"/b.png", nullptr, ""}, // "~" is case-sensitive
        {"/b.PNG", "png", ""},
        {"", nullptr, ""},
    };
    assert_int_equal(run_cases(tree, cases, std::size(cases)), 0);
}

// Nested locations: the nested regexes of the winning prefix run before the
// outer ones; a nested "^~" silences only its own level.
void test_nested(void **) {
    std::vector<LocationSpec> v;
    v.push_back(loc(LocKind::Prefix, "/", "root"));
    v.push_back(loc(LocKind::Prefix, "/app/", "app",
                    {loc(LocKind::Regex, "\\.php$", "app-php"),
                     loc(LocKind::Prefix, "/app/static/", "app-static"),
                     loc(LocKind::PrefixNoRegex, "/app/raw/", "app-raw"),
                     loc(LocKind::Exact, "/app/x", "app-exact")}));
    v.push_back(loc(LocKind::PrefixNoRegex, "/files/", "files",
                    {loc(LocKind::Regex, "\\.txt$", "files-txt")}));
    v.push_back(loc(LocKind::Regex, "\\.(php|txt|css)$", "outer"));
    v.push_back(loc(LocKind::Regex, "^/cap/(?<id>\\d+)/(\\w+)$", "cap",
                    {loc(LocKind::Regex, "^/cap/1/", "cap-inner")}));
    LocationTree tree = build_ok(std::move(v));
    const Case cases[] = {
        {"/app/index.php", "app-php", ""},  // nested regex before the outer one
        {"/app/a.css", "outer", ""},        // nested found nothing: outer regexes
        {"/app/static/a.css", "outer", ""}, // nested plain prefix: outer regex still runs
        {"/app/static/a.gif", "app-static", ""},
        {"/app/raw/a.css", "outer", ""}, // nested ^~ silences its level only (nginx)
        {"/app/raw/a.gif", "app-raw", ""},
        {"/app/raw/a.php", "outer", ""}, // ... so app-php is skipped, outer matches
        {"/app/x", "app-exact", ""},
        {"/app/", "app", ""},
        {"/files/a.txt", "files-txt", ""}, // ^~ still searches its nested regexes
        {"/files/a.css", "files", ""},     // but never the outer ones
        {"/cap/42/name", "cap", "42"},
        {"/cap/1/x", "cap-inner", ""}, // a regex's nested locations are searched too
        {"/other.php", "outer", "php"},
    };
    assert_int_equal(run_cases(tree, cases, std::size(cases)), 0);

    LocationMatch m;
    assert_true(tree.find("/cap/42/name", m));
    assert_int_equal(m.ncaptures, 3);
    assert_int_equal(m.ovector[0], 0);
    assert_int_equal(m.ovector[1], 12);
    assert_int_equal(m.ovector[4], 8);
    assert_int_equal(m.ovector[5], 12);
    // the inner regex decided: its captures ($0 only) replace the outer ones
    assert_true(tree.find("/cap/1/x", m));
    assert_int_equal(m.ncaptures, 1);
    assert_int_equal(m.ovector[1], 7);
    // a prefix decided: no captures
    assert_true(tree.find("/app/", m));
    assert_int_equal(m.ncaptures, 0);
}

void test_named(void **) {
    std::vector<LocationSpec> v;
    v.push_back(loc(LocKind::Prefix, "/", "root"));
    v.push_back(loc(LocKind::Named, "@fallback", "fb"));
    v.push_back(loc(LocKind::Named, "@php", "php"));
    v.push_back(loc(LocKind::Named, "@php", "php-second"));
    LocationTree tree = build_ok(std::move(v));
    assert_string_equal(name_of(tree.find_named("@fallback")), "fb");
    assert_string_equal(name_of(tree.find_named("fallback")), "fb");
    assert_string_equal(name_of(tree.find_named("@php")), "php"); // first wins, as nginx
    assert_null(tree.find_named("@missing"));
    // named locations never take part in normal matching
    LocationMatch m;
    assert_true(tree.find("/@fallback", m));
    assert_string_equal(name_of(m.data), "root");
}

struct ErrCase {
    const char *what;
    std::vector<LocationSpec> specs;
    std::string_view err_prefix;
};

void test_build_errors(void **) {
    std::vector<ErrCase> cases;
    cases.push_back({"two prefixes",
                     {loc(LocKind::Prefix, "/x", "1"), loc(LocKind::Prefix, "/x", "2")},
                     "duplicate location \"/x\""});
    cases.push_back({"prefix and ^~",
                     {loc(LocKind::Prefix, "/x", "1"), loc(LocKind::PrefixNoRegex, "/x", "2")},
                     "duplicate location \"/x\""});
    cases.push_back({"two exact",
                     {loc(LocKind::Exact, "/x", "1"), loc(LocKind::Exact, "/x", "2")},
                     "duplicate location \"/x\""});
    cases.push_back({"nested duplicate",
                     {loc(LocKind::Prefix, "/a/", "1",
                          {loc(LocKind::Prefix, "/a/b", "2"), loc(LocKind::Prefix, "/a/b", "3")})},
                     "duplicate location \"/a/b\""});
    cases.push_back({"outside",
                     {loc(LocKind::Prefix, "/a/", "1", {loc(LocKind::Prefix, "/b/", "2")})},
                     "location \"/b/\" is outside location \"/a/\""});
    cases.push_back({"inside exact",
                     {loc(LocKind::Exact, "/a", "1", {loc(LocKind::Prefix, "/a/b", "2")})},
                     "location \"/a/b\" cannot be inside the exact location \"/a\""});
    cases.push_back({"nested named",
                     {loc(LocKind::Prefix, "/a", "1", {loc(LocKind::Named, "@n", "2")})},
                     "named location \"@n\" can be on the server level only"});
    cases.push_back({"inside named",
                     {loc(LocKind::Named, "@n", "1", {loc(LocKind::Prefix, "/a", "2")})},
                     "location \"/a\" cannot be inside the named location \"@n\""});
    cases.push_back({"bad regex", {loc(LocKind::Regex, "(a", "1")}, "pcre2_compile() failed: "});

    int failures = 0;
    for (ErrCase &c : cases) {
        LocationTree tree;
        std::string err;
        bool ok = tree.build(std::move(c.specs), err);
        if (ok || err.compare(0, c.err_prefix.size(), c.err_prefix) != 0) {
            std::printf("FAIL %s: ok=%d err=%s\n", c.what, ok, err.c_str());
            failures++;
        }
    }
    assert_int_equal(failures, 0);

    // "= /x" and "/x" live side by side
    LocationTree tree =
        build_ok({loc(LocKind::Exact, "/x", "eq"), loc(LocKind::Prefix, "/x", "px")});
    const Case cases2[] = {{"/x", "eq", ""}, {"/xy", "px", ""}};
    assert_int_equal(run_cases(tree, cases2, std::size(cases2)), 0);
}

// Many prefixes: the trie answers the longest one whatever the count.
void test_many_prefixes(void **) {
    std::vector<std::string> names;
    std::vector<LocationSpec> v;
    names.reserve(2000);
    for (int i = 0; i < 2000; i++)
        names.push_back("/p" + std::to_string(i) + "/");
    for (const std::string &n : names)
        v.push_back(loc(LocKind::Prefix, n, n.c_str()));
    LocationTree tree = build_ok(std::move(v));
    LocationMatch m;
    assert_true(tree.find("/p1234/x", m));
    assert_string_equal(name_of(m.data), "/p1234/");
    assert_true(tree.find("/p12/", m));
    assert_string_equal(name_of(m.data), "/p12/");
    assert_false(tree.find("/p12", m));
}

} // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_docs_example), cmocka_unit_test(test_prefix_exact_regex_order),
        cmocka_unit_test(test_nested),       cmocka_unit_test(test_named),
        cmocka_unit_test(test_build_errors), cmocka_unit_test(test_many_prefixes),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
