// Static files, as a module over the C ABI: index files, directory
// redirects, ETag / Last-Modified, conditional requests (RFC 9110 §13) and
// byte ranges (RFC 9110 §14), sent with sendfile through the host.
#include <portico/module.h>

#include "open_file_cache.h"
#include "range.h"
#include "symlinks.h"
#include "watched_cache.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <new>
#include <string>
#include <string_view>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace {
const pt_host *H;
const pt_module *self;

// open_file_cache / open_file_cache_valid (nginx's names and defaults: off,
// inactive=60s, valid 60s). One cache per directive occurrence, shared by the
// locations that inherit it, as nginx; each worker fills its own copy.
struct StaticConf {
    static_module::OpenFileCache *cache; // nullptr: off
    int cache_set;                       // the directive appeared at this level
    int64_t valid_sec;                   // -1: unset
    int symlinks;                        // -1 unset, else a SymlinkPolicy
    pt_value *symlinks_from;             // from=$document_root: trusted prefix
    // The last extension served here and its type (a location's types are
    // fixed; the host lowercases and hashes the extension on each call).
    // Each worker writes only its own copy of the configuration.
    char mime_ext[16];
    size_t mime_ext_len; // 0: nothing remembered
    pt_str mime;
};

pt_str mime_type(pt_request *r, StaticConf *sc, pt_str exten) {
    if (!sc) return H->mime_type(r, exten);
    if (sc->mime_ext_len && exten.len == sc->mime_ext_len &&
        memcmp(exten.data, sc->mime_ext, exten.len) == 0)
        return sc->mime;
    pt_str type = H->mime_type(r, exten);
    if (exten.len && exten.len <= sizeof sc->mime_ext) {
        memcpy(sc->mime_ext, exten.data, exten.len);
        sc->mime_ext_len = exten.len;
        sc->mime = type;
    }
    return type;
}

using static_module::WatchedCache;

// The default cache (no open_file_cache directive at any level), one per
// worker, made on its first request so the master never holds one.
WatchedCache *watched;

WatchedCache &watched_cache(pt_request *r) {
    if (!watched) {
        watched = new WatchedCache;
        watched->attach(static_cast<event_base *>(H->event_base(r)));
    }
    return *watched;
}

void exit_worker(const pt_host *) {
    delete watched;
    watched = nullptr;
}

// The file a request serves: from a cache (the descriptor stays the
// cache's) or opened for this request alone.
struct File {
    static_module::FileInfo own;
    const static_module::FileInfo *info = nullptr;
    bool owned = false;
    const std::string *body = nullptr; // the whole file, kept by the default cache
    ~File() {
        if (owned && own.fd >= 0) close(own.fd);
    }
    // a descriptor send_file may own
    int give() {
        if (!owned) return dup(info->fd);
        owned = false;
        return own.fd;
    }
};

std::string_view sv(pt_str s) { return {s.data ? s.data : "", s.len}; }
pt_str ps(std::string_view s) { return {s.data(), s.size()}; }

struct Header {
    bool found;
    std::string_view value;
};

bool ieq(pt_str a, std::string_view b) {
    if (a.len != b.size()) return false;
    for (size_t i = 0; i < a.len; i++)
        if ((a.data[i] | 0x20) != (b[i] | 0x20)) return false; // b: letters and '-'
    return true;
}

// The request fields a static response depends on, found in one pass over
// the request's fields rather than one host lookup each (the first
// occurrence counts, as with req_header).
struct Preconditions {
    Header if_match{}, if_unmodified_since{}, if_none_match{}, if_modified_since{}, range{},
        if_range{};

    explicit Preconditions(pt_request *r) {
        size_t n = H->req_header_count(r);
        for (size_t i = 0; i < n; i++) {
            pt_str name, value;
            H->req_header_at(r, i, &name, &value);
            Header *h = nullptr;
            switch (name.len) { // most fields are none of these: the length decides
            case 5: h = ieq(name, "Range") ? &range : nullptr; break;
            case 8:
                h = ieq(name, "If-Match") ? &if_match : ieq(name, "If-Range") ? &if_range : nullptr;
                break;
            case 13: h = ieq(name, "If-None-Match") ? &if_none_match : nullptr; break;
            case 17: h = ieq(name, "If-Modified-Since") ? &if_modified_since : nullptr; break;
            case 19: h = ieq(name, "If-Unmodified-Since") ? &if_unmodified_since : nullptr; break;
            }
            if (h && !h->found) *h = {true, sv(value)};
        }
    }
};

