/*
 * OSCORE (RFC 8613) with AES-CCM-16-64-128 and HKDF-SHA256.
 *
 * Memory: no allocation.  Option tables live on the stack, bounded by
 * CJ_COAP_MAX_OPTIONS; the plaintext is built directly in the output
 * buffer and sealed in place; unprotect opens in place in the caller's
 * message.  Keys stay in the context; the only stack copy of key
 * material is the temporary context of cj_oscore_ctx_rederive(), wiped
 * on every path.
 *
 * Protect and unprotect share one shape.  What binds a message is held
 * as a cj_oscore_req_t: "own" (this message's ID and Partial IV, if it
 * has one) and the request a response answers.  The AAD names the
 * request, the nonce comes from the newest Partial IV (section 5.2).
 * Options are split and merged by class (section 4.1) with one helper,
 * put_opts(), and every CoAP byte is written by the CoAP builder.
 *
 * What does not depend on the message's layout is a core of three
 * public steps that cj_oscore_xcode() runs on: cj_oscore_seal_begin()
 * (Partial IV, binding, option value), cj_oscore_seal() (nonce, AAD,
 * reservation, encryption, sequence number) and cj_oscore_open()
 * (context match, replay check, nonce, AAD, decryption).  The pledge
 * engine calls them directly for its two fixed message shapes, so a
 * firmware without a general OSCORE message path carries only these.
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
/* cj_oscore_ctx_rederive() copies ssn_counter_id .. ssn_reserved as one
 * block ending where replay starts. */
_Static_assert(offsetof(cj_oscore_ctx_t, ssn_counter_id) <
                       offsetof(cj_oscore_ctx_t, platform) &&
                   offsetof(cj_oscore_ctx_t, platform) <
                       offsetof(cj_oscore_ctx_t, ssn) &&
                   offsetof(cj_oscore_ctx_t, ssn) <
                       offsetof(cj_oscore_ctx_t, ssn_reserved) &&
                   offsetof(cj_oscore_ctx_t, ssn_reserved) <
                       offsetof(cj_oscore_ctx_t, replay),
               "rederive's block of the context is out of order");
/* OKM_IN_ORDER: the derived material is one run of the context, in the
 * order of cj_oscore_okm()'s output, so it is copied in one piece. */
_Static_assert(offsetof(cj_oscore_ctx_t, recipient_key) ==
                       offsetof(cj_oscore_ctx_t, sender_key) + CJ_OSCORE_KEY_LEN &&
                   offsetof(cj_oscore_ctx_t, common_iv) ==
                       offsetof(cj_oscore_ctx_t, recipient_key) + CJ_OSCORE_KEY_LEN,
               "sender key, recipient key and common IV are one run");

#if CJ_COAP_MAX_OPTIONS > 127
#error "put_opts() indexes its option table with 8 bits"
#endif

/* Flag bits of the option value (section 6.1). */
#define FLAG_H 0x10u
#define FLAG_K 0x08u
#define FLAG_N 0x07u
#define FLAG_RESERVED 0xe0u

/* Section 2 caps any OSCORE option value at 255 bytes (the longest this
 * build writes is CJ_OSCORE_OPT_MAX). */
#define OPT_VAL_LIMIT 255

/* Enc_structure: 16 fixed bytes (aad_head), then kid and Partial IV as
 * byte strings and the empty Class I string (section 5.4). */
#define AAD_MAX (16 + 1 + CJ_OSCORE_MAX_ID + 1 + CJ_OSCORE_MAX_PIV_LEN + 1)

/* HKDF info [id, id_context / nil, 10, "Key" / "IV", L] (section 3.2.1):
 * array head, id with its head, id_context with a head of up to 2 bytes,
 * alg, "Key" with its head, L. */
#define INFO_MAX (1 + 1 + CJ_OSCORE_MAX_ID + 2 + CJ_OSCORE_MAX_ID_CONTEXT + \
                  1 + 4 + 1)

/* ---- helpers ------------------------------------------------------------ */

/* Option classes (section 4.1).  Class U options travel outside, all
 * others (unknown ones included) are Class E and encrypted.  Proxy-Uri is
 * Class U but protect refuses it (4.1.3.3); Observe travels both inside
 * and outside (4.1.3.5), unless CJ_OSCORE_OBSERVE makes it plain Class E. */
