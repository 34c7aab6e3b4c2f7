#define _GNU_SOURCE /* recvmmsg, sendmmsg */
#include "net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int cj_parse_dec(const char *s, unsigned long max, unsigned long *v)
{
    unsigned long x = 0;
    if (!*s)
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || x > (max - (unsigned long)(*s - '0')) / 10)
            return -1;
        x = x * 10 + (unsigned long)(*s - '0');
    }
    *v = x;
    return 0;
}

static int parse_port(const char *s, uint16_t *port)
{
    unsigned long v;
    if (cj_parse_dec(s, 65535, &v))
        return -1;
    *port = (uint16_t)v;
    return 0;
}

/* s[0..n) as a C string in host[0..cap): 0, or -1 when empty or too long. */
static int copy_host(char *host, size_t cap, const char *s, size_t n)
{
    if (n == 0 || n >= cap)
        return -1;
    memcpy(host, s, n);
    host[n] = 0;
    return 0;
}

/* host "v6" or "v6%zone" (an interface name or a number). */
static int parse_v6(char *host, uint16_t port, struct sockaddr_in6 *a6,
                    socklen_t *len)
{
    char *zone = strchr(host, '%');
    if (zone) {
        *zone++ = 0;
        a6->sin6_scope_id = if_nametoindex(zone);
        if (a6->sin6_scope_id == 0) {
            unsigned long v;
            if (cj_parse_dec(zone, UINT32_MAX, &v))
                return -1;
            a6->sin6_scope_id = (uint32_t)v;
        }
    }
    if (inet_pton(AF_INET6, host, &a6->sin6_addr) != 1)
        return -1;
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(port);
    *len = sizeof *a6;
    return 0;
}

static int parse_v4(const char *host, uint16_t port, struct sockaddr_in *a4,
                    socklen_t *len)
{
    if (inet_pton(AF_INET, host, &a4->sin_addr) != 1)
        return -1;
    a4->sin_family = AF_INET;
    a4->sin_port = htons(port);
    *len = sizeof *a4;
    return 0;
}

int cj_net_parse(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
    char host[128];
    const char *colon; /* the one before the port */
    uint16_t port;

    memset(ss, 0, sizeof *ss);
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':')
            return -1;
        colon = close + 1;
        if (copy_host(host, sizeof host, s + 1, (size_t)(close - s - 1)))
            return -1;
    } else {
        colon = strrchr(s, ':');
        if (!colon || copy_host(host, sizeof host, s, (size_t)(colon - s)))
            return -1;
    }
    if (parse_port(colon + 1, &port))
        return -1;
    if (s[0] == '[')
        return parse_v6(host, port, (struct sockaddr_in6 *)ss, len);
    return parse_v4(host, port, (struct sockaddr_in *)ss, len);
}

void cj_net_to_addr(const struct sockaddr *sa, cj_addr_t *a)
{
    memset(a, 0, sizeof *a);
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)sa;
        uint32_t scope = a6->sin6_scope_id;
        a->b[0] = 6;
        memcpy(a->b + 1, &a6->sin6_port, 2);
        memcpy(a->b + 3, &a6->sin6_addr, 16);
        a->b[19] = (uint8_t)(scope >> 24);
        a->b[20] = (uint8_t)(scope >> 16);
        a->b[21] = (uint8_t)(scope >> 8);
        a->b[22] = (uint8_t)scope;
        a->len = 23;
    } else if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *a4 = (const struct sockaddr_in *)sa;
        a->b[0] = 4;
        memcpy(a->b + 1, &a4->sin_port, 2);
        memcpy(a->b + 3, &a4->sin_addr, 4);
        a->len = 7;
    }
}

int cj_net_from_addr(const cj_addr_t *a, struct sockaddr_storage *ss,
                     socklen_t *len)
{
    memset(ss, 0, sizeof *ss);
    if (a->len == 23 && a->b[0] == 6) {
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
        a6->sin6_family = AF_INET6;
        memcpy(&a6->sin6_port, a->b + 1, 2);
        memcpy(&a6->sin6_addr, a->b + 3, 16);
        a6->sin6_scope_id = (uint32_t)a->b[19] << 24 | (uint32_t)a->b[20] << 16 |
                            (uint32_t)a->b[21] << 8 | a->b[22];
        *len = sizeof *a6;
        return 0;
    }
    if (a->len == 7 && a->b[0] == 4) {
        struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
        a4->sin_family = AF_INET;
        memcpy(&a4->sin_port, a->b + 1, 2);
        memcpy(&a4->sin_addr, a->b + 3, 4);
        *len = sizeof *a4;
        return 0;
    }
    return -1;
}

const char *cj_net_fmt(const struct sockaddr *sa, char *buf, size_t cap)
{
    char host[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &a6->sin6_addr, host, sizeof host);
        if (a6->sin6_scope_id) {
            char ifn[IF_NAMESIZE];
            size_t n = strlen(host);
            if (if_indextoname(a6->sin6_scope_id, ifn))
                snprintf(host + n, sizeof host - n, "%%%s", ifn);
            else
                snprintf(host + n, sizeof host - n, "%%%u", a6->sin6_scope_id);
        }
        snprintf(buf, cap, "[%s]:%u", host, ntohs(a6->sin6_port));
    } else if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *a4 = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &a4->sin_addr, host, sizeof host);
        snprintf(buf, cap, "%s:%u", host, ntohs(a4->sin_port));
    } else {
        snprintf(buf, cap, "?");
    }
    return buf;
}

