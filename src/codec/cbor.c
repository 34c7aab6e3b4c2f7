/*
 * cbor.c - the strict CBOR subset of cojp/cbor.h (RFC 8949).
 *
 * Every typed call goes through one head writer (put_head) and one head
 * reader (rd), so the rules of RFC 8949 section 3 live in exactly one
 * place each.  The preferred serialization of section 4.2.1 lives in the
 * writer alone: the reader accepts a head only when the writer would
 * have written one of the same length.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cojp/cbor.h"

/* ---- encoder ---------------------------------------------------------- */

void cj_cbor_enc_init(cj_cbor_enc_t *e, uint8_t *buf, size_t cap)
{
    e->buf = buf;
    e->cap = buf ? cap : 0;
    e->len = 0;
    e->err = CJ_OK;
}

/* Invariant: bytes are written only while err is CJ_OK, and never past
 * cap.  len keeps counting after an overflow, so a failed run still tells
 * the caller how large the buffer would have had to be. */
static void emit(cj_cbor_enc_t *e, const void *p, size_t n)
{
    if (n > SIZE_MAX - e->len) {
        e->err = CJ_ERR_NOSPACE;
        return;
    }
    if (e->buf && !e->err) {
        if (n > e->cap - e->len)
            e->err = CJ_ERR_NOSPACE;
        else if (n)
            memcpy(e->buf + e->len, p, n);
    }
    e->len += n;
}

/* Shortest head for (major type, argument): RFC 8949 sections 3 and
 * 4.2.1.  The argument follows in 0, 1, 2, 4 or 8 big-endian bytes. */
size_t cj_cbor_head(uint8_t out[9], unsigned mt, uint64_t v)
{
    unsigned n = 0, ai = (unsigned)v;

    if (v >= 24) {
        /* 24, 25, 26, 27: an argument of 1, 2, 4 or 8 bytes */
        ai = 24u + (v > 0xff) + (v > 0xffff) + (v > 0xffffffffu);
        n = 1u << (ai - 24);
    }
    out[0] = (uint8_t)(mt << 5 | ai);
    for (unsigned i = n; i > 0; i--, v >>= 8)
        out[i] = (uint8_t)v;
    return n + 1;
}

static void put_head(cj_cbor_enc_t *e, unsigned mt, uint64_t v)
{
    uint8_t h[9];

    emit(e, h, cj_cbor_head(h, mt, v));
}

void cj_cbor_put_uint(cj_cbor_enc_t *e, uint64_t v)
{
    put_head(e, CJ_CBOR_UINT, v);
}

void cj_cbor_put_int(cj_cbor_enc_t *e, int64_t v)
{
    /* For v < 0 the argument is -1 - v, which is ~v in two's complement
     * and cannot overflow even for INT64_MIN. */
    if (v < 0)
        put_head(e, CJ_CBOR_NINT, ~(uint64_t)v);
    else
        put_head(e, CJ_CBOR_UINT, (uint64_t)v);
}

void cj_cbor_put_nint_arg(cj_cbor_enc_t *e, uint64_t n)
{
    put_head(e, CJ_CBOR_NINT, n);
}

static void put_str(cj_cbor_enc_t *e, unsigned mt, const void *p, size_t n)
{
    put_head(e, mt, n);
    emit(e, p, n);
}

void cj_cbor_put_bstr(cj_cbor_enc_t *e, const uint8_t *p, size_t n)
{
    put_str(e, CJ_CBOR_BSTR, p, n);
}

void cj_cbor_put_tstr(cj_cbor_enc_t *e, const char *s, size_t n)
{
    put_str(e, CJ_CBOR_TSTR, s, n);
}

void cj_cbor_put_bstr_head(cj_cbor_enc_t *e, size_t n)
{
    put_head(e, CJ_CBOR_BSTR, n);
}

void cj_cbor_put_array(cj_cbor_enc_t *e, size_t count)
{
    put_head(e, CJ_CBOR_ARRAY, count);
}

void cj_cbor_put_map(cj_cbor_enc_t *e, size_t pairs)
{
    put_head(e, CJ_CBOR_MAP, pairs);
}

/* false, true and null are simple values 20, 21 and 22 (section 3.3). */
void cj_cbor_put_bool(cj_cbor_enc_t *e, bool v)
{
    put_head(e, CJ_CBOR_SIMPLE, v ? 21 : 20);
}

void cj_cbor_put_null(cj_cbor_enc_t *e)
{
    put_head(e, CJ_CBOR_SIMPLE, 22);
}

void cj_cbor_put_raw(cj_cbor_enc_t *e, const uint8_t *p, size_t n)
{
    emit(e, p, n);
}