#define CLS_E 1u
#define CLS_U 2u
#define CLS_PROXY_URI 4u
#define CLS_OSCORE 8u
/* Without CJ_OSCORE_OBSERVE no option is of this class (Observe is plain
 * Class E), and every test of it is false at compile time. */
#define CLS_OBSERVE (CJ_OSCORE_OBSERVE ? 16u : 0u)

static unsigned opt_class(uint16_t num)
{
    if (num == CJ_COAP_OPT_OSCORE)
        return CLS_OSCORE;
    if (num == CJ_COAP_OPT_OBSERVE)
        return CJ_OSCORE_OBSERVE ? CLS_OBSERVE : CLS_E;
    if (num == CJ_COAP_OPT_PROXY_URI)
        return CLS_PROXY_URI;
    /* Uri-Host 3, Uri-Port 7 and Proxy-Scheme 39 are the x | 4 == 7
     * numbers other than Proxy-Uri 35. */
    return ((num | 4) & ~32) == CJ_COAP_OPT_URI_PORT ? CLS_U : CLS_E;
}

/* A request code (0.01..0.31) or a response code (2.xx..5.xx). */
static bool code_ok(bool request, unsigned code)
{
    return request ? code >> 5 == 0 && code != CJ_COAP_EMPTY
                   : (code >> 5) - 2u < 4u;
}

/* Copy n bytes (src may be NULL only when n is 0); returns the end. */
static uint8_t *put_view(uint8_t *p, const uint8_t *src, size_t n)
{
    if (n)
        memcpy(p, src, n);
    return p + n;
}

uint64_t cj_oscore_piv_value(const uint8_t *piv, size_t len)
{
    uint64_t v = 0;

    for (size_t i = 0; i < len && i < 8; i++)
        v = v << 8 | piv[i];
    return v;
}

/* ---- context ------------------------------------------------------------ */

#if CJ_OSCORE_DERIVE
/* Section 3.2.1: output k of the derivation, by HKDF-SHA256 with info =
 * [id, id_context / nil, alg_aead, type, L]: 0 the Sender Key (Sender
 * ID, "Key", 16), 1 the Recipient Key (Recipient ID, "Key", 16), 2 the
 * Common IV (empty ID, "IV", 13).  IDs and ID Context come from ctx,
 * already checked and copied; INFO_MAX bounds the encoding. */
static int derive_one(cj_oscore_ctx_t *ctx, const cj_oscore_params_t *p,
                      int k)
{
    static const uint8_t key_tail[] = {CJ_OSCORE_ALG_AES_CCM_16_64_128, 0x63,
                                       'K', 'e', 'y', CJ_OSCORE_KEY_LEN};
    static const uint8_t iv_tail[] = {CJ_OSCORE_ALG_AES_CCM_16_64_128, 0x62,
                                      'I', 'V', CJ_OSCORE_NONCE_LEN};
    uint8_t info[INFO_MAX];
    /* Sender Key, Recipient Key, Common IV: one run (OKM_IN_ORDER) */
    uint8_t *okm = (uint8_t *)ctx + offsetof(cj_oscore_ctx_t, sender_key) +
                   k * CJ_OSCORE_KEY_LEN;
    size_t len = k < 2 ? CJ_OSCORE_KEY_LEN : CJ_OSCORE_NONCE_LEN;
    size_t n = k == 0 ? ctx->sender_id_len
               : k == 1 ? ctx->recipient_id_len
                        : 0;
    uint8_t *q = info;

    /* Every item is short (IDs below 24 bytes, L and alg below 24), so
     * each head is one byte; only an ID Context of 24 bytes or more takes
     * a second one. */
    *q++ = 0x85; /* array(5) */
    *q++ = (uint8_t)(0x40 | n);
    q = put_view(q, k == 0 ? ctx->sender_id : ctx->recipient_id, n);
    if (ctx->has_id_context) {
        n = ctx->id_context_len;
        q += cj_cbor_head(q, CJ_CBOR_BSTR, n);
        q = put_view(q, ctx->id_context, n);
    } else {
        *q++ = 0xf6; /* null */
    }
    /* alg, tstr "Key" or "IV", L */
    q = put_view(q, k < 2 ? key_tail : iv_tail,
                 k < 2 ? sizeof key_tail : sizeof iv_tail);
    return cj_crypto_hkdf_sha256(p->master_salt_len ? p->master_salt : NULL,
                                 p->master_salt_len, p->master_secret,
                                 p->master_secret_len, info,
                                 (size_t)(q - info), okm, len);
}
#endif

