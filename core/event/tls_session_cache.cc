#include "event/tls_session_cache.h"

#include <openssl/ssl.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <map>
#include <pthread.h>
#include <sys/mman.h>

namespace portico {
SSL_CTX *tls_session_ctx(SSL *ssl); // tls.cc: the context whose cache a connection uses

namespace {
// 256 bytes a session, nginx's "about 4000 sessions per megabyte". A server
// session (no client certificate) serializes to ~150 bytes in TLS 1.2 and
// 1.3; a bigger one (a long SNI name, a client certificate) is not cached.
constexpr size_t kSlotSize = 256;
constexpr size_t kIdMax = SSL_MAX_SSL_SESSION_ID_LENGTH; // 32

struct Slot {
    int64_t expire; // unix seconds; 0: free
    uint32_t next;  // next slot in the bucket's chain, index + 1 (0: end)
    uint16_t der_len;
    uint8_t id_len;
    uint8_t pad;
    unsigned char id[kIdMax];
    unsigned char der[kSlotSize - 48];
};
static_assert(sizeof(Slot) == kSlotSize);

// The mapping's start. Buckets hold slot index + 1 (0: empty); slots are
// taken in turn at `cursor`, so when the cache is full the oldest session
// goes (every session has the same lifetime, so it also expires first).
struct Header {
    pthread_mutex_t lock;
    uint32_t nslots, cursor;
    uint32_t buckets[]; // nslots of them, then the slots (aligned)
};

uint32_t hash_id(const unsigned char *id, size_t n) {
    uint32_t h = 2166136261u; // FNV-1a
    for (size_t i = 0; i < n; i++) h = (h ^ id[i]) * 16777619u;
    return h;
}
} // namespace

class SessionZone {
public:
    std::string name;
    int64_t size = 0;
    void *map = MAP_FAILED;
    Header *h = nullptr;
    Slot *slots = nullptr;

    ~SessionZone() {
        if (map != MAP_FAILED) munmap(map, size_t(size));
    }

    // Empties the table; also what a lock whose holder died leads to, as the
    // holder may have left a chain half linked.
    void clear() {
        h->cursor = 0;
        memset(h->buckets, 0, h->nslots * sizeof(uint32_t));
        for (uint32_t i = 0; i < h->nslots; i++) slots[i].expire = 0;
    }

    bool lock() {
        int r = pthread_mutex_lock(&h->lock);
        if (r == EOWNERDEAD) {
            clear();
            pthread_mutex_consistent(&h->lock);
            return true;
        }
        return r == 0;
    }
    void unlock() { pthread_mutex_unlock(&h->lock); }

    uint32_t *bucket(const unsigned char *id, size_t n) { return &h->buckets[hash_id(id, n) % h->nslots]; }

    // the slot holding `id`, or -1; `link` is where the chain points at it
    int64_t find(const unsigned char *id, size_t n, uint32_t **link) {
        uint32_t *l = bucket(id, n);
        while (*l) {
            Slot &s = slots[*l - 1];
            if (s.id_len == n && memcmp(s.id, id, n) == 0) {
                *link = l;
                return *l - 1;
            }
            l = &s.next;
        }
        return -1;
    }

    void remove(const unsigned char *id, size_t n) {
        uint32_t *link;
        int64_t i = find(id, n, &link);
        if (i < 0) return;
        *link = slots[i].next;
        slots[i].expire = 0;
    }

    void insert(const unsigned char *id, size_t n, const unsigned char *der, size_t len, int64_t expire) {
        remove(id, n);
        uint32_t i = h->cursor;
        h->cursor = (i + 1) % h->nslots;
        Slot &s = slots[i];
        if (s.expire) remove(s.id, s.id_len); // the oldest gives way
        s.expire = expire;
        s.id_len = uint8_t(n);
        memcpy(s.id, id, n);
        s.der_len = uint16_t(len);
        memcpy(s.der, der, len);
        uint32_t *b = bucket(id, n);
        s.next = *b;
        *b = i + 1;
    }

