/*
 * Fuzz the daemons' address arguments (host/net.h): "[IPv6%zone]:port"
 * and "IPv4:port".  An address that parses prints as text that parses
 * to the same socket address, and survives the engines' cj_addr_t form
 * unchanged; printing never overruns its buffer.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "host/net.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char in[256], txt[128], txt2[128];
    struct sockaddr_storage a, b, c;
    socklen_t la, lb, lc;
    cj_addr_t x;

    if (size >= sizeof in)
        return 0;
    memcpy(in, data, size);
    in[size] = '\0';
    if (cj_net_parse(in, &a, &la) != 0)
        return 0;
    if (a.ss_family != AF_INET && a.ss_family != AF_INET6)
        abort();
    cj_net_fmt((const struct sockaddr *)&a, txt, sizeof txt);
    if (memchr(txt, '\0', sizeof txt) == NULL)
        abort();
    if (cj_net_parse(txt, &b, &lb) != 0 || lb != la || memcmp(&a, &b, la) != 0)
        abort();
    cj_net_to_addr((const struct sockaddr *)&a, &x);
    if (cj_net_from_addr(&x, &c, &lc) != 0 || lc != la || memcmp(&a, &c, la) != 0)
        abort();
    cj_net_fmt_addr(&x, txt2, sizeof txt2);
    if (strcmp(txt, txt2) != 0)
        abort();
    return 0;
}
