// least_conn: the server with the fewest active connections relative to its
// weight; ties are broken by smooth weighted round-robin among the tied, so
// an idle group still spreads by weight. nginx:
// ngx_http_upstream_least_conn_module.c (backups only when no primary is
// usable, then least_conn among the backups).
#include "upstream/balancer.h"

#include "upstream/upstream.h"

namespace portico {
namespace {

bool candidate(const Upstream &u, const PickState &st, size_t i, bool backup, int64_t now) {
    const UpstreamServer &s = u.servers[i];
    return s.backup == backup && !st.tried(i) && usable(s, now);
}

UpstreamServer *least_conn(Upstream &u, PickState &st, bool backup, int64_t now) {
    UpstreamServer *best = nullptr;
    size_t best_i = 0;
    bool many = false;
    for (size_t i = 0; i < u.servers.size(); i++) {
        if (!candidate(u, st, i, backup, now)) continue;
        UpstreamServer &s = u.servers[i];
        // active/weight compared without division: a/w < b/v ⇔ a·v < b·w
        if (!best || int64_t(s.active) * best->weight < int64_t(best->active) * s.weight) {
            best = &s;
            best_i = i;
            many = false;
        } else if (int64_t(s.active) * best->weight == int64_t(best->active) * s.weight) {
            many = true;
        }
    }
    if (!best) return nullptr;
    if (many) {
        UpstreamServer *first = best;
        int total = 0;
        for (size_t i = best_i; i < u.servers.size(); i++) {
            if (!candidate(u, st, i, backup, now)) continue;
            UpstreamServer &s = u.servers[i];
            if (int64_t(s.active) * first->weight != int64_t(first->active) * s.weight) continue;
            s.current_weight += s.effective_weight;
            total += s.effective_weight;
            if (s.effective_weight < s.weight) s.effective_weight++;
            if (s.current_weight > best->current_weight) {
                best = &s;
                best_i = i;
            }
        }
        best->current_weight -= total;
    }
    return take(u, st, best_i, now);
}

class LeastConn final : public Balancer {
  public:
    const char *name() const override { return "least_conn"; }
    UpstreamServer *pick(Upstream &u, PickState &st, int64_t now) const override {
        if (single_server(u)) return pick_round_robin(u, st, now);
        if (UpstreamServer *s = least_conn(u, st, false, now)) return s;
        return least_conn(u, st, true, now);
    }
};
} // namespace

std::unique_ptr<Balancer> make_least_conn() {
    return std::make_unique<LeastConn>();
}

} // namespace portico
