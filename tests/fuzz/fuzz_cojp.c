/*
 * Fuzz the CoJP object decoders (RFC 9031 section 8.4).  Every input is
 * decoded as a Join_Request, a Configuration and an
 * Unsupported_Configuration.  A failed decode must report a parameter
 * that makes sense (a known code, addinfo inside the input and null for
 * Malformed); a successful one is re-encoded, decoded again and compared
 * field by field, and encoding the second result must give the same
 * bytes as the first encoding.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cojp/cojp.h"

#define CAP 4096
static uint8_t enc1[CAP], enc2[CAP];

static bool same(const uint8_t *a, size_t alen, const uint8_t *b,
                 size_t blen)
{
    return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

static void check_report(const cj_cojp_report_t *r, int rc,
                         const uint8_t *data, size_t size)
{
    if (rc == CJ_OK) {
        if (r->has_param)
            abort();
        return;
    }
    if (rc >= 0 || !r->has_param)
        return;
    if (r->param.code != CJ_COJP_CODE_UNSUPPORTED &&
        r->param.code != CJ_COJP_CODE_MALFORMED)
        abort();
    if (r->param.addinfo_len != 0 &&
        (r->param.code == CJ_COJP_CODE_MALFORMED ||
         r->param.addinfo < data ||
         r->param.addinfo + r->param.addinfo_len > data + size))
        abort();
}

static bool unsupported_eq(const cj_cojp_unsupported_t *a,
                           const cj_cojp_unsupported_t *b)
{
    if (a->count != b->count)
        return false;
    for (size_t i = 0; i < a->count; i++)
        if (a->params[i].code != b->params[i].code ||
            a->params[i].label != b->params[i].label ||
            !same(a->params[i].addinfo, a->params[i].addinfo_len,
                  b->params[i].addinfo, b->params[i].addinfo_len))
            return false;
    return true;
}

static bool config_eq(const cj_cojp_config_t *a, const cj_cojp_config_t *b)
{
    if (a->key_count != b->key_count ||
        (a->short_id == NULL) != (b->short_id == NULL) ||
        (a->jrc_address == NULL) != (b->jrc_address == NULL) ||
        a->has_lease_time != b->has_lease_time ||
        a->has_blacklist != b->has_blacklist ||
        a->blacklist_count != b->blacklist_count ||
        a->has_join_rate != b->has_join_rate || b->ignored != 0)
        return false;
    for (size_t i = 0; i < a->key_count; i++) {
        const cj_cojp_key_t *x = &a->keys[i], *y = &b->keys[i];
        if (x->key_id != y->key_id || x->key_usage != y->key_usage ||
            memcmp(x->key, y->key, CJ_COJP_KEY_LEN) != 0 ||
            !same(x->addinfo, x->addinfo_len, y->addinfo, y->addinfo_len))
            return false;
    }
    if (a->short_id &&
        (memcmp(a->short_id, b->short_id, CJ_COJP_SHORT_ID_LEN) != 0 ||
         (a->has_lease_time && a->lease_time != b->lease_time)))
        return false;
    if (a->jrc_address &&
        memcmp(a->jrc_address, b->jrc_address, CJ_COJP_JRC_ADDRESS_LEN))
        return false;
    for (size_t i = 0; i < a->blacklist_count; i++)
        if (!same(a->blacklist[i].p, a->blacklist[i].len, b->blacklist[i].p,
                  b->blacklist[i].len))
            return false;
    return !a->has_join_rate || a->join_rate == b->join_rate;
}

static void fuzz_join_request(const uint8_t *data, size_t size)
{
    cj_cojp_join_request_t a, b;
    cj_cojp_report_t why;
    int rc = cj_cojp_join_request_decode(data, size, &a, &why), n, m;
    check_report(&why, rc, data, size);
    if (rc != CJ_OK)
        return;
    n = cj_cojp_join_request_encode(&a, enc1, CAP);
    if (n < 0 || n != cj_cojp_join_request_encode(&a, NULL, 0) ||
        (size_t)n > size)
        abort();
    if (cj_cojp_join_request_decode(enc1, (size_t)n, &b, &why) != CJ_OK ||
        a.role != b.role ||
        !same(a.network_id, a.network_id_len, b.network_id,
              b.network_id_len) ||
        a.has_unsupported != b.has_unsupported ||
        (a.has_unsupported && !unsupported_eq(&a.unsupported, &b.unsupported)))
        abort();
    m = cj_cojp_join_request_encode(&b, enc2, CAP);
    if (m != n || memcmp(enc1, enc2, (size_t)n) != 0)
        abort();
}

static void fuzz_config(const uint8_t *data, size_t size)
{
    static cj_cojp_config_t a, b;
    cj_cojp_report_t why;
    int rc = cj_cojp_config_decode(data, size, &a, &why), n, m;
    check_report(&why, rc, data, size);
    if (rc != CJ_OK)
        return;
    n = cj_cojp_config_encode(&a, enc1, CAP);
    /* Defaults are dropped and discarded parameters vanish, so the
     * preferred form is never longer than the input. */
    if (n < 0 || n != cj_cojp_config_encode(&a, NULL, 0) ||
        (size_t)n > size)
        abort();
    if (cj_cojp_config_decode(enc1, (size_t)n, &b, &why) != CJ_OK ||
        !config_eq(&a, &b))
        abort();
    m = cj_cojp_config_encode(&b, enc2, CAP);
    if (m != n || memcmp(enc1, enc2, (size_t)n) != 0)
        abort();
}

static void fuzz_unsupported(const uint8_t *data, size_t size)
{
    static cj_cojp_unsupported_t a, b;
    int n, m;
    if (cj_cojp_unsupported_decode(data, size, &a) != CJ_OK)
        return;
    n = cj_cojp_unsupported_encode(&a, enc1, CAP);
    if (n < 0 || (size_t)n > size ||
        cj_cojp_unsupported_decode(enc1, (size_t)n, &b) != CJ_OK ||
        !unsupported_eq(&a, &b))
        abort();
    m = cj_cojp_unsupported_encode(&b, enc2, CAP);
    if (m != n || memcmp(enc1, enc2, (size_t)n) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > CAP) /* re-encodings are never longer than the input */
        return 0;
    fuzz_join_request(data, size);
    fuzz_config(data, size);
    fuzz_unsupported(data, size);
    return 0;
}
