#include "watched_cache.h"

#include <cerrno>
#include <cstring>
#include <event2/event.h>
#include <fcntl.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

namespace static_module {
namespace {
// Directories above a cached file report only about themselves (being
// moved, deleted, or their permissions changed: IN_ATTRIB), since every
// directory down the path is watched: a name on the path re-pointed means
// the directory it named was moved or deleted (or, overwritten by a rename,
// lost a link: IN_ATTRIB). Their other entries' comings and goings (a busy
// /tmp) would only wake the worker.
constexpr uint32_t kAncestorMask = IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | IN_DONT_FOLLOW;
// The directory holding cached files (or a cached absence): its entries
// coming, going and changing attributes too.
constexpr uint32_t kParentMask = kAncestorMask | IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO;
// A cached file itself, by inode: its writes whatever name they came
// through (another hard link, a bind mount), and new links (IN_ATTRIB).
constexpr uint32_t kFileMask = IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_DELETE_SELF |
                               IN_MOVE_SELF | IN_DONT_FOLLOW | IN_MASK_ADD;
// Events after which a name may refer to another directory: its watch goes.
constexpr uint32_t kRenamed = IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE |
                              IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED;

std::string join(std::string_view dir, std::string_view name) {
    std::string p(dir);
    if (p.size() > 1) p += '/';
    p += name;
    return p;
}

// "a/b" -> [a/b/, a/b0): the keys strictly below a/b in a sorted map
template <class Map> void erase_below(Map &m, const std::string &p, auto &&each) {
    std::string lo = p.size() > 1 ? p + '/' : p, hi = lo;
    hi.back() = char('/' + 1);
    for (auto it = m.lower_bound(lo); it != m.end() && it->first < hi;) each(it++);
}

// Anything that makes an entry unsafe to keep: another inode, content,
// permissions (ctime covers chmod/chown/link count), or a symlink now.
bool same_file(const struct stat &a, const struct stat &b) {
    return a.st_ino == b.st_ino && a.st_dev == b.st_dev && a.st_size == b.st_size &&
           a.st_mode == b.st_mode && a.st_mtim.tv_sec == b.st_mtim.tv_sec &&
           a.st_mtim.tv_nsec == b.st_mtim.tv_nsec && a.st_ctim.tv_sec == b.st_ctim.tv_sec &&
           a.st_ctim.tv_nsec == b.st_ctim.tv_nsec;
}

// A file bind-mounted over another name: writes through its source name
// are reported to the source's directory, not to ours.
bool mount_root(int fd) {
    struct statx sx;
    return statx(fd, "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC, 0, &sx) == 0 &&
           (sx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) &&
           (sx.stx_attributes & STATX_ATTR_MOUNT_ROOT);
}

// Only plain absolute paths: "." / ".." / "//" would let two keys name one
// file, and the watches follow the spelling.
bool plain_path(std::string_view p) {
    if (p.size() < 2 || p[0] != '/' || p.back() == '/') return false;
    for (size_t i = 0; i < p.size(); i++) {
        if (p[i] != '/') continue;
        std::string_view c = p.substr(i + 1, p.find('/', i + 1) - i - 1);
        if (c.empty() || c == "." || c == "..") return false;
    }
    return true;
}
} // namespace

WatchedCache::~WatchedCache() {
    detach();
    for (auto &kv : entries_)
        if (kv.second.file.info.fd >= 0) ::close(kv.second.file.info.fd);
    if (ifd_ >= 0) ::close(ifd_);
}

bool WatchedCache::start() {
    if (ifd_ == -1) {
        ifd_ = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (ifd_ < 0) ifd_ = -2; // e.g. max_user_instances: serve uncached
    }
    return ifd_ >= 0;
}

void WatchedCache::attach(event_base *base) {
    if (ev_ || !start() || !base) return;
    ev_ = event_new(
        base, ifd_, EV_READ | EV_PERSIST,
        [](evutil_socket_t, short, void *self) { static_cast<WatchedCache *>(self)->drain(); },
        this);
    if (ev_ && event_add(ev_, nullptr) != 0) {
        event_free(ev_);
        ev_ = nullptr;
    }
}

void WatchedCache::detach() {
    if (ev_) event_free(ev_);
    ev_ = nullptr;
}

void WatchedCache::erase(Entries::iterator it) {
    File &f = it->second.file;
    if (f.info.fd >= 0) {
        ::close(f.info.fd);
        descriptors_--;
    }
    if (f.watch >= 0) {
        inotify_rm_watch(ifd_, f.watch);
        wd_dirs_.erase(f.watch);
    }
    body_bytes_ -= f.body.size();
    lru_.erase(it->second.lru);
    entries_.erase(it);
}

void WatchedCache::forget(const std::string &p) {
    if (auto it = entries_.find(p); it != entries_.end()) erase(it);
    erase_below(entries_, p, [&](Entries::iterator it) { erase(it); });
}

bool WatchedCache::drain() {
    alignas(inotify_event) char buf[4096];
    for (bool any = false;; any = true) {
        ssize_t n = read(ifd_, buf, sizeof buf);
        if (n <= 0) return any; // EAGAIN: all seen
        for (char *p = buf; p < buf + n;) {
            auto *ev = reinterpret_cast<inotify_event *>(p);
            p += sizeof(inotify_event) + ev->len;
            if (ev->mask & IN_Q_OVERFLOW) {
                // events were lost: nothing known can be trusted
                while (!entries_.empty()) erase(entries_.begin());
                for (auto &kv : dirs_) inotify_rm_watch(ifd_, kv.second.wd);
                dirs_.clear();
                wd_dirs_.clear();
                continue;
            }
            auto wd = wd_dirs_.find(ev->wd);
            if (wd == wd_dirs_.end()) continue; // a watch already dropped
            std::string_view name(ev->name, ev->len ? strnlen(ev->name, ev->len) : 0);
            std::string path = name.empty() ? wd->second : join(wd->second, name);
            forget(path);
            if (!(ev->mask & kRenamed)) continue;
            // the name may now be another directory: watch it afresh
            auto drop = [&](decltype(dirs_)::iterator it) {
                if (it->second.wd != ev->wd || !(ev->mask & IN_IGNORED))
                    inotify_rm_watch(ifd_, it->second.wd);
                wd_dirs_.erase(it->second.wd);
                dirs_.erase(it);
            };
            if (auto it = dirs_.find(path); it != dirs_.end()) drop(it);
            erase_below(dirs_, path, drop);
        }
    }
}

bool WatchedCache::watch_dirs(std::string_view path) {
    size_t last = path.rfind('/');
    for (size_t s = 0;; s = path.find('/', s + 1)) {
        std::string_view dir = s ? path.substr(0, s) : std::string_view("/");
        uint32_t want = s == last ? kParentMask : kAncestorMask;
        auto it = dirs_.find(dir);
        if (it == dirs_.end() || (it->second.mask & want) != want) {
            if (it != dirs_.end()) want |= it->second.mask;
            std::string d(dir);
            // IN_MASK_ADD: never narrows what a watch reports
            int wd = inotify_add_watch(ifd_, d.c_str(), want | IN_MASK_ADD);
            // a symlink (ENOTDIR), no read permission, the watch limit: the
            // file is served uncached
            if (wd < 0) return false;
            // one directory under two paths (a bind mount): its events name
            // only one of them, so nothing below the other may be kept
            if (auto owner = wd_dirs_.find(wd); owner != wd_dirs_.end() && owner->second != d)
                return false;
            if (it == dirs_.end()) {
                it = dirs_.emplace(d, Watch{wd, want}).first;
            } else if (it->second.wd != wd) {
                wd_dirs_.erase(it->second.wd);
                it->second.wd = wd;
            }
            it->second.mask = want;
            wd_dirs_[wd] = std::move(d);
        }
        if (s == last) return true;
    }
}

bool WatchedCache::make_room(bool body, size_t bytes, bool fd) {
    auto no_entry = [&] { return entries_.size() >= limits_.entries; };
    auto no_bytes = [&] { return body && body_bytes_ + bytes > limits_.body_bytes; };
    auto no_fd = [&] { return fd && descriptors_ >= limits_.descriptors; };
    // least recently used first, skipping entries whose going would not help
    for (auto it = lru_.end(); (no_entry() || no_bytes() || no_fd()) && it != lru_.begin();) {
        --it;
        auto e = entries_.find(**it);
        const File &f = e->second.file;
        if (!no_entry() && !(no_bytes() && !f.body.empty()) && !(no_fd() && f.info.fd >= 0))
            continue;
        it = std::next(it); // erase() takes *it out of the list
        erase(e);
    }
    return !no_entry() && !no_bytes() && !no_fd();
}

bool WatchedCache::load(const std::string &path, File &f) {
    // watches first: a change after this point is queued, and the next
    // lookup drops what we are about to cache
    if (!watch_dirs(path)) return false;
    int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        if (errno != ENOENT) return false; // ELOOP: a symlink; other errors are not kept
        f.err = ENOENT;
        return true;
    }
    if (fstat(fd, &f.info.st) != 0 ||
        (!S_ISDIR(f.info.st.st_mode) && (!S_ISREG(f.info.st.st_mode) || mount_root(fd)))) {
        ::close(fd);
        return false;
    }
    format_validators(f.info);
    if (S_ISDIR(f.info.st.st_mode)) { // its parent's watch reports its changes
        ::close(fd);
        return true;
    }
    // The file's own watch, for writes through another name. Had the name
    // been re-pointed since open(), the parent's watch has queued it.
    int wd = inotify_add_watch(ifd_, path.c_str(), kFileMask);
    if (wd < 0 || wd_dirs_.count(wd)) { // watched already: the same file under another name
        ::close(fd);
        return false;
    }
    f.watch = wd;
    wd_dirs_[wd] = path;
    struct stat now;
    bool ok = true;
    if (f.info.st.st_size <= kBodyMax) {
        f.body.resize(size_t(f.info.st.st_size));
        ok = (f.body.empty() ? 0 : pread(fd, f.body.data(), f.body.size(), 0)) == f.info.st.st_size;
        f.has_body = true;
    }
    // unchanged from the fstat to now, when its watch covers it
    ok = ok && fstat(fd, &now) == 0 && same_file(now, f.info.st);
    if (!ok || f.has_body) ::close(fd);
    else f.info.fd = fd;
    return ok;
}

const WatchedCache::File *WatchedCache::fill(std::string_view path, int64_t now) {
    if (!plain_path(path)) return nullptr; // hits need no check: every key passed it
    std::string key(path);
    File f;
    if (!load(key, f) || !make_room(f.has_body, f.body.size(), f.info.fd >= 0)) {
        // served uncached from now on, and remembered so: no watch is
        // tried again for it until something along its path changes or
        // kMaxAgeSec passes
        if (f.info.fd >= 0) ::close(f.info.fd);
        if (f.watch >= 0) {
            inotify_rm_watch(ifd_, f.watch);
            wd_dirs_.erase(f.watch);
        }
        f = File{};
        f.pass = true;
        if (!make_room(false, 0, false)) return nullptr;
    }
    auto [it, fresh] = entries_.emplace(std::move(key), Entry{});
    (void)fresh;
    Entry &e = it->second;
    e.file = std::move(f);
    e.checked = now;
    body_bytes_ += e.file.body.size();
    if (e.file.info.fd >= 0) descriptors_++;
    lru_.push_front(&it->first);
    e.lru = lru_.begin();
    return e.file.pass ? nullptr : &e.file;
}

const WatchedCache::File *WatchedCache::lookup(std::string_view path, int64_t now) {
    if (!start()) return nullptr;
    auto it = entries_.find(path);
    // a path served uncached trusts nothing here: no need to read the queue
    bool pass = it != entries_.end() && it->second.file.pass;
    if (!pass && drain()) it = entries_.find(path);
    if (it == entries_.end()) return fill(path, now);
    Entry &e = it->second;
    if (now - e.checked >= kMaxAgeSec) {
        struct stat st;
        if (e.file.err || e.file.pass ||
            fstatat(AT_FDCWD, it->first.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 ||
            !same_file(st, e.file.info.st)) {
            erase(it);
            if (pass) drain(); // what fill() is about to trust
            return fill(path, now);
        }
        e.checked = now;
    }
    if (e.lru != lru_.begin()) lru_.splice(lru_.begin(), lru_, e.lru);
    return e.file.pass ? nullptr : &e.file;
}

} // namespace static_module
