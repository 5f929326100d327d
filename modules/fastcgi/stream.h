#pragma once
// One request's round trip to a FastCGI backend: connect (through the
// host's upstream layer), BEGIN_REQUEST + PARAMS + STDIN out, STDOUT /
// STDERR / END_REQUEST in, full duplex, the CGI head turned into our
// response head, the body streamed to the client.
#include <portico/module.h>

#include <cstdint>

namespace portico::fastcgi {

extern const pt_host *H;
extern const pt_module *g_module;

// Location settings; plain data: the host allocates and zeroes it.
struct FcgiConf {
    pt_cgi *cgi;
    pt_upstream *upstream;
    int keep_conn;            // -1 unset
    int pass_request_body;    // -1 unset
    int intercept_errors;     // -1 unset
    int ignore_client_abort;  // -1 unset
    int64_t connect_timeout;  // ms, -1 unset
    int64_t send_timeout;
    int64_t read_timeout;
    int64_t buffer_size;
    enum { kMaxNames = 16 };
    pt_str hide[kMaxNames];
    int nhide;
    pt_str pass[kMaxNames];
    int npass;
};

int handler(pt_request *r, void *loc_conf);

} // namespace portico::fastcgi
