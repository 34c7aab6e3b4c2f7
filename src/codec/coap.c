/*
 * CoAP message codec (RFC 7252 section 3, RFC 8974 section 2.1).
 *
 * Invariant: cj_coap_parse() accepts a datagram only after walking every
 * option with the same opt_read() the iterator uses, so iteration over a
 * parsed message re-runs checks that are known to pass and cannot fail.
 *
 * The extended forms of option delta, option length and token length all
 * subtract an offset (13 for one extra byte, 269 for two), so their value
 * ranges do not overlap: every accepted encoding is the shortest one, and
 * re-encoding parsed fields gives back the same bytes.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cojp/coap.h"

#define PAYLOAD_MARKER 0xFF

/* The value of a 4-bit field nib (already known not to be 15), reading
 * its 0, 1 or 2 extension bytes at *pp (RFC 7252 section 3.1); or
 * CJ_ERR_TRUNCATED. */
static int32_t ext_read(const uint8_t **pp, const uint8_t *end, unsigned nib)
{
    const uint8_t *p = *pp;
    size_t n = nib < 13 ? 0 : nib - 12;

    if ((size_t)(end - p) < n)
        return CJ_ERR_TRUNCATED;
    *pp = p + n;
    return n == 0 ? (int32_t)nib
           : n == 1 ? 13 + p[0]
                    : 269 + (p[0] << 8 | p[1]);
}

/* Inverse of ext_read(): returns the nibble, writes extension bytes to x
 * and their count to *n. */
static unsigned ext_write(uint32_t v, uint8_t *x, size_t *n)
{
    if (v < 13) {
        *n = 0;
        return v;
    }
    if (v < 269) {
        x[0] = (uint8_t)(v - 13);
        *n = 1;
        return 13;
    }
    v -= 269;
    x[0] = (uint8_t)(v >> 8);
    x[1] = (uint8_t)v;
    *n = 2;
    return 14;
}

/* Read one option at *pp following option number prev (RFC 7252 3.1).
 * Returns 1 with *o filled, 0 at the end of input, 2 at a payload marker
 * (*pp then just past it), or an error.  An option length above 65535
 * cannot be represented in cj_coap_opt_t and is rejected like a number
 * overflow; UDP datagrams cannot carry one anyway. */
static int opt_read(const uint8_t **pp, const uint8_t *end, uint16_t prev,
                    cj_coap_opt_t *o)
{
    const uint8_t *p = *pp;
    int32_t d, l;
    unsigned b;

    if (p == end)
        return 0;
    b = *p++;
    if (b == PAYLOAD_MARKER) {
        *pp = p;
        return 2;
    }
    if (b >> 4 == 15 || (b & 15u) == 15)
        return CJ_ERR_COAP_OPTION;
    if ((d = ext_read(&p, end, b >> 4)) < 0 ||
        (l = ext_read(&p, end, b & 15u)) < 0)
        return CJ_ERR_TRUNCATED;
    d += prev;
    if ((d | l) > 0xFFFF)
        return CJ_ERR_COAP_OPTION;
    if ((size_t)(end - p) < (size_t)l)
        return CJ_ERR_TRUNCATED;
    o->num = (uint16_t)d;
    o->len = (uint16_t)l;
    o->val = p;
    *pp = p + l;
    return 1;
}

/* Validate the option sequence [p, end), storing the first max options
 * in tab.  *count receives the total; *pl the first payload byte, or NULL
 * when there is no payload marker.  RFC 7252 section 3: a marker followed
 * by zero bytes is a format error. */
static CJ_ALWAYS_INLINE int opts_scan(const uint8_t *p, const uint8_t *end,
                              cj_coap_opt_t *tab, size_t max, size_t *count,
                              const uint8_t **pl)
{
    cj_coap_opt_t o;
    uint16_t num = 0;
    size_t n = 0;
    int rc;

    while ((rc = opt_read(&p, end, num, &o)) == 1) {
        if (n < max)
            tab[n] = o;
        num = o.num;
        n++;
    }
    if (rc < 0)
        return rc;
    *pl = NULL;
    if (rc == 2) {
        if (p == end)
            return CJ_ERR_COAP_PAYLOAD;
        *pl = p;
    }
    *count = n;
    return CJ_OK;
}

