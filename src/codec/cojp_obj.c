/*
 * CoJP objects (RFC 9031 section 8.4) on top of the cj_cbor cursor API.
 *
 * Error handling follows section 8.3.1.  Its scope sentence covers "the
 * cases in which certain CoJP CBOR object parameters are not supported by
 * the implementation or their processing fails"; then
 *   "When such a parameter is detected in a CoAP request (Join Request
 *    message, Parameter Update message), a Diagnostic Response message
 *    MUST be returned."  and
 *   "When a parameter that cannot be acted upon is encountered while
 *    processing a CoJP object in a CoAP response (Join Response message),
 *    a (6LBR) pledge SHOULD reattempt to join [...] SHOULD include the
 *    Unsupported Configuration CBOR object within the Join Request".
 * Reading: the RFC has no "ignore unknown labels" rule, so a label this
 * implementation does not know is a parameter "not supported by the
 * implementation" and is an error exactly like a known label whose value
 * fails: the JRC (Join_Request) and a joined node (Configuration in a
 * Parameter Update) answer 4.00, a pledge (Configuration in a Join
 * Response) rejoins and reports it.  Section 8.4.5 fixes what is
 * reported: an unknown label "cannot be acted upon regardless of its
 * value", so code Unsupported with addinfo null; a known label whose
 * setting cannot be configured gets code Unsupported with the value as
 * addinfo; a malformed value gets code Malformed with addinfo null.  The
 * only parameters dropped without an error are those the RFC says to
 * discard: a JRC address that is not 16 bytes (8.4.2) and an invalid
 * short identifier (8.4.4, 8.4.4.1).  The codec does not know whether
 * the object came in a request or a response; it reports, the engine
 * chooses between 4.00 and a rejoin.
 *
 * Every decoder validates the whole input first, so the walk that
 * follows meets only well-formed, complete items: its cursor calls fail
 * only with CJ_ERR_TYPE (without moving) or CJ_ERR_RANGE, and skipping
 * cannot fail.  A typed get is therefore its own type check.
 */
#include <string.h>

#include "cojp/cbor.h"
#include "cojp/cojp.h"

/* Set bits of the labels each object may carry (Tables 2 and 4). */
#define BIT(l) (1u << (l))
#define JR_LABELS                                                          \
    (BIT(CJ_COJP_LABEL_ROLE) | BIT(CJ_COJP_LABEL_NETWORK_ID) |             \
     BIT(CJ_COJP_LABEL_UNSUPPORTED))
#define CONFIG_LABELS                                                      \
    (BIT(CJ_COJP_LABEL_KEY_SET) | BIT(CJ_COJP_LABEL_SHORT_ID) |            \
     BIT(CJ_COJP_LABEL_JRC_ADDRESS) | BIT(CJ_COJP_LABEL_BLACKLIST) |       \
     BIT(CJ_COJP_LABEL_JOIN_RATE))

/* ---- shared checks (encoder and decoder agree on them) --------------- */

/* key_addinfo length against the Key ID Mode that key_id implies
 * (section 8.4.3.3). */
static bool key_addinfo_ok(unsigned key_id, size_t n)
{
    /* Bit n of the mask: n bytes are allowed (2, 8 or 10 for key_id 0,
     * else 0, 4 or 8). */
    return n <= 10 && ((key_id == 0 ? 0x504u : 0x111u) >> n & 1u);
}

/* 0xfffe and 0xffff are reserved short addresses (section 8.4.4.1). */
static bool short_id_ok(const uint8_t *p, size_t n)
{
    return n == CJ_COJP_SHORT_ID_LEN && !(p[0] == 0xff && p[1] >= 0xfe);
}

/* ---- decoding ------------------------------------------------------- */

/* Walkers return CJ_OK or the error to report; the code and addinfo of
 * the report follow from the error alone (section 8.4.5, table in
 * cojp/cojp.h):
 *   CJ_ERR_RANGE, CJ_ERR_NOSPACE  Unsupported, addinfo = the value;
 *   CJ_ERR_UNSUPPORTED            Unsupported, null (unknown label);
 *   CJ_ERR_TYPE, CJ_ERR_MALFORMED Malformed, null;
 *   RANGE_MALFORMED               Malformed, null, returned as
 *                                 CJ_ERR_RANGE (a value of the right
 *                                 type that is invalid rather than
 *                                 unsupported). */
#define RANGE_MALFORMED (-1000)

typedef int (*walk_fn)(void *obj, cj_cbor_dec_t *d, int label);

/* Fill *why for a parameter of label l that failed with rc (see the
 * table above); val..end is the input from its value on.  Returns the
 * error for the caller. */
