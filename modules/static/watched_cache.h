#pragma once
// The default file cache (no `open_file_cache` directive): descriptors,
// stat, validators and the whole content of small files, kept per worker and
// invalidated by inotify, so a hit costs no file syscalls and a change is
// never served stale. nginx caches nothing by default; lighttpd's stat cache
// is where its static lead comes from.
//
// Why a hit is never stale: every directory from "/" down to a cached file
// is watched (by inode, symlinks refused) before the file is opened, the
// file itself before it is read (its writes through any name); and
// the inotify queue is drained at the start of every lookup. The kernel
// queues an event before the changing syscall returns, so a request that
// arrives after a change sees it (the worker's event on the queue alone
// would not do: epoll may report a keep-alive socket, still on its ready
// list from the previous request, before the inotify descriptor). What
// inotify does not see (a mount over a directory, writes through a shared
// mapping, network file systems changed elsewhere) is caught by a stat
// revalidation after kMaxAgeSec; what would be reported under another name
// (a file or directory already cached under another path, a bind-mounted
// file, a path through a symlink) is not cached: remembered as such, and
// served as without a cache.
#include "open_file_cache.h"

#include <cstdint>
#include <list>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>

struct event;
struct event_base;

namespace static_module {

struct WatchedCacheLimits {
    size_t entries = 1024;
    size_t body_bytes = 8 * 1024 * 1024;
    size_t descriptors = 64; // files too big to keep whole
};

class WatchedCache {
  public:
    // Bodies up to this size are read whole and kept: the response then
    // leaves in one write with its header. 32 KiB: the core's TLS path reads
    // files up to this size the same way; above it sendfile's zero copy wins.
    static constexpr int64_t kBodyMax = 32 * 1024;
    static constexpr int64_t kMaxAgeSec = 1;
    using Limits = WatchedCacheLimits;

    struct File {
        FileInfo info;     // info.fd -1 when the body is kept instead
        int err = 0;       // an errno: a cached ENOENT
        bool has_body = false;
        bool pass = false; // not cacheable: lookup() answers nullptr
        int watch = -1;    // inotify watch on the file itself
        std::string body;  // the whole file when has_body
    };

    explicit WatchedCache(Limits limits = {}) : limits_(limits) {}
    WatchedCache(const WatchedCache &) = delete;
    WatchedCache &operator=(const WatchedCache &) = delete;
    ~WatchedCache();

    // The file at path (absolute, normalized): a cached or fresh entry, its
    // err set for a missing file. nullptr: not cacheable here (a symlink on
    // the way, several hard links, no inotify watch to be had, another
    // error), the caller opens it itself.
    const File *lookup(std::string_view path, int64_t now);

    // Drains the queue also while the worker serves nothing else, so a
    // deleted file's descriptor is closed promptly (optional: lookups drain).
    void attach(event_base *base);
    void detach();
    size_t size() const { return entries_.size(); }
    size_t body_bytes() const { return body_bytes_; }
    size_t descriptors() const { return descriptors_; }

  private:
    struct Entry {
        File file;
        int64_t checked = 0; // last stat (or fill), for kMaxAgeSec
        std::list<const std::string *>::iterator lru;
    };
    struct Watch {
        int wd;
        uint32_t mask;
    };
    using Entries = std::map<std::string, Entry, std::less<>>;

    bool start();
    bool drain(); // true: events were read
    void forget(const std::string &path); // path and everything below it
    void erase(Entries::iterator it);
    bool watch_dirs(std::string_view path);
    bool load(const std::string &path, File &f);
    const File *fill(std::string_view path, int64_t now);
    bool make_room(bool body, size_t bytes, bool fd);

    Limits limits_;
    int ifd_ = -1; // -2: inotify unavailable, the cache stays off
    event *ev_ = nullptr;
    Entries entries_;
    std::list<const std::string *> lru_; // front: most recent
    std::map<std::string, Watch, std::less<>> dirs_;
    std::unordered_map<int, std::string> wd_dirs_; // directories' and files' watches
    size_t body_bytes_ = 0, descriptors_ = 0;
};

} // namespace static_module
