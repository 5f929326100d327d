#pragma once
// set_real_ip_from / real_ip_header / real_ip_recursive (nginx's realip, as
// core directives): when the TCP peer is a trusted proxy, $remote_addr (and
// the address allow/deny see) becomes the client address the proxy reports.
// The change lasts for one request: the connection's own address comes back
// when the request ends, so a keep-alive connection re-decides per request.
#include <portico/module.h>

#include "cgi/forwarded.h"

#include <string_view>

namespace portico {
const pt_directive *realip_directives();
// Call after the server is known (start_request): applies the server's settings.
void realip_apply(pt_request *r);
// The trusted set of r's server, nullptr when set_real_ip_from is not configured.
const cgi::CidrSet *realip_trusted(const pt_request *r);
// The TCP peer before realip replaced $remote_addr ("" when it did not).
std::string_view realip_original_peer(const pt_request *r);
} // namespace portico
