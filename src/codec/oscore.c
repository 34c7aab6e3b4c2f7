/*
 * OSCORE (RFC 8613) with AES-CCM-16-64-128 and HKDF-SHA256.
 *
 * Memory: no allocation.  Option tables live on the stack, bounded by
 * CJ_COAP_MAX_OPTIONS; the plaintext is built directly in the output
 * buffer and sealed in place; unprotect opens in place in the caller's
 * message.  Keys stay in the context; the only stack copy of key
 * material is the temporary context of cj_oscore_ctx_rederive(), wiped
 * on every path.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cojp/cbor.h"
#include "cojp/coap.h"
#include "cojp/crypto.h"
#include "cojp/oscore.h"

/* Section 5.2: ID_PIV is padded to nonce length minus 6 bytes. */
#define ID_FIELD_LEN (CJ_OSCORE_NONCE_LEN - 6)

#if CJ_OSCORE_MAX_ID > ID_FIELD_LEN
#error "CJ_OSCORE_MAX_ID exceeds what the AES-CCM-16-64-128 nonce can carry"
#endif
#if CJ_OSCORE_MAX_ID_CONTEXT > 255
#error "CJ_OSCORE_MAX_ID_CONTEXT must fit the one-byte 'kid context' length"
#endif
#if CJ_OSCORE_SSN_PERSIST_STEP < 1
#error "CJ_OSCORE_SSN_PERSIST_STEP must be at least 1"
#endif

/* Flag bits of the option value (section 6.1). */
#define FLAG_H 0x10u
#define FLAG_K 0x08u
#define FLAG_N 0x07u
#define FLAG_RESERVED 0xe0u

/* Longest option value this profile produces: flags, PIV, s, kid
 * context, kid.  Section 2 caps any OSCORE option value at 255. */
#define OPT_VAL_MAX (1 + CJ_OSCORE_MAX_PIV_LEN + 1 + CJ_OSCORE_MAX_ID_CONTEXT + \
                     CJ_OSCORE_MAX_ID)
#define OPT_VAL_LIMIT 255

/* Enc_structure bound: array head, "Encrypt0", h'', and a bstr wrapping
 * aad_array = [1, [10], kid (<= 7), piv (<= 5), h''] (section 5.4). */
#define AAD_MAX 48

/* HKDF info bound: [id (<= 7), id_context (<= 24) / nil, 10, "Key", 16]
 * (section 3.2.1). */
#define INFO_MAX 64

/* ---- helpers ------------------------------------------------------------ */

/* Class U options travel outside; everything else (Observe included) is
 * inner (section 4.1).  Proxy-Uri is Class U but protect refuses it. */
static bool is_class_u(uint16_t num)
{
    return num == CJ_COAP_OPT_URI_HOST || num == CJ_COAP_OPT_URI_PORT ||
           num == CJ_COAP_OPT_OSCORE || num == CJ_COAP_OPT_PROXY_URI ||
           num == CJ_COAP_OPT_PROXY_SCHEME;
}

static bool is_request_code(uint8_t code)
{
    return (code >> 5) == 0 && code != CJ_COAP_EMPTY;
}

static bool is_response_code(uint8_t code)
{
    return (code >> 5) >= 2 && (code >> 5) <= 5;
}

/* Partial IV: the sequence number big-endian in the fewest bytes, with 0
 * encoded as the single byte 0x00 (section 6.1, example in 6.3). */
static size_t piv_encode(uint64_t v, uint8_t piv[CJ_OSCORE_MAX_PIV_LEN])
{
    uint8_t tmp[CJ_OSCORE_MAX_PIV_LEN];
    size_t n = 0;

    do {
        tmp[CJ_OSCORE_MAX_PIV_LEN - 1 - n] = (uint8_t)v;
        v >>= 8;
        n++;
    } while (v != 0 && n < CJ_OSCORE_MAX_PIV_LEN);
    memcpy(piv, tmp + CJ_OSCORE_MAX_PIV_LEN - n, n);
    return n;
}

uint64_t cj_oscore_piv_value(const uint8_t *piv, size_t len)
{
    uint64_t v = 0;

    for (size_t i = 0; i < len && i < 8; i++)
        v = v << 8 | piv[i];
    return v;
}

/* Section 5.2: [S | zero-padded ID_PIV | zero-padded PIV] xor Common IV. */
static void make_nonce(uint8_t nonce[CJ_OSCORE_NONCE_LEN],
                       const uint8_t civ[CJ_OSCORE_NONCE_LEN],
                       const uint8_t *id, size_t id_len, const uint8_t *piv,
                       size_t piv_len)
{
    memset(nonce, 0, CJ_OSCORE_NONCE_LEN);
    nonce[0] = (uint8_t)id_len;
    if (id_len)
        memcpy(nonce + 1 + ID_FIELD_LEN - id_len, id, id_len);
    if (piv_len)
        memcpy(nonce + CJ_OSCORE_NONCE_LEN - piv_len, piv, piv_len);
    for (size_t i = 0; i < CJ_OSCORE_NONCE_LEN; i++)
        nonce[i] ^= civ[i];
}