const char *cj_net_fmt_addr(const cj_addr_t *a, char *buf, size_t cap)
{
    struct sockaddr_storage ss;
    socklen_t len;
    if (cj_net_from_addr(a, &ss, &len) != 0) {
        snprintf(buf, cap, "?");
        return buf;
    }
    return cj_net_fmt((struct sockaddr *)&ss, buf, cap);
}

int cj_net_udp_bind(const struct sockaddr_storage *ss, socklen_t len)
{
    int fd = socket(ss->ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (ss->ss_family == AF_INET6) {
        int on = 1;
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on);
    }
    if (bind(fd, (const struct sockaddr *)ss, len) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

int cj_net_local(int fd, struct sockaddr_storage *ss, socklen_t *len)
{
    *len = sizeof *ss;
    return getsockname(fd, (struct sockaddr *)ss, len);
}

int cj_net_set_dscp(int fd, int dscp)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    int tc = dscp << 2; /* the low two bits are ECN's */
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return -1;
    if (ss.ss_family == AF_INET6)
        return setsockopt(fd, IPPROTO_IPV6, IPV6_TCLASS, &tc, sizeof tc);
    return setsockopt(fd, IPPROTO_IP, IP_TOS, &tc, sizeof tc);
}

ssize_t cj_net_send_dscp(int fd, const uint8_t *buf, size_t len,
                         const struct sockaddr_storage *ss, socklen_t sl, int dscp)
{
    union {
        char b[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } ctl;
    struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
    struct msghdr m = {.msg_name = (void *)ss, .msg_namelen = sl, .msg_iov = &iov,
                       .msg_iovlen = 1, .msg_control = ctl.b, .msg_controllen = sizeof ctl.b};
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    int tc = dscp << 2;
    memset(&ctl, 0, sizeof ctl);
    c->cmsg_level = ss->ss_family == AF_INET6 ? IPPROTO_IPV6 : IPPROTO_IP;
    c->cmsg_type = ss->ss_family == AF_INET6 ? IPV6_TCLASS : IP_TOS;
    c->cmsg_len = CMSG_LEN(sizeof tc);
    memcpy(CMSG_DATA(c), &tc, sizeof tc);
    return sendmsg(fd, &m, 0);
}

void cj_net_set_rcvbuf(int fd, int bytes)
{
#ifdef SO_RCVBUFFORCE
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof bytes) == 0)
        return;
#endif
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);
}

ssize_t cj_net_recv(int fd, uint8_t *buf, size_t cap,
                    struct sockaddr_storage *ss, cj_addr_t *from)
{
    socklen_t sl = sizeof *ss;
    /* MSG_TRUNC: the datagram's real length, so a cut one is recognised */
    ssize_t len = recvfrom(fd, buf, cap, MSG_TRUNC, (struct sockaddr *)ss, &sl);
    if (len < 0)
        return -1;
    if ((size_t)len > cap)
        return CJ_NET_OVERSIZE;
    cj_net_to_addr((struct sockaddr *)ss, from);
    return len;
}

int cj_net_recv_batch(int fd, cj_net_dgram_t *d, int n)
{
    struct mmsghdr m[CJ_NET_BATCH];
    struct iovec iov[CJ_NET_BATCH];
    int got;
    if (n > CJ_NET_BATCH)
        n = CJ_NET_BATCH;
    for (int i = 0; i < n; i++) {
        iov[i].iov_base = d[i].buf;
        iov[i].iov_len = d[i].cap;
        memset(&m[i], 0, sizeof m[i]);
        m[i].msg_hdr.msg_name = &d[i].peer;
        m[i].msg_hdr.msg_namelen = sizeof d[i].peer;
        m[i].msg_hdr.msg_iov = &iov[i];
        m[i].msg_hdr.msg_iovlen = 1;
    }
    got = recvmmsg(fd, m, (unsigned)n, MSG_DONTWAIT, NULL);
    if (got < 0)
        return 0;
    for (int i = 0; i < got; i++) {
        d[i].len = m[i].msg_len;
        d[i].peer_len = m[i].msg_hdr.msg_namelen;
        d[i].truncated = (m[i].msg_hdr.msg_flags & MSG_TRUNC) != 0;
    }
    return got;
}

int cj_net_send_batch(int fd, const cj_net_dgram_t *d, int n)
{
    struct mmsghdr m[CJ_NET_BATCH];
    struct iovec iov[CJ_NET_BATCH];
    if (n > CJ_NET_BATCH)
        n = CJ_NET_BATCH;
    for (int i = 0; i < n; i++) {
        iov[i].iov_base = d[i].buf;
        iov[i].iov_len = d[i].len;
        memset(&m[i], 0, sizeof m[i]);
        m[i].msg_hdr.msg_name = (void *)&d[i].peer;
        m[i].msg_hdr.msg_namelen = d[i].peer_len;
        m[i].msg_hdr.msg_iov = &iov[i];
        m[i].msg_hdr.msg_iovlen = 1;
    }
    return n ? sendmmsg(fd, m, (unsigned)n, 0) : 0;
}