static int report(cj_cojp_report_t *why, int64_t l, int rc,
                  const uint8_t *val, const uint8_t *end)
{
    why->has_param = true;
    why->param.label = l;
    why->param.code = CJ_COJP_CODE_MALFORMED;
    if (rc == RANGE_MALFORMED) {
        rc = CJ_ERR_RANGE;
    } else if (rc == CJ_ERR_RANGE || rc == CJ_ERR_NOSPACE) {
        cj_cbor_dec_t t = {val, end};
        (void)cj_cbor_skip(&t); /* cannot fail: input validated */
        why->param.code = CJ_COJP_CODE_UNSUPPORTED;
        why->param.addinfo = val;
        why->param.addinfo_len = (size_t)(t.p - val);
    } else if (rc == CJ_ERR_UNSUPPORTED) {
        why->param.code = CJ_COJP_CODE_UNSUPPORTED;
    }
    return rc;
}

/* Validate buf, enter its top-level map and hand every value to walk
 * with its label.  Labels outside allowed, repeated labels (RFC 8949
 * section 5.6) and a required label (0: none) that never came are
 * reported here, the last as a malformed parameter.
 * CBOR-level failures other than truncation and trailing bytes all
 * become CJ_ERR_MALFORMED, so that CJ_ERR_UNSUPPORTED keeps meaning
 * "unknown label". */
static CJ_ALWAYS_INLINE int decode_object(const uint8_t *buf, size_t len,
                                  unsigned allowed, int required, walk_fn walk,
                                  void *obj, cj_cojp_report_t *why)
{
    cj_cojp_report_t spare;
    cj_cbor_dec_t d;
    const uint8_t *val = NULL;
    size_t pairs;
    unsigned seen = 0;
    int64_t l = 0;
    int rc;

    if (why == NULL)
        why = &spare;
    memset(why, 0, sizeof *why);
    rc = cj_cbor_validate(buf, len);
    if (rc < 0)
        return rc == CJ_ERR_TRUNCATED || rc == CJ_ERR_TRAILING
                   ? rc
                   : CJ_ERR_MALFORMED;
    cj_cbor_dec_init(&d, buf, len);
    if (cj_cbor_get_map(&d, &pairs) < 0)
        return CJ_ERR_TYPE;
    while (pairs--) {
        rc = cj_cbor_get_int(&d, &l);
        if (rc == CJ_ERR_TYPE)
            return rc;
        if (rc < 0)
            return CJ_ERR_UNSUPPORTED; /* beyond int64_t: cannot be named */
        val = d.p;
        /* Labels start at 1: bit 0 of allowed is never set. */
        if ((uint64_t)l > CJ_COJP_LABEL_UNSUPPORTED || !(allowed & BIT(l)))
            rc = CJ_ERR_UNSUPPORTED;
        else if (seen & BIT(l))
            rc = CJ_ERR_MALFORMED;
        else
            rc = walk(obj, &d, (int)l);
        if (rc < 0)
            goto report;
        seen |= BIT(l);
    }
    if (required == 0 || (seen & BIT(required)))
        return CJ_OK;
    rc = CJ_ERR_TYPE;
    l = required;

report:
    return report(why, l, rc, val, d.end);
}

/* Unsupported_Configuration body; errors are CJ_ERR_TYPE, CJ_ERR_RANGE
 * and CJ_ERR_NOSPACE. */
static int walk_unsupported(cj_cbor_dec_t *d, cj_cojp_unsupported_t *u)
{
    size_t n;
    memset(u, 0, sizeof *u);
    if (cj_cbor_get_array(d, &n) < 0 || n == 0 || n % 3 != 0)
        return CJ_ERR_TYPE;
    if (n / 3 > CJ_COJP_MAX_UNSUPPORTED)
        return CJ_ERR_NOSPACE;
    for (u->count = 0; u->count < n / 3; u->count++) {
        cj_cojp_param_t *p = &u->params[u->count];
        int rc;
        if ((rc = cj_cbor_get_int(d, &p->code)) < 0 ||
            (rc = cj_cbor_get_int(d, &p->label)) < 0)
            return rc;
        if (cj_cbor_get_null(d) < 0) {
            p->addinfo = d->p;
            (void)cj_cbor_skip(d);
            p->addinfo_len = (size_t)(d->p - p->addinfo);
        }
    }
    return CJ_OK;
}

/* ---- Join_Request ---------------------------------------------------- */