/* Section 5.4: Enc_structure ["Encrypt0", h'', external_aad], where
 * external_aad = bstr .cbor [1, [alg], request_kid, request_piv, h''].
 * No Class I options are defined, so the last field is always empty.
 * With kid <= CJ_OSCORE_MAX_ID (< 24) and piv <= 5 bytes every head
 * inside aad_array takes one byte, so its length, 7 + kid + piv, is
 * known before it is written and one encoder pass builds both layers. */
static int make_aad(uint8_t aad[AAD_MAX], const uint8_t *kid, size_t kid_len,
                    const uint8_t *piv, size_t piv_len)
{
    static const uint8_t none[1] = {0};
    cj_cbor_enc_t e;

    if (kid_len > CJ_OSCORE_MAX_ID || piv_len > CJ_OSCORE_MAX_PIV_LEN)
        return CJ_ERR_INVALID;
    cj_cbor_enc_init(&e, aad, AAD_MAX);
    cj_cbor_put_array(&e, 3);
    cj_cbor_put_tstr(&e, "Encrypt0", 8);
    cj_cbor_put_bstr(&e, none, 0);
    cj_cbor_put_bstr_head(&e, 7 + kid_len + piv_len);
    cj_cbor_put_array(&e, 5);
    cj_cbor_put_uint(&e, 1);
    cj_cbor_put_array(&e, 1);
    cj_cbor_put_uint(&e, CJ_OSCORE_ALG_AES_CCM_16_64_128);
    cj_cbor_put_bstr(&e, kid_len ? kid : none, kid_len);
    cj_cbor_put_bstr(&e, piv_len ? piv : none, piv_len);
    cj_cbor_put_bstr(&e, none, 0);
    return cj_cbor_enc_finish(&e);
}

/* Section 3.2.1: info = [id, id_context / nil, alg_aead, type, L]. */
static int derive_one(const cj_oscore_params_t *p, const uint8_t *id,
                      size_t id_len, const char *type, size_t type_len,
                      uint8_t *okm, size_t okm_len)
{
    static const uint8_t none[1] = {0};
    uint8_t info[INFO_MAX];
    cj_cbor_enc_t e;
    int n;

    cj_cbor_enc_init(&e, info, sizeof info);
    cj_cbor_put_array(&e, 5);
    cj_cbor_put_bstr(&e, id_len ? id : none, id_len);
    if (p->has_id_context)
        cj_cbor_put_bstr(&e, p->id_context_len ? p->id_context : none,
                         p->id_context_len);
    else
        cj_cbor_put_null(&e);
    cj_cbor_put_uint(&e, CJ_OSCORE_ALG_AES_CCM_16_64_128);
    cj_cbor_put_tstr(&e, type, type_len);
    cj_cbor_put_uint(&e, okm_len);
    n = cj_cbor_enc_finish(&e);
    if (n < 0)
        return n;
    return cj_crypto_hkdf_sha256(p->master_salt_len ? p->master_salt : NULL,
                                 p->master_salt_len, p->master_secret,
                                 p->master_secret_len, info, (size_t)n, okm,
                                 okm_len);
}

/* ---- context ------------------------------------------------------------ */

