// nginx's realip, in the core: the settings of http{} and server{} levels
// (a server without set_real_ip_from inherits the http{} list as a whole,
// nginx's array rule). Location-level settings are refused: the address is
// decided once, before the location is known.
#include "http/realip.h"

#include "config/directive.h"
#include "config/setters.h"
#include "http/request.h"
#include "log/error_log.h"

#include <arpa/inet.h>
#include <cstring>
#include <memory>
#include <strings.h>
#include <unordered_map>

namespace portico {
namespace {

struct RealipLevel {
    cgi::CidrSet trusted;
    bool trusted_set = false;
    std::string header; // "" unset → X-Real-IP
    int recursive = -1; // -1 unset
};

// One per configuration generation, owned by the cycle; found by its Cycle.
struct RealipTable {
    const Cycle *cycle = nullptr;
    RealipLevel http;
    std::unordered_map<const ServerConf *, RealipLevel> servers;
    ~RealipTable();
};

std::unordered_map<const Cycle *, RealipTable *> &tables() {
    static std::unordered_map<const Cycle *, RealipTable *> t;
    return t;
}

RealipTable::~RealipTable() {
    auto it = tables().find(cycle);
    if (it != tables().end() && it->second == this) tables().erase(it);
}

// No realip directive was ever read (the usual case): requests skip the
// table lookup.
bool g_any_table = false;

RealipTable *table_of(const Cycle *c, bool create, pt_conf *cf) {
    if (!create && !g_any_table) return nullptr;
    auto it = tables().find(c);
    if (it != tables().end()) return it->second;
    if (!create) return nullptr;
    auto t = std::make_shared<RealipTable>();
    g_any_table = true;
    t->cycle = c;
    tables()[c] = t.get();
    cf->cycle->owned.push_back(t);
    return t.get();
}

RealipLevel &level_of(pt_conf *cf) {
    RealipTable *t = table_of(cf->cycle, true, cf);
    if (cf->srv && (cf->ctx & PT_CTX_SERVER)) return t->servers[cf->srv];
    return t->http;
}

const RealipLevel *effective(const pt_request *r, RealipLevel &scratch) {
    RealipTable *t = table_of(r->cycle, false, nullptr);
    if (!t) return nullptr;
    const RealipLevel *s = nullptr;
    if (auto it = t->servers.find(r->srv); it != t->servers.end()) s = &it->second;
    if (!s) return &t->http;
    scratch = *s;
    if (!scratch.trusted_set) {
        scratch.trusted = t->http.trusted;
        scratch.trusted_set = t->http.trusted_set;
    }
    if (scratch.header.empty()) scratch.header = t->http.header;
    if (scratch.recursive < 0) scratch.recursive = t->http.recursive;
    return &scratch;
}

const char *set_from(pt_conf *cf, void *, const pt_str *a, size_t) {
    RealipLevel &l = level_of(cf);
    std::string err;
    if (!l.trusted.add(config::sv(a[1]), err)) return config::fmt_error("%s", err.c_str());
    l.trusted_set = true;
    return nullptr;
}

const char *set_header(pt_conf *cf, void *, const pt_str *a, size_t) {
    std::string_view v = config::sv(a[1]);
    if (v == "proxy_protocol") return "!real_ip_header proxy_protocol is not supported (no PROXY protocol listener)";
    level_of(cf).header.assign(v);
    return nullptr;
}

const char *set_recursive(pt_conf *cf, void *, const pt_str *a, size_t) {
    bool b;
    if (const char *e = config::parse_flag(config::sv(a[1]), b)) return e;
    level_of(cf).recursive = b;
    return nullptr;
}

constexpr uint32_t HS = PT_CTX_HTTP | PT_CTX_SERVER;
const pt_directive kDirectives[] = {
    {"set_real_ip_from", HS, PT_ARGS(1) | PT_ARGS_MULTI, PT_CONF_MAIN, set_from},
    {"real_ip_header", HS, PT_ARGS(1), PT_CONF_MAIN, set_header},
    {"real_ip_recursive", HS, PT_ARGS_FLAG, PT_CONF_MAIN, set_recursive},
    {nullptr, 0, 0, PT_CONF_MAIN, nullptr},
};

bool ieq(std::string_view a, std::string_view b) {
    return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

bool to_sockaddr(std::string_view text, int port, sockaddr_storage &out) {
    char buf[INET6_ADDRSTRLEN + 1];
    if (text.empty() || text.size() >= sizeof buf) return false;
    memcpy(buf, text.data(), text.size());
    buf[text.size()] = '\0';
    sockaddr_storage ss{};
    auto *in4 = reinterpret_cast<sockaddr_in *>(&ss);
    auto *in6 = reinterpret_cast<sockaddr_in6 *>(&ss);
    if (inet_pton(AF_INET, buf, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons(uint16_t(port));
    } else if (inet_pton(AF_INET6, buf, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(uint16_t(port));
    } else {
        return false;
    }
    out = ss;
    return true;
}

// What the request changed on its connection, put back when it ends.
struct Saved {
    Connection *c;
    std::string peer_addr;
    sockaddr_storage peer;
};

void restore(void *p) {
    auto *s = static_cast<Saved *>(p);
    s->c->peer_addr = std::move(s->peer_addr);
    s->c->peer = s->peer;
    delete s;
}
} // namespace

const pt_directive *realip_directives() { return kDirectives; }

const cgi::CidrSet *realip_trusted(const pt_request *r) {
    RealipLevel scratch;
    const RealipLevel *l = effective(r, scratch);
    if (!l || !l->trusted_set) return nullptr;
    // the table entry outlives the request; scratch does not
    RealipTable *t = table_of(r->cycle, false, nullptr);
    if (auto it = t->servers.find(r->srv); it != t->servers.end() && it->second.trusted_set)
        return &it->second.trusted;
    return &t->http.trusted;
}

std::string_view realip_original_peer(const pt_request *r) {
    for (auto &[fn, data] : r->cleanups)
        if (fn == restore) return static_cast<Saved *>(data)->peer_addr;
    return {};
}

void realip_apply(pt_request *r) {
    RealipLevel scratch;
    const RealipLevel *l = effective(r, scratch);
    if (!l || !l->trusted_set) return;
    Connection *c = r->c;
    if (!l->trusted.contains(c->peer_addr)) return;
    std::string_view name = l->header.empty() ? std::string_view("X-Real-IP") : l->header;
    // all lines of the field, joined: a list split over lines is one list
    std::string joined;
    for (const auto &h : r->head.headers)
        if (ieq(h.name, name)) {
            if (!joined.empty()) joined += ',';
            joined += h.value;
        }
    if (joined.empty()) return;
    std::string_view list = joined, chosen;
    // from the right: the last address, or with real_ip_recursive the first
    // one (walking left) that is not itself a trusted proxy
    while (true) {
        size_t comma = list.rfind(',');
        std::string_view item = trim(comma == std::string_view::npos ? list : list.substr(comma + 1));
        chosen = item;
        if (l->recursive != 1 || comma == std::string_view::npos || !l->trusted.contains(item)) break;
        list = list.substr(0, comma);
    }
    sockaddr_storage ss;
    if (!to_sockaddr(chosen, c->peer_port, ss)) {
        PT_LOG(log::Info, c->id, "realip: ignoring invalid address \"%.*s\" in \"%.*s\", client: %s",
               int(chosen.size()), chosen.data(), int(name.size()), name.data(),
               c->peer_addr.c_str());
        return;
    }
    auto *saved = new Saved{c, c->peer_addr, c->peer};
    r->cleanups.emplace_back(restore, saved);
    c->peer_addr.assign(chosen);
    c->peer = ss;
}
} // namespace portico
