// ip_hash, hash key, hash key consistent. nginx:
// ngx_http_upstream_ip_hash_module.c and ngx_http_upstream_hash_module.c,
// followed number for number so that a group moved from nginx sends each
// client and key to the same server it did there. All three walk only the
// primaries (backup is refused with these methods at config time) and fall
// back to round-robin after 20 probes that met unusable servers.
#include "upstream/balancer.h"

#include "upstream/upstream.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <netinet/in.h>
#include <strings.h>

namespace portico {
namespace {

constexpr unsigned kMaxProbes = 20;
constexpr int kPointsPerWeight = 160; // Cache::Memcached::Fast, as nginx

constexpr std::array<uint32_t, 256> make_crc_table() {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
        t[i] = c;
    }
    return t;
}
constexpr auto kCrcTable = make_crc_table();

bool was_tried(const PickState &st, size_t i) {
    return st.tried(i);
}

int total_primary_weight(const Upstream &u, size_t &primaries) {
    // down servers count: marking one down must not move every other key
    // (nginx's advice for taking an ip_hash server out)
    int total = 0;
    primaries = 0;
    for (const auto &s : u.servers)
        if (!s.backup) {
            total += s.weight;
            primaries++;
        }
    return total;
}

// The server owning weight unit w of the primaries, in config order.
size_t by_weight(const Upstream &u, uint32_t w) {
    for (size_t i = 0; i < u.servers.size(); i++) {
        if (u.servers[i].backup) continue;
        if (w < uint32_t(u.servers[i].weight)) return i;
        w -= uint32_t(u.servers[i].weight);
    }
    return 0; // unreachable: w < total weight
}

class IpHash final : public Balancer {
  public:
    const char *name() const override { return "ip_hash"; }
    UpstreamServer *pick(Upstream &u, PickState &st, int64_t now) const override {
        size_t primaries;
        int total = total_primary_weight(u, primaries);
        if (st.tries > kMaxProbes || primaries < 2 || total <= 0)
            return pick_round_robin(u, st, now);
        if (!st.positioned) {
            st.hash = 89;
            st.positioned = true;
        }
        uint32_t hash = st.hash;
        for (;;) {
            for (unsigned char b : st.key)
                hash = (hash * 113 + b) % 6271;
            size_t i = by_weight(u, hash % uint32_t(total));
            if (!was_tried(st, i) && usable(u.servers[i], now)) {
                st.hash = hash;
                return take(u, st, i, now);
            }
            if (++st.tries > kMaxProbes) return pick_round_robin(u, st, now);
        }
    }
};

class Hash final : public Balancer {
  public:
    const char *name() const override { return "hash"; }
    UpstreamServer *pick(Upstream &u, PickState &st, int64_t now) const override {
        size_t primaries;
        int total = total_primary_weight(u, primaries);
        if (st.tries > kMaxProbes || primaries < 2 || total <= 0 || st.key.empty())
            return pick_round_robin(u, st, now);
        for (;;) {
            // compatible with Cache::Memcached:
            // ((crc32([REHASH] KEY) >> 16) & 0x7fff) + PREV_HASH
            uint32_t crc = 0;
            if (st.rehash > 0) crc = crc32(std::to_string(st.rehash), crc);
            crc = crc32(st.key, crc);
            st.hash += (crc >> 16) & 0x7fff;
            st.rehash++;
            size_t i = by_weight(u, st.hash % uint32_t(total));
            if (!was_tried(st, i) && usable(u.servers[i], now)) return take(u, st, i, now);
            if (++st.tries > kMaxProbes) return pick_round_robin(u, st, now);
        }
    }
};

// Ketama: weight × 160 points per server on a 32-bit ring; a key goes to the
// first point at or after crc32(key). Adding a server takes over only the
// arcs its points land on, about 1/N of the keys; removing one moves only
// its own keys.
class ConsistentHash final : public Balancer {
    struct Point {
        uint32_t hash;
        size_t server; // index; entries sharing its `server` text share the point
    };
    std::vector<Point> ring_;

