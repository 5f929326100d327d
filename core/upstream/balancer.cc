// Smooth weighted round-robin, the passive-health rules every method shares,
// and the method factory. nginx: ngx_http_upstream_round_robin.c.
#include "upstream/balancer.h"

#include "upstream/upstream.h"

namespace portico {

std::unique_ptr<Balancer> make_least_conn();          // balancer_least_conn.cc
std::unique_ptr<Balancer> make_ip_hash();             // balancer_hash.cc
std::unique_ptr<Balancer> make_hash(bool consistent); // balancer_hash.cc

bool single_server(const Upstream &u) {
    return u.servers.size() == 1;
}

bool usable(const UpstreamServer &s, int64_t now) {
    if (s.down) return false;
    if (s.max_fails && s.fails >= s.max_fails && now - s.checked_ms <= s.fail_timeout_ms)
        return false;
    if (s.max_conns && s.active >= s.max_conns) return false;
    return true;
}

UpstreamServer *take(Upstream &u, PickState &st, size_t i, int64_t now) {
    UpstreamServer &s = u.servers[i];
    st.mark_tried(i);
    // after fail_timeout a failed server gets one request as a probe; this
    // opens a new window, and success inside it clears the failures (report)
    if (now - s.checked_ms > s.fail_timeout_ms) s.checked_ms = now;
    return &s;
}

namespace {
bool was_tried(const PickState &st, size_t i) {
    return st.tried(i);
}

} // namespace

// One pass of smooth WRR (Nginx's 2012 algorithm): every usable server gains
// its effective weight, the richest wins and pays the total. Over any window
// of sum(weights) picks each server gets exactly its weight, interleaved
// (5:1:1 → a a b a c a a), not in bursts.
UpstreamServer *pick_weighted(Upstream &u, PickState &st, bool backup, const std::string *name,
                              int64_t now) {
    UpstreamServer *best = nullptr;
    size_t best_i = 0;
    int total = 0;
    for (size_t i = 0; i < u.servers.size(); i++) {
        UpstreamServer &s = u.servers[i];
        if (s.backup != backup || (name && s.server != *name) || was_tried(st, i) || !usable(s, now))
            continue;
        s.current_weight += s.effective_weight;
        total += s.effective_weight;
        // a server that failed recovers its weight one step per pick
        if (s.effective_weight < s.weight) s.effective_weight++;
        if (!best || s.current_weight > best->current_weight) {
            best = &s;
            best_i = i;
        }
    }
    if (!best) return nullptr;
    best->current_weight -= total;
    return take(u, st, best_i, now);
}

namespace {
class RoundRobin final : public Balancer {
  public:
    const char *name() const override { return "round-robin"; }
    UpstreamServer *pick(Upstream &u, PickState &st, int64_t now) const override {
        return pick_round_robin(u, st, now);
    }
};
} // namespace

UpstreamServer *pick_round_robin(Upstream &u, PickState &st, int64_t now) {
    if (single_server(u)) {
        // failures are not held against it (single_server), down and
        // max_conns still are
        UpstreamServer &s = u.servers[0];
        if (was_tried(st, 0) || s.down || (s.max_conns && s.active >= s.max_conns)) return nullptr;
        return take(u, st, 0, now);
    }
    if (UpstreamServer *s = pick_weighted(u, st, false, nullptr, now)) return s;
    return pick_weighted(u, st, true, nullptr, now);
}

bool report(Upstream &u, UpstreamServer &s, bool failed, int64_t now) {
    if (single_server(u)) return false;
    if (!failed) {
        // a success after the window reopened (take) proves it alive again;
        // one inside the window leaves the count: max_fails is counted
        // within fail_timeout, as nginx
        if (s.accessed_ms < s.checked_ms) s.fails = 0;
        return false;
    }
    s.fails++;
    s.accessed_ms = s.checked_ms = now;
    bool disabled = false;
    if (s.max_fails) {
        // traffic backs off gradually before the server is cut off
        s.effective_weight -= s.weight / s.max_fails;
        disabled = s.fails >= s.max_fails;
    }
    if (s.effective_weight < 0) s.effective_weight = 0;
    return disabled;
}

std::unique_ptr<Balancer> make_balancer(BalanceMethod m) {
    switch (m) {
    case BalanceMethod::LeastConn:
        return make_least_conn();
    case BalanceMethod::IpHash:
        return make_ip_hash();
    case BalanceMethod::Hash:
        return make_hash(false);
    case BalanceMethod::ConsistentHash:
        return make_hash(true);
    case BalanceMethod::RoundRobin:
        break;
    }
    return std::make_unique<RoundRobin>();
}

} // namespace portico
