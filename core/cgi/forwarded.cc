#include "cgi/forwarded.h"

#include "base/ascii.h"

#include <arpa/inet.h>

#include <cstring>

namespace portico::cgi {

namespace {

struct Address {
    bool v6 = false;
    std::array<std::uint8_t, 16> bytes{};
};

bool parse_address(std::string_view text, Address &out) {
    char buf[INET6_ADDRSTRLEN + 1];
    if (text.empty() || text.size() >= sizeof buf) return false;
    std::memcpy(buf, text.data(), text.size());
    buf[text.size()] = '\0';
    out = Address{};
    if (inet_pton(AF_INET, buf, out.bytes.data()) == 1) return true;
    if (inet_pton(AF_INET6, buf, out.bytes.data()) != 1) return false;
    static constexpr std::uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(out.bytes.data(), mapped, sizeof mapped) == 0) {
        // ::ffff:a.b.c.d is an IPv4 peer on a dual-stack socket.
        std::memmove(out.bytes.data(), out.bytes.data() + 12, 4);
        std::memset(out.bytes.data() + 4, 0, 12);
        return true;
    }
    out.v6 = true;
    return true;
}

bool prefix_equal(const std::array<std::uint8_t, 16> &a, const std::array<std::uint8_t, 16> &b,
                  unsigned prefix) {
    unsigned full = prefix / 8, rest = prefix % 8;
    if (std::memcmp(a.data(), b.data(), full) != 0) return false;
    if (rest == 0) return true;
    auto mask = static_cast<std::uint8_t>(0xff << (8 - rest));
    return (a[full] & mask) == (b[full] & mask);
}

void clear_host_bits(std::array<std::uint8_t, 16> &bytes, unsigned prefix) {
    for (unsigned bit = prefix; bit < 128; ++bit)
        bytes[bit / 8] &= static_cast<std::uint8_t>(~(0x80u >> (bit % 8)));
}

bool is_token(std::string_view s) {
    return ascii::is_token(s);
}

// Inside an RFC 9110 quoted-string, '"' and '\' need a quoted-pair.
void append_quoted_content(std::string_view s, std::string &out) {
    for (char c : s) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
}

void append_joined(const CgiInput &in, std::string_view name, std::string &out) {
    bool first = true;
    for (const HeaderView &h : in.headers) {
        if (!ascii::iequals(h.name, name) || h.value.empty()) continue;
        if (!first) out += ", ";
        out += h.value;
        first = false;
    }
}

bool has_header(const CgiInput &in, std::string_view name) {
    for (const HeaderView &h : in.headers)
        if (ascii::iequals(h.name, name) && !h.value.empty()) return true;
    return false;
}

} // namespace

bool CidrSet::add(std::string_view cidr, std::string &err) {
    if (cidr == "unix:") {
        unix_ = true;
        return true;
    }
    std::string_view addr = cidr;
    std::size_t slash = cidr.find('/');
    Net net;
    Address parsed;
    if (slash != std::string_view::npos) addr = cidr.substr(0, slash);
    if (!parse_address(addr, parsed)) {
        err = "invalid address \"" + std::string(cidr) + "\"";
        return false;
    }
    net.v6 = parsed.v6;
    net.bytes = parsed.bytes;
    unsigned max = net.v6 ? 128 : 32;
    net.prefix = max;
    if (slash != std::string_view::npos) {
        std::string_view bits = cidr.substr(slash + 1);
        unsigned value = 0;
        if (bits.empty() || bits.size() > 3) value = max + 1;
        for (char c : bits)
            value = ascii::is_digit(c) ? value * 10 + unsigned(c - '0') : max + 1;
        if (value > max) {
            err = "invalid prefix length in \"" + std::string(cidr) + "\"";
            return false;
        }
        net.prefix = value;
    }
    clear_host_bits(net.bytes, net.prefix);
    nets_.push_back(net);
    return true;
}

bool CidrSet::contains(std::string_view addr) const {
    if (addr.starts_with("unix:")) return unix_;
    Address a;
    if (!parse_address(addr, a)) return false;
    for (const Net &net : nets_)
        if (net.v6 == a.v6 && prefix_equal(net.bytes, a.bytes, net.prefix)) return true;
    return false;
}

std::string_view direct_peer(const CgiInput &in) {
    return in.peer_addr.empty() ? in.remote_addr : in.peer_addr;
}

void append_x_forwarded_for(const CgiInput &in, const CidrSet &trusted, std::string &out) {
    std::string_view peer = direct_peer(in);
    if (trusted.contains(peer) && has_header(in, "x-forwarded-for")) {
        append_joined(in, "x-forwarded-for", out);
        out += ", ";
    }
    out += peer;
}

void append_x_forwarded_host(const CgiInput &in, std::string &out) {
    out += in.host;
    if (!in.request_port.empty()) {
        out += ':';
        out += in.request_port;
    }
}

void append_forwarded_node(std::string_view addr, std::string_view port, std::string &out) {
    if (addr.empty() || addr.starts_with("unix:")) {
        out += "unknown";
        return;
    }
    bool v6 = addr.find(':') != std::string_view::npos;
    if (!v6 && port.empty()) {
        out += addr;
        return;
    }
    // ':' and '[' are not tchar: such nodes must be quoted-strings.
    out += '"';
    if (v6) out += '[';
    out += addr;
    if (v6) out += ']';
    if (!port.empty()) {
        out += ':';
        out += port;
    }
    out += '"';
}

void append_forwarded(const CgiInput &in, const CidrSet &trusted, const ForwardedOptions &options,
                      std::string &out) {
    std::string_view peer = direct_peer(in);
    if (trusted.contains(peer) && has_header(in, "forwarded")) {
        append_joined(in, "forwarded", out);
        out += ", ";
    }
    out += "for=";
    std::string_view port = options.include_port ? in.remote_port : "";
    append_forwarded_node(peer, port, out);
    if (!options.by.empty()) {
        out += ";by=";
        append_forwarded_node(options.by, "", out);
    }
    if (!in.host.empty()) {
        out += ";host=";
        if (in.request_port.empty() && is_token(in.host)) {
            out += in.host;
        } else {
            // host:port (':' is not tchar) or an IPv6 literal: a quoted-string
            out += '"';
            append_quoted_content(in.host, out);
            if (!in.request_port.empty()) {
                out += ':';
                append_quoted_content(in.request_port, out);
            }
            out += '"';
        }
    }
    out += ";proto=";
    out += x_forwarded_proto(in);
}

} // namespace portico::cgi
