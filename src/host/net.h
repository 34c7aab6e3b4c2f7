/*
 * net.h - UDP/IPv6 and IPv4 helpers for the daemons: address parsing in
 * the command-line syntax ([IPv6%zone]:port or IPv4:port), conversion
 * between socket addresses and the engines' opaque cj_addr_t, and
 * non-blocking UDP sockets.
 *
 * cj_addr_t layout used by the hosts: byte 0 family (4 or 6), bytes 1-2
 * port (big-endian), then 4 or 16 address bytes, then for IPv6 the 4-byte
 * scope id (big-endian).
 */
#ifndef COJP_HOST_NET_H
#define COJP_HOST_NET_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "cojp/engine.h"

/* Parse "[v6%zone]:port", "[v6]:port" or "v4:port".  0 or -1. */
int cj_net_parse(const char *s, struct sockaddr_storage *ss, socklen_t *len);

void cj_net_to_addr(const struct sockaddr *sa, cj_addr_t *a);
/* 0 or -1 when a is not a host address. */
int cj_net_from_addr(const cj_addr_t *a, struct sockaddr_storage *ss,
                     socklen_t *len);

/* Text form of a socket address or of a cj_addr_t. */
const char *cj_net_fmt(const struct sockaddr *sa, char *buf, size_t cap);
const char *cj_net_fmt_addr(const cj_addr_t *a, char *buf, size_t cap);

/* Non-blocking UDP socket bound to ss (port 0: ephemeral).  Returns the
 * descriptor or -1 with errno set. */
int cj_net_udp_bind(const struct sockaddr_storage *ss, socklen_t len);

/* s as a decimal number of at most max: digits only (no sign, no
 * blanks), at least one.  0, or -1 with *v untouched. */
int cj_parse_dec(const char *s, unsigned long max, unsigned long *v);

/* Ask for a receive buffer of at least bytes (beyond the system limit
 * when running as root), so bursts from many peers are not dropped. */
void cj_net_set_rcvbuf(int fd, int bytes);

/* Diffserv code points of RFC 9031 section 6.1 (RFC 2597 section 6). */
#define CJ_DSCP_AF42 36 /* Join Responses, JRC to JP */
#define CJ_DSCP_AF43 38 /* join traffic forwarded by a JP to the JRC */

/* Mark everything fd sends with dscp (IPv6 traffic class or IPv4 TOS of
 * the socket's family).  0, or -1 with errno set. */
int cj_net_set_dscp(int fd, int dscp);

/* Send len bytes of buf to ss as one datagram marked with dscp (ancillary
 * data: this datagram only).  As sendto. */
ssize_t cj_net_send_dscp(int fd, const uint8_t *buf, size_t len,
                         const struct sockaddr_storage *ss, socklen_t sl, int dscp);

/* Local address a socket is bound to. */
int cj_net_local(int fd, struct sockaddr_storage *ss, socklen_t *len);

/* Receive one datagram without blocking into buf[0..cap) and fill in its
 * sender (ss and from).  Returns its length, CJ_NET_OVERSIZE when it was
 * longer than cap (dropped whole: a datagram is never processed cut), or
 * -1 when none is ready (or on error).  A caller draining a socket
 * skips CJ_NET_OVERSIZE and stops at -1. */
#define CJ_NET_OVERSIZE (-2)
ssize_t cj_net_recv(int fd, uint8_t *buf, size_t cap,
                    struct sockaddr_storage *ss, cj_addr_t *from);

/* Batched datagram I/O (recvmmsg/sendmmsg: one system call for up to
 * CJ_NET_BATCH datagrams).  For a receive, buf/cap are set by the caller
 * and len, peer, peer_len and truncated are filled in; for a send, buf,
 * len, peer and peer_len are read. */
#define CJ_NET_BATCH 64
typedef struct cj_net_dgram {
    uint8_t *buf;
    size_t cap;
    size_t len;
    struct sockaddr_storage peer;
    socklen_t peer_len;
    int truncated; /* the datagram was longer than cap (and is cut) */
} cj_net_dgram_t;

/* Receive what is ready, at most n (<= CJ_NET_BATCH) datagrams, without
 * blocking.  Returns the count (0 when nothing is ready or on error). */
int cj_net_recv_batch(int fd, cj_net_dgram_t *d, int n);

/* Send d[0..n) (n <= CJ_NET_BATCH) in order.  Returns how many left
 * before the first failure (n when all did), or -1 with errno set when
 * d[0] itself failed. */
int cj_net_send_batch(int fd, const cj_net_dgram_t *d, int n);

#endif
