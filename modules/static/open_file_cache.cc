#include "open_file_cache.h"

#include <cerrno>
#include <ctime>
#include <fcntl.h>
#include <unistd.h>

namespace static_module {
namespace {
const char kDays[] = "SunMonTueWedThuFriSat";
const char kMonths[] = "JanFebMarAprMayJunJulAugSepOctNovDec";

char *put2(char *p, int v) {
    p[0] = char('0' + v / 10 % 10);
    p[1] = char('0' + v % 10);
    return p + 2;
}

char *put_hex(char *p, unsigned long long v) {
    char tmp[16];
    int n = 0;
    do {
        tmp[n++] = "0123456789abcdef"[v & 15];
        v >>= 4;
    } while (v);
    while (n) *p++ = tmp[--n];
    return p;
}

// Opens path and reads its stat; false with *err = errno.
bool open_file(const std::string &path, FileInfo &f, int *err) {
    f.fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (f.fd < 0) {
        *err = errno;
        return false;
    }
    if (fstat(f.fd, &f.st) != 0) {
        *err = errno;
        ::close(f.fd);
        f.fd = -1;
        return false;
    }
    format_validators(f);
    return true;
}

// Is the file at path still the one we hold? A replaced file (rename over
// it) has another inode; a rewritten one another size or mtime.
bool same_file(const struct stat &a, const struct stat &b) {
    return a.st_ino == b.st_ino && a.st_dev == b.st_dev && a.st_size == b.st_size &&
           a.st_mtim.tv_sec == b.st_mtim.tv_sec && a.st_mtim.tv_nsec == b.st_mtim.tv_nsec;
}
} // namespace

void format_validators(FileInfo &f) {
    char *p = f.etag;
    *p++ = '"';
    p = put_hex(p, (unsigned long long)f.st.st_mtime);
    *p++ = '-';
    p = put_hex(p, (unsigned long long)f.st.st_size);
    *p++ = '"';
    *p = 0;
    f.etag_len = size_t(p - f.etag);

    struct tm tm;
    time_t t = f.st.st_mtime;
    gmtime_r(&t, &tm);
    char *o = f.last_modified;
    for (int i = 0; i < 3; i++) *o++ = kDays[tm.tm_wday % 7 * 3 + i];
    *o++ = ',';
    *o++ = ' ';
    o = put2(o, tm.tm_mday);
    *o++ = ' ';
    for (int i = 0; i < 3; i++) *o++ = kMonths[tm.tm_mon % 12 * 3 + i];
    *o++ = ' ';
    int y = tm.tm_year + 1900;
    o = put2(o, y / 100);
    o = put2(o, y % 100);
    *o++ = ' ';
    o = put2(o, tm.tm_hour);
    *o++ = ':';
    o = put2(o, tm.tm_min);
    *o++ = ':';
    o = put2(o, tm.tm_sec);
    for (char ch : {' ', 'G', 'M', 'T'}) *o++ = ch;
    *o = 0;
}

OpenFileCache::~OpenFileCache() {
    for (auto &kv : map_)
        if (kv.second.info.fd >= 0) ::close(kv.second.info.fd);
}

void OpenFileCache::evict(std::unordered_map<std::string, Entry, Hash, std::equal_to<>>::iterator it) {
    if (it->second.info.fd >= 0) ::close(it->second.info.fd);
    lru_.erase(it->second.lru);
    map_.erase(it);
}

const FileInfo *OpenFileCache::open(std::string_view path, int64_t now, int64_t valid_sec,
                                    int *err) {
    // entries unused for `inactive` are closed as requests pass (nginx runs
    // a timer for it; the oldest few checked per lookup do the same job)
    for (int i = 0; i < 2 && !lru_.empty(); i++) {
        auto old = map_.find(*lru_.back());
        if (old->second.last_used + inactive_ > now) break;
        evict(old);
    }
    auto it = map_.find(path);
    if (it != map_.end()) {
        Entry &e = it->second;
        if (now >= e.valid_until) {
            struct stat st;
            if (stat(it->first.c_str(), &st) != 0 || !same_file(st, e.info.st)) {
                FileInfo fresh;
                if (!open_file(it->first, fresh, err)) {
                    evict(it);
                    return nullptr;
                }
                ::close(e.info.fd);
                e.info = fresh;
            }
            e.valid_until = now + valid_sec;
        }
        e.last_used = now;
        lru_.splice(lru_.begin(), lru_, e.lru);
        return &e.info;
    }
    std::string key(path);
    FileInfo f;
    if (!open_file(key, f, err)) return nullptr;
    if (map_.size() >= max_ && !lru_.empty()) evict(map_.find(*lru_.back()));
    auto [ins, ok] = map_.emplace(std::move(key), Entry{});
    (void)ok;
    Entry &e = ins->second;
    e.info = f;
    e.valid_until = now + valid_sec;
    e.last_used = now;
    lru_.push_front(&ins->first);
    e.lru = lru_.begin();
    return &e.info;
}

} // namespace static_module
