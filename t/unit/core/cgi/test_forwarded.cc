// CIDR matching for trusted proxies and the forwarded values for HTTP
// backends: X-Forwarded-*, X-Real-IP, RFC 7239 Forwarded.
#include "cgi/forwarded.h"

#include <cstdio>
#include <string>
#include <vector>

// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
extern "C" { // this cmocka.h has no C++ guard
#include <cmocka.h>
}
// clang-format on

using namespace portico::cgi;

namespace {

struct CidrRow {
    const char *cidr;
    const char *addr;
    bool match;
};

const CidrRow cidr_rows[] = {
    {"10.0.0.0/8", "10.1.2.3", true},
    {"10.0.0.0/8", "11.0.0.1", false},
    {"10.0.0.0/8", "::ffff:10.9.9.9", true},
    {"192.168.1.77/24", "192.168.1.1", true}, // host bits cleared
    {"192.168.1.0/24", "192.168.2.1", false},
    {"192.0.2.1", "192.0.2.1", true},
    {"192.0.2.1", "192.0.2.2", false},
    {"192.0.2.1/32", "192.0.2.1", true},
    {"0.0.0.0/0", "203.0.113.9", true},
    {"0.0.0.0/0", "2001:db8::1", false}, // families never mix
    {"172.16.0.0/12", "172.31.255.255", true},
    {"172.16.0.0/12", "172.32.0.0", false},
    {"2001:db8::/32", "2001:db8:1::1", true},
    {"2001:db8::/32", "2001:db9::1", false},
    {"2001:db8::/33", "2001:db8:8000::1", false},
    {"2001:db8::/33", "2001:db8:7fff::1", true},
    {"::1", "::1", true},
    {"::1/128", "::2", false},
    {"::/0", "fe80::1", true},
    {"::/0", "10.0.0.1", false},
    {"unix:", "unix:", true},
    {"unix:", "unix:/run/x.sock", true},
    {"10.0.0.0/8", "unix:", false},
    {"10.0.0.0/8", "not-an-ip", false},
    {"10.0.0.0/8", "", false},
};

const char *bad_cidrs[] = {"10.0.0.0/33", "::/129", "10.0.0/8",      "10.0.0.0/", "10.0.0.0/x",
                           "garbage",     "",       "10.0.0.0/0008", "[::1]"};

void test_cidr(void **) {
    int failures = 0;
    for (const CidrRow &row : cidr_rows) {
        CidrSet set;
        std::string err;
        assert_true(set.add(row.cidr, err));
        if (set.contains(row.addr) != row.match) {
            std::printf("  [%s contains %s] want %d\n", row.cidr, row.addr, row.match);
            ++failures;
        }
    }
    for (const char *bad : bad_cidrs) {
        CidrSet set;
        std::string err;
        if (set.add(bad, err) || err.empty()) {
            std::printf("  [%s] accepted\n", bad);
            ++failures;
        }
    }
    assert_int_equal(failures, 0);
}

struct FwdRow {
    const char *name;
    const char *peer;
    const char *port;
    bool https;
    const char *host;
    const char *request_port;
    std::vector<HeaderView> headers;
    bool include_port;
    const char *xff;
    const char *forwarded;
};

const FwdRow fwd_rows[] = {
    {"untrusted peer, no chain",
     "203.0.113.5",
     "5000",
     false,
     "example.com",
     "",
     {},
     false,
     "203.0.113.5",
     "for=203.0.113.5;host=example.com;proto=http"},
    {"untrusted peer, forged chain dropped",
     "203.0.113.5",
     "5000",
     false,
     "example.com",
     "",
     {{"X-Forwarded-For", "1.1.1.1"}, {"Forwarded", "for=1.1.1.1"}},
     false,
     "203.0.113.5",
     "for=203.0.113.5;host=example.com;proto=http"},
    {"trusted peer appends to chain",
     "10.0.0.2",
     "5000",
     true,
     "example.com",
     "",
     {{"X-Forwarded-For", "198.51.100.7, 10.0.0.9"}, {"Forwarded", "for=198.51.100.7"}},
     false,
     "198.51.100.7, 10.0.0.9, 10.0.0.2",
     "for=198.51.100.7, for=10.0.0.2;host=example.com;proto=https"},
    {"trusted peer, chain over two lines",
     "10.0.0.2",
     "5000",
     false,
     "example.com",
     "",
     {{"X-Forwarded-For", "a"}, {"x-forwarded-for", "b"}},
     false,
     "a, b, 10.0.0.2",
     "for=10.0.0.2;host=example.com;proto=http"},
    {"trusted peer without chain",
     "10.0.0.2",
     "5000",
     false,
     "example.com",
     "",
     {},
     false,
     "10.0.0.2",
     "for=10.0.0.2;host=example.com;proto=http"},
    {"IPv6 peer quoted and bracketed",
     "2001:db8:cafe::17",
     "4711",
     false,
     "example.com",
     "",
     {},
     false,
     "2001:db8:cafe::17",
     "for=\"[2001:db8:cafe::17]\";host=example.com;proto=http"},
    {"IPv6 peer with port",
     "2001:db8:cafe::17",
     "4711",
     false,
     "example.com",
     "",
     {},
     true,
     "2001:db8:cafe::17",
     "for=\"[2001:db8:cafe::17]:4711\";host=example.com;proto=http"},
    {"IPv4 peer with port quoted",
     "192.0.2.43",
     "47011",
     false,
     "example.com",
     "",
     {},
     true,
     "192.0.2.43",
     "for=\"192.0.2.43:47011\";host=example.com;proto=http"},
    {"host with port quoted",
     "192.0.2.43",
     "1",
     false,
     "example.com",
     "8080",
     {},
     false,
     "192.0.2.43",
     "for=192.0.2.43;host=\"example.com:8080\";proto=http"},
    {"IPv6 host literal quoted",
     "192.0.2.43",
     "1",
     false,
     "[::1]",
     "",
     {},
     false,
     "192.0.2.43",
     "for=192.0.2.43;host=\"[::1]\";proto=http"},
    {"unix peer is unknown",
     "unix:",
     "",
     false,
     "example.com",
     "",
     {},
     false,
     "unix:",
     "for=unknown;host=example.com;proto=http"},
};

void test_forwarded_rows(void **) {
    CidrSet trusted;
    std::string err;
    assert_true(trusted.add("10.0.0.0/8", err));
    int failures = 0;
    for (const FwdRow &row : fwd_rows) {
        CgiInput in;
        in.remote_addr = row.peer;
        in.remote_port = row.port;
        in.https = row.https;
        in.host = row.host;
        in.request_port = row.request_port;
        in.headers = row.headers;
        std::string xff, fwd;
        append_x_forwarded_for(in, trusted, xff);
        append_forwarded(in, trusted, ForwardedOptions{row.include_port, ""}, fwd);
        if (xff != row.xff || fwd != row.forwarded) {
            std::printf("  [%s]\n    xff=%s\n    fwd=%s\n", row.name, xff.c_str(), fwd.c_str());
            ++failures;
        }
    }
    assert_int_equal(failures, 0);
}

void test_simple_values(void **) {
    CgiInput in;
    in.remote_addr = "198.51.100.7"; // after realip
    in.peer_addr = "10.0.0.2";       // the proxy in front of us
    in.host = "example.com";
    in.request_port = "8443";
    in.https = true;
    assert_true(x_forwarded_proto(in) == "https");
    assert_true(x_real_ip(in) == "198.51.100.7");
    assert_true(direct_peer(in) == "10.0.0.2");
    std::string host;
    append_x_forwarded_host(in, host);
    assert_string_equal(host.c_str(), "example.com:8443");
    CidrSet none;
    std::string xff;
    append_x_forwarded_for(in, none, xff);
    assert_string_equal(xff.c_str(), "10.0.0.2");
    std::string fwd;
    append_forwarded(in, none, ForwardedOptions{false, "192.0.2.1"}, fwd);
    assert_string_equal(fwd.c_str(),
                        "for=10.0.0.2;by=192.0.2.1;host=\"example.com:8443\";proto=https");
}

} // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cidr),
        cmocka_unit_test(test_forwarded_rows),
        cmocka_unit_test(test_simple_values),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