    // copies the live session's DER into `out` (sizeof Slot::der); its length or 0
    size_t get(const unsigned char *id, size_t n, unsigned char *out, int64_t now) {
        uint32_t *link;
        int64_t i = find(id, n, &link);
        if (i < 0) return 0;
        Slot &s = slots[i];
        if (s.expire <= now) {
            *link = s.next;
            s.expire = 0;
            return 0;
        }
        memcpy(out, s.der, s.der_len);
        return s.der_len;
    }
};

namespace {
int zone_index() {
    static int idx = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
    return idx;
}

SessionZone *zone_of(SSL_CTX *ctx) {
    return ctx ? static_cast<SessionZone *>(SSL_CTX_get_ex_data(ctx, zone_index())) : nullptr;
}

// OpenSSL hands every new server session here (after the handshake)
int on_new(SSL *ssl, SSL_SESSION *sess) {
    SessionZone *z = zone_of(tls_session_ctx(ssl));
    int len = i2d_SSL_SESSION(sess, nullptr);
    if (!z || len <= 0 || size_t(len) > sizeof(Slot::der)) return 0;
    unsigned char der[sizeof(Slot::der)], *p = der;
    if (i2d_SSL_SESSION(sess, &p) != len) return 0;
    unsigned int idlen;
    const unsigned char *id = SSL_SESSION_get_id(sess, &idlen);
    if (idlen == 0 || idlen > kIdMax) return 0;
    int64_t expire = int64_t(SSL_SESSION_get_time(sess)) + SSL_SESSION_get_timeout(sess);
    if (!z->lock()) return 0;
    z->insert(id, idlen, der, size_t(len), expire);
    z->unlock();
    return 0; // we keep no reference to `sess`
}

// a session ID (TLS 1.2) or a stateful ticket (TLS 1.3) to resume
SSL_SESSION *on_get(SSL *ssl, const unsigned char *id, int idlen, int *copy) {
    *copy = 0; // the session returned is OpenSSL's to free
    SessionZone *z = zone_of(tls_session_ctx(ssl));
    if (!z || idlen <= 0 || size_t(idlen) > kIdMax) return nullptr;
    unsigned char der[sizeof(Slot::der)];
    if (!z->lock()) return nullptr;
    size_t len = z->get(id, size_t(idlen), der, int64_t(time(nullptr)));
    z->unlock();
    const unsigned char *p = der;
    return len ? d2i_SSL_SESSION(nullptr, &p, long(len)) : nullptr;
}

// a session OpenSSL gave up (used once in TLS 1.3, a failed connection)
void on_remove(SSL_CTX *ctx, SSL_SESSION *sess) {
    SessionZone *z = zone_of(ctx);
    unsigned int idlen;
    const unsigned char *id = SSL_SESSION_get_id(sess, &idlen);
    if (!z || idlen == 0 || idlen > kIdMax || !z->lock()) return;
    z->remove(id, idlen);
    z->unlock();
}

// zones of the configurations alive in this process, by name: a reload
// naming one again with the same size gets the same memory
std::map<std::string, std::weak_ptr<SessionZone>> &registry() {
    static std::map<std::string, std::weak_ptr<SessionZone>> r;
    return r;
}
} // namespace

std::shared_ptr<SessionZone> session_zone(const std::string &name, int64_t size, std::string &err) {
    auto &reg = registry();
    auto it = reg.find(name);
    if (it != reg.end()) {
        if (auto z = it->second.lock(); z && z->size == size) return z;
    }
    size_t slots_at = 0;
    uint32_t n = 0;
    // the largest slot count whose buckets and aligned slots fit
    for (uint64_t guess = uint64_t(size) / (kSlotSize + 4); guess > 0; guess--) {
        size_t at = (sizeof(Header) + guess * 4 + 63) & ~size_t(63);
        if (at + guess * kSlotSize <= uint64_t(size)) {
            n = uint32_t(std::min<uint64_t>(guess, UINT32_MAX));
            slots_at = at;
            break;
        }
    }
    if (n < 8) {
        err = "the size " + std::to_string(size) + " of the session cache \"" + name + "\" is too small";
        return nullptr;
    }
    auto z = std::make_shared<SessionZone>();
    z->name = name;
    z->size = size;
    z->map = mmap(nullptr, size_t(size), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (z->map == MAP_FAILED) {
        err = "mmap(" + std::to_string(size) + ") for the session cache \"" + name + "\" failed: " + strerror(errno);
        return nullptr;
    }
    z->h = static_cast<Header *>(z->map);
    z->slots = reinterpret_cast<Slot *>(static_cast<char *>(z->map) + slots_at);
    z->h->nslots = n;
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST); // a worker killed holding it
    pthread_mutex_init(&z->h->lock, &a);
    pthread_mutexattr_destroy(&a);
    z->clear();
    reg[name] = z;
    return z;
}

const std::string &session_zone_name(const SessionZone &z) { return z.name; }
int64_t session_zone_size(const SessionZone &z) { return z.size; }

void session_zone_attach(SSL_CTX *ctx, SessionZone *z) {
    SSL_CTX_set_ex_data(ctx, zone_index(), z);
    SSL_CTX_sess_set_new_cb(ctx, on_new);
    SSL_CTX_sess_set_get_cb(ctx, on_get);
    SSL_CTX_sess_set_remove_cb(ctx, on_remove);
}

} // namespace portico
