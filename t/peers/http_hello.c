/*
 * http_hello — a tiny HTTP/1.1 upstream for benchmarks and end-to-end tests.
 *
 * Single process, epoll, non-blocking, keep-alive, pipelining. Every request
 * gets "200 OK" with the fixed body "hello" and a Content-Length. It parses
 * only what an upstream must: the end of the head, the request line's method
 * (HEAD gets no body) and version (HTTP/1.0 closes unless keep-alive),
 * "Connection: close" and "Content-Length" (the request body is read and
 * discarded). A chunked request body is not decoded: that request is answered
 * and the connection closed after it.
 *
 *   http_hello -l HOST:PORT | -u /path.sock  [-c] [-s FILE]
 *     -c       on SIGUSR1 print the number of accepted connections to stdout
 *     -s FILE  on each accept, write the number of accepted connections to
 *              FILE (written to FILE.tmp then renamed, so readers never see
 *              a partial number)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "peer_listen.h"

#define RBUF 65536

struct conn {
    int fd;
    int want_out;          /* EPOLLOUT registered */
    int closing;           /* close once the output is flushed */
    unsigned long long body_left; /* request body bytes still to discard */
    size_t rlen;
    char *out;
    size_t olen, ocap, ooff;
    char rbuf[RBUF];
};

static int ep;
static unsigned long long accepted;
static const char *count_file;
static volatile sig_atomic_t usr1;

static void on_usr1(int sig)
{
    (void)sig;
    usr1 = 1;
}



static void conn_close(struct conn *c)
{
    close(c->fd);
    free(c->out);
    free(c);
}

static int out_append(struct conn *c, const char *p, size_t n)
{
    if (c->olen + n > c->ocap) {
        size_t cap = c->ocap ? c->ocap : 4096;
        while (cap < c->olen + n)
            cap *= 2;
        char *q = realloc(c->out, cap);
        if (!q)
            return -1;
        c->out = q;
        c->ocap = cap;
    }
    memcpy(c->out + c->olen, p, n);
    c->olen += n;
    return 0;
}

static int flush_out(struct conn *c)
{
    while (c->ooff < c->olen) {
        ssize_t w = send(c->fd, c->out + c->ooff, c->olen - c->ooff, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EAGAIN)
                break;
            if (errno == EINTR)
                continue;
            return -1;
        }
        c->ooff += (size_t)w;
    }
    int want = c->ooff < c->olen;
    if (!want) {
        c->ooff = c->olen = 0;
        if (c->closing)
            return -1;
    }
    if (want != c->want_out) {
        struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0), .data.ptr = c};
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
        c->want_out = want;
    }
    return 0;
}

/* case-insensitive search for needle in [p, p+n) */
static int has_token(const char *p, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++)
        if (strncasecmp(p + i, needle, k) == 0)
            return 1;
    return 0;
}

