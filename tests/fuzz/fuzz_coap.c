/*
 * Fuzz harness for the CoAP codec.
 *
 * Properties checked on every input:
 *   - cj_coap_parse() never reads outside the input (ASan);
 *   - after a successful parse, iteration terminates, agrees with
 *     opt_count and yields non-decreasing numbers;
 *   - the codec is canonical for what it accepts: rebuilding the message
 *     from its parsed fields gives back exactly the input bytes (uint
 *     options are copied as raw values, leading zeros included);
 *   - cj_coap_opts_decode() agrees with the parser on the options region,
 *     and on arbitrary input its table re-encodes to the same bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cojp/coap.h"

#define REQUIRE(c)                                                         \
    do {                                                                   \
        if (!(c))                                                          \
            abort();                                                       \
    } while (0)

static uint8_t out[1 << 17];

static void check_parsed(const cj_coap_msg_t *m, const uint8_t *data,
                         size_t size)
{
    static const uint16_t known[] = {CJ_COAP_OPT_URI_HOST, CJ_COAP_OPT_OSCORE,
                                     CJ_COAP_OPT_URI_PATH,
                                     CJ_COAP_OPT_PROXY_SCHEME};
    cj_coap_opt_iter_t it;
    cj_coap_opt_t o, f, tab[CJ_COAP_MAX_OPTIONS];
    cj_coap_builder_t b;
    const uint8_t *pl;
    size_t count = 0, pll;
    uint16_t prev = 0, bad;
    uint32_t v;
    int rc;

    REQUIRE(m->token_len <= CJ_COAP_MAX_TOKEN);
    REQUIRE((m->token == NULL) == (m->token_len == 0));
    REQUIRE((m->payload == NULL) == (m->payload_len == 0));
    REQUIRE(m->code != CJ_COAP_EMPTY || size == 4);

    cj_coap_build_init(&b, out, sizeof out, m->type, m->code, m->mid,
                       m->token, m->token_len);
    cj_coap_opt_iter_init(&it, m);
    while (cj_coap_opt_next(&it, &o)) {
        REQUIRE(o.num >= prev);
        REQUIRE(o.val >= data && o.val + o.len <= data + size);
        prev = o.num;
        count++;
        REQUIRE(count <= m->opt_count);
        if (count <= 64) /* keep find's quadratic cost bounded */
            REQUIRE(cj_coap_opt_find(m, o.num, &f) == 1 && f.num == o.num);
        rc = cj_coap_opt_uint(&o, &v);
        REQUIRE(rc == (o.len > 4 ? CJ_ERR_RANGE : CJ_OK));
        cj_coap_build_opt(&b, o.num, o.val, o.len);
    }
    REQUIRE(count == m->opt_count);
    cj_coap_build_payload(&b, m->payload, m->payload_len);
    if (size <= sizeof out) {
        REQUIRE(cj_coap_build_finish(&b) == (int)size);
        REQUIRE(memcmp(out, data, size) == 0);
    }

    rc = cj_coap_check_critical(m, known, 4, &bad);
    REQUIRE(rc == CJ_OK || (rc == CJ_ERR_COAP_CRITICAL && (bad & 1)));

    /* The options region plus payload is a valid bare option sequence. */
    rc = cj_coap_opts_decode(m->opts, size - (size_t)(m->opts - data), tab,
                             CJ_COAP_MAX_OPTIONS, &pl, &pll);
    if (m->opt_count > CJ_COAP_MAX_OPTIONS) {
        REQUIRE(rc == CJ_ERR_NOSPACE);
    } else {
        REQUIRE(rc == (int)m->opt_count);
        REQUIRE(pl == m->payload && pll == m->payload_len);
    }
}

/* Any input as a bare option sequence: on success, re-encoding the table
 * with cj_coap_opt_encode() gives back the same bytes. */
static void check_bare(const uint8_t *data, size_t size)
{
    cj_coap_opt_t tab[CJ_COAP_MAX_OPTIONS];
    const uint8_t *pl;
    size_t pll, len = 0;
    uint16_t prev = 0;
    int n, i;

    n = cj_coap_opts_decode(data, size, tab, CJ_COAP_MAX_OPTIONS, &pl, &pll);
    if (n < 0 || size > sizeof out)
        return;
    for (i = 0; i < n; i++) {
        int rc = cj_coap_opt_encode(out + len, sizeof out - len, prev,
                                    tab[i].num, tab[i].val, tab[i].len);
        REQUIRE(rc > 0);
        len += (size_t)rc;
        prev = tab[i].num;
    }
    if (pl) {
        REQUIRE(pll > 0 && pl + pll == data + size);
        out[len++] = 0xff;
        memcpy(out + len, pl, pll);
        len += pll;
    } else {
        REQUIRE(pll == 0);
    }
    REQUIRE(len == size && memcmp(out, data, size) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cj_coap_msg_t m;

    if (cj_coap_parse(&m, data, size) == CJ_OK) {
        REQUIRE(m.buf == data && m.len == size);
        check_parsed(&m, data, size);
    }
    check_bare(data, size);
    return 0;
}