int cj_coap_parse(cj_coap_msg_t *m, const uint8_t *buf, size_t len)
{
    const uint8_t *p, *end, *pl;
    uint32_t tkl;
    int rc;

    memset(m, 0, sizeof *m);
    if (len < 4)
        return CJ_ERR_TRUNCATED;
    if (buf[0] >> 6 != 1)
        return CJ_ERR_COAP_VERSION;
    tkl = buf[0] & 15u;
    /* RFC 7252 section 4.1: an Empty message is the bare 4-byte header. */
    if (buf[1] == CJ_COAP_EMPTY && (len > 4 || tkl != 0))
        return CJ_ERR_COAP_EMPTY;
    /* RFC 8974 section 2.1 turns nibbles 9..12 (reserved in RFC 7252)
     * into plain lengths and keeps only 15 reserved. */
    if (tkl == 15)
        return CJ_ERR_COAP_TOKEN;
    p = buf + 4;
    end = buf + len;
    if ((rc = ext_read(&p, end, tkl)) < 0)
        return rc;
    tkl = (uint32_t)rc;
    if (tkl > CJ_COAP_MAX_TOKEN)
        return CJ_ERR_COAP_TOKEN;
    if ((size_t)(end - p) < tkl)
        return CJ_ERR_TRUNCATED;
    m->token = tkl ? p : NULL;
    m->token_len = tkl;
    p += tkl;
    if ((rc = opts_scan(p, end, NULL, 0, &m->opt_count, &pl)) < 0)
        return rc;
    m->buf = buf;
    m->len = len;
    m->type = (buf[0] >> 4) & 3u;
    m->code = buf[1];
    m->mid = (uint16_t)(buf[2] << 8 | buf[3]);
    m->opts = p;
    m->opts_len = (size_t)((pl ? pl - 1 : end) - p);
    if (pl) {
        m->payload = pl;
        m->payload_len = (size_t)(end - pl);
    }
    return CJ_OK;
}

void cj_coap_opt_iter_init(cj_coap_opt_iter_t *it, const cj_coap_msg_t *m)
{
    it->p = m->opts;
    it->end = m->opts + m->opts_len;
    it->num = 0;
}

int cj_coap_opt_next(cj_coap_opt_iter_t *it, cj_coap_opt_t *o)
{
    /* opts_len stops before the payload marker, so only 1 or 0 occur. */
    if (opt_read(&it->p, it->end, it->num, o) != 1)
        return 0;
    it->num = o->num;
    return 1;
}

int cj_coap_opt_find(const cj_coap_msg_t *m, uint16_t num, cj_coap_opt_t *o)
{
    cj_coap_opt_iter_t it;
    cj_coap_opt_t cur;

    cj_coap_opt_iter_init(&it, m);
    /* Options are in non-decreasing order (RFC 7252 3.1): stop early. */
    while (cj_coap_opt_next(&it, &cur) && cur.num <= num) {
        if (cur.num == num) {
            *o = cur;
            return 1;
        }
    }
    return 0;
}

int cj_coap_opt_uint(const cj_coap_opt_t *o, uint32_t *v)
{
    uint32_t x = 0;
    uint16_t i;

    if (o->len > 4)
        return CJ_ERR_RANGE;
    for (i = 0; i < o->len; i++)
        x = x << 8 | o->val[i];
    *v = x;
    return CJ_OK;
}

int cj_coap_check_critical(const cj_coap_msg_t *m, const uint16_t *known,
                           size_t n, uint16_t *bad)
{
    cj_coap_opt_iter_t it;
    cj_coap_opt_t o;
    size_t i;

    cj_coap_opt_iter_init(&it, m);
    while (cj_coap_opt_next(&it, &o)) {
        if (!cj_coap_opt_is_critical(o.num))
            continue;
        for (i = 0; i < n && known[i] != o.num; i++)
            ;
        if (i == n) {
            if (bad)
                *bad = o.num;
            return CJ_ERR_COAP_CRITICAL;
        }
    }
    return CJ_OK;
}

int cj_coap_opts_decode(const uint8_t *p, size_t len, cj_coap_opt_t *opts,
                        size_t max, const uint8_t **payload,
                        size_t *payload_len)
{
    const uint8_t *pl;
    size_t n;
    int rc;

    if ((rc = opts_scan(p, p + len, opts, max, &n, &pl)) < 0)
        return rc;
    if (n > max)
        return CJ_ERR_NOSPACE;
    *payload = pl;
    *payload_len = pl ? (size_t)(p + len - pl) : 0;
    return (int)n;
}