int cj_oscore_ctx_derive(cj_oscore_ctx_t *ctx, const cj_oscore_params_t *p)
{
    int rc;

    if (ctx == NULL || p == NULL)
        return CJ_ERR_INVALID;
    memset(ctx, 0, sizeof *ctx);
    if ((p->master_secret == NULL && p->master_secret_len > 0) ||
        (p->master_salt == NULL && p->master_salt_len > 0) ||
        (p->sender_id == NULL && p->sender_id_len > 0) ||
        (p->recipient_id == NULL && p->recipient_id_len > 0) ||
        (p->has_id_context && p->id_context == NULL &&
         p->id_context_len > 0))
        return CJ_ERR_INVALID;
    /* Section 3.3: IDs fit the nonce and differ from each other. */
    if (p->sender_id_len > CJ_OSCORE_MAX_ID ||
        p->recipient_id_len > CJ_OSCORE_MAX_ID ||
        (p->has_id_context && p->id_context_len > CJ_OSCORE_MAX_ID_CONTEXT))
        return CJ_ERR_INVALID;
    if (p->sender_id_len == p->recipient_id_len &&
        (p->sender_id_len == 0 ||
         memcmp(p->sender_id, p->recipient_id, p->sender_id_len) == 0))
        return CJ_ERR_INVALID;

    rc = derive_one(p, p->sender_id, p->sender_id_len, "Key", 3,
                    ctx->sender_key, CJ_OSCORE_KEY_LEN);
    if (rc == CJ_OK)
        rc = derive_one(p, p->recipient_id, p->recipient_id_len, "Key", 3,
                        ctx->recipient_key, CJ_OSCORE_KEY_LEN);
    if (rc == CJ_OK)
        rc = derive_one(p, NULL, 0, "IV", 2, ctx->common_iv,
                        CJ_OSCORE_NONCE_LEN);
    if (rc != CJ_OK) {
        cj_crypto_wipe(ctx, sizeof *ctx);
        return rc;
    }
    if (p->sender_id_len)
        memcpy(ctx->sender_id, p->sender_id, p->sender_id_len);
    if (p->recipient_id_len)
        memcpy(ctx->recipient_id, p->recipient_id, p->recipient_id_len);
    ctx->sender_id_len = (uint8_t)p->sender_id_len;
    ctx->recipient_id_len = (uint8_t)p->recipient_id_len;
    ctx->has_id_context = p->has_id_context;
    if (p->has_id_context) {
        if (p->id_context_len)
            memcpy(ctx->id_context, p->id_context, p->id_context_len);
        ctx->id_context_len = (uint8_t)p->id_context_len;
    }
    return CJ_OK;
}

int cj_oscore_ctx_attach(cj_oscore_ctx_t *ctx, const cj_platform_t *platform,
                         uint32_t counter_id)
{
    uint64_t v = 0;
    int rc;

    if (ctx == NULL)
        return CJ_ERR_INVALID;
    if (platform == NULL) {
        ctx->platform = NULL;
        return CJ_OK;
    }
    if (platform->counter_load == NULL || platform->counter_store == NULL)
        return CJ_ERR_INVALID;
    rc = platform->counter_load(platform->ctx, counter_id, &v);
    if (rc == CJ_OK) {
        /* Appendix B.1.1: the stored value is the first number no earlier
         * run may have used; nothing at or above it is reserved yet. */
        ctx->ssn = v;
    } else if (rc != CJ_ERR_NOTFOUND) {
        return CJ_ERR_STORAGE;
    }
    ctx->ssn_reserved = ctx->ssn;
    ctx->platform = platform;
    ctx->ssn_counter_id = counter_id;
    return CJ_OK;
}

int cj_oscore_ctx_rederive(cj_oscore_ctx_t *ctx, const cj_oscore_params_t *p)
{
    cj_oscore_ctx_t fresh;
    int rc;

    if (ctx == NULL || p == NULL)
        return CJ_ERR_INVALID;
    /* Derive aside so a failure leaves the old context usable. */
    rc = cj_oscore_ctx_derive(&fresh, p);
    if (rc == CJ_OK) {
        fresh.send_kid_context = ctx->send_kid_context;
        fresh.platform = ctx->platform;
        fresh.ssn_counter_id = ctx->ssn_counter_id;
        /* The sequence number keeps counting: with persistence attached
         * the new context shares the old one's counter, and restarting
         * at 0 would make a later reboot restore a mark that does not
         * cover the numbers used before the change (Appendix B.1.1).  A
         * fresh Sender Key would make reuse harmless, but one counter
         * that only grows needs no such argument.  The replay window is
         * the new context's own: empty. */
        fresh.ssn = ctx->ssn;
        fresh.ssn_reserved = ctx->ssn_reserved;
        cj_crypto_wipe(ctx, sizeof *ctx);
        memcpy(ctx, &fresh, sizeof *ctx);
    }
    cj_crypto_wipe(&fresh, sizeof fresh);
    return rc;
}

void cj_oscore_ctx_wipe(cj_oscore_ctx_t *ctx)
{
    if (ctx != NULL)
        cj_crypto_wipe(ctx, sizeof *ctx);
}

/* Appendix B.1.1: before a number at or above the reserved mark is used,
 * a mark STEP further is made durable.  The mark never exceeds 2^40, the
 * first number that may not be used (section 7.2.1). */
static int ssn_reserve(cj_oscore_ctx_t *ctx)
{
    const cj_platform_t *pf = ctx->platform;
    uint64_t mark;

    if (pf == NULL || ctx->ssn < ctx->ssn_reserved)
        return CJ_OK;
    mark = ctx->ssn + CJ_OSCORE_SSN_PERSIST_STEP;
    if (mark > CJ_OSCORE_MAX_SSN + 1)
        mark = CJ_OSCORE_MAX_SSN + 1;
    if (pf->counter_store(pf->ctx, ctx->ssn_counter_id, mark) != CJ_OK)
        return CJ_ERR_STORAGE;
    ctx->ssn_reserved = mark;
    return CJ_OK;
}

