/* Shared by the test peers (fcgi_hello, http_hello): the listening socket
 * ("-l HOST:PORT" or "-u PATH") and the accepted-connection count file that
 * tests read ("N requests over M connections"), written atomically. */
#ifndef PORTICO_PEER_LISTEN_H
#define PORTICO_PEER_LISTEN_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static int peer_listen(const char *prog, const char *tcp, const char *unix_path)
{
    int fd;
    if (unix_path) {
        struct sockaddr_un su;
        memset(&su, 0, sizeof su);
        su.sun_family = AF_UNIX;
        if (strlen(unix_path) >= sizeof su.sun_path) {
            fprintf(stderr, "%s: socket path too long\n", prog);
            exit(2);
        }
        strcpy(su.sun_path, unix_path);
        unlink(unix_path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0 || bind(fd, (struct sockaddr *)&su, sizeof su) < 0) {
            fprintf(stderr, "%s: bind: %s\n", prog, strerror(errno));
            exit(1);
        }
        chmod(unix_path, 0666);
    } else {
        char host[256];
        const char *colon = strrchr(tcp, ':');
        if (!colon || (size_t)(colon - tcp) >= sizeof host) {
            fprintf(stderr, "%s: bad -l %s (want HOST:PORT)\n", prog, tcp);
            exit(2);
        }
        memcpy(host, tcp, colon - tcp);
        host[colon - tcp] = 0;
        struct sockaddr_in sa;
        memset(&sa, 0, sizeof sa);
        sa.sin_family = AF_INET;
        sa.sin_port = htons((unsigned short)atoi(colon + 1));
        if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
            fprintf(stderr, "%s: bad address %s\n", prog, host);
            exit(2);
        }
        fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
            fprintf(stderr, "%s: bind: %s\n", prog, strerror(errno));
            exit(1);
        }
    }
    if (listen(fd, 4096) < 0) {
        fprintf(stderr, "%s: listen: %s\n", prog, strerror(errno));
        exit(1);
    }
    return fd;
}

static void peer_write_count(const char *count_file, unsigned long long accepted)
{
    char tmp[4096], num[32];
    snprintf(tmp, sizeof tmp, "%s.tmp", count_file);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    int n = snprintf(num, sizeof num, "%llu\n", accepted);
    if (write(fd, num, (size_t)n) == n)
        rename(tmp, count_file);
    close(fd);
}

#endif
