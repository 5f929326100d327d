#pragma once
// pt_host entries for gateway modules: request body, CGI builder, upstreams.
#include <portico/module.h>

namespace portico::hostfn {
void *req_body(pt_request *r);
pt_cgi *cgi_create(pt_conf *cf);
const char *cgi_directive(pt_conf *cf, pt_cgi *c, const pt_str *args, size_t n);
const char *cgi_merge(pt_conf *cf, pt_cgi *parent, pt_cgi *child);
int cgi_has_param(const pt_cgi *c, pt_str name);
int cgi_build(pt_request *r, const pt_cgi *c, pt_env_fn put, void *ctx);
pt_upstream *upstream_ref(pt_conf *cf, pt_str target, const char **err);
int upstream_keepalive(const pt_upstream *u);
int upstream_connect(pt_request *r, pt_upstream *u, int64_t ms, pt_connect_fn cb, void *data);
int upstream_fd(pt_upstream_conn *c);
int upstream_reused(pt_upstream_conn *c);
pt_str upstream_name(pt_upstream_conn *c);
void upstream_release(pt_upstream_conn *c, int keep, int failed);
int http_parse_response(pt_str buffered, int request_was_head, pt_http_response *out);
pt_chunked *chunked_new(pt_request *r, int64_t max_body);
int chunked_feed(pt_chunked *d, pt_str in, size_t *consumed, pt_str *data);
int header_forwardable(pt_request *r, pt_str name);
void conf_add_variable(pt_conf *cf, const char *name, pt_var_fn fn);
} // namespace portico::hostfn