  public:
    const char *name() const override { return "hash consistent"; }

    void prepare(const Upstream &u) override {
        ring_.clear();
        for (size_t i = 0; i < u.servers.size(); i++) {
            const UpstreamServer &s = u.servers[i];
            if (s.backup) continue;
            // compatible with Cache::Memcached::Fast: crc32(HOST \0 PORT PREV_HASH)
            std::string_view text = s.server, host = text, port;
            if (text.size() >= 5 && strncasecmp(text.data(), "unix:", 5) == 0) {
                host = text.substr(5);
            } else {
                size_t j = text.size();
                while (j > 0 && text[j - 1] >= '0' && text[j - 1] <= '9')
                    j--;
                if (j > 0 && j < text.size() && text[j - 1] == ':') {
                    host = text.substr(0, j - 1);
                    port = text.substr(j);
                }
            }
            uint32_t base = crc32(port, crc32(std::string_view("\0", 1), crc32(host)));
            uint32_t prev = 0;
            for (int k = 0; k < s.weight * kPointsPerWeight; k++) {
                unsigned char le[4] = {uint8_t(prev), uint8_t(prev >> 8), uint8_t(prev >> 16),
                                       uint8_t(prev >> 24)};
                prev = crc32(std::string_view(reinterpret_cast<char *>(le), 4), base);
                ring_.push_back({prev, i});
            }
        }
        std::stable_sort(ring_.begin(), ring_.end(),
                         [](const Point &a, const Point &b) { return a.hash < b.hash; });
        ring_.erase(std::unique(ring_.begin(), ring_.end(),
                                [](const Point &a, const Point &b) { return a.hash == b.hash; }),
                    ring_.end());
    }

    UpstreamServer *pick(Upstream &u, PickState &st, int64_t now) const override {
        if (st.tries > kMaxProbes || single_server(u) || st.key.empty() || ring_.empty())
            return pick_round_robin(u, st, now);
        if (!st.positioned) {
            uint32_t h = crc32(st.key);
            auto it = std::lower_bound(ring_.begin(), ring_.end(), h,
                                       [](const Point &p, uint32_t v) { return p.hash < v; });
            st.hash = uint32_t(it - ring_.begin()); // == size wraps to 0 below
            st.positioned = true;
        }
        for (;;) {
            const std::string &owner = u.servers[ring_[st.hash % ring_.size()].server].server;
            if (UpstreamServer *s = pick_weighted(u, st, false, &owner, now)) return s;
            st.hash++;
            if (++st.tries > kMaxProbes) return pick_round_robin(u, st, now);
        }
    }
};
} // namespace

uint32_t crc32(std::string_view data, uint32_t crc) {
    crc = ~crc;
    for (unsigned char c : data)
        crc = kCrcTable[(crc ^ c) & 0xff] ^ (crc >> 8);
    return ~crc;
}

std::string ip_hash_key(const sockaddr_storage &peer) {
    if (peer.ss_family == AF_INET) {
        const auto *a = reinterpret_cast<const sockaddr_in *>(&peer);
        return std::string(reinterpret_cast<const char *>(&a->sin_addr.s_addr), 3);
    }
    if (peer.ss_family == AF_INET6) {
        const auto *a = reinterpret_cast<const sockaddr_in6 *>(&peer);
        return std::string(reinterpret_cast<const char *>(a->sin6_addr.s6_addr), 16);
    }
    return std::string(3, '\0');
}

std::unique_ptr<Balancer> make_ip_hash() {
    return std::make_unique<IpHash>();
}
std::unique_ptr<Balancer> make_hash(bool consistent) {
    if (consistent) return std::make_unique<ConsistentHash>();
    return std::make_unique<Hash>();
}

} // namespace portico