// Does an If-Match / If-None-Match list contain the tag (or "*")?
bool etag_listed(std::string_view list, std::string_view etag, bool weak_ok) {
    while (!list.empty()) {
        while (!list.empty() && (list[0] == ' ' || list[0] == ',' || list[0] == '\t'))
            list.remove_prefix(1);
        if (list.empty()) break;
        if (list[0] == '*') return true;
        bool weak = list.substr(0, 2) == "W/";
        if (weak) list.remove_prefix(2);
        size_t end = list.find('"', 1);
        if (list[0] != '"' || end == std::string_view::npos) return false;
        std::string_view tag = list.substr(0, end + 1);
        if (tag == etag && (weak_ok || !weak)) return true;
        list.remove_prefix(end + 1);
    }
    return false;
}

int64_t http_date(std::string_view s) {
    // IMF-fixdate only (RFC 9110 §5.6.7); other forms count as absent
    if (s.size() != 29) return -1;
    char buf[30];
    memcpy(buf, s.data(), 29);
    buf[29] = 0;
    struct tm tm {};
    char *end = strptime(buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (!end || *end) return -1;
    return timegm(&tm);
}

int redirect_dir(pt_request *r) {
    pt_str uri = H->req_field(r, PT_F_URI);
    pt_str args = H->req_field(r, PT_F_ARGS);
    std::string loc(sv(uri));
    loc += '/';
    if (args.len) {
        loc += '?';
        loc += sv(args);
    }
    H->resp_header_set(r, PT_STR("Location"), ps(loc));
    return 301;
}

int try_index(pt_request *r) {
    // index is a core directive; the host knows the list through $uri's
    // location: we ask for each candidate by name
    pt_str uri = H->req_field(r, PT_F_URI);
    pt_str file = H->req_field(r, PT_F_FILENAME);
    pt_str list;
    if (!H->variable(r, PT_STR("portico_index"), &list)) return 403;
    std::string_view names = sv(list);
    while (!names.empty()) {
        size_t sp = names.find(' ');
        std::string_view name = names.substr(0, sp);
        names = sp == std::string_view::npos ? std::string_view() : names.substr(sp + 1);
        if (name.empty()) continue;
        std::string target;
        if (name[0] == '/') {
            // an absolute index ("/index.php") is redirected to as is (nginx)
            return H->internal_redirect(r, ps(name), H->req_field(r, PT_F_ARGS));
        }
        std::string path(sv(file));
        path += name;
        struct stat st;
        if (stat(path.c_str(), &st) != 0) {
            if (errno == ENOENT || errno == ENOTDIR) continue;
            H->log(PT_LOG_CRIT, r, "stat() \"%s\" failed (%d: %s)", path.c_str(), errno,
                   strerror(errno));
            return 500;
        }
        target.assign(sv(uri));
        target += name;
        return H->internal_redirect(r, ps(target), H->req_field(r, PT_F_ARGS));
    }
    std::string dir(sv(file));
    struct stat st;
    if (stat(dir.c_str(), &st) != 0) return 404;
    H->log(PT_LOG_ERR, r, "directory index of \"%s\" is forbidden", dir.c_str());
    return 403;
}

// If-Range (RFC 9110 §13.1.5): the range applies only to the representation
// the client already holds part of; an entity tag compares strongly, a date
// must equal Last-Modified exactly.
bool range_applies(const Header &ifr, std::string_view etag, time_t mtime) {
    if (!ifr.found) return true;
    if (!ifr.value.empty() && ifr.value[0] == '"') return ifr.value == etag;
    return http_date(ifr.value) == int64_t(mtime);
}

// Several ranges: multipart/byteranges (RFC 9110 §14.6). Each part is a
// small header we build and a file segment; the whole length is known up
// front, so the response keeps Content-Length and keep-alive.
int send_multipart(pt_request *r, File &file, int64_t size, std::string_view type,
                   const std::vector<static_module::ByteRange> &ranges) {
    static unsigned long long counter;
    char boundary[40];
    snprintf(boundary, sizeof boundary, "%08llx%012llu", (unsigned long long)time(nullptr),
             ++counter);
    std::vector<std::string> heads;
    heads.reserve(ranges.size());
    int64_t total = 0;
    for (const auto &rg : ranges) {
        char cr[96];
        snprintf(cr, sizeof cr, "%lld-%lld/%lld", (long long)rg.start, (long long)rg.end,
                 (long long)size);
        std::string h = "\r\n--";
        h += boundary;
        h += "\r\nContent-Type: ";
        h += type;
        h += "\r\nContent-Range: bytes ";
        h += cr;
        h += "\r\n\r\n";
        total += int64_t(h.size()) + rg.end - rg.start + 1;
        heads.push_back(std::move(h));
    }
    std::string tail = "\r\n--";
    tail += boundary;
    tail += "--\r\n";
    total += int64_t(tail.size());

    std::string ctype = "multipart/byteranges; boundary=";
    ctype += boundary;
    H->resp_header_set(r, PT_STR("Content-Type"), ps(ctype));
    H->set_status(r, 206);
    H->set_content_length(r, total);
    H->send_header(r);
    if (!H->is_head(r)) {
        for (size_t i = 0; i < ranges.size(); i++) {
            H->send_data(r, heads[i].data(), heads[i].size());
            if (file.body) {
                H->send_data(r, file.body->data() + ranges[i].start,
                             size_t(ranges[i].end - ranges[i].start + 1));
                continue;
            }
            // send_file owns the descriptor it is given: one duplicate per part
            int part = dup(file.info->fd);
            if (part < 0 || H->send_file(r, part, ranges[i].start,
                                         ranges[i].end - ranges[i].start + 1) != PT_OK)
                return PT_ERROR;
        }
        H->send_data(r, tail.data(), tail.size());
    }
    return H->finish(r);
}

int static_handler(pt_request *r, void *conf) {
    pt_str method = H->req_field(r, PT_F_METHOD);
    std::string_view m = sv(method);
    pt_str uri = H->req_field(r, PT_F_URI);
    std::string_view u = sv(uri);
    if (u.empty() || u[0] != '/') return PT_DECLINED;
    if (!u.empty() && u.back() == '/') {
        if (m != "GET" && m != "HEAD" && m != "POST") return 405;
        return try_index(r);
    }
    if (m != "GET" && m != "HEAD" && m != "POST") return 405;

    pt_str fname = H->req_field(r, PT_F_FILENAME);
    auto *sc = static_cast<StaticConf *>(conf);
    File file;
    int e = 0;
    auto policy = static_cast<static_module::SymlinkPolicy>(sc && sc->symlinks > 0 ? sc->symlinks : 0);
    const WatchedCache::File *hit = nullptr;
    if (sc && !sc->cache_set && policy == static_module::SymlinkPolicy::Off)
        hit = watched_cache(r).lookup(sv(fname), H->now_sec());
    if (hit) {
        e = hit->err;
        if (!e) file.info = &hit->info;
        if (hit->has_body) file.body = &hit->body;
    } else if (sc && sc->cache && policy == static_module::SymlinkPolicy::Off) {
        file.info = sc->cache->open(sv(fname), H->now_sec(), sc->valid_sec, &e);
    } else {
        size_t trusted = 0;
        pt_str from;
        if (sc && sc->symlinks_from && H->eval(r, sc->symlinks_from, &from) == PT_OK &&
            sv(fname).substr(0, from.len) == sv(from))
            trusted = from.len;
        file.own.fd = static_module::open_checked(sv(fname), trusted, policy, &e);
        if (file.own.fd < 0) {
            // e set by open_checked
        } else if (fstat(file.own.fd, &file.own.st) != 0) {
            e = errno;
            close(file.own.fd);
            file.own.fd = -1;
        } else {
            file.owned = true;
            file.info = &file.own;
        }
    }
    if (!file.info) {
        std::string path(sv(fname));
        if (e == ENOENT || e == ENOTDIR || e == ENAMETOOLONG) {
            H->log(PT_LOG_ERR, r, "open() \"%s\" failed (%d: %s)", path.c_str(), e, strerror(e));
            return 404;
        }
        if (e == EACCES || e == ELOOP) {
            H->log(PT_LOG_ERR, r, "open() \"%s\" failed (%d: %s)", path.c_str(), e, strerror(e));
            return 403;
        }
        H->log(PT_LOG_CRIT, r, "open() \"%s\" failed (%d: %s)", path.c_str(), e, strerror(e));
        return 500;
    }
    const struct stat &st = file.info->st;
    if (S_ISDIR(st.st_mode)) return redirect_dir(r);
    if (!S_ISREG(st.st_mode)) return 404;
    if (m == "POST") return 405;
    if (file.owned) static_module::format_validators(file.own);
    std::string_view etag(file.info->etag, file.info->etag_len);
    const char *lm = file.info->last_modified;
    // RFC 9110 §13.2.2 order: If-Match, If-Unmodified-Since, If-None-Match,
    // If-Modified-Since, then If-Range.
    Preconditions pre(r);
    const Header &im = pre.if_match;
    if (im.found && !etag_listed(im.value, etag, false)) return 412;
    const Header &ius = pre.if_unmodified_since;
    if (!im.found && ius.found) {
        int64_t t = http_date(ius.value);
        if (t >= 0 && st.st_mtime > t) return 412;
    }
    const Header &inm = pre.if_none_match;
    bool not_modified = false;
    if (inm.found) {
        not_modified = etag_listed(inm.value, etag, true);
    } else {
        const Header &ims = pre.if_modified_since;
        if (ims.found) {
            int64_t t = http_date(ims.value);
            not_modified = t >= 0 && st.st_mtime <= t;
        }
    }
    pt_str exten = H->req_field(r, PT_F_EXTEN);
    pt_str type = mime_type(r, sc, exten);
    H->resp_header_set(r, PT_STR("Content-Type"), type);
    // the validators are ours alone (no earlier phase sets them, and an
    // internal redirect starts the response afresh): added without a search
    H->resp_header_add(r, PT_STR("Last-Modified"), pt_str{lm, 29});
    H->resp_header_add(r, PT_STR("ETag"), ps(etag));
    if (not_modified) {
        H->set_status(r, 304);
        H->set_content_length(r, -1);
        H->send_header(r);
        return H->finish(r);
    }

    int64_t size = st.st_size;
    std::vector<static_module::ByteRange> ranges;
    const Header &range = pre.range;
    if (range.found && range_applies(pre.if_range, etag, st.st_mtime)) {
        auto rc = static_module::parse_ranges(range.value, size, ranges);
        if (rc == static_module::RangeResult::Unsatisfiable) {
            char cr[64];
            snprintf(cr, sizeof cr, "bytes */%lld", (long long)size);
            H->resp_header_set(r, PT_STR("Content-Range"), pt_str{cr, strlen(cr)});
            return 416;
        }
        if (rc == static_module::RangeResult::Ignore) ranges.clear();
    }
    H->resp_header_add(r, PT_STR("Accept-Ranges"), PT_STR("bytes"));
    if (ranges.size() > 1) return send_multipart(r, file, size, sv(type), ranges);

    int64_t start = 0, len = size;
    H->set_status(r, 200);
    if (ranges.size() == 1) {
        start = ranges[0].start;
        len = ranges[0].end - start + 1;
        char cr[96];
        snprintf(cr, sizeof cr, "bytes %lld-%lld/%lld", (long long)start,
                 (long long)ranges[0].end, (long long)size);
        H->resp_header_set(r, PT_STR("Content-Range"), pt_str{cr, strlen(cr)});
        H->set_status(r, 206);
    }
    // a small body goes into the response with the header: one write for both
    const char *bytes = nullptr;
    bool body = len > 0 && !H->is_head(r);
    if (body && file.body) {
        bytes = file.body->data() + start;
    } else if (body && len <= WatchedCache::kBodyMax) {
        static char small[WatchedCache::kBodyMax]; // one thread per worker
        ssize_t n = pread(file.info->fd, small, size_t(len), start);
        if (n != len) {
            H->log(PT_LOG_CRIT, r, "pread() \"%.*s\" failed (%s)", int(fname.len), fname.data,
                   n < 0 ? strerror(errno) : "file shrank");
            return 500;
        }
        bytes = small;
    }
    H->set_content_length(r, len);
    H->send_header(r);
    if (bytes) {
        if (H->send_data(r, bytes, size_t(len)) != PT_OK) return PT_ERROR;
    } else if (body) {
        int fd = file.give();
        if (fd < 0 || H->send_file(r, fd, start, len) != PT_OK) return PT_ERROR;
    }
    return H->finish(r);
}

void *create_loc_conf(pt_conf *cf) {
    auto *c = static_cast<StaticConf *>(H->conf_alloc(cf, sizeof(StaticConf)));
    c->valid_sec = -1;
    c->symlinks = -1;
    return c;
}

const char *merge_loc_conf(pt_conf *, void *parent, void *child) {
    auto *p = static_cast<StaticConf *>(parent);
    auto *c = static_cast<StaticConf *>(child);
    if (!c->cache_set) {
        c->cache = p->cache;
        c->cache_set = p->cache_set;
    }
    if (c->valid_sec == -1) c->valid_sec = p->valid_sec == -1 ? 60 : p->valid_sec;
    if (c->symlinks == -1) {
        c->symlinks = p->symlinks == -1 ? 0 : p->symlinks;
        c->symlinks_from = p->symlinks_from;
    }
    return nullptr;
}

const char *set_time_sec(pt_str v, int64_t *sec) {
    int64_t ms;
    if (const char *e = H->conf_parse_msec(v, &ms)) return e;
    *sec = ms / 1000;
    return nullptr;
}

// open_file_cache off | max=N [inactive=time]
const char *set_open_file_cache(pt_conf *cf, void *conf, const pt_str *a, size_t n) {
    auto *c = static_cast<StaticConf *>(conf);
    if (c->cache_set) return "is duplicate";
    c->cache_set = 1;
    if (n == 2 && sv(a[1]) == "off") return nullptr;
    int64_t max = 0, inactive = 60;
    for (size_t i = 1; i < n; i++) {
        std::string_view v = sv(a[i]);
        if (v.substr(0, 4) == "max=") {
            max = 0;
            for (char ch : v.substr(4)) {
                if (ch < '0' || ch > '9' || max > 100000000) return "!invalid \"open_file_cache\" max";
                max = max * 10 + (ch - '0');
            }
        } else if (v.substr(0, 9) == "inactive=") {
            if (set_time_sec(pt_str{v.data() + 9, v.size() - 9}, &inactive))
                return "!invalid \"open_file_cache\" inactive";
        } else {
            return "!invalid \"open_file_cache\" parameter";
        }
    }
    if (max <= 0) return "!\"open_file_cache\" must have the \"max\" parameter";
    void *mem = H->conf_alloc(cf, sizeof(static_module::OpenFileCache));
    // never destroyed: the master's copy stays empty (it serves nothing) and
    // a worker's descriptors go with the worker
    c->cache = new (mem) static_module::OpenFileCache(size_t(max), inactive);
    return nullptr;
}

// disable_symlinks off | on | if_not_owner [from=part]
const char *set_disable_symlinks(pt_conf *cf, void *conf, const pt_str *a, size_t n) {
    auto *c = static_cast<StaticConf *>(conf);
    std::string_view v = sv(a[1]);
    if (v == "off") c->symlinks = int(static_module::SymlinkPolicy::Off);
    else if (v == "on") c->symlinks = int(static_module::SymlinkPolicy::On);
    else if (v == "if_not_owner") c->symlinks = int(static_module::SymlinkPolicy::IfNotOwner);
    else return "!invalid value in \"disable_symlinks\" directive";
    if (n == 3) {
        std::string_view f = sv(a[2]);
        if (f.substr(0, 5) != "from=") return "!invalid parameter in \"disable_symlinks\" directive";
        const char *err = nullptr;
        c->symlinks_from = H->conf_value(cf, pt_str{f.data() + 5, f.size() - 5}, &err);
        if (!c->symlinks_from) return err;
    }
    return nullptr;
}

const char *set_open_file_cache_valid(pt_conf *, void *conf, const pt_str *a, size_t) {
    auto *c = static_cast<StaticConf *>(conf);
    if (c->valid_sec != -1) return "is duplicate";
    return set_time_sec(a[1], &c->valid_sec);
}

const char *postconfig(pt_conf *cf) {
    H->conf_add_phase(cf, PT_PHASE_CONTENT, static_handler, self);
    return nullptr;
}

constexpr uint32_t HSL = PT_CTX_HTTP | PT_CTX_SERVER | PT_CTX_LOCATION;
const pt_directive kDirectives[] = {
    {"open_file_cache", HSL, PT_ARGS(1) | PT_ARGS(2), PT_CONF_LOC, set_open_file_cache},
    {"open_file_cache_valid", HSL, PT_ARGS(1), PT_CONF_LOC, set_open_file_cache_valid},
    {"disable_symlinks", HSL, PT_ARGS(1) | PT_ARGS(2), PT_CONF_LOC, set_disable_symlinks},
    {nullptr, 0, 0, PT_CONF_MAIN, nullptr},
};

const pt_module kModule = {
    PT_ABI_MAJOR, PT_ABI_MINOR, PT_ABI_SIGNATURE, "static", "0.1.0", kDirectives,
    nullptr,      create_loc_conf, merge_loc_conf, postconfig, nullptr, exit_worker,
};
} // namespace

extern "C" PT_EXPORT const pt_module *pt_module_entry(const pt_host *host) {
    H = host;
    self = &kModule;
    return &kModule;
}
