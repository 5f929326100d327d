// The default file cache on a real directory: hits, invalidation by inotify
// seen by the very next lookup, what is refused (symlinks, hard links,
// unplain paths), and the bounds on entries, kept bytes and descriptors.
#include <csetjmp>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
extern "C" { // cmocka.h has no C++ guard of its own
#include <cmocka.h>
}

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <initializer_list>
#include <string>
#include <sched.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "static/watched_cache.h"

using static_module::WatchedCache;

namespace {

std::string g_dir;

void spew(const std::string &path, const std::string &content) {
    FILE *f = fopen(path.c_str(), "w");
    assert_non_null(f);
    fwrite(content.data(), 1, content.size(), f);
    fclose(f);
}

// What the module would serve: the cached entry, or (nullptr: not
// cacheable) the file as it is on disk now, marked.
void mkdirs(std::initializer_list<std::string> dirs) {
    for (const auto &d : dirs) assert_int_equal(mkdir(d.c_str(), 0755), 0);
}

std::string body(WatchedCache &c, const std::string &path) {
    const WatchedCache::File *f = c.lookup(path, 0);
    if (!f) {
        FILE *in = fopen(path.c_str(), "r");
        if (!in) return "(uncached, errno " + std::to_string(errno) + ")";
        char buf[256];
        size_t n = fread(buf, 1, sizeof buf, in);
        fclose(in);
        return "(uncached) " + std::string(buf, n);
    }
    if (f->err) return "(errno " + std::to_string(f->err) + ")";
    return f->has_body ? f->body : "(descriptor)";
}

int setup(void **) {
    char tmpl[] = "/tmp/watched-cache-XXXXXX";
    if (!mkdtemp(tmpl)) return -1;
    g_dir = tmpl;
    return 0;
}

int teardown(void **) {
    std::string cmd = "rm -rf '" + g_dir + "'";
    return system(cmd.c_str()) == 0 ? 0 : -1;
}

void hit_and_change(void **) {
    WatchedCache c;
    std::string a = g_dir + "/a.txt";
    spew(a, "one\n");
    const WatchedCache::File *first = c.lookup(a, 0);
    assert_non_null(first);
    assert_string_equal(first->body.c_str(), "one\n");
    assert_ptr_equal(c.lookup(a, 0), first); // a hit: the same entry
    spew(a, "two\n");                          // same size, in place
    assert_string_equal(body(c, a).c_str(), "two\n");
    std::string tmp = g_dir + "/a.new";
    spew(tmp, "three\n");
    assert_int_equal(rename(tmp.c_str(), a.c_str()), 0);
    assert_string_equal(body(c, a).c_str(), "three\n");
    assert_int_equal(unlink(a.c_str()), 0);
    assert_string_equal(body(c, a).c_str(), "(errno 2)");
    spew(a, "four\n"); // where an absence was cached
    assert_string_equal(body(c, a).c_str(), "four\n");
}

void hard_link_made_later(void **) {
    // a file cached with one link, then linked from a directory we do not
    // watch and written through that name
    WatchedCache c;
    std::string d = g_dir + "/d", u = g_dir + "/unwatched";
    mkdirs({d, u});
    spew(d + "/f", "one\n");
    assert_string_equal(body(c, d + "/f").c_str(), "one\n");
    assert_int_equal(link((d + "/f").c_str(), (u + "/g").c_str()), 0);
    FILE *w = fopen((u + "/g").c_str(), "r+");
    assert_non_null(w);
    fputs("TWO\n", w);
    fclose(w);
    std::string now = body(c, d + "/f");
    assert_true(now == "TWO\n" || now == "(uncached) TWO\n");
}

void directories(void **) {
    WatchedCache c;
    std::string d = g_dir + "/d", sub = d + "/sub";
    mkdirs({d, sub});
    spew(sub + "/f", "f\n");
    assert_string_equal(body(c, sub + "/f").c_str(), "f\n");
    // siblings coming and going in an ancestor do not concern the entry
    const WatchedCache::File *kept = c.lookup(sub + "/f", 0);
    std::string other = d + "/other";
    assert_int_equal(mkdir(other.c_str(), 0755), 0);
    assert_int_equal(rename(other.c_str(), (d + "/other2").c_str()), 0);
    assert_int_equal(rmdir((d + "/other2").c_str()), 0);
    assert_ptr_equal(c.lookup(sub + "/f", 0), kept);
    // an ancestor (not the parent) renamed, and another put in its place
    assert_int_equal(rename(d.c_str(), (g_dir + "/d.old").c_str()), 0);
    // no directory to watch: served from the disk, remembered as such
    assert_string_equal(body(c, sub + "/f").c_str(), "(uncached, errno 2)");
    mkdirs({d, sub});
    spew(sub + "/f", "new f\n");
    assert_string_equal(body(c, sub + "/f").c_str(), "(uncached) new f\n");
    // cached again after kMaxAgeSec
    assert_string_equal(c.lookup(sub + "/f", WatchedCache::kMaxAgeSec)->body.c_str(), "new f\n");
    // the old tree's events no longer touch the new one
    spew(g_dir + "/d.old/sub/f", "old f changed\n");
    assert_string_equal(c.lookup(sub + "/f", WatchedCache::kMaxAgeSec)->body.c_str(), "new f\n");
}

void refused(void **) {
    WatchedCache c;
    std::string t = g_dir + "/target", l = g_dir + "/link", h = g_dir + "/hard";
    spew(t, "t\n");
    assert_int_equal(symlink(t.c_str(), l.c_str()), 0);
    assert_null(c.lookup(l, 0));
    assert_null(c.lookup(g_dir + "//target", 0));
    assert_null(c.lookup(g_dir + "/./target", 0));
    assert_null(c.lookup(g_dir + "/x/../target", 0));
    assert_null(c.lookup("relative", 0));
    assert_int_equal(c.size(), 1); // the link, remembered as such
    // two hard links: the first one asked for is cached, the other is the
    // same file under another name (one watch, one name): not cached
    assert_int_equal(link(t.c_str(), h.c_str()), 0);
    assert_string_equal(body(c, h).c_str(), "t\n");
    assert_null(c.lookup(t, 0));
    spew(t, "T\n"); // written through the other name
    assert_string_equal(body(c, h).c_str(), "T\n");
    // the symlink replaced by a file: served from the disk, then cached
    // (at the latest after kMaxAgeSec; the worker's event reads the queue sooner)
    assert_int_equal(unlink(l.c_str()), 0);
    spew(l, "plain now\n");
    assert_string_equal(body(c, l).c_str(), "(uncached) plain now\n");
    assert_string_equal(c.lookup(l, WatchedCache::kMaxAgeSec)->body.c_str(), "plain now\n");
}

void bounds(void **) {
    WatchedCache::Limits l;
    l.entries = 3;
    l.body_bytes = 25;
    l.descriptors = 1;
    WatchedCache c(l);
    std::string dir = g_dir + "/b";
    assert_int_equal(mkdir(dir.c_str(), 0755), 0);
    for (int i = 0; i < 5; i++) spew(dir + "/s" + std::to_string(i), "0123456789"); // 10 bytes
    for (int i = 0; i < 5; i++) {
        assert_string_equal(body(c, dir + "/s" + std::to_string(i)).c_str(), "0123456789");
        assert_true(c.body_bytes() <= 25);
    }
    assert_int_equal(c.body_bytes(), 20); // two bodies fit
    for (int i = 0; i < 5; i++) assert_string_equal(body(c, dir + "/m" + std::to_string(i)).c_str(), "(errno 2)");
    assert_int_equal(c.size(), 3);
    std::string big(WatchedCache::kBodyMax + 1, 'x');
    spew(dir + "/big1", big);
    spew(dir + "/big2", big);
    assert_string_equal(body(c, dir + "/big1").c_str(), "(descriptor)");
    assert_string_equal(body(c, dir + "/big2").c_str(), "(descriptor)");
    assert_int_equal(c.descriptors(), 1);
    assert_true(c.size() <= 3);
    std::string huge(WatchedCache::kBodyMax, 'y'); // small, but over the byte budget
    spew(dir + "/huge", huge);
    assert_null(c.lookup(dir + "/huge", 0));
}

void backstop(void **) {
    // a write through a shared mapping raises no inotify event, only a new
    // mtime: after kMaxAgeSec the entry is checked with stat() anyway
    WatchedCache c;
    std::string a = g_dir + "/age.txt";
    spew(a, "v1\n");
    int fd = open(a.c_str(), O_RDWR);
    assert_true(fd >= 0);
    char *m = static_cast<char *>(mmap(nullptr, 3, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
    assert_true(m != MAP_FAILED);
    close(fd); // the mapping keeps the file open: no IN_CLOSE_WRITE until munmap
    assert_string_equal(body(c, a).c_str(), "v1\n");
    usleep(10000); // another mtime than the fill saw (nanoseconds)
    m[0] = 'V';
    assert_string_equal(body(c, a).c_str(), "v1\n"); // unseen by inotify: why the backstop exists
    const WatchedCache::File *f = c.lookup(a, WatchedCache::kMaxAgeSec);
    assert_non_null(f);
    assert_string_equal(f->body.c_str(), "V1\n");
    munmap(m, 3);
}

void bind_mount(void **) {
    // the same directory under two paths: inotify names one of them in its
    // events, so the second path is served uncached and the first stays right
    if (unshare(CLONE_NEWNS) != 0 || mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
        skip(); // needs CAP_SYS_ADMIN; the mount stays in this process's namespace
        return;
    }
    std::string x = g_dir + "/x", y = g_dir + "/y";
    mkdirs({x, y});
    spew(x + "/f", "one\n");
    assert_int_equal(mount(x.c_str(), y.c_str(), nullptr, MS_BIND, nullptr), 0);
    WatchedCache c;
    assert_string_equal(body(c, x + "/f").c_str(), "one\n");
    assert_null(c.lookup(y + "/f", 0));
    spew(y + "/f", "two\n");
    assert_string_equal(body(c, x + "/f").c_str(), "two\n");
    umount(y.c_str());
    // a file mounted over another file: its writes are reported elsewhere
    spew(y + "/g", "g\n");
    assert_int_equal(mount((x + "/f").c_str(), (y + "/g").c_str(), nullptr, MS_BIND, nullptr), 0);
    assert_null(c.lookup(y + "/g", 0));
    umount((y + "/g").c_str());
}

// Random changes to a small tree (writes, renames, deletes, hard links,
// directory moves); after each, every path the cache answers
// for must match the disk (what it declines is served from the disk).
void random_changes(void **) {
    WatchedCache c;
    std::string r = g_dir + "/r";
    assert_int_equal(mkdir(r.c_str(), 0755), 0);
    const char *dirs[] = {"", "/a", "/b", "/a/c", "/b/c"};
    const char *names[] = {"x", "y", "z"};
    auto path = [&](int d, int n) { return r + dirs[d] + "/" + names[n]; };
    unsigned seed = 1;
    auto rnd = [&](unsigned n) { return (seed = seed * 1103515245u + 12345u) / 65536u % n; };
    for (int step = 0; step < 3000; step++) {
        std::string p1 = path(1 + rnd(4), rnd(3)), p2 = path(rnd(5), rnd(3));
        std::string d1 = r + dirs[1 + rnd(4)], d2 = r + dirs[1 + rnd(4)];
        switch (rnd(9)) {
        case 0:
        case 1: {
            size_t len = rnd(10) == 0 ? size_t(WatchedCache::kBodyMax) + 10 : rnd(40);
            std::string content = std::string(len, char('a' + rnd(26))) + std::to_string(step);
            if (FILE *f = fopen(p1.c_str(), "w")) { // its directory may be gone
                fwrite(content.data(), 1, content.size(), f);
                fclose(f);
            }
            break;
        }
        case 2: rename(p1.c_str(), p2.c_str()); break;
        case 3: unlink(p1.c_str()); break;
        case 4: rename(d1.c_str(), d2.c_str()); break;
        case 5: mkdir(d1.c_str(), 0755); break;
        case 6: {
            std::string cmd = "rm -rf '" + d1 + "'";
            assert_int_equal(system(cmd.c_str()), 0);
            break;
        }
        case 7: link(p1.c_str(), p2.c_str()); break;
        case 8: // written in place through whichever name
            if (FILE *f = fopen(p2.c_str(), "r+")) {
                fputs(std::to_string(step).c_str(), f);
                fclose(f);
            }
            break;
        }
        for (int d = 0; d < 5; d++) {
            for (int n = 0; n <= 3; n++) {
                std::string p = n == 3 ? r + dirs[d] : path(d, n);
                if (p == r) continue;
                const WatchedCache::File *f = c.lookup(p, 0);
                if (!f) continue;
                struct stat st;
                int on_disk = lstat(p.c_str(), &st) == 0 ? 0 : errno;
                if (f->err) {
                    assert_int_equal(on_disk, f->err);
                    continue;
                }
                assert_int_equal(on_disk, 0);
                assert_int_equal(st.st_ino, f->info.st.st_ino);
                if (S_ISDIR(st.st_mode)) continue;
                std::string disk(size_t(st.st_size), '\0');
                int fd = open(p.c_str(), O_RDONLY);
                assert_true(fd >= 0);
                assert_int_equal(pread(fd, disk.data(), disk.size(), 0), ssize_t(disk.size()));
                close(fd);
                std::string got = f->has_body ? f->body : std::string(size_t(f->info.st.st_size), '\0');
                if (!f->has_body)
                    assert_int_equal(pread(f->info.fd, got.data(), got.size(), 0), ssize_t(got.size()));
                if (got != disk) fail_msg("step %d: %s is stale", step, p.c_str());
            }
        }
    }
}

} // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(hit_and_change, setup, teardown),
        cmocka_unit_test_setup_teardown(hard_link_made_later, setup, teardown),
        cmocka_unit_test_setup_teardown(directories, setup, teardown),
        cmocka_unit_test_setup_teardown(refused, setup, teardown),
        cmocka_unit_test_setup_teardown(bounds, setup, teardown),
        cmocka_unit_test_setup_teardown(backstop, setup, teardown),
        cmocka_unit_test_setup_teardown(bind_mount, setup, teardown),
        cmocka_unit_test_setup_teardown(random_changes, setup, teardown),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
