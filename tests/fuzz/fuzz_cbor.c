/*
 * Fuzz harness for the CBOR codec (src/codec/cbor.c).
 *
 * 1. cj_cbor_validate on the whole input.
 * 2. A flat walk with the typed getters (they enter containers, so every
 *    item is visited): each call must either advance the cursor inside
 *    the buffer or fail and leave it where it was.  Each item decoded is
 *    encoded again with the matching put call; since the decoder accepts
 *    only preferred serialization the encoding is unique, so the output
 *    must equal the bytes the item was read from.  For input that
 *    validates the walk must succeed to the end and the re-encoding must
 *    equal the whole input.
 * 3. An item-by-item skip over the input, which must agree with
 *    validate about the first item.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cojp/cbor.h"

#define FUZZ_ASSERT(c)                                                     \
    do {                                                                   \
        if (!(c))                                                          \
            __builtin_trap();                                              \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t out[1 << 16];

/* The item at [from, to) was re-encoded starting at out[start]. */
static void same_bytes(const cj_cbor_enc_t *e, size_t start,
                       const uint8_t *from, const uint8_t *to)
{
    if (e->err != CJ_OK)
        return; /* input larger than out: nothing to compare */
    FUZZ_ASSERT(e->len - start == (size_t)(to - from));
    FUZZ_ASSERT(memcmp(out + start, from, e->len - start) == 0);
}

/* One step of the walk; returns false when the walk must stop. */
static bool step(cj_cbor_dec_t *d, cj_cbor_enc_t *e)
{
    const uint8_t *before = d->p;
    size_t start = e->len, n;
    uint64_t u;
    int64_t s;
    const uint8_t *p;
    const char *t;
    bool b;
    int r, type = cj_cbor_peek_type(d);

    switch (type) {
    case CJ_CBOR_UINT:
    case CJ_CBOR_NINT:
        r = cj_cbor_get_int(d, &s);
        if (r == CJ_OK) {
            cj_cbor_put_int(e, s);
            break;
        }
        FUZZ_ASSERT(d->p == before);
        if (type == CJ_CBOR_UINT) {
            r = cj_cbor_get_uint(d, &u);
            if (r == CJ_OK)
                cj_cbor_put_uint(e, u);
        } else {
            r = cj_cbor_get_nint_arg(d, &u);
            if (r == CJ_OK)
                cj_cbor_put_nint_arg(e, u);
        }
        break;
    case CJ_CBOR_BSTR:
        r = cj_cbor_get_bstr(d, &p, &n);
        if (r == CJ_OK) {
            FUZZ_ASSERT(p + n == d->p);
            cj_cbor_put_bstr(e, p, n);
        }
        break;
    case CJ_CBOR_TSTR:
        r = cj_cbor_get_tstr(d, &t, &n);
        if (r == CJ_OK) {
            FUZZ_ASSERT((const uint8_t *)t + n == d->p);
            cj_cbor_put_tstr(e, t, n);
        }
        break;
    case CJ_CBOR_ARRAY:
        r = cj_cbor_get_array(d, &n);
        if (r == CJ_OK) {
            FUZZ_ASSERT(n <= (size_t)(d->end - d->p));
            cj_cbor_put_array(e, n);
        }
        break;
    case CJ_CBOR_MAP:
        r = cj_cbor_get_map(d, &n);
        if (r == CJ_OK) {
            FUZZ_ASSERT(n <= (size_t)(d->end - d->p) / 2);
            cj_cbor_put_map(e, n);
        }
        break;
    case CJ_CBOR_SIMPLE:
        r = cj_cbor_get_bool(d, &b);
        if (r == CJ_OK) {
            cj_cbor_put_bool(e, b);
            break;
        }
        FUZZ_ASSERT(d->p == before);
        r = cj_cbor_get_null(d);
        if (r == CJ_OK)
            cj_cbor_put_null(e);
        break;
    default: /* tags: never accepted */
        FUZZ_ASSERT(type == CJ_CBOR_TAG);
        r = cj_cbor_skip(d);
        FUZZ_ASSERT(r != CJ_OK);
        break;
    }
    if (r != CJ_OK) {
        FUZZ_ASSERT(r < 0 && d->p == before);
        return false;
    }
    FUZZ_ASSERT(d->p > before && d->p <= d->end);
    same_bytes(e, start, before, d->p);
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cj_cbor_dec_t d;
    cj_cbor_enc_t e;
    int v = cj_cbor_validate(data, size);
    bool valid = v == CJ_OK;

    FUZZ_ASSERT(v <= 0);

    cj_cbor_dec_init(&d, data, size);
    cj_cbor_enc_init(&e, out, sizeof out);
    while (!cj_cbor_dec_done(&d) && step(&d, &e))
        ;
    if (valid) {
        FUZZ_ASSERT(cj_cbor_dec_done(&d));
        FUZZ_ASSERT(e.len == size);
        if (e.err == CJ_OK)
            FUZZ_ASSERT(cj_cbor_enc_finish(&e) == (int)size &&
                        memcmp(out, data, size) == 0);
        else
            FUZZ_ASSERT(e.err == CJ_ERR_NOSPACE && size > sizeof out);
    }

    cj_cbor_dec_init(&d, data, size);
    while (!cj_cbor_dec_done(&d)) {
        const uint8_t *before = d.p;
        int r = cj_cbor_skip(&d);
        if (r != CJ_OK) {
            FUZZ_ASSERT(d.p == before);
            if (before == data)
                FUZZ_ASSERT(r == v);
            break;
        }
        FUZZ_ASSERT(d.p > before && d.p <= d.end);
        if (before == data)
            FUZZ_ASSERT(valid == (d.p == d.end));
    }
    return 0;
}