static int jr_value(void *obj, cj_cbor_dec_t *d, int label)
{
    cj_cojp_join_request_t *jr = obj;
    uint64_t role;
    int rc;

    switch (label) {
    case CJ_COJP_LABEL_ROLE:
        if (cj_cbor_get_uint(d, &role) < 0)
            return CJ_ERR_TYPE;
        if (role > CJ_COJP_ROLE_6LBR)
            return CJ_ERR_RANGE;
        jr->role = (uint8_t)role;
        return CJ_OK;
    case CJ_COJP_LABEL_NETWORK_ID:
        return cj_cbor_get_bstr(d, &jr->network_id, &jr->network_id_len) < 0
                   ? CJ_ERR_TYPE
                   : CJ_OK;
    default: /* CJ_COJP_LABEL_UNSUPPORTED */
        rc = walk_unsupported(d, &jr->unsupported);
        /* A code or label beyond int64_t is a malformed parameter. */
        if (rc == CJ_ERR_RANGE)
            return RANGE_MALFORMED;
        jr->has_unsupported = rc == CJ_OK;
        return rc;
    }
}

int cj_cojp_join_request_decode(const uint8_t *buf, size_t len,
                                cj_cojp_join_request_t *jr,
                                cj_cojp_report_t *why)
{
    memset(jr, 0, sizeof *jr);
    /* Section 8.4.1: the network identifier "MUST be included". */
    return decode_object(buf, len, JR_LABELS, CJ_COJP_LABEL_NETWORK_ID,
                         jr_value, jr, why);
}

/* ---- Configuration --------------------------------------------------- */

/* The link-layer key set: a flat sequence of Link_Layer_Key groups
 * (section 8.4.3) told apart by CBOR type alone: a uint starts a key, an
 * integer after key_id is key_usage, a bstr after key_value is
 * key_addinfo.  left counts the items of the array not yet read. */
static int walk_keys(cj_cbor_dec_t *d, cj_cojp_config_t *c)
{
    size_t left;

    if (cj_cbor_get_array(d, &left) < 0 || left == 0)
        return CJ_ERR_TYPE;
    while (left) {
        cj_cojp_key_t *k = &c->keys[c->key_count];
        uint64_t id, usage = CJ_COJP_KEY_USAGE_K1K2_ENC_MIC32;
        size_t klen;
        bool ai_present;
        if (c->key_count == CJ_COJP_MAX_KEYS)
            return CJ_ERR_NOSPACE;
        if (cj_cbor_get_uint(d, &id) < 0)
            return CJ_ERR_TYPE;
        if (--left && (unsigned)cj_cbor_peek_type(d) <= CJ_CBOR_NINT) {
            /* A negative key_usage is as unregistered as any other
             * value outside Table 6. */
            if (cj_cbor_get_uint(d, &usage) < 0) {
                (void)cj_cbor_skip(d);
                usage = UINT64_MAX;
            }
            left--;
        }
        if (left == 0 || cj_cbor_get_bstr(d, &k->key, &klen) < 0)
            return CJ_ERR_TYPE;
        /* a failed get (another type) moves nothing and writes nothing */
        ai_present = --left &&
                     cj_cbor_get_bstr(d, &k->addinfo, &k->addinfo_len) == CJ_OK;
        if (ai_present)
            left--;
        /* Section 8.4.3: a key_id above the link layer's maximum or a key
         * of the wrong length makes the key invalid and "MUST [be]
         * signal[ed] as specified in Section 8.3.1". */
        if (id > CJ_COJP_MAX_KEY_ID || usage > CJ_COJP_KEY_USAGE_MAX)
            return CJ_ERR_RANGE;
        /* A present but empty key_addinfo is still present, which Key
         * ID Mode 0x01 forbids (section 8.4.3.3). */
        if (klen != CJ_COJP_KEY_LEN ||
            !key_addinfo_ok((unsigned)id, k->addinfo_len) ||
            (ai_present && k->addinfo_len == 0))
            return RANGE_MALFORMED;
        k->key_id = (uint8_t)id;
        k->key_usage = (uint8_t)usage;
        c->key_count++;
    }
    return CJ_OK;
}