/* ---- builder ---------------------------------------------------------- */

/* Append hn head bytes and then n bytes from src: both or neither, so a
 * failed call leaves len where it was.  Overflow is sticky.  src may
 * overlap the output (cj_coap_opt_encode() allows it). */
static void put(cj_coap_builder_t *b, const uint8_t *h, size_t hn,
                const void *src, size_t n)
{
    size_t room = b->cap - b->len;

    if (b->err)
        return;
    if (room < hn || room - hn < n) {
        b->err = CJ_ERR_NOSPACE;
        return;
    }
    memcpy(b->buf + b->len, h, hn);
    if (n)
        memmove(b->buf + b->len + hn, src, n);
    b->len += hn + n;
}

/* One option after b->last_opt (RFC 7252 section 3.1): the delta/length
 * head with its extension bytes, then the value. */
static CJ_ALWAYS_INLINE void opt_put(cj_coap_builder_t *b, uint16_t num,
                             const void *val, size_t len)
{
    uint8_t h[5];
    size_t dn, ln;

    if (b->err)
        return;
    if (num < b->last_opt || len > 0xFFFF) {
        b->err = CJ_ERR_INVALID;
        return;
    }
    h[0] = (uint8_t)(ext_write((uint32_t)(num - b->last_opt), h + 1, &dn)
                     << 4);
    h[0] |= (uint8_t)ext_write((uint32_t)len, h + 1 + dn, &ln);
    put(b, h, 1 + dn + ln, val, len);
    b->last_opt = num;
}

int cj_coap_opt_encode(uint8_t *out, size_t cap, uint16_t prev, uint16_t num,
                       const uint8_t *val, size_t len)
{
    cj_coap_builder_t b;

    memset(&b, 0, sizeof b);
    b.buf = out;
    b.cap = cap;
    b.last_opt = prev;
    opt_put(&b, num, val, len);
    return cj_coap_build_finish(&b);
}

void cj_coap_build_init(cj_coap_builder_t *b, uint8_t *buf, size_t cap,
                        uint8_t type, uint8_t code, uint16_t mid,
                        const uint8_t *token, size_t token_len)
{
    uint8_t h[6];
    size_t n;

    memset(b, 0, sizeof *b);
    b->buf = buf;
    b->cap = cap;
    /* An Empty message must be the bare header (RFC 7252 4.1). */
    if (token_len > CJ_COAP_MAX_TOKEN || (code == CJ_COAP_EMPTY && token_len)) {
        b->err = CJ_ERR_INVALID;
        return;
    }
    h[0] = (uint8_t)(0x40 | (type & 3) << 4 |
                     ext_write((uint32_t)token_len, h + 4, &n));
    h[1] = code;
    h[2] = (uint8_t)(mid >> 8);
    h[3] = (uint8_t)mid;
    put(b, h, 4 + n, token, token_len);
}

/* Options and payload are refused after an error, after the payload and
 * in an Empty message.  Byte 1 is the code once the header is written. */
static CJ_ALWAYS_INLINE bool may_add(cj_coap_builder_t *b)
{
    if (b->err)
        return false;
    if (b->has_payload || b->buf[1] == CJ_COAP_EMPTY) {
        b->err = CJ_ERR_INVALID;
        return false;
    }
    return true;
}

void cj_coap_build_opt(cj_coap_builder_t *b, uint16_t num, const void *val,
                       size_t len)
{
    if (may_add(b))
        opt_put(b, num, val, len);
}

void cj_coap_build_opt_uint(cj_coap_builder_t *b, uint16_t num, uint32_t v)
{
    uint8_t x[4];
    size_t i = 4;

    /* Shortest form: stop once the remaining high bytes are all zero. */
    for (; v; v >>= 8)
        x[--i] = (uint8_t)v;
    cj_coap_build_opt(b, num, x + i, 4 - i);
}

void cj_coap_build_opt_str(cj_coap_builder_t *b, uint16_t num, const char *s)
{
    cj_coap_build_opt(b, num, s, strlen(s));
}

void cj_coap_build_payload(cj_coap_builder_t *b, const uint8_t *p, size_t n)
{
    static const uint8_t marker = PAYLOAD_MARKER;

    /* A second call extends the payload already started. */
    if (n == 0 || (!b->has_payload && !may_add(b)))
        return;
    put(b, &marker, !b->has_payload, p, n);
    b->has_payload = true;
}
