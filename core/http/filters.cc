#include "http/filters.h"

#include "config/directive.h"
#include "http/request.h"

#include <strings.h>

namespace portico {

int run_header_filters(Request *r) {
    for (const auto &p : r->cycle->phases[PT_PHASE_HEADER_FILTER]) {
        int rc = p.fn(r, r->loc->module_conf[p.mod->index]);
        if (rc != PT_OK && rc != PT_DECLINED) return rc;
    }
    return PT_OK;
}

bool has_body_filters(Request *r) { return r->filters_wanted && !r->cycle->body_filters.empty(); }

static int run_from(Request *r, size_t pos, std::string_view data, bool last) {
    auto &chain = r->cycle->body_filters;
    if (pos >= chain.size()) return write_body(r, data, last);
    size_t outer = r->filter_pos;
    r->filter_pos = pos;
    const auto &f = chain[pos];
    int rc = f.fn(r, r->loc->module_conf[f.mod->index], pt_str{data.data(), data.size()}, last);
    r->filter_pos = outer;
    return rc;
}

int filter_body(Request *r, std::string_view data, bool last) {
    if (!r->filters_wanted) return write_body(r, data, last);
    return run_from(r, 0, data, last);
}

namespace hostfn {
void conf_add_body_filter(pt_conf *cf, pt_body_filter_fn fn) {
    if (cf->module) cf->cycle->body_filters.push_back({fn, cf->module});
}

int body_next(pt_request *r, pt_str data, int last) {
    return run_from(r, r->filter_pos + 1, {data.data ? data.data : "", data.len}, last);
}

int resp_status(pt_request *r) { return r->status; }
void body_filter_want(pt_request *r) { r->filters_wanted = true; }
int64_t resp_content_length(pt_request *r) { return r->content_length; }

int resp_header_del(pt_request *r, pt_str name) {
    auto &h = r->out_headers;
    size_t before = h.size();
    std::erase_if(h, [&](const auto &kv) {
        return kv.first.size() == name.len && strncasecmp(kv.first.data(), name.data, name.len) == 0;
    });
    return before != h.size();
}
} // namespace hostfn
} // namespace portico