/* ---- option value codec (section 6.1) ----------------------------------- */

int cj_oscore_option_decode(const uint8_t *val, size_t len,
                            cj_oscore_option_t *o)
{
    size_t pos = 1, n;
    uint8_t f;

    memset(o, 0, sizeof *o);
    if (len == 0)
        return CJ_OK;
    if (val == NULL || len > OPT_VAL_LIMIT)
        return CJ_ERR_OSCORE_DECODE;
    f = val[0];
    n = f & FLAG_N;
    /* Reserved bits, reserved n, and a non-empty value whose flags are
     * all zero (section 2: that value SHALL be empty). */
    if ((f & FLAG_RESERVED) != 0 || n > CJ_OSCORE_MAX_PIV_LEN || f == 0)
        return CJ_ERR_OSCORE_DECODE;
    if (n > 0) {
        /* The Partial IV is the sequence number in the fewest bytes; a
         * leading zero would be a second spelling of the same nonce. */
        if (len - pos < n || (n > 1 && val[pos] == 0))
            return CJ_ERR_OSCORE_DECODE;
        o->piv = val + pos;
        o->piv_len = n;
        pos += n;
    }
    if (f & FLAG_H) {
        size_t s;
        if (pos >= len)
            return CJ_ERR_OSCORE_DECODE;
        s = val[pos++];
        if (len - pos < s)
            return CJ_ERR_OSCORE_DECODE;
        o->kid_context = val + pos;
        o->kid_context_len = s;
        o->has_kid_context = true;
        pos += s;
    }
    if (f & FLAG_K) {
        /* 'kid' is whatever remains, possibly nothing. */
        o->kid = val + pos;
        o->kid_len = len - pos;
        o->has_kid = true;
        pos = len;
    }
    if (pos != len) {
        memset(o, 0, sizeof *o);
        return CJ_ERR_OSCORE_DECODE;
    }
    return CJ_OK;
}

/* Write the value of a checked option o to out (section 6.1): flags,
 * Partial IV, s and kid context, kid.  Returns the length. */
static size_t option_write(uint8_t *out, const cj_oscore_option_t *o)
{
    size_t pos = 1;

    out[0] = (uint8_t)(o->piv_len | (o->has_kid_context ? FLAG_H : 0) |
                       (o->has_kid ? FLAG_K : 0));
    if (out[0] == 0)
        return 0; /* all flags zero: the value is empty (section 2) */
    if (o->piv_len) {
        memcpy(out + pos, o->piv, o->piv_len);
        pos += o->piv_len;
    }
    if (o->has_kid_context) {
        out[pos++] = (uint8_t)o->kid_context_len;
        if (o->kid_context_len)
            memcpy(out + pos, o->kid_context, o->kid_context_len);
        pos += o->kid_context_len;
    }
    if (o->has_kid && o->kid_len) {
        memcpy(out + pos, o->kid, o->kid_len);
        pos += o->kid_len;
    }
    return pos;
}

int cj_oscore_option_encode(uint8_t *out, size_t cap,
                            const cj_oscore_option_t *o)
{
    size_t need;

    if (o == NULL || o->piv_len > CJ_OSCORE_MAX_PIV_LEN ||
        (o->piv_len > 0 && o->piv == NULL) ||
        (o->piv_len > 1 && o->piv[0] == 0) ||
        (o->has_kid_context &&
         (o->kid_context_len > 255 ||
          (o->kid_context_len > 0 && o->kid_context == NULL))) ||
        (o->has_kid && o->kid_len > 0 && o->kid == NULL))
        return CJ_ERR_INVALID;
    if (o->piv_len == 0 && !o->has_kid_context && !o->has_kid)
        return 0; /* all flags zero: the value is empty (section 2) */
    need = 1 + o->piv_len;
    if (o->has_kid_context)
        need += 1 + o->kid_context_len;
    if (o->has_kid)
        need += o->kid_len;
    if (need > OPT_VAL_LIMIT)
        return CJ_ERR_INVALID;
    if (out == NULL || need > cap)
        return CJ_ERR_NOSPACE;
    return (int)option_write(out, o);
}

/* ---- replay window (section 7.4) ---------------------------------------- */

int cj_oscore_replay_check(const cj_oscore_replay_t *w, uint64_t piv)
{
    uint64_t age;

    if (piv > CJ_OSCORE_MAX_SSN)
        return CJ_ERR_REPLAY;
    if (!w->valid || piv > w->highest)
        return CJ_OK;
    age = w->highest - piv;
    if (age >= CJ_OSCORE_REPLAY_WINDOW)
        return CJ_ERR_REPLAY; /* left of the window: cannot tell, refuse */
    return (w->bitmap >> age) & 1u ? CJ_ERR_REPLAY : CJ_OK;
}