int cj_cbor_enc_finish(const cj_cbor_enc_t *e)
{
    if (e->err)
        return e->err;
    /* The length is returned as a non-negative int. */
    if (e->len > (size_t)((unsigned)-1 >> 1))
        return CJ_ERR_NOSPACE;
    return (int)e->len;
}

/* ---- decoder ---------------------------------------------------------- */

/* Well-formed UTF-8 as RFC 3629 section 4 defines it, which RFC 8949
 * section 3.1 requires of text strings: no overlong forms, no surrogates
 * (U+D800..U+DFFF), nothing above U+10FFFF.  A lead byte C2..F4 starts a
 * sequence with k = 1..3 continuation bytes that carries 5k + 6 bits; C0
 * and C1 could only start an overlong two-byte form, F5..FF only values
 * above U+10FFFF.  A sequence is overlong exactly when its value fits
 * the 5k + 1 bits of the next shorter form, which a two-byte one (k = 1,
 * value at least 0x80 given its lead) never does. */
static bool utf8_ok(const uint8_t *s, size_t n)
{
    size_t i = 0;

    while (i < n) {
        uint32_t c = s[i++], k;
        if (c < 0x80)
            continue;
        if (c - 0xc2u > 0xf4u - 0xc2u)
            return false;
        k = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : 1;
        if (n - i < k)
            return false;
        c &= 0x3fu >> k;
        for (uint32_t j = 0; j < k; j++) {
            if ((s[i] & 0xc0) != 0x80)
                return false;
            c = c << 6 | (s[i++] & 0x3fu);
        }
        if ((c >> (5 * k + 1)) == 0 || c > 0x10ffff || (c >> 11) == 0x1b)
            return false;
    }
    return true;
}

/* Read and check one head at p (not advancing any cursor).  Returns the
 * major type with *arg = its argument and *body = the first byte after
 * the head, or an error.  Everything about the item except the contents
 * of an array or map is checked here:
 *   - the head and a string's bytes lie inside [p, end): lengths are
 *     compared with the bytes remaining, never added to a pointer first;
 *   - an array (map) of n elements (pairs) needs at least n (2n) more
 *     bytes, so a count larger than that is truncated input;
 *   - additional information 28..30, 31 on major types 0, 1, 6 and 7,
 *     and a two-byte simple value below 32 are not well-formed (RFC 8949
 *     Appendix F); indefinite lengths, tags, floats and simple values
 *     other than false/true/null are well-formed but outside the subset;
 *   - the argument uses the shortest head (section 4.2.1);
 *   - text is valid UTF-8. */
static int rd(const uint8_t *p, const uint8_t *end, uint64_t *arg,
              const uint8_t **body)
{
    size_t rem = (size_t)(end - p);
    unsigned mt, ai, n;
    uint64_t v;

    if (rem == 0)
        return CJ_ERR_TRUNCATED;
    mt = *p >> 5;
    ai = *p++ & 31u;
    rem--;
    v = ai;
    if (ai == 31)
        return mt - 2u < 4u ? CJ_ERR_UNSUPPORTED : CJ_ERR_MALFORMED;
    if (ai > 27)
        return CJ_ERR_MALFORMED;
    if (ai >= 24) {
        uint8_t h[9];
        unsigned i;
        n = 1u << (ai - 24);
        if (rem < n)
            return CJ_ERR_TRUNCATED;
        rem -= n;
        for (v = 0, i = 0; i < n; i++)
            v = v << 8 | *p++;
        if (mt == CJ_CBOR_SIMPLE)
            return ai == 24 && v < 32 ? CJ_ERR_MALFORMED : CJ_ERR_UNSUPPORTED;
        /* Shortest form (section 4.2.1): the head the encoder would write
         * for this argument is exactly as long as the one read. */
        if (cj_cbor_head(h, mt, v) != n + 1)
            return CJ_ERR_NONCANONICAL;
    }
    if (mt == CJ_CBOR_TAG || (mt == CJ_CBOR_SIMPLE && (ai < 20 || ai > 22)))
        return CJ_ERR_UNSUPPORTED;
    if (mt - 2u < 4u && v > (mt == CJ_CBOR_MAP ? rem / 2 : rem))
        return CJ_ERR_TRUNCATED;
    if (mt == CJ_CBOR_TSTR && !utf8_ok(p, (size_t)v))
        return CJ_ERR_MALFORMED;
    *arg = v;
    *body = p;
    return (int)mt;
}

/* One item of major type mt: *arg is its argument and *str where its
 * body starts; the cursor moves past a string's bytes, or onto the first
 * element of a container.  Nothing is written on failure. */
