/*
 * fcgi_hello — a tiny, fast FastCGI responder for benchmarks and end-to-end
 * tests (no libfcgi: the few records it needs are implemented here).
 *
 * Single process, epoll, non-blocking, many connections. For each request it
 * reads BEGIN_REQUEST, PARAMS and STDIN (contents discarded); on the empty
 * STDIN record that ends the request body it answers
 *     STDOUT "Content-Type: text/plain\r\n\r\nhello", empty STDOUT, END_REQUEST
 * and closes the connection unless BEGIN_REQUEST had FCGI_KEEP_CONN. Several
 * request ids on one connection are answered independently. GET_VALUES is
 * answered (FCGI_MPXS_CONNS=1), unknown management records get UNKNOWN_TYPE.
 *
 *   fcgi_hello -l HOST:PORT | -u /path.sock  [-c] [-s FILE]
 *     -c       on SIGUSR1 print the number of accepted connections to stdout
 *     -s FILE  on each accept, write the number of accepted connections to
 *              FILE (via FILE.tmp + rename)
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
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "peer_listen.h"

#define RBUF (65536 + 512) /* one maximal record (8 + 65535 + 255) fits */

enum {
    FCGI_BEGIN_REQUEST = 1,
    FCGI_ABORT_REQUEST = 2,
    FCGI_END_REQUEST = 3,
    FCGI_PARAMS = 4,
    FCGI_STDIN = 5,
    FCGI_STDOUT = 6,
    FCGI_GET_VALUES = 9,
    FCGI_GET_VALUES_RESULT = 10,
    FCGI_UNKNOWN_TYPE = 11,
    FCGI_KEEP_CONN = 1,
};

struct conn {
    int fd;
    int want_out;
    int closing;
    size_t rlen;
    char *out;
    size_t olen, ocap, ooff;
    unsigned char keep[65536 / 8]; /* KEEP_CONN flag per request id */
    unsigned char rbuf[RBUF];
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

static int out_append(struct conn *c, const void *p, size_t n)
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

static void header(unsigned char *h, int type, unsigned id, unsigned len, unsigned pad)
{
    h[0] = 1;
    h[1] = (unsigned char)type;
    h[2] = (unsigned char)(id >> 8);
    h[3] = (unsigned char)id;
    h[4] = (unsigned char)(len >> 8);
    h[5] = (unsigned char)len;
    h[6] = (unsigned char)pad;
    h[7] = 0;
}

static int respond(struct conn *c, unsigned id, int app_status)
{
    static const char body[] = "Content-Type: text/plain\r\n\r\nhello";
    /* STDOUT(body, padded to 8) + empty STDOUT + END_REQUEST, one append */
    unsigned char buf[8 + sizeof body + 8 + 8 + 8 + 8];
    size_t blen = sizeof body - 1, pad = (8 - blen % 8) % 8, n = 0;
    header(buf, FCGI_STDOUT, id, (unsigned)blen, (unsigned)pad);
    n = 8;
    memcpy(buf + n, body, blen);
    n += blen;
    memset(buf + n, 0, pad);
    n += pad;
    header(buf + n, FCGI_STDOUT, id, 0, 0);
    n += 8;
    header(buf + n, FCGI_END_REQUEST, id, 8, 0);
    n += 8;
    memset(buf + n, 0, 8);
    buf[n + 3] = (unsigned char)app_status; /* appStatus (big-endian), protocolStatus 0 */
    n += 8;
    if (!(c->keep[id / 8] & (1u << (id % 8))))
        c->closing = 1;
    return out_append(c, buf, n);
}

static int on_record(struct conn *c, const unsigned char *r)
{
    int type = r[1];
    unsigned id = (unsigned)r[2] << 8 | r[3];
    unsigned len = (unsigned)r[4] << 8 | r[5];
    const unsigned char *body = r + 8;
    unsigned char h[8];
    switch (type) {
    case FCGI_BEGIN_REQUEST:
        if (len < 8)
            return -1;
        if (body[2] & FCGI_KEEP_CONN)
            c->keep[id / 8] |= (unsigned char)(1u << (id % 8));
        else
            c->keep[id / 8] &= (unsigned char)~(1u << (id % 8));
        return 0;
    case FCGI_PARAMS:
        return 0;
    case FCGI_STDIN:
        return len == 0 ? respond(c, id, 0) : 0;
    case FCGI_ABORT_REQUEST:
        return respond(c, id, 1);
    case FCGI_GET_VALUES: {
        static const char v[] = "\x0f\x01" "FCGI_MPXS_CONNS" "1";
        unsigned char pad[8] = {0};
        size_t vl = sizeof v - 1, pl = (8 - vl % 8) % 8;
        header(h, FCGI_GET_VALUES_RESULT, 0, (unsigned)vl, (unsigned)pl);
        if (out_append(c, h, 8) || out_append(c, v, vl) || out_append(c, pad, pl))
            return -1;
        return 0;
    }
    default:
        if (id != 0)
            return 0; /* unknown application record: ignore */
        header(h, FCGI_UNKNOWN_TYPE, 0, 8, 0);
        unsigned char u[8] = {(unsigned char)type, 0, 0, 0, 0, 0, 0, 0};
        return out_append(c, h, 8) || out_append(c, u, 8) ? -1 : 0;
    }
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
        while (end - pos >= 8 && !c->closing) {
            const unsigned char *h = c->rbuf + pos;
            if (h[0] != 1)
                return -1; /* not FastCGI version 1 */
            size_t total = 8 + ((size_t)h[4] << 8 | h[5]) + h[6];
            if (end - pos < total)
                break;
            if (on_record(c, h) < 0)
                return -1;
            pos += total;
        }
        if (c->closing) {
            c->rlen = 0;
            break;
        }
        memmove(c->rbuf, c->rbuf + pos, end - pos);
        c->rlen = end - pos;
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
            fprintf(stderr, "usage: fcgi_hello -l HOST:PORT | -u PATH [-c] [-s FILE]\n");
            return 2;
        }
    }
    if (!tcp == !unix_path) {
        fprintf(stderr, "usage: fcgi_hello -l HOST:PORT | -u PATH [-c] [-s FILE]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    if (print_count) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_usr1; /* no SA_RESTART: epoll_wait returns EINTR */
        sigaction(SIGUSR1, &sa, NULL);
    }
    int lfd = peer_listen("fcgi_hello", tcp, unix_path);
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
            perror("fcgi_hello: epoll_wait");
            return 1;
        }
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (!c) {
                int fd;
                while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    if (!unix_path) {
                        int one = 1;
                        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    }
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
