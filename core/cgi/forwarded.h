// What an HTTP backend is told about the client: X-Forwarded-For/-Proto/
// -Host, X-Real-IP and RFC 7239 Forwarded, computed from the same CgiInput
// the FastCGI side uses. The proxy module sets them through proxy_set_header
// (the lead exposes them as variables) or all at once.
#pragma once

#include "cgi/cgi_input.h"

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace portico::cgi {

// Addresses or networks we trust to tell the truth about a client, written
// as set_real_ip_from takes them: "192.0.2.1", "10.0.0.0/8", "2001:db8::/32",
// "unix:". IPv4-mapped IPv6 peers (::ffff:a.b.c.d) match IPv4 entries.
class CidrSet {
  public:
    // Host bits under the prefix are cleared (nginx warns and does the same).
    bool add(std::string_view cidr, std::string &err);
    bool contains(std::string_view addr) const; // textual, as in $remote_addr
    bool empty() const { return nets_.empty() && !unix_; }

  private:
    struct Net {
        bool v6 = false;
        std::array<std::uint8_t, 16> bytes{};
        unsigned prefix = 0;
    };
    std::vector<Net> nets_;
    bool unix_ = false;
};

// The direct TCP peer of the request: peer_addr, or remote_addr when unset.
std::string_view direct_peer(const CgiInput &in);

// X-Forwarded-For: the incoming chain (all X-Forwarded-For lines, joined) plus
// ", " + the peer, kept only when the peer is trusted; otherwise just the
// peer. Unlike nginx's $proxy_add_x_forwarded_for, which appends to whatever
// the client wrote, a forged chain from an untrusted client is never passed on.
void append_x_forwarded_for(const CgiInput &in, const CidrSet &trusted, std::string &out);

inline std::string_view x_forwarded_proto(const CgiInput &in) {
    return in.https ? "https" : "http";
}
// The authority the client asked for: $host$is_request_port$request_port.
void append_x_forwarded_host(const CgiInput &in, std::string &out);
inline std::string_view x_real_ip(const CgiInput &in) {
    return in.remote_addr;
}

struct ForwardedOptions {
    bool include_port = false; // for="192.0.2.1:4711" instead of for=192.0.2.1
    std::string_view by;       // our own address for by=, "" to leave it out
};

// RFC 7239 Forwarded: incoming elements when the peer is trusted, then ours:
// for=<peer>;[by=<by>;]host=<authority>;proto=<scheme>. IPv6 nodes are
// bracketed and quoted, nodes with ports quoted (section 6), a unix-socket
// peer is "unknown" (6.3), host is quoted when it is not a token.
void append_forwarded(const CgiInput &in, const CidrSet &trusted, const ForwardedOptions &options,
                      std::string &out);

// One RFC 7239 node: addr[:port], bracketed and quoted as section 6 requires.
void append_forwarded_node(std::string_view addr, std::string_view port, std::string &out);

} // namespace portico::cgi
