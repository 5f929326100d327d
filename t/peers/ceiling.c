/*
 * ceiling — the benchmark's "machine limit" reference server.
 *
 * A minimal fixed-response HTTP server: single thread, epoll, non-blocking.
 * It parses nothing beyond finding "\r\n\r\n" (the end of a request head) and
 * answers every head with the same response, so pipelined requests get one
 * response each, written with one send() per read batch. Request bodies are
 * not supported (it is only loaded with GETs).
 *
 *   ceiling -l 127.0.0.1:PORT [-b BYTES]
 *     -b  body size (default: the 5-byte body "hello"; otherwise BYTES of 'x')
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
#include <unistd.h>

#define RBUF 65536

struct conn {
    int fd;
    size_t rlen;  /* unconsumed bytes in rbuf (partial head) */
    char *out;    /* pending output */
    size_t olen, ocap, ooff;
    int want_out; /* EPOLLOUT registered */
    char rbuf[RBUF];
};

static char *resp;
static size_t resp_len;
static int ep;

static int listen_tcp(const char *spec)
{
    char host[256];
    const char *colon = strrchr(spec, ':');
    if (!colon || (size_t)(colon - spec) >= sizeof host) {
        fprintf(stderr, "ceiling: bad -l %s (want HOST:PORT)\n", spec);
        exit(2);
    }
    memcpy(host, spec, colon - spec);
    host[colon - spec] = 0;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)atoi(colon + 1));
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        fprintf(stderr, "ceiling: bad address %s\n", host);
        exit(2);
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 4096) < 0) {
        perror("ceiling: listen");
        exit(1);
    }
    return fd;
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

/* returns -1 when the connection must be closed */
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
    if (!want)
        c->ooff = c->olen = 0;
    if (want != c->want_out) {
        struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0), .data.ptr = c};
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
        c->want_out = want;
    }
    return 0;
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
        /* scan from up to 3 bytes before the new data for the terminator */
        size_t start = c->rlen > 3 ? c->rlen - 3 : 0, end = c->rlen + (size_t)r;
        size_t consumed = 0;
        for (size_t i = start; i + 3 < end; i++) {
            if (c->rbuf[i] == '\r' && c->rbuf[i + 1] == '\n' && c->rbuf[i + 2] == '\r' &&
                c->rbuf[i + 3] == '\n') {
                if (out_append(c, resp, resp_len) < 0)
                    return -1;
                consumed = i + 4;
                i += 3;
            }
        }
        memmove(c->rbuf, c->rbuf + consumed, end - consumed);
        c->rlen = end - consumed;
        if (c->rlen == RBUF)
            return -1; /* head too large */
        if ((size_t)r < RBUF / 2)
            break;
    }
    return flush_out(c);
}

int main(int argc, char **argv)
{
    const char *addr = NULL;
    long body = -1;
    int opt;
    while ((opt = getopt(argc, argv, "l:b:")) != -1) {
        if (opt == 'l')
            addr = optarg;
        else if (opt == 'b')
            body = atol(optarg);
        else {
            fprintf(stderr, "usage: ceiling -l HOST:PORT [-b BODY_BYTES]\n");
            return 2;
        }
    }
    if (!addr) {
        fprintf(stderr, "usage: ceiling -l HOST:PORT [-b BODY_BYTES]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    size_t blen = body < 0 ? 5 : (size_t)body;
    resp = malloc(blen + 128);
    int hl = snprintf(resp, 128, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n\r\n", blen);
    if (body < 0)
        memcpy(resp + hl, "hello", 5);
    else
        memset(resp + hl, 'x', blen);
    resp_len = (size_t)hl + blen;

    int lfd = listen_tcp(addr);
    ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    struct epoll_event evs[256];
    for (;;) {
        int n = epoll_wait(ep, evs, 256, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            perror("ceiling: epoll_wait");
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
                }
                continue;
            }
            int rc = 0;
            if (evs[i].events & (EPOLLERR | EPOLLHUP))
                rc = -1;
            if (!rc && (evs[i].events & EPOLLOUT))
                rc = flush_out(c);
            if (!rc && (evs[i].events & EPOLLIN))
                rc = on_read(c);
            if (rc < 0)
                conn_close(c);
        }
    }
}
