// server_name precedence (nginx "Server names" and "How nginx processes a
// request"), conflicts, and Host validation.
#include <csetjmp>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <iterator>
#include <string>
#include <string_view>

#include "http/server_lookup.h"

// cmocka last: its fail() macro breaks C++ headers included after it
extern "C" {
#include <cmocka.h>
}

using portico::http::ServerNames;

namespace {

void *tag(const char *name) {
    return const_cast<char *>(name);
}
std::string_view name_of(void *p) {
    return p ? static_cast<const char *>(p) : "(default)";
}

struct Name {
    const char *name;
    const char *server;
};

// One listen address; each server_name points to the server named after it.
const Name names[] = {
    {"example.org", "exact-org"},
    {"www.example.org", "exact-www"},
    {"*.example.org", "head-org"},
    {"*.sub.example.org", "head-sub"},
    {"mail.*", "tail-mail"},
    {"www.example.*", "tail-www"},
    {".example.net", "dot-net"},
    {"~^(?<user>[a-z]+)\\.example\\.net$", "regex-net"}, // shadowed by .example.net
    {"~^www\\d+\\.example\\.com$", "regex-www"},
    {"~^(.+)\\.example\\.com$", "regex-any"},
    {"~^API\\.", "regex-caseless"},
    {"", "no-host"},
    {"_", "underscore"},
    {"UPPER.Example.ORG", "upper"},
};

struct Case {
    std::string_view host;
    const char *want; // nullptr: default server
};

const Case cases[] = {
    {"example.org", "exact-org"},
    {"www.example.org", "exact-www"}, // exact beats *.example.org and www.example.*
    {"a.example.org", "head-org"},
    {"a.b.c.example.org", "head-org"}, // a leading wildcard spans several labels
    {"x.sub.example.org", "head-sub"}, // longest leading wildcard
    {"sub.example.org", "head-org"},   // *.sub.example.org needs one more label
    {"mail.example.org", "head-org"},  // leading wildcard beats trailing
    {"mail.example.com", "tail-mail"}, // trailing beats regex
    {"www.example.com", "tail-www"},   // longest trailing wildcard over regex-www
    {"www.example.co.uk", "tail-www"},
    {"www.example", nullptr},          // "www.example.*" needs a label after
    {"example.net", "dot-net"},        // ".example.net" covers the bare name
    {"joe.example.net", "dot-net"},    // ... and its subdomains, before regexes
    {"www1.example.com", "regex-www"}, // first matching regex in config order
    {"shop.example.com", "regex-any"},
    {"api.test", "regex-caseless"}, // upper case in pattern: caseless
    {"", "no-host"},                // request without Host
    {"_", "underscore"},            // "_" is only a name nobody sends
    {"unknown.test", nullptr},
    {"EXAMPLE.ORG", "exact-org"},      // Host is lower-cased
    {"example.org.", "exact-org"},     // trailing dot
    {"example.org:8080", "exact-org"}, // port
    {"Example.Org.:80", "exact-org"},
    {"upper.example.org", "upper"}, // names are lower-cased at add()
    {"example..org", nullptr},      // invalid Host finds nothing
    {"org", nullptr},
};

void test_precedence_table(void **) {
    ServerNames sn;
    for (const Name &n : names) {
        const char *msg = sn.add(n.name, tag(n.server));
        if (msg) std::printf("add(%s): %s\n", n.name, msg);
        assert_null(msg);
    }
    assert_null(sn.finalize());

    int failures = 0;
    for (const Case &c : cases) {
        std::string_view got = name_of(sn.find(c.host));
        std::string_view want = c.want ? c.want : "(default)";
        if (got != want) {
            std::printf("FAIL host \"%.*s\": got %.*s want %.*s\n", int(c.host.size()),
                        c.host.data(), int(got.size()), got.data(), int(want.size()), want.data());
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

void test_regex_captures(void **) {
    ServerNames sn;
    assert_null(sn.add("~^(?<user>[a-z]+)\\.(?<domain>example\\.net)$", tag("users")));
    int ov[2 * ServerNames::kMaxCapturePairs];
    int n = -1;
    const portico::Regex *re = nullptr;
    std::string_view host = "Joe.Example.NET:8080";
    assert_string_equal(static_cast<const char *>(sn.find(host, ov, &n, &re)), "users");
    assert_int_equal(n, 3);
    assert_non_null(re);
    assert_int_equal(re->names().size(), 2);
    // offsets are valid in the sent host too (only its tail is cut)
    assert_true(host.substr(ov[2], ov[3] - ov[2]) == "Joe");
    assert_true(host.substr(ov[4], ov[5] - ov[4]) == "Example.NET");

    // an exact name decides: no captures reported
    assert_null(sn.add("exact.example.net", tag("exact")));
    assert_string_equal(static_cast<const char *>(sn.find("exact.example.net", ov, &n, &re)),
                        "exact");
    assert_int_equal(n, 0);
    assert_null(re);
}

struct AddCase {
    const char *first;
    const char *second;
    std::string_view want_prefix; // message from adding `second`; "" = accepted
};

const AddCase add_cases[] = {
    {"example.com", "example.com", "conflicting server name \"example.com\""},
    {"example.com", "EXAMPLE.com", "conflicting server name"},
    {".example.com", "example.com", "conflicting server name"},
    {"example.com", ".example.com", "conflicting server name"},
    {".example.com", "*.example.com", "conflicting server name"},
    {"*.example.com", ".example.com", "conflicting server name"},
    {"*.example.com", "*.example.com", "conflicting server name"},
    {"www.example.*", "www.example.*", "conflicting server name"},
    {"*.example.com", "example.*", ""},
    {"example.com", "*.example.com", ""},
    {"a.com", "*", "server name \"*\" is invalid"},
    {"a.com", "*example.com", "server name \"*example.com\" is invalid"},
    {"a.com", ".", "server name \".\" is invalid"},
    {"a.com", "www.*.com", "invalid server name or wildcard \"www.*.com\""},
    {"a.com", "*.example.*", "invalid server name or wildcard"},
    {"a.com", "a..com", "invalid server name or wildcard"},
    {"a.com", "~", "empty regex in server name \"~\""},
    {"a.com", "~^(x", "pcre2_compile() failed: "},
    {"~^a$", "~^a$", ""}, // nginx does not compare regexes
};

void test_add_messages(void **) {
    int failures = 0;
    for (const AddCase &c : add_cases) {
        ServerNames sn;
        assert_null(sn.add(c.first, tag("first")));
        const char *msg = sn.add(c.second, tag("second"));
        std::string_view got = msg ? msg : "";
        bool ok = c.want_prefix.empty() ? msg == nullptr
                                        : got.substr(0, c.want_prefix.size()) == c.want_prefix;
        if (!ok) {
            std::printf("FAIL add(%s) after %s: \"%s\"\n", c.second, c.first, msg ? msg : "");
            failures++;
        }
    }
    assert_int_equal(failures, 0);

    // after a conflict the first server keeps the name
    ServerNames sn;
    assert_null(sn.add("example.com", tag("first")));
    assert_non_null(sn.add("example.com", tag("second")));
    assert_string_equal(static_cast<const char *>(sn.find("example.com")), "first");
}

struct HostCase {
    std::string_view in;
    bool ok;
    std::string_view out;
};

const HostCase host_cases[] = {
    {"example.com", true, "example.com"},
    {"Example.COM", true, "example.com"},
    {"example.com.", true, "example.com"},
    {"example.com:80", true, "example.com"},
    {"example.com.:443", true, "example.com"},
    {"[::1]", true, "[::1]"},
    {"[::1]:8080", true, "[::1]"},
    {"[FE80::1]", true, "[fe80::1]"},
    {"127.0.0.1:80", true, "127.0.0.1"},
    {"_", true, "_"},
    {"", false, ""},
    {".", false, ""},
    {":80", false, ""},
    {"a..b", false, ""},
    {"a/b", false, ""},
    {"a\\b", true, "a\\b"}, // nginx only refuses the path separator of the OS
    {std::string_view("a\0b", 3), false, ""},
    {"a b", false, ""},
    {"a\tb", false, ""},
    {"exa\x7fmple", false, ""},
};

void test_normalize_host_table(void **) {
    int failures = 0;
    std::string out;
    for (const HostCase &c : host_cases) {
        out = "junk";
        bool ok = portico::http::normalize_host(c.in, out);
        if (ok != c.ok || (ok && out != c.out)) {
            std::printf("FAIL normalize_host(\"%.*s\"): %d \"%s\"\n", int(c.in.size()), c.in.data(),
                        ok, out.c_str());
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

} // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_precedence_table),
        cmocka_unit_test(test_regex_captures),
        cmocka_unit_test(test_add_messages),
        cmocka_unit_test(test_normalize_host_table),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
