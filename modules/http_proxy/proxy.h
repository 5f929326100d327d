#pragma once
// proxy_pass: the location settings shared by the directives (module.cc),
// the request serializer (request_writer.cc), the response head
// (response_head.cc) and the per-request state machine (stream.cc).
#include <portico/module.h>

#include <cstdint>
#include <string>
#include <string_view>

// OpenSSL's context, named without including OpenSSL here
extern "C" typedef struct ssl_ctx_st SSL_CTX;

namespace portico::proxy {

extern const pt_host *H;
extern const pt_module *g_module;

inline std::string_view sv(pt_str s) { return {s.data ? s.data : "", s.len}; }
inline pt_str ps(std::string_view s) { return {s.data(), s.size()}; }
// ASCII case-insensitive equality; inline, as it runs per header field
inline bool ieq(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); i++) {
        unsigned char x = static_cast<unsigned char>(a[i]), y = static_cast<unsigned char>(b[i]);
        if (x == y) continue;
        if ((x | 0x20) != (y | 0x20) || (x | 0x20) < 'a' || (x | 0x20) > 'z') return false;
    }
    return true;
}

struct SetHeader {
    pt_str name;
    pt_value *value; // an empty result removes the header
    // the value when it has no variable (found at load, so the common
    // Host/Connection lines cost no evaluation per request); is_literal = 0:
    // evaluate `value`
    int is_literal;
    pt_str literal;
};

// Every upstream a literal proxy_pass of this configuration named, by the
// name it was written with: a proxy_pass with variables finds its target
// here at request time (the ABI has no lookup of an upstream{} by name), so
// it shares that upstream's balancing and keep-alive pool.
struct ProxyMain {
    enum { kMaxKnown = 512 };
    struct Known {
        pt_str name;
        pt_upstream *upstream;
    } known[kMaxKnown];
    int nknown;
};

struct Redirect {
    pt_str from;     // literal prefix of Location / Refresh
    pt_value *to;
};

// Location settings; plain data: the host allocates and zeroes it. -1: unset.
struct ProxyConf {
    ProxyMain *main;
    pt_upstream *upstream;  // literal proxy_pass
    pt_value *pass_value;   // proxy_pass with variables: the URL after the scheme
    int ssl;                // https://
    int has_uri;        // proxy_pass has a URI part (even "/")
    pt_str uri_part;    // that part
    pt_str url;         // "http://host:port" (without the URI part)
    pt_str proxy_host;  // $proxy_host: Host sent by default
    pt_str proxy_port;  // $proxy_port
    int http_version;   // 10 | 11
    enum { kMaxSet = 48, kMaxNames = 32, kMaxRedirects = 16 };
    SetHeader user[kMaxSet]; // proxy_set_header of this level (or inherited)
    int nuser;               // -1 unset (inherit)
    SetHeader set[kMaxSet + 2]; // the effective list: user's + defaults (merge)
    int nset;
    pt_str hide[kMaxNames];
    int nhide;
    pt_str pass[kMaxNames];
    int npass;
    Redirect redirects[kMaxRedirects];
    int nredirects;
    int redirect_mode;  // -1 unset, 0 off, 1 default (+ explicit list)
    int redirect_default;
    int pass_request_headers, pass_request_body, intercept_errors, ignore_client_abort;
    int64_t connect_timeout, send_timeout, read_timeout, buffer_size;
    pt_value *set_body;
    pt_value *method;
    // proxy_ssl_* (tls_client.cc); -1 / null data: unset
    int ssl_verify, ssl_verify_depth, ssl_server_name, ssl_session_reuse;
    int ssl_protocols; // bit mask of kProto*
    pt_str ssl_trusted_certificate, ssl_ciphers, ssl_certificate, ssl_certificate_key;
    pt_value *ssl_name;
    SSL_CTX *ssl_ctx; // the client context of an https:// location
};

struct PassTarget;

// proxy_pass with variables: $proxy_host / $proxy_port of r (false: none yet)
bool dynamic_proxy_var(pt_request *r, bool port, pt_str *out);

int handler(pt_request *r, void *loc_conf);

// request_writer.cc: the request line + headers + body for the upstream;
// 0 or an HTTP status (logged).
int build_request(pt_request *r, const ProxyConf *c, const PassTarget *dynamic, std::string &out);
bool idempotent(std::string_view method);

// response_head.cc: status and headers of the upstream's response head as
// ours (framing, hop-by-hop and hidden fields dropped, proxy_redirect applied).
void apply_response_head(pt_request *r, const ProxyConf *c, const pt_http_response &resp);

} // namespace portico::proxy
