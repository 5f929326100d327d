#include "symlinks.h"

#include <cerrno>
#include <fcntl.h>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

namespace static_module {

int open_checked(std::string_view path, size_t trusted_prefix, SymlinkPolicy policy, int *err) {
    std::string p(path);
    if (policy == SymlinkPolicy::Off || p.empty() || p[0] != '/') {
        int fd = open(p.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0) *err = errno;
        return fd;
    }
    // Walk component by component from the trusted prefix (a directory that
    // is opened normally), checking each name with lstat semantics, so no
    // link anywhere below it, and no race between check and use: every
    // step is relative to the descriptor of the directory already checked.
    if (trusted_prefix > p.size()) trusted_prefix = 0;
    while (trusted_prefix > 1 && p[trusted_prefix - 1] == '/') trusted_prefix--;
    size_t slash = p.rfind('/', trusted_prefix ? trusted_prefix - 1 : 0);
    std::string base = trusted_prefix > 1 ? p.substr(0, trusted_prefix) : "/";
    size_t pos = trusted_prefix > 1 ? trusted_prefix : 1;
    (void)slash;
    int dir = open(base.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0) {
        *err = errno;
        return -1;
    }
    while (pos < p.size()) {
        while (pos < p.size() && p[pos] == '/') pos++;
        size_t end = p.find('/', pos);
        bool last = end == std::string::npos;
        std::string name = p.substr(pos, last ? std::string::npos : end - pos);
        if (name.empty()) break;
        struct stat lst;
        if (fstatat(dir, name.c_str(), &lst, AT_SYMLINK_NOFOLLOW) != 0) {
            *err = errno;
            close(dir);
            return -1;
        }
        if (S_ISLNK(lst.st_mode)) {
            bool allowed = false;
            if (policy == SymlinkPolicy::IfNotOwner) {
                struct stat target;
                allowed = fstatat(dir, name.c_str(), &target, 0) == 0 && target.st_uid == lst.st_uid;
            }
            if (!allowed) {
                *err = ELOOP;
                close(dir);
                return -1;
            }
        }
        int flags = last ? O_RDONLY | O_NONBLOCK | O_CLOEXEC : O_PATH | O_DIRECTORY | O_CLOEXEC;
        if (!S_ISLNK(lst.st_mode)) flags |= O_NOFOLLOW;
        int next = openat(dir, name.c_str(), flags);
        int e = errno;
        close(dir);
        if (next < 0) {
            *err = e;
            return -1;
        }
        if (last) return next;
        dir = next;
        pos = end + 1;
    }
    *err = EISDIR;
    close(dir);
    return -1;
}
} // namespace static_module