static int config_value(void *obj, cj_cbor_dec_t *d, int label)
{
    cj_cojp_config_t *c = obj;
    const uint8_t *p;
    uint64_t lease = 0;
    size_t n, plen;

    switch (label) {
    case CJ_COJP_LABEL_KEY_SET:
        return walk_keys(d, c);
    case CJ_COJP_LABEL_SHORT_ID:
        if (cj_cbor_get_array(d, &n) < 0 || n - 1 > 1 ||
            cj_cbor_get_bstr(d, &p, &plen) < 0 ||
            (n == 2 && cj_cbor_get_uint(d, &lease) < 0))
            return CJ_ERR_TYPE;
        /* Section 8.4.4: "If the identifier is invalid, the decoder MUST
         * silently ignore the Short_Identifier object." */
        if (!short_id_ok(p, plen))
            break;
        c->short_id = p;
        c->has_lease_time = n == 2;
        c->lease_time = lease;
        return CJ_OK;
    case CJ_COJP_LABEL_JRC_ADDRESS:
        if (cj_cbor_get_bstr(d, &p, &plen) < 0)
            return CJ_ERR_TYPE;
        /* Section 8.4.2: a length other than 16 "MUST be discarded". */
        if (plen != CJ_COJP_JRC_ADDRESS_LEN)
            break;
        c->jrc_address = p;
        return CJ_OK;
    case CJ_COJP_LABEL_BLACKLIST:
        if (cj_cbor_get_array(d, &n) < 0)
            return CJ_ERR_TYPE;
        if (n > CJ_COJP_MAX_BLACKLIST)
            return CJ_ERR_NOSPACE;
        for (size_t i = 0; i < n; i++) {
            cj_cojp_bytes_t *b = &c->blacklist[i];
            if (cj_cbor_get_bstr(d, &b->p, &b->len) < 0)
                return CJ_ERR_TYPE;
        }
        c->blacklist_count = n;
        c->has_blacklist = true;
        return CJ_OK;
    default: /* CJ_COJP_LABEL_JOIN_RATE */
        if (cj_cbor_get_uint(d, &c->join_rate) < 0)
            return CJ_ERR_TYPE;
        c->has_join_rate = true;
        return CJ_OK;
    }
    c->ignored |= (uint8_t)BIT(label);
    return CJ_OK;
}

int cj_cojp_config_decode(const uint8_t *buf, size_t len,
                          cj_cojp_config_t *c, cj_cojp_report_t *why)
{
    memset(c, 0, sizeof *c);
    return decode_object(buf, len, CONFIG_LABELS, 0, config_value, c, why);
}

/* ---- Unsupported_Configuration --------------------------------------- */

int cj_cojp_unsupported_decode(const uint8_t *buf, size_t len,
                               cj_cojp_unsupported_t *u)
{
    cj_cbor_dec_t d;
    int rc = cj_cbor_validate(buf, len);
    memset(u, 0, sizeof *u);
    if (rc < 0)
        return rc == CJ_ERR_TRUNCATED || rc == CJ_ERR_TRAILING
                   ? rc
                   : CJ_ERR_MALFORMED;
    cj_cbor_dec_init(&d, buf, len);
    return walk_unsupported(&d, u);
}

/* ---- encoders -------------------------------------------------------- */

/* An empty byte string may come as NULL/0; never hand NULL to memcpy. */
static void put_bytes(cj_cbor_enc_t *e, const uint8_t *p, size_t n)
{
    static const uint8_t none[1];
    cj_cbor_put_bstr(e, p != NULL ? p : none, n);
}

static bool unsupported_ok(const cj_cojp_unsupported_t *u)
{
    size_t i;
    if (u->count == 0 || u->count > CJ_COJP_MAX_UNSUPPORTED)
        return false;
    for (i = 0; i < u->count; i++) {
        const cj_cojp_param_t *p = &u->params[i];
        if (p->addinfo_len != 0 &&
            (p->addinfo == NULL ||
             cj_cbor_validate(p->addinfo, p->addinfo_len) < 0))
            return false;
    }
    return true;
}

static void put_unsupported(cj_cbor_enc_t *e, const cj_cojp_unsupported_t *u)
{
    size_t i;
    cj_cbor_put_array(e, u->count * 3);
    for (i = 0; i < u->count; i++) {
        const cj_cojp_param_t *p = &u->params[i];
        cj_cbor_put_int(e, p->code);
        cj_cbor_put_int(e, p->label);
        if (p->addinfo_len == 0)
            cj_cbor_put_null(e);
        else
            cj_cbor_put_raw(e, p->addinfo, p->addinfo_len);
    }
}

int cj_cojp_unsupported_encode(const cj_cojp_unsupported_t *u, uint8_t *buf,
                               size_t cap)
{
    cj_cbor_enc_t e;
    if (!unsupported_ok(u))
        return CJ_ERR_INVALID;
    cj_cbor_enc_init(&e, buf, cap);
    put_unsupported(&e, u);
    return cj_cbor_enc_finish(&e);
}

