// The header table both gateways share: what becomes HTTP_*, what the HTTP
// proxy may re-send, and the CGI name mapping.
#include "cgi/header_policy.h"

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

struct Row {
    const char *name;
    HeaderClass cls;
    bool cgi;      // default policy
    bool upstream; // default policy
    bool cgi_underscores_on;
};

const Row rows[] = {
    {"User-Agent", HeaderClass::end_to_end, true, true, true},
    {"accept", HeaderClass::end_to_end, true, true, true},
    {"X-Forwarded-For", HeaderClass::end_to_end, true, true, true},
    {"Cookie", HeaderClass::end_to_end, true, true, true},
    {"Connection", HeaderClass::hop_by_hop, false, false, false},
    {"keep-alive", HeaderClass::hop_by_hop, false, false, false},
    {"TE", HeaderClass::hop_by_hop, false, false, false},
    {"Trailer", HeaderClass::hop_by_hop, false, false, false},
    {"Transfer-Encoding", HeaderClass::hop_by_hop, false, false, false},
    {"Upgrade", HeaderClass::hop_by_hop, false, false, false},
    {"Proxy-Connection", HeaderClass::hop_by_hop, false, false, false},
    {"Proxy", HeaderClass::httpoxy, false, false, false},
    {"PROXY", HeaderClass::httpoxy, false, false, false},
    {"Content-Type", HeaderClass::content_meta, false, true, false},
    {"Content-Length", HeaderClass::content_meta, false, false, false},
    {"Host", HeaderClass::host, false, false, false},
    {"Authorization", HeaderClass::authorization, true, true, true},
    {"Proxy-Authorization", HeaderClass::proxy_authorization, false, false, false},
    {"X-Forwarded_For", HeaderClass::underscore, false, false, true},
    {"_", HeaderClass::underscore, false, false, true},
    {"X.Dot", HeaderClass::invalid_name, false, false, false},
    {"X Space", HeaderClass::invalid_name, false, false, false},
    {"", HeaderClass::invalid_name, false, false, false},
    {"Proxy_Connection", HeaderClass::underscore, false, false, true}, // not hop-by-hop by name
};

void test_table(void **) {
    HeaderPolicy policy;
    HeaderPolicy underscores(HeaderPolicyConfig{true, true, false});
    int failures = 0;
    for (const Row &row : rows) {
        bool cgi = policy.pass_to_cgi(row.name, {});
        bool up = policy.forward_to_http_upstream(row.name, {});
        bool cgi_u = underscores.pass_to_cgi(row.name, {});
        if (classify_header(row.name) != row.cls || cgi != row.cgi || up != row.upstream ||
            cgi_u != row.cgi_underscores_on) {
            std::printf("  [%s] class=%d cgi=%d upstream=%d cgi_underscores=%d\n", row.name,
                        int(classify_header(row.name)), cgi, up, cgi_u);
            ++failures;
        }
    }
    assert_int_equal(failures, 0);
}

void test_authorization_switches(void **) {
    HeaderPolicy off(HeaderPolicyConfig{false, false, true});
    assert_false(off.pass_to_cgi("Authorization", {}));
    assert_false(off.forward_to_http_upstream("authorization", {}));
    assert_true(off.pass_to_cgi("Proxy-Authorization", {}));
    assert_true(off.forward_to_http_upstream("Proxy-Authorization", {}));
}

void test_connection_tokens(void **) {
    HeaderView hs[] = {
        {"Connection", "keep-alive , X-Secret"}, {"connection", "\tx-other\t"}, {"X-Secret", "1"}};
    HeaderPolicy policy;
    assert_true(listed_in_connection("x-secret", hs));
    assert_true(listed_in_connection("X-Other", hs));
    assert_true(listed_in_connection("Keep-Alive", hs));
    assert_false(listed_in_connection("X-Secre", hs));
    assert_false(listed_in_connection("X-Public", hs));
    assert_false(policy.pass_to_cgi("X-Secret", hs));
    assert_false(policy.forward_to_http_upstream("X-Other", hs));
    assert_true(policy.forward_to_http_upstream("X-Public", hs));
    HeaderView empty_list[] = {{"Connection", ",,"}};
    assert_false(listed_in_connection("", empty_list) && policy.pass_to_cgi("", empty_list));
}

void test_cgi_names(void **) {
    struct {
        const char *in, *out;
    } names[] = {{"User-Agent", "HTTP_USER_AGENT"},
                 {"x-a-b", "HTTP_X_A_B"},
                 {"X_A_b", "HTTP_X_A_B"},
                 {"a1-2", "HTTP_A1_2"}};
    for (auto &n : names) {
        std::string buf(cgi_name_size(n.in), '?');
        std::string_view got = write_cgi_name(n.in, buf.data());
        assert_int_equal(got.size(), buf.size());
        assert_string_equal(std::string(got).c_str(), n.out);
    }
    assert_true(same_cgi_name("X-A_B", "x_a-b"));
    assert_false(same_cgi_name("X-A", "X-AB"));
    assert_false(same_cgi_name("X-A", "X-B"));
}

} // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_authorization_switches),
        cmocka_unit_test(test_connection_tokens),
        cmocka_unit_test(test_cgi_names),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
