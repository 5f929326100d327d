// gzip: a streaming response filter over zlib with nginx's directives, and
// gzip_static (serve "file.gz" when it exists and the client accepts gzip).
// Memory per compressed response is zlib's state plus one output buffer:
// the body is never held whole.
#include <portico/module.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <string>
#include <string_view>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

namespace {
const pt_host *H;
const pt_module *self;

std::string_view sv(pt_str s) { return {s.data ? s.data : "", s.len}; }
pt_str ps(std::string_view s) { return {s.data(), s.size()}; }

bool ieq(std::string_view a, std::string_view b) {
    return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

enum { kMaxTypes = 32 };
struct GzipConf {
    int enable, vary, level, http_version, static_on, proxied_any; // -1 unset
    int64_t min_length;
    pt_str types[kMaxTypes];
    int ntypes; // -1: unset; nginx's default is text/html only
    int disable_msie6;
};

void *create_loc_conf(pt_conf *cf) {
    auto *c = static_cast<GzipConf *>(H->conf_alloc(cf, sizeof(GzipConf)));
    c->enable = c->vary = c->level = c->http_version = c->static_on = c->proxied_any = -1;
    c->min_length = -1;
    c->ntypes = -1;
    c->disable_msie6 = -1;
    return c;
}

template <class T> void inherit(T &c, T p, T dflt) {
    if (c == T(-1)) c = p == T(-1) ? dflt : p;
}

const char *merge_loc_conf(pt_conf *, void *parent, void *child) {
    auto *p = static_cast<GzipConf *>(parent);
    auto *c = static_cast<GzipConf *>(child);
    inherit(c->enable, p->enable, 0);
    inherit(c->vary, p->vary, 0);
    inherit(c->level, p->level, 1);
    inherit(c->http_version, p->http_version, 11);
    inherit(c->static_on, p->static_on, 0);
    inherit(c->proxied_any, p->proxied_any, 0);
    inherit<int64_t>(c->min_length, p->min_length, 20);
    inherit(c->disable_msie6, p->disable_msie6, 0);
    if (c->ntypes == -1) {
        if (p->ntypes == -1) c->ntypes = 0;
        else {
            memcpy(c->types, p->types, sizeof c->types);
            c->ntypes = p->ntypes;
        }
    }
    return nullptr;
}

// Does Accept-Encoding allow gzip? (a "gzip" or "*" coding with q != 0)
bool accepts_gzip(pt_request *r) {
    pt_str ae;
    if (!H->req_header(r, PT_STR("Accept-Encoding"), &ae)) return false;
    std::string_view v = sv(ae);
    while (!v.empty()) {
        size_t comma = v.find(',');
        std::string_view item = v.substr(0, comma);
        v = comma == std::string_view::npos ? std::string_view() : v.substr(comma + 1);
        while (!item.empty() && (item[0] == ' ' || item[0] == '\t')) item.remove_prefix(1);
        size_t semi = item.find(';');
        std::string_view coding = item.substr(0, semi);
        while (!coding.empty() && (coding.back() == ' ' || coding.back() == '\t'))
            coding.remove_suffix(1);
        if (!ieq(coding, "gzip") && coding != "*") continue;
        if (semi == std::string_view::npos) return true;
        std::string_view q = item.substr(semi + 1);
        while (!q.empty() && q[0] == ' ') q.remove_prefix(1);
        if (q.substr(0, 2) != "q=" && q.substr(0, 2) != "Q=") return true;
        q.remove_prefix(2);
        // q=0, q=0.0, q=0.00 refuse; anything else accepts
        bool zero = !q.empty() && q[0] == '0';
        for (size_t i = 1; zero && i < q.size(); i++) zero = q[i] == '.' || q[i] == '0';
        return !zero;
    }
    return false;
}

bool type_matches(const GzipConf *c, std::string_view type) {
    size_t semi = type.find(';');
    type = type.substr(0, semi);
    while (!type.empty() && type.back() == ' ') type.remove_suffix(1);
    if (ieq(type, "text/html")) return true; // always, as nginx
    for (int i = 0; i < c->ntypes; i++)
        if (sv(c->types[i]) == "*" || ieq(type, sv(c->types[i]))) return true;
    return false;
}

struct Ctx {
    z_stream z;
    bool active;
    unsigned char out[16384];
};

void free_ctx(void *p) {
    auto *ctx = static_cast<Ctx *>(p);
    if (ctx->active) deflateEnd(&ctx->z);
    delete ctx;
}

bool msie6(pt_request *r) {
    pt_str ua;
    if (!H->req_header(r, PT_STR("User-Agent"), &ua)) return false;
    std::string_view u = sv(ua);
    size_t at = u.find("MSIE ");
    return at != std::string_view::npos && at + 5 < u.size() && u[at + 5] <= '6' &&
           u.find("SV1") == std::string_view::npos;
}

int header_filter(pt_request *r, void *loc_conf) {
    auto *c = static_cast<GzipConf *>(loc_conf);
    if (!c || !c->enable) return PT_OK;
    int status = H->resp_status(r);
    pt_str type;
    if (!H->resp_header_get(r, PT_STR("Content-Type"), &type) || !type_matches(c, sv(type)))
        return PT_OK;
    // a compressible response varies by Accept-Encoding whether or not we compress it
    if (c->vary) {
        pt_str vary;
        if (!H->resp_header_get(r, PT_STR("Vary"), &vary))
            H->resp_header_add(r, PT_STR("Vary"), PT_STR("Accept-Encoding"));
    }
    // nginx compresses 200, 403 and 404 only: never 206 (ranges of what?), 204, 304
    if (status != 200 && status != 403 && status != 404) return PT_OK;
    if (H->is_head(r)) return PT_OK;
    pt_str existing;
    if (H->resp_header_get(r, PT_STR("Content-Encoding"), &existing)) return PT_OK;
    int64_t len = H->resp_content_length(r);
    if (len >= 0 && len < c->min_length) return PT_OK;
    pt_str proto = H->req_field(r, PT_F_PROTOCOL);
    int version = sv(proto) == "HTTP/1.0" ? 10 : 11;
    if (version < c->http_version) return PT_OK;
    pt_str via;
    if (!c->proxied_any && H->req_header(r, PT_STR("Via"), &via)) return PT_OK;
    if (c->disable_msie6 && msie6(r)) return PT_OK;
    if (!accepts_gzip(r)) return PT_OK;

    auto *ctx = new Ctx();
    // windowBits 31: a gzip wrapper; memLevel 8 as zlib's default
    if (deflateInit2(&ctx->z, c->level, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        delete ctx;
        return PT_OK;
    }
    ctx->active = true;
    H->cleanup_add(r, free_ctx, ctx);
    H->set_ctx(r, self, ctx);
    H->body_filter_want(r);
    H->resp_header_set(r, PT_STR("Content-Encoding"), PT_STR("gzip"));
    H->set_content_length(r, -1);
    pt_str etag;
    if (H->resp_header_get(r, PT_STR("ETag"), &etag) && etag.len && etag.data[0] == '"') {
        // the compressed bytes differ: a strong validator becomes weak (RFC 9110 §8.8.1)
        std::string weak = "W/" + std::string(sv(etag));
        H->resp_header_set(r, PT_STR("ETag"), ps(weak));
    }
    return PT_OK;
}

int body_filter(pt_request *r, void *, pt_str data, int last) {
    auto *ctx = static_cast<Ctx *>(H->get_ctx(r, self));
    if (!ctx || !ctx->active) return H->body_next(r, data, last);
    ctx->z.next_in = reinterpret_cast<Bytef *>(const_cast<char *>(data.data));
    ctx->z.avail_in = uInt(data.len);
    int flush = last ? Z_FINISH : Z_NO_FLUSH;
    for (;;) {
        ctx->z.next_out = ctx->out;
        ctx->z.avail_out = sizeof ctx->out;
        int rc = deflate(&ctx->z, flush);
        if (rc == Z_STREAM_ERROR) return PT_ERROR;
        size_t have = sizeof ctx->out - ctx->z.avail_out;
        if (have) {
            int nrc = H->body_next(r, pt_str{reinterpret_cast<char *>(ctx->out), have}, 0);
            if (nrc != PT_OK) return nrc;
        }
        if (last ? rc == Z_STREAM_END : (ctx->z.avail_in == 0 && ctx->z.avail_out != 0)) break;
    }
    if (last) {
        deflateEnd(&ctx->z);
        ctx->active = false;
        return H->body_next(r, pt_str{"", 0}, 1);
    }
    return PT_OK;
}

// gzip_static: serve the precompressed file next to the requested one.
int static_handler(pt_request *r, void *loc_conf) {
    auto *c = static_cast<GzipConf *>(loc_conf);
    if (!c || c->static_on != 1) return PT_DECLINED;
    std::string_view m = sv(H->req_field(r, PT_F_METHOD));
    std::string_view uri = sv(H->req_field(r, PT_F_URI));
    if ((m != "GET" && m != "HEAD") || uri.empty() || uri.back() == '/') return PT_DECLINED;
    if (!accepts_gzip(r)) return PT_DECLINED;
    std::string path(sv(H->req_field(r, PT_F_FILENAME)));
    path += ".gz";
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return PT_DECLINED;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return PT_DECLINED;
    }
    char lm[64];
    struct tm tm;
    time_t t = st.st_mtime;
    gmtime_r(&t, &tm);
    strftime(lm, sizeof lm, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    char etag[64];
    snprintf(etag, sizeof etag, "\"%llx-%llx\"", (unsigned long long)st.st_mtime,
             (unsigned long long)st.st_size);
    H->set_status(r, 200);
    H->resp_header_set(r, PT_STR("Content-Type"), H->mime_type(r, H->req_field(r, PT_F_EXTEN)));
    H->resp_header_set(r, PT_STR("Content-Encoding"), PT_STR("gzip"));
    H->resp_header_set(r, PT_STR("Last-Modified"), pt_str{lm, strlen(lm)});
    H->resp_header_set(r, PT_STR("ETag"), pt_str{etag, strlen(etag)});
    if (c->vary) H->resp_header_set(r, PT_STR("Vary"), PT_STR("Accept-Encoding"));
    H->set_content_length(r, st.st_size);
    H->send_header(r);
    if (st.st_size > 0 && !H->is_head(r)) H->send_file(r, fd, 0, st.st_size);
    else close(fd);
    return H->finish(r);
}

const char *set_flag(pt_conf *, void *conf, const pt_str *a, size_t) {
    auto *c = static_cast<GzipConf *>(conf);
    std::string_view name = sv(a[0]);
    if (name == "gzip_static" && sv(a[1]) == "always") {
        c->static_on = 1;
        return nullptr;
    }
    int v;
    if (const char *e = H->conf_parse_flag(a[1], &v)) return e;
    if (name == "gzip") c->enable = v;
    else if (name == "gzip_vary") c->vary = v;
    else if (name == "gzip_static") c->static_on = v;
    return nullptr;
}

const char *set_level(pt_conf *, void *conf, const pt_str *a, size_t) {
    std::string_view v = sv(a[1]);
    if (v.size() != 1 || v[0] < '1' || v[0] > '9') return "!gzip_comp_level must be between 1 and 9";
    static_cast<GzipConf *>(conf)->level = v[0] - '0';
    return nullptr;
}

const char *set_min_length(pt_conf *, void *conf, const pt_str *a, size_t) {
    int64_t v;
    if (const char *e = H->conf_parse_size(a[1], &v)) return e;
    static_cast<GzipConf *>(conf)->min_length = v;
    return nullptr;
}

const char *set_types(pt_conf *cf, void *conf, const pt_str *a, size_t n) {
    auto *c = static_cast<GzipConf *>(conf);
    c->ntypes = 0;
    for (size_t i = 1; i < n; i++) {
        if (c->ntypes >= kMaxTypes) return "!too many types";
        char *copy = static_cast<char *>(H->conf_alloc(cf, a[i].len + 1));
        memcpy(copy, a[i].data, a[i].len);
        c->types[c->ntypes++] = pt_str{copy, a[i].len};
    }
    return nullptr;
}

const char *set_http_version(pt_conf *, void *conf, const pt_str *a, size_t) {
    std::string_view v = sv(a[1]);
    if (v == "1.0") static_cast<GzipConf *>(conf)->http_version = 10;
    else if (v == "1.1") static_cast<GzipConf *>(conf)->http_version = 11;
    else return "!invalid value, it must be \"1.0\" or \"1.1\"";
    return nullptr;
}

const char *set_proxied(pt_conf *, void *conf, const pt_str *a, size_t n) {
    auto *c = static_cast<GzipConf *>(conf);
    c->proxied_any = 0;
    for (size_t i = 1; i < n; i++)
        if (sv(a[i]) != "off") c->proxied_any = 1; // any expired/no-cache/...: treated as any
    return nullptr;
}

const char *set_disable(pt_conf *, void *conf, const pt_str *a, size_t n) {
    auto *c = static_cast<GzipConf *>(conf);
    for (size_t i = 1; i < n; i++)
        if (sv(a[i]) == "msie6") c->disable_msie6 = 1;
    return nullptr;
}

const char *set_accepted(pt_conf *, void *, const pt_str *, size_t) { return nullptr; }

const char *postconfig(pt_conf *cf) {
    H->conf_add_phase(cf, PT_PHASE_HEADER_FILTER, header_filter, self);
    H->conf_add_phase(cf, PT_PHASE_CONTENT, static_handler, self);
    H->conf_add_body_filter(cf, body_filter);
    return nullptr;
}

constexpr uint32_t HSL = PT_CTX_HTTP | PT_CTX_SERVER | PT_CTX_LOCATION;
const pt_directive kDirectives[] = {
    {"gzip", HSL, PT_ARGS_FLAG, PT_CONF_LOC, set_flag},
    {"gzip_vary", HSL, PT_ARGS_FLAG, PT_CONF_LOC, set_flag},
    {"gzip_static", HSL, PT_ARGS(1), PT_CONF_LOC, set_flag},
    {"gzip_comp_level", HSL, PT_ARGS(1), PT_CONF_LOC, set_level},
    {"gzip_min_length", HSL, PT_ARGS(1), PT_CONF_LOC, set_min_length},
    {"gzip_types", HSL, PT_ARGS_1MORE, PT_CONF_LOC, set_types},
    {"gzip_http_version", HSL, PT_ARGS(1), PT_CONF_LOC, set_http_version},
    {"gzip_proxied", HSL, PT_ARGS_1MORE, PT_CONF_LOC, set_proxied},
    {"gzip_disable", HSL, PT_ARGS_1MORE, PT_CONF_LOC, set_disable},
    {"gzip_buffers", HSL, PT_ARGS(2), PT_CONF_LOC, set_accepted},
    {nullptr, 0, 0, PT_CONF_MAIN, nullptr},
};

const pt_module kModule = {
    PT_ABI_MAJOR, PT_ABI_MINOR, PT_ABI_SIGNATURE, "gzip", "0.1.0", kDirectives,
    nullptr, create_loc_conf, merge_loc_conf, postconfig, nullptr, nullptr,
};
} // namespace

extern "C" PT_EXPORT const pt_module *pt_module_entry(const pt_host *host) {
    H = host;
    self = &kModule;
    return &kModule;
}