void cj_oscore_replay_update(cj_oscore_replay_t *w, uint64_t piv)
{
    uint64_t shift;

    if (!w->valid) {
        w->highest = piv;
        w->bitmap = 1;
        w->valid = true;
        return;
    }
    if (piv > w->highest) {
        shift = piv - w->highest;
        w->bitmap = shift >= CJ_OSCORE_REPLAY_WINDOW
                        ? 1u
                        : (uint32_t)(w->bitmap << shift) | 1u;
        w->highest = piv;
        return;
    }
    shift = w->highest - piv;
    if (shift < CJ_OSCORE_REPLAY_WINDOW)
        w->bitmap |= (uint32_t)1u << shift;
}

/* ---- request binding (section 5.4 request_kid, request_piv) ----------- */

/* A binding a response can be protected or verified with: a kid that
 * fits the nonce and a Partial IV of 1..5 bytes. */
static bool req_ok(const cj_oscore_req_t *req)
{
    return req != NULL && req->kid_len <= CJ_OSCORE_MAX_ID &&
           req->piv_len - 1u < CJ_OSCORE_MAX_PIV_LEN;
}

/* Record what a response to this request is bound to (req may be NULL).
 * Callers pass a kid of at most CJ_OSCORE_MAX_ID bytes (the context's
 * own ID, or a received kid that matched it) and a Partial IV of at
 * most CJ_OSCORE_MAX_PIV_LEN bytes. */
static void req_bind(cj_oscore_req_t *req, const uint8_t *kid, size_t kid_len,
                     const uint8_t *piv, size_t piv_len)
{
    if (req == NULL)
        return;
    memset(req, 0, sizeof *req);
    if (kid_len)
        memcpy(req->kid, kid, kid_len);
    req->kid_len = (uint8_t)kid_len;
    if (piv_len)
        memcpy(req->piv, piv, piv_len);
    req->piv_len = (uint8_t)piv_len;
}

/* ---- protect (sections 8.1 and 8.3) ------------------------------------- */

/* Read every option of a parsed message into tab.  Fails with
 * CJ_ERR_NOSPACE beyond CJ_COAP_MAX_OPTIONS. */
static int collect_opts(const cj_coap_msg_t *m, cj_coap_opt_t *tab)
{
    cj_coap_opt_iter_t it;
    cj_coap_opt_t o;
    size_t n = 0;

    cj_coap_opt_iter_init(&it, m);
    while (cj_coap_opt_next(&it, &o)) {
        if (n == CJ_COAP_MAX_OPTIONS)
            return CJ_ERR_NOSPACE;
        tab[n++] = o;
    }
    return (int)n;
}

