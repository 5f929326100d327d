#pragma once
// Choosing a server of an upstream group for one attempt of one request.
//
// A balancer is a pure function over the server table, the per-request
// PickState and a clock value: no sockets, no event loop, no global clock,
// so t/unit/core/upstream/test_balancer.cc drives it directly. The rules are
// nginx's (ngx_http_upstream_round_robin.c, _least_conn_, _ip_hash_,
// _hash_module.c) so a config moved from nginx spreads load the same way.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <sys/socket.h>
#include <vector>

namespace portico {
struct Upstream;
struct UpstreamServer;

// Per request, across every attempt (nginx's peer data): servers already
// tried are not picked again; the hash methods carry their progress so a
// retry continues the same probe sequence instead of restarting it.
struct PickState {
    // servers tried, by index into Upstream::servers: the first 64 in a
    // word (no allocation per request), any further ones in `more`
    uint64_t tried_low = 0;
    std::vector<bool> more;
    bool tried(size_t i) const {
        return i < 64 ? (tried_low >> i) & 1 : i - 64 < more.size() && more[i - 64];
    }
    void mark_tried(size_t i) {
        if (i < 64) {
            tried_low |= uint64_t(1) << i;
            return;
        }
        if (more.size() <= i - 64) more.resize(i - 63);
        more[i - 64] = true;
    }
    std::string key;         // hash: the evaluated key; ip_hash: address bytes
    uint32_t hash = 0;       // ip_hash: running hash; hash: sum; consistent: ring position
    unsigned tries = 0;      // hash probes that missed (fallback after 20)
    unsigned rehash = 0;     // hash: the Cache::Memcached rehash counter
    bool positioned = false; // consistent: `hash` holds the ring position
};

class Balancer {
  public:
    virtual ~Balancer() = default;
    virtual const char *name() const = 0;
    // Config time, once the server list is complete (the consistent ring).
    virtual void prepare(const Upstream &) {}
    // nullptr: no usable server (every one tried, down, failed or at max_conns).
    virtual UpstreamServer *pick(Upstream &u, PickState &st, int64_t now_ms) const = 0;
};

enum class BalanceMethod { RoundRobin, LeastConn, IpHash, Hash, ConsistentHash };
std::unique_ptr<Balancer> make_balancer(BalanceMethod m);

// ---- shared rules (balancer.cc) ---------------------------------------------

// nginx never holds failures against the only server of a group
// (peers->single): there is nowhere else to go, and refusing it for
// fail_timeout turns a backend that restarted in a second into 10 s of 502s.
bool single_server(const Upstream &u);
// down, failed within fail_timeout, or at max_conns
bool usable(const UpstreamServer &s, int64_t now_ms);
// Smooth weighted round-robin over the primaries, then over the backups when
// no primary is usable. The fallback of every other method.
UpstreamServer *pick_round_robin(Upstream &u, PickState &st, int64_t now_ms);
// One smooth weighted round-robin pick among the usable, untried servers of
// one kind (primary or backup), optionally only the addresses of one
// `server` name (consistent hash: a name's addresses share its ring points).
UpstreamServer *pick_weighted(Upstream &u, PickState &st, bool backup, const std::string *name,
                              int64_t now_ms);
// Bookkeeping for a server a method chose (tried bit, fail_timeout probe).
UpstreamServer *take(Upstream &u, PickState &st, size_t index, int64_t now_ms);
// Passive health: the outcome of an attempt on s. Returns true when this
// failure disabled the server (max_fails reached), for the caller's log line.
bool report(Upstream &u, UpstreamServer &s, bool failed, int64_t now_ms);

// ---- hash methods (balancer_hash.cc) ------------------------------------------

// ip_hash key: the first three octets of IPv4 (a /24 stays on one server,
// as nginx), all 16 of IPv6, three zero bytes for anything else (unix:).
std::string ip_hash_key(const sockaddr_storage &peer);
uint32_t crc32(std::string_view data, uint32_t crc = 0); // IEEE, as ngx_crc32

} // namespace portico
