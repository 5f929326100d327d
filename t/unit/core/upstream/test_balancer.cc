// Balancing without sockets: the methods of core/upstream/balancer*.cc
// driven over a server table, a PickState and an injected clock.
#include "support/cmocka_cxx.h"

#include "upstream/balancer.h"
#include "upstream/upstream.h"

#include <arpa/inet.h>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <vector>

using namespace portico;

namespace {

struct Spec {
    int weight = 1;
    bool backup = false, down = false;
    int max_fails = 1;
    int64_t fail_timeout_ms = 10000;
};

// An upstream as set_upstream() leaves it: servers, weights, the method ready.
void build(Upstream &u, const std::vector<Spec> &specs, BalanceMethod m) {
    u.servers.clear();
    for (size_t i = 0; i < specs.size(); i++) {
        UpstreamServer s;
        s.server = s.name = "10.0.0." + std::to_string(i + 1) + ":8080";
        s.weight = s.effective_weight = specs[i].weight;
        s.backup = specs[i].backup;
        s.down = specs[i].down;
        s.max_fails = specs[i].max_fails;
        s.fail_timeout_ms = specs[i].fail_timeout_ms;
        u.servers.push_back(s);
    }
    u.method = m;
    u.balancer = make_balancer(m);
    u.balancer->prepare(u);
}

// One request's first pick: the server index, -1 for none.
int pick1(Upstream &u, int64_t now, const std::string &key = "") {
    PickState st;
    st.key = key;
    UpstreamServer *s = u.balancer->pick(u, st, now);
    return s ? int(s - u.servers.data()) : -1;
}

std::string v4_key(const char *addr) {
    sockaddr_storage ss{};
    auto *a = reinterpret_cast<sockaddr_in *>(&ss);
    a->sin_family = AF_INET;
    inet_pton(AF_INET, addr, &a->sin_addr);
    return ip_hash_key(ss);
}

// ---- round-robin ------------------------------------------------------------

void test_swrr_exact_over_1000(void **) {
    Upstream u;
    build(u, {{.weight = 5}, {.weight = 3}, {.weight = 2}}, BalanceMethod::RoundRobin);
    int count[3] = {};
    for (int i = 0; i < 1000; i++) {
        int p = pick1(u, 1000);
        assert_true(p >= 0);
        count[p]++;
        if ((i + 1) % 10 == 0) {
            // smooth: every window of sum(weights) picks is already exact
            assert_int_equal(count[0], (i + 1) / 10 * 5);
            assert_int_equal(count[1], (i + 1) / 10 * 3);
            assert_int_equal(count[2], (i + 1) / 10 * 2);
        }
    }
    assert_int_equal(count[0], 500);
    assert_int_equal(count[1], 300);
    assert_int_equal(count[2], 200);
}

void test_swrr_interleaves(void **) {
    // nginx's documented sequence for 5:1:1 — a a b a c a a, no burst of five
    Upstream u;
    build(u, {{.weight = 5}, {.weight = 1}, {.weight = 1}}, BalanceMethod::RoundRobin);
    std::string seq;
    for (int i = 0; i < 7; i++)
        seq += char('a' + pick1(u, 1000));
    assert_string_equal(seq.c_str(), "aabacaa");
}

void test_backup_only_when_primaries_unusable(void **) {
    Upstream u;
    build(u, {{}, {}, {.backup = true}}, BalanceMethod::RoundRobin);
    for (int i = 0; i < 50; i++)
        assert_int_not_equal(pick1(u, 1000), 2);
    // one primary down: the other carries everything, still no backup
    u.servers[0].down = true;
    for (int i = 0; i < 20; i++)
        assert_int_equal(pick1(u, 1000), 1);
    // both primaries unusable (down, failed): the backup
    report(u, u.servers[1], true, 1000);
    for (int i = 0; i < 20; i++)
        assert_int_equal(pick1(u, 2000), 2);
    // next_upstream within one request: tried primaries, then the backup, then none
    u.servers[0].down = false;
    PickState st;
    assert_ptr_equal(u.balancer->pick(u, st, 3000), &u.servers[0]);
    assert_ptr_equal(u.balancer->pick(u, st, 3000), &u.servers[2]);
    assert_null(u.balancer->pick(u, st, 3000));
}

void test_down_excluded(void **) {
    Upstream u;
    build(u, {{}, {.down = true}, {}}, BalanceMethod::RoundRobin);
    for (int i = 0; i < 30; i++)
        assert_int_not_equal(pick1(u, 1000), 1);
}

// ---- passive health -----------------------------------------------------------

void test_max_fails_and_recovery(void **) {
    Upstream u;
    build(u, {{.max_fails = 2, .fail_timeout_ms = 10000}, {}}, BalanceMethod::RoundRobin);
    int64_t t = 100000;
    assert_false(report(u, u.servers[0], true, t));
    assert_true(usable(u.servers[0], t));              // 1 of 2
    assert_true(report(u, u.servers[0], true, t + 1)); // 2 of 2: disabled
    assert_false(usable(u.servers[0], t + 5000));
    for (int i = 0; i < 10; i++)
        assert_int_equal(pick1(u, t + 5000), 1);
    // fail_timeout later it gets requests again; one success clears the count
    assert_true(usable(u.servers[0], t + 10002));
    PickState st;
    UpstreamServer *s = nullptr;
    while ((s = u.balancer->pick(u, st, t + 10002)) != &u.servers[0]) {
        assert_non_null(s);
        st = PickState{};
    }
    report(u, u.servers[0], false, t + 10003);
    assert_int_equal(u.servers[0].fails, 0);
    // a failure of the probe instead disables it for another fail_timeout
    report(u, u.servers[0], true, t + 20000);
    report(u, u.servers[0], true, t + 20001);
    assert_false(usable(u.servers[0], t + 25000));
}

void test_fails_counted_within_fail_timeout(void **) {
    // max_fails=2: two failures inside one window disable; a success inside
    // the window does not reset the count (nginx counts within fail_timeout)
    Upstream u;
    build(u, {{.max_fails = 2}, {}}, BalanceMethod::RoundRobin);
    int64_t t = 50000;
    pick1(u, t); // opens the window (checked = t)
    report(u, u.servers[0], true, t + 10);
    report(u, u.servers[0], false, t + 20);
    assert_int_equal(u.servers[0].fails, 1);
    assert_true(report(u, u.servers[0], true, t + 30));
    assert_false(usable(u.servers[0], t + 40));
}

void test_single_server_never_marked_down(void **) {
    Upstream u;
    build(u, {{.max_fails = 1}}, BalanceMethod::RoundRobin);
    for (int i = 0; i < 5; i++)
        assert_false(report(u, u.servers[0], true, 1000 + i));
    assert_int_equal(pick1(u, 2000), 0);
    // but `down` is still honoured
    u.servers[0].down = true;
    assert_int_equal(pick1(u, 2000), -1);
}

void test_failed_server_weight_recovers_gradually(void **) {
    Upstream u;
    build(u, {{.weight = 10, .max_fails = 10}, {.weight = 10}}, BalanceMethod::RoundRobin);
    report(u, u.servers[0], true, 1000);
    assert_int_equal(u.servers[0].effective_weight, 9);
    pick1(u, 1000);
    assert_int_equal(u.servers[0].effective_weight, 10);
}

// ---- least_conn -------------------------------------------------------------

void test_least_conn_picks_least_loaded(void **) {
    Upstream u;
    build(u, {{}, {}, {}}, BalanceMethod::LeastConn);
    u.servers[0].active = 3;
    u.servers[1].active = 1;
    u.servers[2].active = 2;
    for (int i = 0; i < 5; i++)
        assert_int_equal(pick1(u, 1000), 1);
    // weighted: 4 active on weight 4 is lighter than 2 on weight 1
    Upstream w;
    build(w, {{.weight = 4}, {.weight = 1}}, BalanceMethod::LeastConn);
    w.servers[0].active = 4;
    w.servers[1].active = 2;
    assert_int_equal(pick1(w, 1000), 0);
}

void test_least_conn_ties_round_robin(void **) {
    Upstream u;
    build(u, {{.weight = 2}, {}, {}}, BalanceMethod::LeastConn);
    int count[3] = {};
    for (int i = 0; i < 400; i++)
        count[pick1(u, 1000)]++; // nothing stays active: all tie
    assert_int_equal(count[0], 200);
    assert_int_equal(count[1], 100);
    assert_int_equal(count[2], 100);
}

void test_least_conn_backup(void **) {
    Upstream u;
    build(u, {{}, {.backup = true}, {.backup = true}}, BalanceMethod::LeastConn);
    u.servers[1].active = 5;
    assert_int_equal(pick1(u, 1000), 0);
    u.servers[0].down = true;
    assert_int_equal(pick1(u, 1000), 2); // least loaded backup
}

// ---- ip_hash ------------------------------------------------------------------

void test_ip_hash_key(void **) {
    assert_int_equal(v4_key("10.1.2.3").size(), 3);
    assert_true(v4_key("10.1.2.3") == v4_key("10.1.2.250")); // one /24
    assert_false(v4_key("10.1.2.3") == v4_key("10.1.3.3"));
    sockaddr_storage ss{};
    auto *a6 = reinterpret_cast<sockaddr_in6 *>(&ss);
    a6->sin6_family = AF_INET6;
    inet_pton(AF_INET6, "2001:db8::1", &a6->sin6_addr);
    assert_int_equal(ip_hash_key(ss).size(), 16);
    sockaddr_storage un{};
    un.ss_family = AF_UNIX;
    assert_true(ip_hash_key(un) == std::string(3, '\0'));
}

void test_ip_hash_nginx_numbers(void **) {
    // nginx: hash = 89; hash = (hash * 113 + byte) % 6271 over 127.0.0
    // → 4040; 4040 % 3 = 2: the third of three equal servers
    Upstream u;
    build(u, {{}, {}, {}}, BalanceMethod::IpHash);
    assert_int_equal(pick1(u, 1000, v4_key("127.0.0.1")), 2);
}

void test_ip_hash_stable_and_spread(void **) {
    Upstream u;
    build(u, {{}, {}, {}}, BalanceMethod::IpHash);
    int count[3] = {};
    for (int net = 0; net < 3000; net++) {
        char addr[32];
        snprintf(addr, sizeof addr, "%d.%d.%d.7", 1 + net / 250, net % 250, (net * 7) % 256);
        std::string k = v4_key(addr);
        int first = pick1(u, 1000, k);
        assert_true(first >= 0);
        for (int again = 0; again < 3; again++)
            assert_int_equal(pick1(u, 1000, k), first);
        count[first]++;
    }
    for (int c : count)
        assert_in_range(c, 800, 1200);
}

void test_ip_hash_down_moves_only_its_clients(void **) {
    Upstream u;
    build(u, {{}, {}, {}}, BalanceMethod::IpHash);
    std::vector<int> before;
    for (int net = 0; net < 600; net++) {
        char addr[32];
        snprintf(addr, sizeof addr, "172.%d.%d.1", net / 200, net % 200);
        before.push_back(pick1(u, 1000, v4_key(addr)));
    }
    u.servers[1].down = true;
    for (int net = 0; net < 600; net++) {
        char addr[32];
        snprintf(addr, sizeof addr, "172.%d.%d.1", net / 200, net % 200);
        int now = pick1(u, 1000, v4_key(addr));
        assert_int_not_equal(now, 1);
        if (before[net] != 1) assert_int_equal(now, before[net]);
    }
}

void test_ip_hash_falls_back_to_round_robin(void **) {
    // every probe meets a failed server: after 20 the request goes
    // round-robin, which finds the one usable server
    Upstream u;
    build(u, {{}, {}, {}, {}}, BalanceMethod::IpHash);
    std::string k = v4_key("192.0.2.1");
    int owner = pick1(u, 1000, k);
    for (int i = 0; i < 4; i++)
        if (i != (owner + 1) % 4) u.servers[i].down = true;
    PickState st;
    st.key = k;
    UpstreamServer *s = u.balancer->pick(u, st, 1000);
    assert_ptr_equal(s, &u.servers[(owner + 1) % 4]);
    assert_null(u.balancer->pick(u, st, 1000)); // nothing left for a retry
    // nothing usable at all: 21 probes, then round-robin finds nothing either
    u.servers[(owner + 1) % 4].down = true;
    PickState none;
    none.key = k;
    assert_null(u.balancer->pick(u, none, 1000));
    assert_int_equal(none.tries, 21);
}

// ---- hash key [consistent] ------------------------------------------------------

void test_crc32(void **) {
    assert_int_equal(crc32("123456789"), 0xcbf43926u);
    assert_int_equal(crc32("6789", crc32("12345")), 0xcbf43926u); // composable
}

void test_hash_stable_and_spread(void **) {
    Upstream u;
    build(u, {{}, {}, {}}, BalanceMethod::Hash);
    int count[3] = {};
    for (int k = 0; k < 3000; k++) {
        std::string key = "/item/" + std::to_string(k);
        int first = pick1(u, 1000, key);
        assert_int_equal(pick1(u, 1000, key), first);
        count[first]++;
    }
    for (int c : count)
        assert_in_range(c, 800, 1200);
    // an empty key balances round-robin, as nginx
    int rr[3] = {};
    for (int i = 0; i < 30; i++)
        rr[pick1(u, 1000, "")]++;
    for (int c : rr)
        assert_int_equal(c, 10);
}

std::map<std::string, std::string> owners(Upstream &u, int nkeys) {
    std::map<std::string, std::string> m;
    for (int k = 0; k < nkeys; k++) {
        std::string key = "user" + std::to_string(k);
        int p = pick1(u, 1000, key);
        m[key] = u.servers[size_t(p)].server;
    }
    return m;
}

void test_consistent_adding_moves_about_1_over_n(void **) {
    const int kKeys = 20000;
    Upstream three, four;
    build(three, {{}, {}, {}}, BalanceMethod::ConsistentHash);
    build(four, {{}, {}, {}, {}}, BalanceMethod::ConsistentHash);
    auto before = owners(three, kKeys), after = owners(four, kKeys);
    int moved = 0;
    for (auto &[key, owner] : before)
        if (after[key] != owner) {
            moved++;
            // a key only ever moves to the new server
            assert_string_equal(after[key].c_str(), four.servers[3].server.c_str());
        }
    // 1/4 ideally; 160 points per server keep it close
    assert_in_range(moved, kKeys * 18 / 100, kKeys * 32 / 100);
    // plain hash, for contrast, moves most keys
    Upstream h3, h4;
    build(h3, {{}, {}, {}}, BalanceMethod::Hash);
    build(h4, {{}, {}, {}, {}}, BalanceMethod::Hash);
    auto hb = owners(h3, 2000), ha = owners(h4, 2000);
    int hmoved = 0;
    for (auto &[key, owner] : hb)
        hmoved += ha[key] != owner;
    assert_true(hmoved > 2000 / 2);
}

void test_consistent_down_moves_only_its_keys(void **) {
    Upstream u;
    build(u, {{}, {}, {}}, BalanceMethod::ConsistentHash);
    auto before = owners(u, 5000);
    u.servers[0].down = true;
    auto after = owners(u, 5000);
    for (auto &[key, owner] : before) {
        if (owner == u.servers[0].server)
            assert_string_not_equal(after[key].c_str(), owner.c_str());
        else
            assert_string_equal(after[key].c_str(), owner.c_str());
    }
}

void test_consistent_weight(void **) {
    Upstream u;
    build(u, {{.weight = 3}, {}}, BalanceMethod::ConsistentHash);
    auto m = owners(u, 8000);
    int heavy = 0;
    for (auto &[key, owner] : m)
        heavy += owner == u.servers[0].server;
    assert_in_range(heavy, 8000 * 65 / 100, 8000 * 85 / 100); // ~3/4
}

} // namespace