/* handle one complete head [h, h+n) (n includes the final CRLFCRLF) */
static int on_head(struct conn *c, const char *h, size_t n)
{
    const char *eol = memchr(h, '\r', n);
    size_t line = eol ? (size_t)(eol - h) : n;
    int head_only = line >= 5 && memcmp(h, "HEAD ", 5) == 0;
    int http10 = line >= 8 && memcmp(h + line - 8, "HTTP/1.0", 8) == 0;
    int keep = !http10;
    const char *p = h + line + 2, *end = h + n;
    while (p < end) {
        const char *e = memchr(p, '\r', (size_t)(end - p));
        if (!e || e == p)
            break;
        size_t len = (size_t)(e - p);
        const char *colon = memchr(p, ':', len);
        if (colon) {
            size_t nl = (size_t)(colon - p);
            const char *v = colon + 1;
            size_t vl = (size_t)(e - v);
            if (nl == 10 && strncasecmp(p, "connection", 10) == 0) {
                if (has_token(v, vl, "close"))
                    keep = 0;
                else if (has_token(v, vl, "keep-alive"))
                    keep = 1;
            } else if (nl == 14 && strncasecmp(p, "content-length", 14) == 0) {
                c->body_left = strtoull(v, NULL, 10);
            } else if (nl == 17 && strncasecmp(p, "transfer-encoding", 17) == 0) {
                keep = 0; /* chunked bodies are not decoded: answer and close */
            }
        }
        p = e + 2;
    }
    static const char ka[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\n";
    static const char cl[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n"
                             "Connection: close\r\n\r\n";
    int rc = keep ? out_append(c, ka, sizeof ka - 1) : out_append(c, cl, sizeof cl - 1);
    if (rc == 0 && !head_only)
        rc = out_append(c, "hello", 5);
    if (!keep)
        c->closing = 1;
    return rc;
}

static int on_read(struct conn *c)
{
    for (;;) {
        ssize_t r = recv(c->fd, c->rbuf + c->rlen, RBUF - c->rlen, 0);
        if (r == 0)
            return -1;
        if (r < 0) {
            if (errno == EAGAIN)
                break;
            if (errno == EINTR)
                continue;
            return -1;
        }
        size_t end = c->rlen + (size_t)r, pos = 0;
        while (pos < end && !c->closing) {
            if (c->body_left) {
                size_t k = end - pos < c->body_left ? end - pos : (size_t)c->body_left;
                pos += k;
                c->body_left -= k;
                continue;
            }
            char *t = memmem(c->rbuf + pos, end - pos, "\r\n\r\n", 4);
            if (!t)
                break;
            size_t hn = (size_t)(t + 4 - (c->rbuf + pos));
            if (on_head(c, c->rbuf + pos, hn) < 0)
                return -1;
            pos += hn;
        }
        if (c->closing) {
            c->rlen = 0;
            break;
        }
        memmove(c->rbuf, c->rbuf + pos, end - pos);
        c->rlen = end - pos;
        if (c->rlen == RBUF)
            return -1; /* head too large */
        if ((size_t)r < RBUF / 2)
            break;
    }
    return flush_out(c);
}

int main(int argc, char **argv)
{
    const char *tcp = NULL, *unix_path = NULL;
    int print_count = 0, opt;
    while ((opt = getopt(argc, argv, "l:u:s:c")) != -1) {
        switch (opt) {
        case 'l': tcp = optarg; break;
        case 'u': unix_path = optarg; break;
        case 's': count_file = optarg; break;
        case 'c': print_count = 1; break;
        default:
            fprintf(stderr, "usage: http_hello -l HOST:PORT | -u PATH [-c] [-s FILE]\n");
            return 2;
        }
    }
    if (!tcp == !unix_path) {
        fprintf(stderr, "usage: http_hello -l HOST:PORT | -u PATH [-c] [-s FILE]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    if (print_count) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_usr1; /* no SA_RESTART: epoll_wait returns EINTR */
        sigaction(SIGUSR1, &sa, NULL);
    }
    int lfd = peer_listen("http_hello", tcp, unix_path);
    if (count_file)
        peer_write_count(count_file, accepted);
    ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    struct epoll_event evs[256];
    for (;;) {
        int n = epoll_wait(ep, evs, 256, -1);
        if (usr1) {
            usr1 = 0;
            printf("%llu\n", accepted);
            fflush(stdout);
        }
        if (n < 0) {
            if (errno == EINTR)
                continue;
            perror("http_hello: epoll_wait");
            return 1;
        }
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (!c) {
                int fd;
                while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    int one = 1;
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    struct conn *nc = calloc(1, sizeof *nc);
                    if (!nc) {
                        close(fd);
                        continue;
                    }
                    nc->fd = fd;
                    struct epoll_event cev = {.events = EPOLLIN, .data.ptr = nc};
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev);
                    accepted++;
                    if (count_file)
                        peer_write_count(count_file, accepted);
                }
                continue;
            }
            int rc = 0;
            if (evs[i].events & EPOLLERR)
                rc = -1;
            if (!rc && (evs[i].events & EPOLLOUT))
                rc = flush_out(c);
            if (!rc && (evs[i].events & (EPOLLIN | EPOLLHUP)))
                rc = on_read(c);
            if (rc < 0)
                conn_close(c);
        }
    }
}
