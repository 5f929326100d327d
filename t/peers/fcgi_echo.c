/*
 * fcgi_echo — a FastCGI responder that answers each request with the
 * PARAMS it received, for the CGI-environment differential test
 * (t/cgi_differential.t: the same requests through nginx and Portico).
 *
 * The body is one "NAME=VALUE\n" line per param, in the order received.
 * Bytes outside 0x20..0x7e and '\' are written as \xNN so that every line
 * stays one line whatever a header carried. The response also has
 *     X-Echo-Stdin: <bytes of request body received>
 *     X-Echo-Params: <number of params>
 * Single process, poll(), non-blocking, several connections and several
 * request ids per connection; FCGI_KEEP_CONN honoured.
 *
 *   fcgi_echo -l HOST:PORT      (HOST may be an IPv4 or IPv6 literal)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAXCONN 512
#define MAXREQ 8 /* concurrent request ids per connection */

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

struct buf {
    unsigned char *p;
    size_t len, cap;
};

struct req {
    int used;
    unsigned id;
    int keep;
    struct buf params; /* raw name-value stream, decoded at the end */
    size_t stdin_len;
};

struct conn {
    int fd;
    int closing;
    struct buf in, out;
    size_t ooff;
    struct req reqs[MAXREQ];
};

static struct conn *conns[MAXCONN];

static int buf_add(struct buf *b, const void *p, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n)
            cap *= 2;
        unsigned char *q = realloc(b->p, cap);
        if (!q)
            return -1;
        b->p = q;
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->len, p, n);
    b->len += n;
    return 0;
}

static void conn_free(struct conn *c)
{
    close(c->fd);
    free(c->in.p);
    free(c->out.p);
    for (int i = 0; i < MAXREQ; i++)
        free(c->reqs[i].params.p);
    free(c);
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

static int add_record(struct buf *out, int type, unsigned id, const unsigned char *p, size_t n)
{
    static const unsigned char zeros[8];
    do {
        size_t chunk = n > 65535 ? 65535 : n;
        size_t pad = (8 - chunk % 8) % 8;
        unsigned char h[8];
        header(h, type, id, (unsigned)chunk, (unsigned)pad);
        if (buf_add(out, h, 8) || buf_add(out, p, chunk) || buf_add(out, zeros, pad))
            return -1;
        p += chunk;
        n -= chunk;
    } while (n);
    return 0;
}

static int add_escaped(struct buf *b, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\') {
            if (buf_add(b, p + i, 1))
                return -1;
        } else {
            char e[5];
            snprintf(e, sizeof e, "\\x%02x", p[i]);
            if (buf_add(b, e, 4))
                return -1;
        }
    }
    return 0;
}

/* FastCGI name-value length: 1 byte, or 4 with the high bit set. */
static int nv_len(const unsigned char *p, size_t avail, size_t *used, size_t *len)
{
    if (avail < 1)
        return -1;
    if (!(p[0] & 0x80)) {
        *used = 1;
        *len = p[0];
        return 0;
    }
    if (avail < 4)
        return -1;
    *used = 4;
    *len = ((size_t)(p[0] & 0x7f) << 24) | ((size_t)p[1] << 16) | ((size_t)p[2] << 8) | p[3];
    return 0;
}

static int respond(struct conn *c, struct req *r)
{
    struct buf body = {0}, head = {0};
    const unsigned char *p = r->params.p;
    size_t pos = 0, n = r->params.len, count = 0;
    int rc = -1;
    while (pos < n) {
        size_t u1, nl, u2, vl;
        if (nv_len(p + pos, n - pos, &u1, &nl) || nv_len(p + pos + u1, n - pos - u1, &u2, &vl))
            goto bad;
        pos += u1 + u2;
        if (nl > n - pos || vl > n - pos - nl)
            goto bad;
        if (add_escaped(&body, p + pos, nl) || buf_add(&body, "=", 1) ||
            add_escaped(&body, p + pos + nl, vl) || buf_add(&body, "\n", 1))
            goto out;
        pos += nl + vl;
        count++;
    }
    {
        char h[256];
        int hl = snprintf(h, sizeof h,
                          "Content-Type: text/plain\r\nX-Echo-Stdin: %zu\r\nX-Echo-Params: %zu\r\n\r\n",
                          r->stdin_len, count);
        if (buf_add(&head, h, (size_t)hl) || buf_add(&head, body.p, body.len))
            goto out;
    }
    goto send;
bad: {
    static const char msg[] = "Status: 500\r\nContent-Type: text/plain\r\n\r\nbad params stream\n";
    if (buf_add(&head, msg, sizeof msg - 1))
        goto out;
}
send: {
    unsigned char end[8] = {0};
    if (add_record(&c->out, FCGI_STDOUT, r->id, head.p, head.len) ||
        add_record(&c->out, FCGI_STDOUT, r->id, NULL, 0) ||
        add_record(&c->out, FCGI_END_REQUEST, r->id, end, 8))
        goto out;
    rc = 0;
}
out:
    if (!r->keep)
        c->closing = 1;
    free(body.p);
    free(head.p);
    free(r->params.p);
    memset(r, 0, sizeof *r);
    return rc;
}

static struct req *find_req(struct conn *c, unsigned id)
{
    for (int i = 0; i < MAXREQ; i++)
        if (c->reqs[i].used && c->reqs[i].id == id)
            return &c->reqs[i];
    return NULL;
}

