#pragma once
// The response filter chain: header filters (PT_PHASE_HEADER_FILTER) run
// once before the head is written; body filters see every body piece in
// load order and hand their output on with body_next(); the last stage is
// the connection writer (response.cc).
#include <portico/module.h>

#include <string_view>

struct pt_request;

namespace portico {
int run_header_filters(pt_request *r);
bool has_body_filters(pt_request *r);
// Entry of the body into the chain; ends in write_body().
int filter_body(pt_request *r, std::string_view data, bool last);
// The writer at the end of the chain (response.cc): framing, HEAD, counts.
int write_body(pt_request *r, std::string_view data, bool last);

namespace hostfn {
void conf_add_body_filter(pt_conf *cf, pt_body_filter_fn fn);
int body_next(pt_request *r, pt_str data, int last);
int resp_status(pt_request *r);
void body_filter_want(pt_request *r);
int64_t resp_content_length(pt_request *r);
int resp_header_del(pt_request *r, pt_str name);
} // namespace hostfn
} // namespace portico