static int protect(cj_oscore_ctx_t *ctx, bool is_request,
                   const cj_oscore_req_t *req, bool new_piv,
                   const uint8_t *coap, size_t len, uint8_t *out, size_t cap,
                   cj_oscore_req_t *req_out)
{
    cj_coap_opt_t opts[CJ_COAP_MAX_OPTIONS];
    cj_coap_msg_t m;
    cj_coap_builder_t b;
    cj_oscore_option_t ov;
    uint8_t optval[OPT_VAL_MAX];
    uint8_t piv[CJ_OSCORE_MAX_PIV_LEN];
    uint8_t aad[AAD_MAX];
    uint8_t nonce[CJ_OSCORE_NONCE_LEN];
    size_t nopts, piv_len = 0, pos, pt_start, i;
    bool oscore_written = false;
    const cj_coap_opt_t *obs = NULL; /* the first Observe option */
    uint16_t prev;
    size_t optval_len;
    int rc, aad_len;

    if (coap == NULL || out == NULL)
        return CJ_ERR_INVALID;
    rc = cj_coap_parse(&m, coap, len);
    if (rc < 0)
        return rc;
    if (is_request ? !is_request_code(m.code) : !is_response_code(m.code))
        return CJ_ERR_INVALID;
    rc = collect_opts(&m, opts);
    if (rc < 0)
        return rc;
    nopts = (size_t)rc;
    for (i = 0; i < nopts; i++) {
        /* Section 4.1.3.7: no nested OSCORE.  Proxy-Uri must have been
         * split by the caller (section 4.1.3.3). */
        if (opts[i].num == CJ_COAP_OPT_OSCORE ||
            opts[i].num == CJ_COAP_OPT_PROXY_URI)
            return CJ_ERR_INVALID;
        if (CJ_OSCORE_OBSERVE && opts[i].num == CJ_COAP_OPT_OBSERVE &&
            obs == NULL)
            obs = &opts[i];
    }

    /* A fresh Partial IV comes from the sender sequence number, which is
     * read here and only advanced once the message is complete. */
    memset(&ov, 0, sizeof ov);
    if (is_request || new_piv) {
        if (ctx->ssn > CJ_OSCORE_MAX_SSN)
            return CJ_ERR_SEQ_EXHAUSTED;
        piv_len = piv_encode(ctx->ssn, piv);
        ov.piv = piv;
        ov.piv_len = piv_len;
        if (ctx->send_kid_context && ctx->has_id_context) {
            ov.has_kid_context = true;
            ov.kid_context = ctx->id_context;
            ov.kid_context_len = ctx->id_context_len;
        }
    }
    if (is_request) {
        ov.has_kid = true;
        ov.kid = ctx->sender_id;
        ov.kid_len = ctx->sender_id_len;
        aad_len = make_aad(aad, ctx->sender_id, ctx->sender_id_len, piv,
                           piv_len);
        make_nonce(nonce, ctx->common_iv, ctx->sender_id, ctx->sender_id_len,
                   piv, piv_len);
    } else {
        if (!req_ok(req))
            return CJ_ERR_INVALID;
        aad_len = make_aad(aad, req->kid, req->kid_len, req->piv,
                           req->piv_len);
        if (new_piv)
            make_nonce(nonce, ctx->common_iv, ctx->sender_id,
                       ctx->sender_id_len, piv, piv_len);
        else /* section 5.2: reuse the request nonce */
            make_nonce(nonce, ctx->common_iv, req->kid, req->kid_len,
                       req->piv, req->piv_len);
    }
    if (aad_len < 0)
        return aad_len;
    /* Fits optval: the context bounds its IDs by the configured limits. */
    optval_len = option_write(optval, &ov);

    /* Outer header: code POST / 2.04, or FETCH / 2.05 with Observe
     * (sections 4.2 and 4.1.3.5); type, MID and token unchanged. */
    cj_coap_build_init(&b, out, cap, m.type,
                       is_request ? (obs ? CJ_COAP_FETCH : CJ_COAP_POST)
                                  : (obs ? CJ_COAP_CONTENT
                                             : CJ_COAP_CHANGED),
                       m.mid, m.token, m.token_len);
    for (i = 0; i < nopts; i++) {
        const cj_coap_opt_t *o = &opts[i];
        if (!oscore_written && o->num > CJ_COAP_OPT_OSCORE) {
            cj_coap_build_opt(&b, CJ_COAP_OPT_OSCORE, optval, optval_len);
            oscore_written = true;
        }
        /* Outer Observe carries the original value (4.1.3.5). */
        if (is_class_u(o->num) || (obs && o->num == CJ_COAP_OPT_OBSERVE))
            cj_coap_build_opt(&b, o->num, o->val, o->len);
    }
    if (!oscore_written)
        cj_coap_build_opt(&b, CJ_COAP_OPT_OSCORE, optval, optval_len);
    rc = cj_coap_build_finish(&b);
    if (rc < 0)
        goto fail;

    /* Plaintext (section 5.3) written straight after the payload marker,
     * then sealed in place: code, Class E options, payload. */
    pos = (size_t)rc;
    if (cap - pos < 2 + CJ_OSCORE_TAG_LEN) {
        rc = CJ_ERR_NOSPACE;
        goto fail;
    }
    out[pos++] = 0xff;
    pt_start = pos;
    out[pos++] = m.code;
    prev = 0;
    for (i = 0; i < nopts; i++) {
        const cj_coap_opt_t *o = &opts[i];
        const uint8_t *val = o->val;
        size_t vlen = o->len;
        if (is_class_u(o->num))
            continue;
        /* Inner Observe: the request's value; empty in notifications
         * (section 4.1.3.5.2). */
        if (o == obs && !is_request)
            vlen = 0;
        rc = cj_coap_opt_encode(out + pos, cap - pos, prev, o->num, val, vlen);
        if (rc < 0)
            goto fail;
        pos += (size_t)rc;
        prev = o->num;
    }
    if (m.payload_len) {
        if (cap - pos < 1 + m.payload_len) {
            rc = CJ_ERR_NOSPACE;
            goto fail;
        }
        out[pos++] = 0xff;
        memcpy(out + pos, m.payload, m.payload_len);
        pos += m.payload_len;
    }
    if (cap - pos < CJ_OSCORE_TAG_LEN) {
        rc = CJ_ERR_NOSPACE;
        goto fail;
    }

    /* Appendix B.1.1: the number is durable-reserved before it is used. */
    if (piv_len) {
        rc = ssn_reserve(ctx);
        if (rc < 0)
            goto fail;
    }
    rc = cj_crypto_ccm_seal(ctx->sender_key, nonce, aad, (size_t)aad_len,
                            out + pt_start, pos - pt_start, CJ_OSCORE_TAG_LEN);
    if (rc < 0)
        goto fail;
    pos = pt_start + (size_t)rc;
    if (piv_len)
        ctx->ssn++;
    req_bind(req_out, ctx->sender_id, ctx->sender_id_len, piv, piv_len);
    return (int)pos;

fail:
    /* Nothing leaves: the partial message may hold plaintext. */
    cj_crypto_wipe(out, cap);
    return rc;
}

