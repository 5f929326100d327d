#include "base/clock.h"

#include <cstdio>
#include <cstring>
#include <ctime>
#include <sys/time.h>

namespace portico::clock {
namespace {
struct Cache {
    int64_t sec = -1, ms = 0;
    char http[64], log[64], local[64], iso[64];
};
thread_local Cache c;

const char *const kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
const char *const kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                               "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
} // namespace

void format_http_date(int64_t sec, char out[30]) {
    time_t t = static_cast<time_t>(sec);
    struct tm tm;
    gmtime_r(&t, &tm);
    char buf[80];
    snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d GMT", kDays[tm.tm_wday & 7],
             tm.tm_mday, kMonths[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
             tm.tm_sec);
    memcpy(out, buf, 29);
    out[29] = 0;
}

void update() {
    struct timeval tv;
    gettimeofday(&tv, nullptr);
    c.ms = int64_t(tv.tv_sec) * 1000 + tv.tv_usec / 1000;
    if (tv.tv_sec == c.sec) return;
    c.sec = tv.tv_sec;
    format_http_date(c.sec, c.http);
    time_t t = tv.tv_sec;
    struct tm tm;
    localtime_r(&t, &tm);
    long off = tm.tm_gmtoff / 60;
    char sign = off < 0 ? '-' : '+';
    if (off < 0) off = -off;
    snprintf(c.log, sizeof c.log, "%04d/%02d/%02d %02d:%02d:%02d", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    snprintf(c.local, sizeof c.local, "%02d/%s/%04d:%02d:%02d:%02d %c%02ld%02ld", tm.tm_mday,
             kMonths[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec, sign,
             off / 60, off % 60);
    snprintf(c.iso, sizeof c.iso, "%04d-%02d-%02dT%02d:%02d:%02d%c%02ld:%02ld",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             sign, off / 60, off % 60);
}

static void ensure() {
    if (c.sec < 0) update();
}
int64_t now_ms() { ensure(); return c.ms; }
int64_t now_sec() { ensure(); return c.sec; }
std::string_view http_date() { ensure(); return c.http; }
std::string_view log_time() { ensure(); return c.log; }
std::string_view local_time() { ensure(); return c.local; }
std::string_view iso8601() { ensure(); return c.iso; }

bool parse_http_date(std::string_view s, int64_t &sec) {
    // Only IMF-fixdate; obsolete formats are answered as if the header were
    // absent, which is what RFC 9110 §13.1.3 allows for invalid dates.
    if (s.size() != 29 || s.substr(25) != " GMT") return false;
    char buf[30];
    memcpy(buf, s.data(), 29);
    buf[29] = 0;
    struct tm tm{};
    char *end = strptime(buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (!end || *end) return false;
    sec = timegm(&tm);
    return true;
}
} // namespace portico::clock
