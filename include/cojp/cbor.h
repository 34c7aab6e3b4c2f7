/*
 * cojp/cbor.h - the CBOR subset (RFC 8949) that CoJP, OSCORE and COSE use.
 *
 * Supported: unsigned and negative integers up to 64 bits, byte strings,
 * text strings (UTF-8 checked), arrays and maps of definite length,
 * false, true and null.  Not supported, and rejected by the decoder with
 * CJ_ERR_UNSUPPORTED: indefinite lengths, tags, floats and other simple
 * values.  The decoder is strict: every head must use the shortest form
 * (preferred serialization, RFC 8949 section 4.2.1) or CJ_ERR_NONCANONICAL
 * is returned; a length that runs past the buffer is CJ_ERR_TRUNCATED.
 *
 * Encoder: an output cursor whose overflow is sticky.  Write items one
 * after the other and check only the result of cj_cbor_enc_finish().
 * Initialised with a NULL buffer it writes nothing and counts the size.
 *
 * Decoder: a cursor over the caller's buffer.  Strings are returned as
 * views (pointer + length) into that buffer and live as long as it does.
 * Containers are entered, not skipped: cj_cbor_get_array() returns the
 * element count and leaves the cursor on the first element.  A failed
 * get leaves the cursor where it was.
 */
#ifndef COJP_CBOR_H
#define COJP_CBOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cojp/config.h"
#include "cojp/err.h"

/* Major types (RFC 8949 section 3.1). */
enum {
    CJ_CBOR_UINT = 0,
    CJ_CBOR_NINT = 1,
    CJ_CBOR_BSTR = 2,
    CJ_CBOR_TSTR = 3,
    CJ_CBOR_ARRAY = 4,
    CJ_CBOR_MAP = 5,
    CJ_CBOR_TAG = 6,
    CJ_CBOR_SIMPLE = 7
};

/* ---- encoder ---------------------------------------------------------- */

typedef struct cj_cbor_enc {
    uint8_t *buf; /* NULL: size-only dry run */
    size_t cap;
    size_t len;   /* bytes written (or that would have been) so far */
    int err;      /* first error seen, sticky */
} cj_cbor_enc_t;

/* Start encoding into buf[0..cap).  buf may be NULL (then cap is ignored)
 * to compute the encoded size without writing. */
void cj_cbor_enc_init(cj_cbor_enc_t *e, uint8_t *buf, size_t cap);

/* The head of one item (RFC 8949 section 3) in its shortest form
 * (section 4.2.1): major type mt (CJ_CBOR_*) and argument v, written to
 * out[0..9).  Returns its length, 1 to 9.  Every put below writes its
 * head with it; writers of small fixed-shape objects may use it alone. */
size_t cj_cbor_head(uint8_t out[9], unsigned mt, uint64_t v);

void cj_cbor_put_uint(cj_cbor_enc_t *e, uint64_t v);
/* Any int64_t: major type 0 when v >= 0, major type 1 otherwise. */
void cj_cbor_put_int(cj_cbor_enc_t *e, int64_t v);
/* Major type 1 with argument n, i.e. the integer -1 - n.  Reaches
 * -2^64, which int64_t cannot hold. */
void cj_cbor_put_nint_arg(cj_cbor_enc_t *e, uint64_t n);
void cj_cbor_put_bstr(cj_cbor_enc_t *e, const uint8_t *p, size_t n);
/* Text is copied as is; the caller guarantees it is UTF-8. */
void cj_cbor_put_tstr(cj_cbor_enc_t *e, const char *s, size_t n);
/* Only the head of a byte string of n bytes; the caller then writes the n
 * bytes with cj_cbor_put_raw() or other put calls (bstr-wrapped CBOR). */
void cj_cbor_put_bstr_head(cj_cbor_enc_t *e, size_t n);
void cj_cbor_put_array(cj_cbor_enc_t *e, size_t count);
void cj_cbor_put_map(cj_cbor_enc_t *e, size_t pairs);
void cj_cbor_put_bool(cj_cbor_enc_t *e, bool v);
void cj_cbor_put_null(cj_cbor_enc_t *e);
/* Pre-encoded bytes, copied verbatim. */
void cj_cbor_put_raw(cj_cbor_enc_t *e, const uint8_t *p, size_t n);