/* A parameter of n bytes: at most max, src NULL only when n is 0.
 * Copied to dst unless dst is NULL. */
static CJ_ALWAYS_INLINE bool take_param(uint8_t *dst, const uint8_t *src,
                                        size_t n, size_t max)
{
    if (n > max || (src == NULL && n > 0))
        return false;
    if (dst != NULL)
        put_view(dst, src, n);
    return true;
}

/* Set ctx up from p but for the derived material: cleared, IDs and ID
 * Context checked and copied.  On failure the caller wipes ctx. */
static CJ_ALWAYS_INLINE int ctx_params(cj_oscore_ctx_t *ctx,
                                       const cj_oscore_params_t *p)
{
    if (ctx == NULL || p == NULL)
        return CJ_ERR_INVALID;
    memset(ctx, 0, sizeof *ctx);
    /* Section 3.3: IDs fit the nonce and differ from each other. */
    if (!take_param(NULL, p->master_secret, p->master_secret_len, SIZE_MAX) ||
        !take_param(NULL, p->master_salt, p->master_salt_len, SIZE_MAX) ||
        !take_param(ctx->sender_id, p->sender_id, p->sender_id_len,
                    CJ_OSCORE_MAX_ID) ||
        !take_param(ctx->recipient_id, p->recipient_id, p->recipient_id_len,
                    CJ_OSCORE_MAX_ID) ||
        (p->has_id_context &&
         !take_param(ctx->id_context, p->id_context, p->id_context_len,
                     CJ_OSCORE_MAX_ID_CONTEXT)) ||
        (p->sender_id_len == p->recipient_id_len &&
         memcmp(ctx->sender_id, ctx->recipient_id, p->sender_id_len) == 0))
        return CJ_ERR_INVALID;
    ctx->sender_id_len = (uint8_t)p->sender_id_len;
    ctx->recipient_id_len = (uint8_t)p->recipient_id_len;
    ctx->has_id_context = p->has_id_context;
    if (p->has_id_context)
        ctx->id_context_len = (uint8_t)p->id_context_len;
    return CJ_OK;
}

int cj_oscore_ctx_derive(cj_oscore_ctx_t *ctx, const cj_oscore_params_t *p)
{
    int rc = ctx_params(ctx, p);

    if (rc == CJ_OK && p->okm != NULL) {
        memcpy((uint8_t *)ctx + offsetof(cj_oscore_ctx_t, sender_key), p->okm,
               CJ_OSCORE_OKM_LEN); /* OKM_IN_ORDER */
        return CJ_OK;
    }
#if CJ_OSCORE_DERIVE
    for (int k = 0; k < 3 && rc == CJ_OK; k++)
        rc = derive_one(ctx, p, k);
#else
    if (rc == CJ_OK)
        rc = CJ_ERR_INVALID; /* this build derives nothing */
#endif
    if (rc != CJ_OK && ctx != NULL)
        cj_crypto_wipe(ctx, sizeof *ctx);
    return rc;
}

int cj_oscore_ctx_load(cj_oscore_ctx_t *ctx, const cj_oscore_params_t *p,
                       const uint8_t okm[CJ_OSCORE_OKM_LEN])
{
    cj_oscore_params_t q;

    if (p == NULL || okm == NULL)
        return CJ_ERR_INVALID;
    q = *p;
    q.okm = okm;
    return cj_oscore_ctx_derive(ctx, &q);
}