static CJ_ALWAYS_INLINE int take(cj_cbor_dec_t *d, int mt, uint64_t *arg,
                         const uint8_t **str)
{
    const uint8_t *next;
    int r = rd(d->p, d->end, arg, &next);
    if (r >= 0 && r != mt)
        r = CJ_ERR_TYPE;
    if (r < 0)
        return r;
    *str = next;
    if (mt == CJ_CBOR_BSTR || mt == CJ_CBOR_TSTR)
        next += *arg;
    d->p = next;
    return CJ_OK;
}

int cj_cbor_get_uint(cj_cbor_dec_t *d, uint64_t *v)
{
    const uint8_t *s;
    return take(d, CJ_CBOR_UINT, v, &s);
}

int cj_cbor_get_nint_arg(cj_cbor_dec_t *d, uint64_t *n)
{
    const uint8_t *s;
    return take(d, CJ_CBOR_NINT, n, &s);
}

int cj_cbor_get_int(cj_cbor_dec_t *d, int64_t *v)
{
    const uint8_t *next;
    uint64_t a;
    int r = rd(d->p, d->end, &a, &next);
    if (r < 0)
        return r;
    if (r > CJ_CBOR_NINT)
        return CJ_ERR_TYPE;
    if (a > (uint64_t)INT64_MAX)
        return CJ_ERR_RANGE;
    /* -1 - a for major type 1 (section 3.1), in range since a <= max. */
    *v = r ? -1 - (int64_t)a : (int64_t)a;
    d->p = next;
    return CJ_OK;
}

/* A string or container: its length or count, which rd bounded by the
 * remaining input, so it fits size_t. */
int cj_cbor_get_sized(cj_cbor_dec_t *d, int mt, const uint8_t **p, size_t *n)
{
    const uint8_t *s;
    uint64_t a;
    int r = take(d, mt, &a, &s);
    if (r == CJ_OK) {
        *n = (size_t)a;
        if (p != NULL)
            *p = s;
    }
    return r;
}

int cj_cbor_get_tstr(cj_cbor_dec_t *d, const char **s, size_t *n)
{
    const uint8_t *p;
    int r = cj_cbor_get_sized(d, CJ_CBOR_TSTR, &p, n);
    if (r == CJ_OK)
        *s = (const char *)p;
    return r;
}

/* false, true (simple values 20, 21) or null (22); the cursor only moves
 * when the value is one of want_lo..want_hi. */
static int get_simple(cj_cbor_dec_t *d, uint64_t want_lo, uint64_t want_hi,
                      uint64_t *v)
{
    const uint8_t *p = d->p, *s;
    int r = take(d, CJ_CBOR_SIMPLE, v, &s);
    if (r == CJ_OK && (*v < want_lo || *v > want_hi)) {
        d->p = p;
        r = CJ_ERR_TYPE;
    }
    return r;
}

int cj_cbor_get_bool(cj_cbor_dec_t *d, bool *v)
{
    uint64_t a;
    int r = get_simple(d, 20, 21, &a);
    if (r == CJ_OK)
        *v = a == 21;
    return r;
}

int cj_cbor_get_null(cj_cbor_dec_t *d)
{
    uint64_t a;
    return get_simple(d, 22, 22, &a);
}

/* Iterative walk: left[i] holds how many items the container at depth i
 * still owes once the one being read at depth i+1 is finished; need is
 * the count owed at the current depth.  The stack is bounded by
 * CJ_CBOR_MAX_DEPTH, so hostile nesting costs no C stack. */
int cj_cbor_skip(cj_cbor_dec_t *d)
{
    size_t left[CJ_CBOR_MAX_DEPTH];
    size_t need = 1, depth = 0;
    const uint8_t *p = d->p;

    for (;;) {
        uint64_t a;
        int r = rd(p, d->end, &a, &p);
        if (r < 0)
            return r;
        need--;
        if (r == CJ_CBOR_BSTR || r == CJ_CBOR_TSTR) {
            p += a;
        } else if (r == CJ_CBOR_ARRAY || r == CJ_CBOR_MAP) {
            if (depth == CJ_CBOR_MAX_DEPTH)
                return CJ_ERR_DEPTH;
            if (a) {
                left[depth++] = need;
                /* rd guaranteed a <= remaining (or half of it for a
                 * map), so doubling cannot overflow. */
                need = (size_t)a << (r == CJ_CBOR_MAP);
            }
        }
        while (need == 0) {
            if (depth == 0) {
                d->p = p;
                return CJ_OK;
            }
            need = left[--depth];
        }
    }
}

int cj_cbor_validate(const uint8_t *buf, size_t len)
{
    cj_cbor_dec_t d;
    int r;

    cj_cbor_dec_init(&d, buf, len);
    r = cj_cbor_skip(&d);
    if (r == CJ_OK && !cj_cbor_dec_done(&d))
        r = CJ_ERR_TRAILING;
    return r;
}