static int on_record(struct conn *c, const unsigned char *h)
{
    int type = h[1];
    unsigned id = (unsigned)h[2] << 8 | h[3];
    size_t len = (size_t)h[4] << 8 | h[5];
    const unsigned char *body = h + 8;
    struct req *r;
    switch (type) {
    case FCGI_BEGIN_REQUEST:
        if (len < 8 || find_req(c, id))
            return -1;
        for (int i = 0; i < MAXREQ; i++) {
            if (!c->reqs[i].used) {
                c->reqs[i].used = 1;
                c->reqs[i].id = id;
                c->reqs[i].keep = body[2] & FCGI_KEEP_CONN;
                return 0;
            }
        }
        return -1;
    case FCGI_PARAMS:
        r = find_req(c, id);
        return r ? buf_add(&r->params, body, len) : 0;
    case FCGI_STDIN:
        r = find_req(c, id);
        if (!r)
            return 0;
        r->stdin_len += len;
        return len == 0 ? respond(c, r) : 0;
    case FCGI_ABORT_REQUEST:
        r = find_req(c, id);
        return r ? respond(c, r) : 0;
    case FCGI_GET_VALUES: {
        static const unsigned char v[] = "\x0f\x01"
                                         "FCGI_MPXS_CONNS"
                                         "1";
        return add_record(&c->out, FCGI_GET_VALUES_RESULT, 0, v, sizeof v - 1);
    }
    default: {
        if (id != 0)
            return 0;
        unsigned char u[8] = {(unsigned char)type, 0, 0, 0, 0, 0, 0, 0};
        return add_record(&c->out, FCGI_UNKNOWN_TYPE, 0, u, 8);
    }
    }
}

/* Returns -1 when the connection is to be closed. */
static int on_readable(struct conn *c)
{
    unsigned char tmp[65536];
    for (;;) {
        ssize_t n = recv(c->fd, tmp, sizeof tmp, 0);
        if (n == 0)
            return -1;
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (buf_add(&c->in, tmp, (size_t)n))
            return -1;
    }
    size_t pos = 0;
    while (!c->closing && c->in.len - pos >= 8) {
        const unsigned char *h = c->in.p + pos;
        if (h[0] != 1)
            return -1;
        size_t total = 8 + ((size_t)h[4] << 8 | h[5]) + h[6];
        if (c->in.len - pos < total)
            break;
        if (on_record(c, h) < 0)
            return -1;
        pos += total;
    }
    memmove(c->in.p, c->in.p + pos, c->in.len - pos);
    c->in.len -= pos;
    return 0;
}

static int on_writable(struct conn *c)
{
    while (c->ooff < c->out.len) {
        ssize_t w = send(c->fd, c->out.p + c->ooff, c->out.len - c->ooff, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            if (errno == EINTR)
                continue;
            return -1;
        }
        c->ooff += (size_t)w;
    }
    c->ooff = c->out.len = 0;
    return c->closing ? -1 : 0;
}

static int listen_on(const char *spec)
{
    char host[256];
    const char *colon = strrchr(spec, ':');
    if (!colon || (size_t)(colon - spec) >= sizeof host) {
        fprintf(stderr, "fcgi_echo: bad -l %s (want HOST:PORT)\n", spec);
        exit(2);
    }
    memcpy(host, spec, (size_t)(colon - spec));
    host[colon - spec] = 0;
    unsigned short port = (unsigned short)atoi(colon + 1);
    struct sockaddr_storage ss;
    socklen_t sl;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons(port);
        sl = sizeof *s4;
    } else if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(port);
        sl = sizeof *s6;
    } else {
        fprintf(stderr, "fcgi_echo: bad address %s\n", host);
        exit(2);
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 512) < 0) {
        perror("fcgi_echo: listen");
        exit(1);
    }
    return fd;
}

int main(int argc, char **argv)
{
    const char *spec = NULL;
    int opt;
    while ((opt = getopt(argc, argv, "l:")) != -1) {
        if (opt == 'l')
            spec = optarg;
        else
            spec = NULL;
    }
    if (!spec) {
        fprintf(stderr, "usage: fcgi_echo -l HOST:PORT\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    int lfd = listen_on(spec);
    static struct pollfd pfd[MAXCONN + 1];
    static int slot[MAXCONN + 1];
    for (;;) {
        int n = 0;
        pfd[n].fd = lfd;
        pfd[n].events = POLLIN;
        slot[n++] = -1;
        for (int i = 0; i < MAXCONN; i++) {
            if (!conns[i])
                continue;
            pfd[n].fd = conns[i]->fd;
            pfd[n].events = (short)(POLLIN | (conns[i]->out.len ? POLLOUT : 0));
            slot[n++] = i;
        }
        if (poll(pfd, (nfds_t)n, -1) < 0) {
            if (errno == EINTR)
                continue;
            perror("fcgi_echo: poll");
            return 1;
        }
        for (int k = 1; k < n; k++) {
            struct conn *c = conns[slot[k]];
            int rc = 0;
            if (pfd[k].revents & (POLLIN | POLLHUP | POLLERR))
                rc = on_readable(c);
            if (!rc && c->out.len)
                rc = on_writable(c);
            if (rc < 0 && c->out.len && c->closing)
                on_writable(c); /* last answer before the close, best effort */
            if (rc < 0) {
                conn_free(c);
                conns[slot[k]] = NULL;
            }
        }
        if (pfd[0].revents & POLLIN) {
            int fd;
            while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                int i = 0;
                while (i < MAXCONN && conns[i])
                    i++;
                struct conn *c = i < MAXCONN ? calloc(1, sizeof *c) : NULL;
                if (!c) {
                    close(fd);
                    continue;
                }
                c->fd = fd;
                conns[i] = c;
            }
        }
    }
}