int cj_cojp_join_request_encode(const cj_cojp_join_request_t *jr,
                                uint8_t *buf, size_t cap)
{
    cj_cbor_enc_t e;
    bool role = jr->role != CJ_COJP_ROLE_6LN;
    if (jr->role > CJ_COJP_ROLE_6LBR ||
        (jr->network_id == NULL && jr->network_id_len != 0) ||
        (jr->has_unsupported && !unsupported_ok(&jr->unsupported)))
        return CJ_ERR_INVALID;
    cj_cbor_enc_init(&e, buf, cap);
    cj_cbor_put_map(&e, 1u + role + jr->has_unsupported);
    if (role) {
        cj_cbor_put_uint(&e, CJ_COJP_LABEL_ROLE);
        cj_cbor_put_uint(&e, jr->role);
    }
    cj_cbor_put_uint(&e, CJ_COJP_LABEL_NETWORK_ID);
    put_bytes(&e, jr->network_id, jr->network_id_len);
    if (jr->has_unsupported) {
        cj_cbor_put_uint(&e, CJ_COJP_LABEL_UNSUPPORTED);
        put_unsupported(&e, &jr->unsupported);
    }
    return cj_cbor_enc_finish(&e);
}

static bool config_ok(const cj_cojp_config_t *c)
{
    size_t i;
    if (c->key_count > CJ_COJP_MAX_KEYS ||
        c->blacklist_count > CJ_COJP_MAX_BLACKLIST ||
        (c->short_id && !short_id_ok(c->short_id, CJ_COJP_SHORT_ID_LEN)))
        return false;
    for (i = 0; i < c->key_count; i++) {
        const cj_cojp_key_t *k = &c->keys[i];
        if (k->key_id > CJ_COJP_MAX_KEY_ID ||
            k->key_usage > CJ_COJP_KEY_USAGE_MAX || k->key == NULL ||
            (k->addinfo == NULL && k->addinfo_len != 0) ||
            !key_addinfo_ok(k->key_id, k->addinfo_len))
            return false;
    }
    for (i = 0; c->has_blacklist && i < c->blacklist_count; i++)
        if (c->blacklist[i].p == NULL && c->blacklist[i].len != 0)
            return false;
    return true;
}

int cj_cojp_config_encode(const cj_cojp_config_t *c, uint8_t *buf,
                          size_t cap)
{
    cj_cbor_enc_t e;
    size_t i, items = 0;
    if (!config_ok(c))
        return CJ_ERR_INVALID;
    cj_cbor_enc_init(&e, buf, cap);
    cj_cbor_put_map(&e, (c->key_count != 0) + (c->short_id != NULL) +
                            (c->jrc_address != NULL) + c->has_blacklist +
                            c->has_join_rate);
    if (c->key_count != 0) {
        for (i = 0; i < c->key_count; i++)
            items += 2u + (c->keys[i].key_usage != 0) +
                     (c->keys[i].addinfo_len != 0);
        cj_cbor_put_uint(&e, CJ_COJP_LABEL_KEY_SET);
        cj_cbor_put_array(&e, items);
        for (i = 0; i < c->key_count; i++) {
            const cj_cojp_key_t *k = &c->keys[i];
            cj_cbor_put_uint(&e, k->key_id);
            if (k->key_usage != 0)
                cj_cbor_put_uint(&e, k->key_usage);
            cj_cbor_put_bstr(&e, k->key, CJ_COJP_KEY_LEN);
            if (k->addinfo_len != 0)
                cj_cbor_put_bstr(&e, k->addinfo, k->addinfo_len);
        }
    }
    if (c->short_id != NULL) {
        cj_cbor_put_uint(&e, CJ_COJP_LABEL_SHORT_ID);
        cj_cbor_put_array(&e, 1u + c->has_lease_time);
        cj_cbor_put_bstr(&e, c->short_id, CJ_COJP_SHORT_ID_LEN);
        if (c->has_lease_time)
            cj_cbor_put_uint(&e, c->lease_time);
    }
    if (c->jrc_address != NULL) {
        cj_cbor_put_uint(&e, CJ_COJP_LABEL_JRC_ADDRESS);
        cj_cbor_put_bstr(&e, c->jrc_address, CJ_COJP_JRC_ADDRESS_LEN);
    }
    if (c->has_blacklist) {
        cj_cbor_put_uint(&e, CJ_COJP_LABEL_BLACKLIST);
        cj_cbor_put_array(&e, c->blacklist_count);
        for (i = 0; i < c->blacklist_count; i++)
            put_bytes(&e, c->blacklist[i].p, c->blacklist[i].len);
    }
    if (c->has_join_rate) {
        cj_cbor_put_uint(&e, CJ_COJP_LABEL_JOIN_RATE);
        cj_cbor_put_uint(&e, c->join_rate);
    }
    return cj_cbor_enc_finish(&e);
}