int main() {
    const CMUnitTest tests[] = {
        cmocka_unit_test(test_swrr_exact_over_1000),
        cmocka_unit_test(test_swrr_interleaves),
        cmocka_unit_test(test_backup_only_when_primaries_unusable),
        cmocka_unit_test(test_down_excluded),
        cmocka_unit_test(test_max_fails_and_recovery),
        cmocka_unit_test(test_fails_counted_within_fail_timeout),
        cmocka_unit_test(test_single_server_never_marked_down),
        cmocka_unit_test(test_failed_server_weight_recovers_gradually),
        cmocka_unit_test(test_least_conn_picks_least_loaded),
        cmocka_unit_test(test_least_conn_ties_round_robin),
        cmocka_unit_test(test_least_conn_backup),
        cmocka_unit_test(test_ip_hash_key),
        cmocka_unit_test(test_ip_hash_nginx_numbers),
        cmocka_unit_test(test_ip_hash_stable_and_spread),
        cmocka_unit_test(test_ip_hash_down_moves_only_its_clients),
        cmocka_unit_test(test_ip_hash_falls_back_to_round_robin),
        cmocka_unit_test(test_crc32),
        cmocka_unit_test(test_hash_stable_and_spread),
        cmocka_unit_test(test_consistent_adding_moves_about_1_over_n),
        cmocka_unit_test(test_consistent_down_moves_only_its_keys),
        cmocka_unit_test(test_consistent_weight),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