int cj_oscore_protect_request(cj_oscore_ctx_t *ctx, const uint8_t *coap,
                              size_t len, uint8_t *out, size_t cap,
                              cj_oscore_req_t *req)
{
    if (ctx == NULL)
        return CJ_ERR_INVALID;
    return protect(ctx, true, NULL, true, coap, len, out, cap, req);
}

int cj_oscore_protect_response(cj_oscore_ctx_t *ctx,
                               const cj_oscore_req_t *req, bool new_piv,
                               const uint8_t *coap, size_t len, uint8_t *out,
                               size_t cap)
{
    if (ctx == NULL || req == NULL)
        return CJ_ERR_INVALID;
    return protect(ctx, false, req, new_piv, coap, len, out, cap, NULL);
}

/* ---- unprotect (sections 8.2 and 8.4) ----------------------------------- */

static bool id_equal(const uint8_t *a, size_t alen, const uint8_t *b,
                     size_t blen)
{
    return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

static int unprotect(cj_oscore_ctx_t *ctx, bool is_request,
                     const cj_oscore_req_t *req, uint8_t *msg, size_t len,
                     uint8_t *out, size_t cap, cj_oscore_req_t *req_out)
{
    cj_coap_opt_t outer[CJ_COAP_MAX_OPTIONS];
    cj_coap_opt_t inner[CJ_COAP_MAX_OPTIONS];
    cj_coap_msg_t m;
    cj_coap_builder_t b;
    cj_oscore_option_t ov;
    const cj_coap_opt_t *oscore = NULL;
    const uint8_t *payload;
    uint8_t aad[AAD_MAX];
    uint8_t nonce[CJ_OSCORE_NONCE_LEN];
    uint8_t obs_val[3];
    uint8_t *ct, *pt;
    size_t nouter, ninner, payload_len, pt_len = 0, i, j;
    uint64_t pivv = 0;
    int rc, aad_len;

    if (msg == NULL || out == NULL)
        return CJ_ERR_INVALID;
    rc = cj_coap_parse(&m, msg, len);
    if (rc < 0)
        return rc;
    rc = collect_opts(&m, outer);
    if (rc < 0)
        return rc;
    nouter = (size_t)rc;

    /* Section 2: exactly one OSCORE option, and a payload. */
    for (i = 0; i < nouter; i++) {
        if (outer[i].num != CJ_COAP_OPT_OSCORE)
            continue;
        if (oscore != NULL)
            return CJ_ERR_OSCORE_DECODE;
        oscore = &outer[i];
    }
    if (oscore == NULL ||
        cj_oscore_option_decode(oscore->val, oscore->len, &ov) != CJ_OK)
        return CJ_ERR_OSCORE_DECODE;
    if (m.payload_len < 1 + CJ_OSCORE_TAG_LEN)
        return CJ_ERR_OSCORE_DECODE;

    /* Section 8.2 step 2: a request names its context by kid (and kid
     * context); it cannot be decompressed without a Partial IV. */
    if (is_request) {
        if (ov.piv_len == 0)
            return CJ_ERR_OSCORE_DECODE;
        if (!ov.has_kid)
            return CJ_ERR_UNKNOWN_CONTEXT;
    } else if (!req_ok(req)) {
        return CJ_ERR_INVALID;
    }
    if (ov.has_kid && !id_equal(ov.kid, ov.kid_len, ctx->recipient_id,
                                ctx->recipient_id_len))
        return CJ_ERR_UNKNOWN_CONTEXT;
    if (ov.has_kid_context &&
        (!ctx->has_id_context ||
         !id_equal(ov.kid_context, ov.kid_context_len, ctx->id_context,
                   ctx->id_context_len)))
        return CJ_ERR_UNKNOWN_CONTEXT;

    /* Section 7.4: replay is checked before any decryption work. */
    if (ov.piv_len) {
        pivv = cj_oscore_piv_value(ov.piv, ov.piv_len);
        rc = cj_oscore_replay_check(&ctx->replay, pivv);
        if (rc < 0)
            return rc;
    }

    if (is_request) {
        aad_len = make_aad(aad, ov.kid, ov.kid_len, ov.piv, ov.piv_len);
    } else {
        aad_len = make_aad(aad, req->kid, req->kid_len, req->piv,
                           req->piv_len);
    }
    if (aad_len < 0)
        return aad_len;
    if (ov.piv_len)
        make_nonce(nonce, ctx->common_iv, ctx->recipient_id,
                   ctx->recipient_id_len, ov.piv, ov.piv_len);
    else /* section 8.4 step 4: the request nonce */
        make_nonce(nonce, ctx->common_iv, req->kid, req->kid_len, req->piv,
                   req->piv_len);

    /* Decrypt in place; on a bad tag the port wipes the region. */
    ct = msg + (m.payload - msg);
    rc = cj_crypto_ccm_open(ctx->recipient_key, nonce, aad, (size_t)aad_len,
                            ct, m.payload_len, CJ_OSCORE_TAG_LEN);
    if (rc < 0)
        return rc;
    pt = ct;
    pt_len = (size_t)rc;

    /* Section 5.3: code byte, Class E options, optional payload. */
    if (is_request ? !is_request_code(pt[0]) : !is_response_code(pt[0])) {
        rc = CJ_ERR_OSCORE_DECODE;
        goto fail;
    }
    rc = cj_coap_opts_decode(pt + 1, pt_len - 1, inner, CJ_COAP_MAX_OPTIONS,
                             &payload, &payload_len);
    if (rc < 0) {
        rc = rc == CJ_ERR_NOSPACE ? CJ_ERR_NOSPACE : CJ_ERR_OSCORE_DECODE;
        goto fail;
    }
    ninner = (size_t)rc;

    /* Reassemble: outer type, MID and token; inner code; outer Class U
     * options merged in number order with inner Class E options.  Outer
     * Class E (Observe included) and inner Class U are discarded
     * (sections 8.2 and 8.4 step 1). */
    cj_coap_build_init(&b, out, cap, m.type, pt[0], m.mid, m.token,
                       m.token_len);
    i = 0;
    j = 0;
    for (;;) {
        while (i < nouter && (!is_class_u(outer[i].num) ||
                              outer[i].num == CJ_COAP_OPT_OSCORE))
            i++;
        while (j < ninner && is_class_u(inner[j].num))
            j++;
        if (i == nouter && j == ninner)
            break;
        if (j == ninner || (i < nouter && outer[i].num < inner[j].num)) {
            cj_coap_build_opt(&b, outer[i].num, outer[i].val, outer[i].len);
            i++;
        } else if (CJ_OSCORE_OBSERVE && !is_request &&
                   inner[j].num == CJ_COAP_OPT_OBSERVE &&
                   ov.piv_len) {
            /* Section 4.1.3.5.2: a notification's inner Observe is empty;
             * hand the application the three low bytes of the Partial IV,
             * which order notifications and are authenticated. */
            uint32_t v = (uint32_t)(pivv & 0xffffffu);
            size_t n = 0, k;
            for (k = 0; k < 3; k++)
                if (n || (uint8_t)(v >> (16 - 8 * k)) != 0)
                    obs_val[n++] = (uint8_t)(v >> (16 - 8 * k));
            cj_coap_build_opt(&b, CJ_COAP_OPT_OBSERVE, obs_val, n);
            j++;
        } else {
            cj_coap_build_opt(&b, inner[j].num, inner[j].val, inner[j].len);
            j++;
        }
    }
    cj_coap_build_payload(&b, payload, payload_len);
    rc = cj_coap_build_finish(&b);
    if (rc < 0) {
        cj_crypto_wipe(out, cap);
        goto fail;
    }

    /* Accepted: only now does the Partial IV enter the window. */
    if (ov.piv_len)
        cj_oscore_replay_update(&ctx->replay, pivv);
    req_bind(req_out, ov.kid, ov.kid_len, ov.piv, ov.piv_len);
    return rc;

fail:
    /* Authentic but unusable: release none of it. */
    cj_crypto_wipe(pt, pt_len);
    return rc;
}

int cj_oscore_unprotect_request(cj_oscore_ctx_t *ctx, uint8_t *msg,
                                size_t len, uint8_t *out, size_t cap,
                                cj_oscore_req_t *req)
{
    if (ctx == NULL)
        return CJ_ERR_INVALID;
    return unprotect(ctx, true, NULL, msg, len, out, cap, req);
}

int cj_oscore_unprotect_response(cj_oscore_ctx_t *ctx,
                                 const cj_oscore_req_t *req, uint8_t *msg,
                                 size_t len, uint8_t *out, size_t cap)
{
    if (ctx == NULL || req == NULL)
        return CJ_ERR_INVALID;
    return unprotect(ctx, false, req, msg, len, out, cap, NULL);
}
