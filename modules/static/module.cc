// Static files, as a module over the C ABI: index files, directory
// redirects, ETag / Last-Modified, conditional requests (RFC 9110 §13) and
// byte ranges (RFC 9110 §14), sent with sendfile through the host.
#include <portico/module.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <string>
#include <string_view>
#include <sys/stat.h>
#include <unistd.h>

namespace {
const pt_host *H;

std::string_view sv(pt_str s) { return {s.data ? s.data : "", s.len}; }
pt_str ps(std::string_view s) { return {s.data(), s.size()}; }

struct Header {
    bool found;
    std::string_view value;
};
Header req_header(pt_request *r, const char *name) {
    pt_str v;
    if (H->req_header(r, pt_str{name, strlen(name)}, &v)) return {true, sv(v)};
    return {false, {}};
}

// nginx's ETag: "<mtime hex>-<size hex>"
std::string make_etag(const struct stat &st) {
    char b[64];
    snprintf(b, sizeof b, "\"%llx-%llx\"", (unsigned long long)st.st_mtime,
             (unsigned long long)st.st_size);
    return b;
}

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

// Parses "bytes=a-b" for one range; returns 0 ok, 1 not satisfiable, -1 ignore
int parse_range(std::string_view v, int64_t size, int64_t &start, int64_t &end) {
    if (v.substr(0, 6) != "bytes=") return -1;
    v.remove_prefix(6);
    if (v.find(',') != std::string_view::npos) return -1; // several ranges: whole file (200)
    size_t dash = v.find('-');
    if (dash == std::string_view::npos) return -1;
    auto num = [](std::string_view s, int64_t &out) {
        if (s.empty() || s.size() > 18) return false;
        out = 0;
        for (char ch : s) {
            if (ch < '0' || ch > '9') return false;
            out = out * 10 + (ch - '0');
        }
        return true;
    };
    std::string_view a = v.substr(0, dash), b = v.substr(dash + 1);
    if (a.empty()) {
        int64_t suffix;
        if (!num(b, suffix)) return -1;
        if (suffix == 0) return 1;
        start = suffix >= size ? 0 : size - suffix;
        end = size - 1;
        return size == 0 ? 1 : 0;
    }
    if (!num(a, start)) return -1;
    if (b.empty()) end = size - 1;
    else if (!num(b, end)) return -1;
    if (end < start) return -1;
    if (start >= size) return 1;
    if (end >= size) end = size - 1;
    return 0;
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

int static_handler(pt_request *r, void *) {
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
    std::string path(sv(fname));
    int fd = open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT || e == ENOTDIR || e == ENAMETOOLONG) {
            H->log(PT_LOG_ERR, r, "open() \"%s\" failed (%d: %s)", path.c_str(), e, strerror(e));
            return 404;
        }
        if (e == EACCES) {
            H->log(PT_LOG_ERR, r, "open() \"%s\" failed (%d: %s)", path.c_str(), e, strerror(e));
            return 403;
        }
        H->log(PT_LOG_CRIT, r, "open() \"%s\" failed (%d: %s)", path.c_str(), e, strerror(e));
        return 500;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return 500;
    }
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        return redirect_dir(r);
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return 404;
    }
    if (m == "POST") {
        close(fd);
        return 405;
    }

    std::string etag = make_etag(st);
    char lm[64];
    {
        struct tm tm;
        time_t t = st.st_mtime;
        gmtime_r(&t, &tm);
        strftime(lm, sizeof lm, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    }
    // RFC 9110 §13.2.2 order: If-Match, If-Unmodified-Since, If-None-Match,
    // If-Modified-Since, then If-Range.
    Header im = req_header(r, "If-Match");
    if (im.found && !etag_listed(im.value, etag, false)) {
        close(fd);
        return 412;
    }
    Header ius = req_header(r, "If-Unmodified-Since");
    if (!im.found && ius.found) {
        int64_t t = http_date(ius.value);
        if (t >= 0 && st.st_mtime > t) {
            close(fd);
            return 412;
        }
    }
    Header inm = req_header(r, "If-None-Match");
    bool not_modified = false;
    if (inm.found) {
        not_modified = etag_listed(inm.value, etag, true);
    } else {
        Header ims = req_header(r, "If-Modified-Since");
        if (ims.found) {
            int64_t t = http_date(ims.value);
            not_modified = t >= 0 && st.st_mtime <= t;
        }
    }
    pt_str exten = H->req_field(r, PT_F_EXTEN);
    pt_str type = H->mime_type(r, exten);
    H->resp_header_set(r, PT_STR("Content-Type"), type);
    H->resp_header_set(r, PT_STR("Last-Modified"), pt_str{lm, strlen(lm)});
    H->resp_header_set(r, PT_STR("ETag"), ps(etag));
    if (not_modified) {
        close(fd);
        H->set_status(r, 304);
        H->set_content_length(r, -1);
        H->send_header(r);
        return H->finish(r);
    }

    int64_t size = st.st_size, start = 0, end = size - 1;
    int status = 200;
    Header range = req_header(r, "Range");
    if (range.found) {
        bool apply = true;
        Header ifr = req_header(r, "If-Range");
        if (ifr.found) {
            if (!ifr.value.empty() && ifr.value[0] == '"') apply = ifr.value == etag;
            else apply = http_date(ifr.value) == int64_t(st.st_mtime);
        }
        if (apply) {
            int rc = parse_range(range.value, size, start, end);
            if (rc == 1) {
                close(fd);
                char cr[64];
                snprintf(cr, sizeof cr, "bytes */%lld", (long long)size);
                H->resp_header_set(r, PT_STR("Content-Range"), pt_str{cr, strlen(cr)});
                return 416;
            }
            if (rc == 0) {
                status = 206;
                char cr[96];
                snprintf(cr, sizeof cr, "bytes %lld-%lld/%lld", (long long)start,
                         (long long)end, (long long)size);
                H->resp_header_set(r, PT_STR("Content-Range"), pt_str{cr, strlen(cr)});
            } else {
                start = 0;
                end = size - 1;
            }
        }
    }
    H->resp_header_set(r, PT_STR("Accept-Ranges"), PT_STR("bytes"));
    H->set_status(r, status);
    int64_t len = size == 0 ? 0 : end - start + 1;
    H->set_content_length(r, len);
    H->send_header(r);
    if (len > 0 && !H->is_head(r)) {
        if (H->send_file(r, fd, start, len) != PT_OK) return PT_ERROR;
    } else {
        close(fd);
    }
    return H->finish(r);
}

const char *postconfig(pt_conf *cf) {
    H->conf_add_phase(cf, PT_PHASE_CONTENT, static_handler, nullptr);
    return nullptr;
}

const pt_module kModule = {
    PT_ABI_MAJOR, PT_ABI_MINOR, PT_ABI_SIGNATURE, "static", "0.1.0", nullptr,
    nullptr,      nullptr,      nullptr,          postconfig, nullptr, nullptr,
};
} // namespace

extern "C" PT_EXPORT const pt_module *pt_module_entry(const pt_host *host) {
    H = host;
    return &kModule;
}