int cj_oscore_okm(const cj_oscore_params_t *p, uint8_t okm[CJ_OSCORE_OKM_LEN])
{
    cj_oscore_ctx_t c;
    int rc;

    if (okm == NULL)
        return CJ_ERR_INVALID;
    rc = cj_oscore_ctx_derive(&c, p);
    if (rc == CJ_OK)
        memcpy(okm, (const uint8_t *)&c + offsetof(cj_oscore_ctx_t, sender_key),
               CJ_OSCORE_OKM_LEN); /* OKM_IN_ORDER */
    cj_crypto_wipe(&c, sizeof c);
    return rc;
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

    if (ctx == NULL)
        return CJ_ERR_INVALID;
    /* Derive aside so a failure (p NULL included) leaves the old context
     * usable. */
    rc = cj_oscore_ctx_derive(&fresh, p);
    if (rc == CJ_OK) {
        fresh.send_kid_context = ctx->send_kid_context;
        /* Persistence and sequence number (one block of the context).
         * The sequence number keeps counting: with persistence attached
         * the new context shares the old one's counter, and restarting
         * at 0 would make a later reboot restore a mark that does not
         * cover the numbers used before the change (Appendix B.1.1).  A
         * fresh Sender Key would make reuse harmless, but one counter
         * that only grows needs no such argument.  The replay window is
         * the new context's own: empty. */
        memcpy(&fresh.ssn_counter_id, &ctx->ssn_counter_id,
               offsetof(cj_oscore_ctx_t, replay) -
                   offsetof(cj_oscore_ctx_t, ssn_counter_id));
        /* every byte of the old context is overwritten */
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
static CJ_ALWAYS_INLINE int ssn_reserve(cj_oscore_ctx_t *ctx)
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

/* Write an option value to out (section 6.1): flags (n, the Partial IV's
 * length, and the bits h and k saying whether a kid context and a kid
 * follow), the Partial IV, s and the kid context, the kid; the inputs
 * are checked.  Returns the length.  The one writer of the value, for
 * cj_oscore_option_encode() and cj_oscore_seal_begin(). */
static CJ_NOINLINE size_t option_write(uint8_t *out, unsigned flags,
                                       const uint8_t *piv,
                                       const uint8_t *kid_context,
                                       size_t kid_context_len,
                                       const uint8_t *kid, size_t kid_len)
{
    uint8_t *p = out + 1;

    if (flags == 0)
        return 0; /* all flags zero: the value is empty (section 2) */
    out[0] = (uint8_t)flags;
    p = put_view(p, piv, flags & FLAG_N);
    if (flags & FLAG_H) {
        *p++ = (uint8_t)kid_context_len;
        p = put_view(p, kid_context, kid_context_len);
    }
    if (flags & FLAG_K)
        p = put_view(p, kid, kid_len);
    return (size_t)(p - out);
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
    return (int)option_write(out,
                             (unsigned)o->piv_len |
                                 (o->has_kid_context ? FLAG_H : 0) |
                                 (o->has_kid ? FLAG_K : 0),
                             o->piv, o->kid_context, o->kid_context_len,
                             o->kid, o->kid_len);
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

    if (!w->valid || piv > w->highest) {
        /* A new highest value: the window slides (an empty one starts
         * with this value alone). */
        shift = w->valid ? piv - w->highest : CJ_OSCORE_REPLAY_WINDOW;
        w->bitmap = shift >= CJ_OSCORE_REPLAY_WINDOW
                        ? 1u
                        : (uint32_t)(w->bitmap << shift) | 1u;
        w->highest = piv;
        w->valid = true;
        return;
    }
    shift = w->highest - piv;
    if (shift < CJ_OSCORE_REPLAY_WINDOW)
        w->bitmap |= (uint32_t)1u << shift;
}

/* ---- message binding (sections 5.2 and 5.4) ----------------------------- */

/* A binding a response can be protected or verified with: a kid that
 * fits the nonce and a Partial IV of 1..5 bytes. */
static bool req_ok(const cj_oscore_req_t *req)
{
    return req->kid_len <= CJ_OSCORE_MAX_ID &&
           req->piv_len - 1u < CJ_OSCORE_MAX_PIV_LEN;
}

/* A message's own binding: the sender's ID and the Partial IV it carries
 * (none: piv_len 0).  Callers pass an ID of at most CJ_OSCORE_MAX_ID
 * bytes and a Partial IV of at most CJ_OSCORE_MAX_PIV_LEN. */
static void bind(cj_oscore_req_t *b, const uint8_t *id, size_t id_len,
                 const uint8_t *piv, size_t piv_len)
{
    memset(b, 0, sizeof *b);
    put_view(b->kid, id, id_len);
    b->kid_len = (uint8_t)id_len;
    put_view(b->piv, piv, piv_len);
    b->piv_len = (uint8_t)piv_len;
}

/* AAD and nonce of a message whose own binding is *own, answering *req
 * (NULL for a request); returns the AAD length.
 *   Nonce (5.2): [S | zero-padded ID_PIV | zero-padded PIV] xor Common
 *   IV, from this message's Partial IV if it has one, else the request's.
 *   AAD (5.4): Enc_structure ["Encrypt0", h'', external_aad], where
 *   external_aad = bstr .cbor [1, [alg], request_kid, request_piv, h''].
 *   No Class I options are defined, so the last field is always empty.
 *   With kid <= CJ_OSCORE_MAX_ID (< 24) and piv <= 5 bytes every head in
 *   aad_array takes one byte, so the array is 7 + kid + piv bytes and
 *   the whole structure is a fixed head with three short strings. */
static size_t seal_inputs(const cj_oscore_ctx_t *ctx,
                          const cj_oscore_req_t *own,
                          const cj_oscore_req_t *req,
                          uint8_t nonce[CJ_OSCORE_NONCE_LEN],
                          uint8_t aad[AAD_MAX])
{
    static const uint8_t aad_head[16] = {
        0x83, 0x68, 'E', 'n', 'c', 'r', 'y', 'p', 't', '0', 0x40,
        0x40, /* bstr head of aad_array, length added below */
        0x85, 0x01, 0x81, CJ_OSCORE_ALG_AES_CCM_16_64_128};
    const cj_oscore_req_t *r = own->piv_len ? own : req;
    uint8_t *p;

    memset(nonce, 0, CJ_OSCORE_NONCE_LEN);
    nonce[0] = r->kid_len;
    put_view(nonce + 1 + ID_FIELD_LEN - r->kid_len, r->kid, r->kid_len);
    put_view(nonce + CJ_OSCORE_NONCE_LEN - r->piv_len, r->piv, r->piv_len);
    for (size_t i = 0; i < CJ_OSCORE_NONCE_LEN; i++)
        nonce[i] ^= ctx->common_iv[i];

    r = req ? req : own;
    memcpy(aad, aad_head, sizeof aad_head);
    aad[11] = (uint8_t)(aad[11] + 7 + r->kid_len + r->piv_len);
    p = aad + sizeof aad_head;
    *p++ = (uint8_t)(0x40 | r->kid_len);
    p = put_view(p, r->kid, r->kid_len);
    *p++ = (uint8_t)(0x40 | r->piv_len);
    p = put_view(p, r->piv, r->piv_len);
    *p++ = 0x40;
    return (size_t)(p - aad);
}

/* ---- the core: seal and open (sections 5 to 8) -------------------------- */

static bool id_equal(const uint8_t *a, size_t alen, const uint8_t *b,
                     size_t blen)
{
    return alen == blen && memcmp(a, b, alen) == 0;
}

static uint64_t own_piv(const cj_oscore_req_t *own)
{
    return cj_oscore_piv_value(own->piv, own->piv_len);
}

int cj_oscore_seal_begin(const cj_oscore_ctx_t *ctx, const cj_oscore_req_t *req,
                         bool new_piv, cj_oscore_req_t *own,
                         uint8_t opt[CJ_OSCORE_OPT_MAX])
{
    unsigned flags = 0;

    if (req != NULL && !req_ok(req))
        return CJ_ERR_INVALID;
    bind(own, ctx->sender_id, ctx->sender_id_len, NULL, 0);
    if (req == NULL || new_piv) {
        /* A fresh Partial IV from the sender sequence number, which only
         * cj_oscore_seal() advances: big-endian in the fewest bytes, 0
         * as one byte 0x00 (sections 6.1, 6.3).  At most 40 bits: the
         * byte count and the bytes come from two 32-bit halves. */
        uint64_t v = ctx->ssn;
        uint32_t lo = (uint32_t)v, hi = (uint32_t)(v >> 32);
        unsigned n;

        if (v > CJ_OSCORE_MAX_SSN)
            return CJ_ERR_SEQ_EXHAUSTED;
        n = hi ? 5 : lo >> 24 ? 4 : lo >> 16 ? 3 : lo >> 8 ? 2 : 1;
        for (unsigned i = n; i-- > 0; lo = lo >> 8 | hi << 24, hi >>= 8)
            own->piv[i] = (uint8_t)lo;
        own->piv_len = (uint8_t)n;
        flags = n;
        if (ctx->send_kid_context && ctx->has_id_context)
            flags |= FLAG_H;
    }
    if (req == NULL)
        flags |= FLAG_K;
    return (int)option_write(opt, flags, own->piv, ctx->id_context,
                             ctx->id_context_len, ctx->sender_id,
                             ctx->sender_id_len);
}

int cj_oscore_seal(cj_oscore_ctx_t *ctx, const cj_oscore_req_t *own,
                   const cj_oscore_req_t *req, uint8_t *pt, size_t len)
{
    uint8_t aad[AAD_MAX];
    uint8_t nonce[CJ_OSCORE_NONCE_LEN];
    size_t aad_len;
    int rc;

    /* A Partial IV other than the next sequence number would be one
     * used before, or skipped past: refused, so a nonce never repeats. */
    if ((req != NULL && !req_ok(req)) ||
        (own->piv_len && own_piv(own) != ctx->ssn))
        return CJ_ERR_INVALID;
    aad_len = seal_inputs(ctx, own, req, nonce, aad);
    /* Appendix B.1.1: the number is durable-reserved before use. */
    if (own->piv_len && (rc = ssn_reserve(ctx)) < 0)
        return rc;
    rc = cj_crypto_ccm_seal(ctx->sender_key, nonce, aad, aad_len, pt, len,
                            CJ_OSCORE_TAG_LEN);
    if (rc >= 0 && own->piv_len)
        ctx->ssn++;
    return rc;
}

int cj_oscore_open(cj_oscore_ctx_t *ctx, const cj_oscore_option_t *ov,
                   const cj_oscore_req_t *req, uint8_t *ct, size_t len,
                   cj_oscore_req_t *own)
{
    uint8_t aad[AAD_MAX];
    uint8_t nonce[CJ_OSCORE_NONCE_LEN];
    size_t aad_len;
    int rc;

    if (req != NULL && !req_ok(req))
        return CJ_ERR_INVALID;
    /* Section 8.2 step 2: a request cannot be decompressed without a
     * Partial IV; sections 5.3 and 5.4: the plaintext holds at least the
     * code. */
    if (len < 1 + CJ_OSCORE_TAG_LEN || (req == NULL && ov->piv_len == 0) ||
        ov->piv_len > CJ_OSCORE_MAX_PIV_LEN)
        return CJ_ERR_OSCORE_DECODE;
    /* A request names its context by kid (and kid context). */
    if ((req == NULL && !ov->has_kid) ||
        (ov->has_kid && !id_equal(ov->kid, ov->kid_len, ctx->recipient_id,
                                  ctx->recipient_id_len)) ||
        (ov->has_kid_context &&
         (!ctx->has_id_context ||
          !id_equal(ov->kid_context, ov->kid_context_len, ctx->id_context,
                    ctx->id_context_len))))
        return CJ_ERR_UNKNOWN_CONTEXT;
    bind(own, ctx->recipient_id, ctx->recipient_id_len, ov->piv,
         ov->piv_len);
    /* Section 7.4: replay is checked before any decryption work. */
    if (own->piv_len &&
        (rc = cj_oscore_replay_check(&ctx->replay, own_piv(own))) < 0)
        return rc;
    aad_len = seal_inputs(ctx, own, req, nonce, aad);
    /* Decrypt in place; on a bad tag the port wipes the region. */
    return cj_crypto_ccm_open(ctx->recipient_key, nonce, aad, aad_len, ct,
                              len, CJ_OSCORE_TAG_LEN);
}

/* ---- option split and merge (section 4.1) ------------------------------- */

/* Append to b, in number order, the options t[i] whose class is in the
 * low byte of masks (i < split) or in its second byte (i >= split).
 * t[0..split) and t[split..n) are each in wire order; among equal
 * numbers table order is kept, so repeated options keep theirs.  The
 * next option is the one with the least (number, index) key above the
 * last one written.  With obs not NULL every Observe option is written
 * as *obs instead. */
static void put_opts(cj_coap_builder_t *b, const cj_coap_opt_t *t,
                     size_t split, size_t n, unsigned masks,
                     const cj_coap_opt_t *obs)
{
    uint32_t last = 0;

    for (;;) {
        const cj_coap_opt_t *o;
        uint32_t best = UINT32_MAX;
        for (size_t i = 0; i < n; i++) {
            uint32_t key = ((uint32_t)t[i].num << 8 | (uint32_t)i) + 1;
            if ((opt_class(t[i].num) & (i < split ? masks : masks >> 8)) &&
                key > last && key < best)
                best = key;
        }
        if (best == UINT32_MAX)
            return;
        last = best;
        o = &t[(best - 1) & 0xff];
        if (obs && o->num == CJ_COAP_OPT_OBSERVE)
            o = obs;
        cj_coap_build_opt(b, o->num, o->val, o->len);
    }
}

/* ---- protect and unprotect (sections 8.1 to 8.4) ----------------------- */

/* Protect (seal) or unprotect a request (req NULL) or a response to
 * *req.  Both directions share the steps: parse the message and take its
 * options; bind it (own: the sender's ID and this message's Partial IV);
 * AAD and nonce; write the result to out as a CoAP message with the
 * message's type, MID and token and options picked by class.  Protect
 * then appends the plaintext and seals it in place; unprotect opened the
 * ciphertext in place before and appends the inner payload.  msg is only
 * written when unprotecting.  The four operations of cojp/oscore.h are
 * inline wrappers around this one function, so a firmware carries a
 * single copy of the argument passing. */
int cj_oscore_xcode(cj_oscore_ctx_t *ctx, uint8_t *msg, size_t len,
                    uint8_t *out, size_t cap, cj_oscore_req_t *req_out,
                    const cj_oscore_req_t *req, unsigned mode)
{
    const bool seal = mode & CJ_OSCORE_SEAL;
    /* Outer options of the message, then (unprotect) the inner ones or
     * (protect) the OSCORE option. */
    cj_coap_opt_t t[2 * CJ_COAP_MAX_OPTIONS];
    cj_coap_opt_t obs = {CJ_COAP_OPT_OBSERVE, 0, NULL};
    const cj_coap_opt_t *oscore = NULL;
    cj_coap_msg_t m;
    cj_coap_builder_t b;
    cj_oscore_option_t ov;
    cj_oscore_req_t own;
    uint8_t optval[CJ_OSCORE_OPT_MAX];
    const uint8_t *payload;
    size_t n, payload_len, pos, pt_len = 0;
    unsigned cls = 0, masks;
    bool twice = false;
    uint8_t *pt = out, code;
    int rc;

    if (ctx == NULL || msg == NULL || out == NULL ||
        (req != NULL && !req_ok(req)))
        return CJ_ERR_INVALID;
    rc = cj_coap_parse(&m, msg, len);
    if (rc < 0)
        return rc;
    rc = cj_coap_opts_decode(m.opts, m.opts_len, t, CJ_COAP_MAX_OPTIONS,
                             &payload, &payload_len);
    if (rc < 0)
        return rc;
    n = (size_t)rc;
    for (size_t i = 0; i < n; i++) {
        unsigned c = opt_class(t[i].num);
        /* Section 2: the OSCORE option is not repeatable. */
        if (c & CLS_OSCORE) {
            twice = oscore != NULL;
            oscore = &t[i];
        }
        cls |= c;
    }

    if (seal) {
        /* Section 4.1.3.7: no nested OSCORE.  Proxy-Uri must have been
         * split by the caller (section 4.1.3.3). */
        if (!code_ok(req == NULL, m.code) ||
            (cls & (CLS_OSCORE | CLS_PROXY_URI)))
            return CJ_ERR_INVALID;
        rc = cj_oscore_seal_begin(ctx, req, mode & CJ_OSCORE_NEW_PIV, &own,
                                  optval);
        if (rc < 0)
            return rc;
        /* Outer options: Class U, the OSCORE option (appended to t as a
         * second run), and Observe with its original value (4.1.3.5). */
        cls &= CLS_OBSERVE;
        /* Outer code (sections 4.2 and 4.1.3.5): a request is POST
         * (FETCH with Observe), a response 2.04 (2.05 with Observe). */
        if (req)
            code = cls ? CJ_COAP_CONTENT : CJ_COAP_CHANGED;
        else
            code = cls ? CJ_COAP_FETCH : CJ_COAP_POST;
        t[n].num = CJ_COAP_OPT_OSCORE;
        t[n].len = (uint16_t)rc;
        t[n].val = optval;
        masks = CLS_U | CLS_OSCORE | cls;
        pos = ++n;
    } else {
        /* Section 2: exactly one OSCORE option. */
        if (oscore == NULL || twice ||
            cj_oscore_option_decode(oscore->val, oscore->len, &ov) != CJ_OK)
            return CJ_ERR_OSCORE_DECODE;
        /* The payload is the ciphertext, at the end of the message. */
        pt = msg + len - m.payload_len;
        rc = cj_oscore_open(ctx, &ov, req, pt, m.payload_len, &own);
        if (rc < 0)
            return rc;
        pt_len = (size_t)rc;
        /* Section 5.3: code byte, Class E options, optional payload. */
        code = pt[0];
        rc = CJ_ERR_OSCORE_DECODE;
        if (!code_ok(req == NULL, code))
            goto fail;
        rc = cj_coap_opts_decode(pt + 1, pt_len - 1, t + n,
                                 CJ_COAP_MAX_OPTIONS, &payload, &payload_len);
        if (rc < 0) {
            if (rc != CJ_ERR_NOSPACE)
                rc = CJ_ERR_OSCORE_DECODE;
            goto fail;
        }
        /* Section 4.1.3.7: no nested OSCORE, on receipt either. */
        for (pos = n; pos < n + (size_t)rc; pos++)
            if (t[pos].num == CJ_COAP_OPT_OSCORE) {
                rc = CJ_ERR_OSCORE_DECODE;
                goto fail;
            }
        /* Section 4.1.3.5.2: a notification's inner Observe is empty;
         * hand the application the three low bytes of the Partial IV,
         * which order notifications and are authenticated: as a CoAP
         * uint, the last bytes of the big-endian Partial IV that the
         * value needs. */
        if (CJ_OSCORE_OBSERVE && req && own.piv_len) {
            uint32_t v = (uint32_t)own_piv(&own) & 0xffffffu;
            unsigned k = 0;
            while (v >> 8 * k)
                k++;
            obs.len = (uint16_t)k;
            obs.val = own.piv + own.piv_len - k;
            cls = CLS_OBSERVE;
        } else {
            cls = 0;
        }
        /* Outer Class U options merged in number order with the inner
         * Class E options; outer Class E (Observe included) and inner
         * Class U are discarded (sections 8.2 and 8.4 step 1). */
        masks = (CLS_U | CLS_PROXY_URI) | (CLS_E | CLS_OBSERVE) << 8;
        pos = n + (size_t)rc;
    }
    /* Type, MID and token are the outer ones either way. */
    cj_coap_build_init(&b, out, cap, m.type, code, m.mid, m.token,
                       m.token_len);
    put_opts(&b, t, n, pos, masks, seal || !cls ? NULL : &obs);
    if (seal) {
        /* Plaintext (section 5.3) straight behind the outer options, by
         * the same builder: the payload marker and the code start the
         * payload; the option state is then reset so that the Class E
         * options follow with deltas from 0, and the inner payload with
         * its own marker (Observe: see section 4.1.3.5.2 above). */
        cj_coap_build_payload(&b, &m.code, 1);
        pos = b.len - 1;
        b.has_payload = false;
        b.last_opt = 0;
        put_opts(&b, t, n - 1, n - 1, CLS_E | CLS_OBSERVE,
                 req && cls ? &obs : NULL);
        payload = m.payload;
        payload_len = m.payload_len;
    }
    cj_coap_build_payload(&b, payload, payload_len);
    rc = cj_coap_build_finish(&b);
    if (rc < 0)
        goto wipe;

    if (seal) {
        pt = out + pos;
        pt_len = (size_t)rc - pos;
        if (cap - (size_t)rc < CJ_OSCORE_TAG_LEN) {
            rc = CJ_ERR_NOSPACE;
            goto wipe;
        }
        rc = cj_oscore_seal(ctx, &own, req, pt, pt_len);
        if (rc < 0)
            goto wipe;
        rc += (int)pos;
    } else if (own.piv_len) {
        /* Accepted: only now does the Partial IV enter the window. */
        cj_oscore_replay_update(&ctx->replay, own_piv(&own));
    }
    if (req_out)
        memcpy(req_out, &own, sizeof own);
    return rc;

wipe:
    /* Nothing leaves: the output may hold plaintext. */
    cj_crypto_wipe(out, cap);
fail:
    /* Authentic but unusable: release none of it.  On the protect side
     * this is a region of out, wiped already, or nothing (out, 0). */
    cj_crypto_wipe(pt, pt_len);
    return rc;
}