/* Total length written (>= 0), or the first error (CJ_ERR_NOSPACE when
 * the buffer was too small). */
int cj_cbor_enc_finish(const cj_cbor_enc_t *e);

/* ---- decoder ---------------------------------------------------------- */

typedef struct cj_cbor_dec {
    const uint8_t *p;   /* next unread byte */
    const uint8_t *end; /* one past the last byte */
} cj_cbor_dec_t;

static inline void cj_cbor_dec_init(cj_cbor_dec_t *d, const uint8_t *buf,
                                    size_t len)
{
    d->p = buf;
    d->end = len ? buf + len : buf; /* no arithmetic on a NULL buffer */
}

/* True when every byte was consumed. */
static inline bool cj_cbor_dec_done(const cj_cbor_dec_t *d)
{
    return d->p == d->end;
}

/* Major type of the next item (CJ_CBOR_UINT..CJ_CBOR_SIMPLE), or
 * CJ_ERR_TRUNCATED at the end of the input. */
static inline int cj_cbor_peek_type(const cj_cbor_dec_t *d)
{
    return d->p == d->end ? CJ_ERR_TRUNCATED : *d->p >> 5;
}

/* Typed readers: on success return CJ_OK and advance past the item; on
 * failure return CJ_ERR_TYPE (other type), CJ_ERR_RANGE (value does not
 * fit), CJ_ERR_NONCANONICAL, CJ_ERR_UNSUPPORTED or CJ_ERR_TRUNCATED, and
 * leave the cursor unchanged. */
int cj_cbor_get_uint(cj_cbor_dec_t *d, uint64_t *v);
/* Major type 0 or 1, in int64_t range. */
int cj_cbor_get_int(cj_cbor_dec_t *d, int64_t *v);
/* Major type 1 argument n (value -1 - n) over the whole 64-bit range. */
int cj_cbor_get_nint_arg(cj_cbor_dec_t *d, uint64_t *n);
/* A string or container of major type mt (CJ_CBOR_BSTR .. CJ_CBOR_MAP):
 * *n is its length or count, *p (unless p is NULL) where its body
 * starts.  The byte string, array and map readers below are this one
 * with a fixed type. */
int cj_cbor_get_sized(cj_cbor_dec_t *d, int mt, const uint8_t **p,
                      size_t *n);
static inline int cj_cbor_get_bstr(cj_cbor_dec_t *d, const uint8_t **p,
                                   size_t *n)
{
    return cj_cbor_get_sized(d, CJ_CBOR_BSTR, p, n);
}
/* Checks that the text is well-formed UTF-8 (CJ_ERR_MALFORMED if not). */
int cj_cbor_get_tstr(cj_cbor_dec_t *d, const char **s, size_t *n);
/* Enter an array/map: *count is the number of elements (pairs for a
 * map); the cursor moves to the first element.  Counts larger than the
 * remaining input could hold are CJ_ERR_TRUNCATED. */
static inline int cj_cbor_get_array(cj_cbor_dec_t *d, size_t *count)
{
    return cj_cbor_get_sized(d, CJ_CBOR_ARRAY, NULL, count);
}
static inline int cj_cbor_get_map(cj_cbor_dec_t *d, size_t *pairs)
{
    return cj_cbor_get_sized(d, CJ_CBOR_MAP, NULL, pairs);
}
int cj_cbor_get_bool(cj_cbor_dec_t *d, bool *v);
int cj_cbor_get_null(cj_cbor_dec_t *d);

/* Skip one complete item, containers included, nesting at most
 * CJ_CBOR_MAX_DEPTH deep (CJ_ERR_DEPTH beyond). */
int cj_cbor_skip(cj_cbor_dec_t *d);

/* Check that buf holds exactly one well-formed item of the supported
 * subset, in preferred serialization, and nothing after it
 * (CJ_ERR_TRAILING). */
int cj_cbor_validate(const uint8_t *buf, size_t len);

#endif
