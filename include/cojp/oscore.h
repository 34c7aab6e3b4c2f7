/*
 * cojp/oscore.h - Object Security for Constrained RESTful Environments
 * (RFC 8613) with AES-CCM-16-64-128 and HKDF-SHA256, the profile CoJP
 * mandates (RFC 9031 section 7.3).
 *
 * A security context is a caller-owned struct derived once from the
 * provisioned parameters (section 3.2).  Protect turns an unprotected
 * CoAP message into an OSCORE message; unprotect does the reverse.  Class
 * U options (Uri-Host, Uri-Port, Proxy-Scheme, OSCORE) travel outside;
 * Observe travels both inside and outside; every other option, including
 * unknown ones, is Class E and encrypted (section 4.1).  Proxy-Uri is not
 * accepted by protect: split it into Proxy-Scheme/Uri-Host/Uri-Path first.
 *
 * Unprotect decrypts in place: the ciphertext region of the caller's
 * message buffer is overwritten with plaintext (or wiped when the tag
 * does not verify) and the reassembled CoAP message is written to out.
 *
 * Sender sequence numbers are reserved ahead through the platform port
 * (Appendix B.1.1): when a context is attached to a persistent counter, a
 * number is only used after a value above it is durable, so a reboot
 * never reuses a nonce.  A failed reservation fails the protect call with
 * CJ_ERR_STORAGE and nothing is sent.
 *
 * Observe (section 4.1.3.5, when CJ_OSCORE_OBSERVE is 1): a notification
 * carrying a Partial IV is checked against the context's replay window
 * like any other message; what section 7.4.1 asks of a client beyond
 * that (at most one notification without Partial IV per registration,
 * the Notification Number, not re-registering at once after a failure)
 * is the caller's, since the codec keeps no per-registration state.  No
 * cojp engine observes.
 *
 * An OSCORE option found among the decrypted inner options is dropped
 * and the rest of the message delivered (section 4.1.3.7 would stop);
 * only a sender holding the keys can produce one.
 *
 * Errors that callers tell apart: CJ_ERR_AUTH (tag), CJ_ERR_REPLAY,
 * CJ_ERR_UNKNOWN_CONTEXT (kid does not match this context),
 * CJ_ERR_OSCORE_DECODE (option or plaintext malformed), CJ_ERR_STORAGE,
 * CJ_ERR_SEQ_EXHAUSTED.
 */
#ifndef COJP_OSCORE_H
#define COJP_OSCORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cojp/coap.h"
#include "cojp/config.h"
#include "cojp/crypto.h"
#include "cojp/err.h"
#include "cojp/port.h"

#define CJ_OSCORE_ALG_AES_CCM_16_64_128 10
#define CJ_OSCORE_KEY_LEN 16
#define CJ_OSCORE_NONCE_LEN 13
#define CJ_OSCORE_TAG_LEN 8
#define CJ_OSCORE_MAX_PIV_LEN 5
#define CJ_OSCORE_MAX_SSN ((UINT64_C(1) << 40) - 1)
#define CJ_OSCORE_REPLAY_WINDOW 32

/* Inputs of the context derivation (section 3.2).  Pointers need only
 * live for the duration of the call. */
typedef struct cj_oscore_params {
    const uint8_t *master_secret;
    size_t master_secret_len;
    const uint8_t *master_salt; /* NULL/0: empty salt */
    size_t master_salt_len;
    const uint8_t *sender_id;
    size_t sender_id_len;
    const uint8_t *recipient_id;
    size_t recipient_id_len;
    const uint8_t *id_context; /* used only when has_id_context */
    size_t id_context_len;
    bool has_id_context;
    /* the derived material, when known (CJ_OSCORE_OKM_LEN bytes:
     * cj_oscore_okm()): taken as is, master secret and salt unused */
    const uint8_t *okm;
} cj_oscore_params_t;

/* Replay window (section 7.4): the highest Partial IV accepted and a
 * bitmap of the CJ_OSCORE_REPLAY_WINDOW values at and below it (bit 0 is
 * the highest itself).  Plain data, so a host can persist and restore it. */
typedef struct cj_oscore_replay {
    uint64_t highest;
    uint32_t bitmap;
    bool valid; /* false until the first message was accepted */
} cj_oscore_replay_t;

typedef struct cj_oscore_ctx {
    /* short fields first: small targets reach them with short loads */
    uint8_t sender_id_len;
    uint8_t recipient_id_len;
    uint8_t id_context_len;
    bool has_id_context;
    /* Send the ID Context as 'kid context' in requests (CoJP Join
     * Requests do).  Set by the caller after derivation; default false. */
    bool send_kid_context;
    uint8_t sender_id[CJ_OSCORE_MAX_ID];
    uint8_t recipient_id[CJ_OSCORE_MAX_ID];
    uint8_t id_context[CJ_OSCORE_MAX_ID_CONTEXT];
    /* persistence and sequence number: one block up to replay, which
     * cj_oscore_ctx_rederive() carries over as it is */
    uint32_t ssn_counter_id;
    const cj_platform_t *platform; /* NULL: no persistence */
    uint64_t ssn;          /* next sender sequence number to use */
    uint64_t ssn_reserved; /* numbers below this are covered on storage */
    cj_oscore_replay_t replay;
    uint8_t sender_key[CJ_OSCORE_KEY_LEN];
    uint8_t recipient_key[CJ_OSCORE_KEY_LEN];
    uint8_t common_iv[CJ_OSCORE_NONCE_LEN];
} cj_oscore_ctx_t;

/* What a response is bound to (section 5.4 request_kid/request_piv and
 * the request nonce).  Filled by protect_request / unprotect_request. */
typedef struct cj_oscore_req {
    uint8_t kid[CJ_OSCORE_MAX_ID];
    uint8_t piv[CJ_OSCORE_MAX_PIV_LEN];
    uint8_t kid_len;
    uint8_t piv_len;
} cj_oscore_req_t;

/* A decoded OSCORE option value (section 6.1): views into the value. */
typedef struct cj_oscore_option {
    const uint8_t *piv;
    size_t piv_len; /* 0..5 */
    const uint8_t *kid_context;
    size_t kid_context_len;
    const uint8_t *kid;
    size_t kid_len;
    bool has_kid_context; /* flag h */
    bool has_kid;         /* flag k; a kid may be present and empty */
} cj_oscore_option_t;

/* Derive a context (section 3.2): Sender Key, Recipient Key and Common
 * IV by HKDF-SHA256 over the CBOR info structure, or as given (p->okm).
 * Sequence number 0, empty replay window, no persistence.
 * CJ_ERR_INVALID when an ID is too long for the nonce or the configured
 * limits, or without p->okm when built with CJ_OSCORE_DERIVE 0. */
int cj_oscore_ctx_derive(cj_oscore_ctx_t *ctx, const cj_oscore_params_t *p);

/* Bytes of a context's derived material: Sender Key, Recipient Key and
 * Common IV, in that order. */
#define CJ_OSCORE_OKM_LEN (2 * CJ_OSCORE_KEY_LEN + CJ_OSCORE_NONCE_LEN)

/* The derived material of the context of parameters p, for a caller that
 * keeps it with the secret and later sets contexts up with
 * cj_oscore_ctx_load() instead of deriving them again. */
int cj_oscore_okm(const cj_oscore_params_t *p, uint8_t okm[CJ_OSCORE_OKM_LEN]);

/* cj_oscore_ctx_derive() with the derived material given (from
 * cj_oscore_okm() for the same parameters; p->okm is ignored).
 * Parameters are checked alike; master secret and salt are not used. */
int cj_oscore_ctx_load(cj_oscore_ctx_t *ctx, const cj_oscore_params_t *p,
                       const uint8_t okm[CJ_OSCORE_OKM_LEN]);

/* Attach the sender sequence number to persistent counter id of the
 * platform port.  When the counter exists its value (the first number not
 * yet reserved) becomes the next sequence number; otherwise the current
 * one is kept.  Nothing is written until the next protect needs a
 * reservation.  CJ_ERR_STORAGE if the load fails. */
int cj_oscore_ctx_attach(cj_oscore_ctx_t *ctx, const cj_platform_t *platform,
                         uint32_t counter_id);

/* Appendix B.2 hook: derive the context anew with a different ID Context
 * (for example R1 || R2) and otherwise the same parameters.  The sender
 * sequence number and its reservation carry over (it keeps counting on
 * the same persistent counter, so a number is never used twice whatever
 * the context, and a restart restores a mark above every number used);
 * the replay window starts empty; persistence stays attached.  A caller
 * that wants the new context to start at 0 sets ssn and ssn_reserved to
 * 0 itself, and then owns the argument that the attached counter is not
 * shared with the old context.  The caller makes the new ID Context
 * durable when it decides the context is in use.  CJ_ERR_INVALID (ctx
 * unchanged) for parameters cj_oscore_ctx_derive() refuses. */
int cj_oscore_ctx_rederive(cj_oscore_ctx_t *ctx, const cj_oscore_params_t *p);

/* Wipe keys and state. */
void cj_oscore_ctx_wipe(cj_oscore_ctx_t *ctx);

/* OSCORE option value codec (section 6.1).  decode returns CJ_OK or
 * CJ_ERR_OSCORE_DECODE (reserved flag bits, n = 6 or 7, fields past the
 * end); the empty value decodes to all-absent.  encode returns the length
 * written or CJ_ERR_NOSPACE / CJ_ERR_INVALID. */
int cj_oscore_option_decode(const uint8_t *val, size_t len,
                            cj_oscore_option_t *o);
int cj_oscore_option_encode(uint8_t *out, size_t cap,
                            const cj_oscore_option_t *o);

/* The one entry point of the four operations below: protect (mode
 * CJ_OSCORE_SEAL, with CJ_OSCORE_NEW_PIV for a fresh Partial IV) or
 * unprotect (mode 0) the CoAP message msg[0..len) into out[0..cap), a
 * request when req is NULL, else a response to the request bound in
 * *req.  *req_out (may be NULL) receives the message's own binding.  msg
 * is only written when unprotecting.  Use the wrappers. */
#define CJ_OSCORE_SEAL 1u
#define CJ_OSCORE_NEW_PIV 2u
int cj_oscore_xcode(cj_oscore_ctx_t *ctx, uint8_t *msg, size_t len,
                    uint8_t *out, size_t cap, cj_oscore_req_t *req_out,
                    const cj_oscore_req_t *req, unsigned mode);

/* Protect a request (section 8.1).  coap[0..len) is the unprotected
 * message; the OSCORE message (outer code POST, or FETCH when the inner
 * request carries Observe) goes to out.  Uses and advances the sender
 * sequence number.  *req receives the binding for the response.  Returns
 * the OSCORE message length. */
static inline int cj_oscore_protect_request(cj_oscore_ctx_t *ctx,
                                            const uint8_t *coap, size_t len,
                                            uint8_t *out, size_t cap,
                                            cj_oscore_req_t *req)
{
    /* Protect reads coap and never writes it. */
    return cj_oscore_xcode(ctx, (uint8_t *)(uintptr_t)coap, len, out, cap,
                           req, NULL, CJ_OSCORE_SEAL | CJ_OSCORE_NEW_PIV);
}

/* Unprotect a request (section 8.2) whose OSCORE option matched this
 * context (the caller looked it up by kid / kid context).  msg is
 * modified.  Checks the replay window before decryption and updates it
 * only after the tag verified.  Returns the unprotected message length;
 * *req receives the binding for the response. */
static inline int cj_oscore_unprotect_request(cj_oscore_ctx_t *ctx,
                                              uint8_t *msg, size_t len,
                                              uint8_t *out, size_t cap,
                                              cj_oscore_req_t *req)
{
    return cj_oscore_xcode(ctx, msg, len, out, cap, req, NULL, 0);
}

/* Protect a response (section 8.3) to the request bound in *req.  With
 * new_piv the response carries its own Partial IV from this context's
 * sequence number (and kid context when send_kid_context is set);
 * otherwise it reuses the request nonce and the OSCORE option is empty.
 * Outer code 2.04 (2.05 with Observe). */
static inline int cj_oscore_protect_response(cj_oscore_ctx_t *ctx,
                                             const cj_oscore_req_t *req,
                                             bool new_piv,
                                             const uint8_t *coap, size_t len,
                                             uint8_t *out, size_t cap)
{
    if (req == NULL)
        return CJ_ERR_INVALID;
    return cj_oscore_xcode(ctx, (uint8_t *)(uintptr_t)coap, len, out, cap,
                           NULL, req,
                           new_piv ? CJ_OSCORE_SEAL | CJ_OSCORE_NEW_PIV
                                   : CJ_OSCORE_SEAL);
}

/* Unprotect a response (section 8.4) to the request bound in *req.  msg
 * is modified.  A response carrying its own Partial IV is checked against
 * and recorded in the replay window. */
static inline int cj_oscore_unprotect_response(cj_oscore_ctx_t *ctx,
                                               const cj_oscore_req_t *req,
                                               uint8_t *msg, size_t len,
                                               uint8_t *out, size_t cap)
{
    if (req == NULL)
        return CJ_ERR_INVALID;
    return cj_oscore_xcode(ctx, msg, len, out, cap, NULL, req, 0);
}

/* ---- the core, for callers that lay their messages out themselves ----
 *
 * Protect and unprotect above take any CoAP message and sort its options
 * by class (section 4.1).  A caller whose messages have a fixed layout
 * (the pledge engine: one request and one response shape) writes the
 * outer message and the plaintext (section 5.3: inner code, Class E
 * options, payload marker and payload) itself and uses these three
 * steps, which are the ones protect and unprotect use: the same Partial
 * IV, OSCORE option value, nonce, AAD, sequence number reservation and
 * replay check. */

/* Longest OSCORE option value a context of this build writes. */
#define CJ_OSCORE_OPT_MAX                                                    \
    (1 + CJ_OSCORE_MAX_PIV_LEN + 1 + CJ_OSCORE_MAX_ID_CONTEXT + CJ_OSCORE_MAX_ID)

/* Start protecting a request (req NULL) or a response to *req: *own
 * receives the message's binding and opt its OSCORE option value
 * (section 6.1), whose length is returned (0: the empty value of a
 * response without Partial IV).  A request, or a response with new_piv,
 * takes the next sender sequence number as Partial IV (and carries the
 * kid context when send_kid_context is set); a request carries its kid.
 * ctx is not changed: cj_oscore_seal() uses the number.
 * CJ_ERR_SEQ_EXHAUSTED, CJ_ERR_INVALID. */
int cj_oscore_seal_begin(const cj_oscore_ctx_t *ctx, const cj_oscore_req_t *req,
                         bool new_piv, cj_oscore_req_t *own,
                         uint8_t opt[CJ_OSCORE_OPT_MAX]);

/* Encrypt the plaintext pt[0..len) in place and append the tag: pt must
 * have room for len + CJ_OSCORE_TAG_LEN bytes.  own is what
 * cj_oscore_seal_begin() gave for the same req, with no other message
 * protected in between.  A Partial IV of own is reserved on storage
 * first (Appendix B.1.1) and the sequence number advanced after.
 * Returns len + CJ_OSCORE_TAG_LEN; CJ_ERR_STORAGE (nothing encrypted),
 * CJ_ERR_INVALID (own is not the next number, or req malformed). */
int cj_oscore_seal(cj_oscore_ctx_t *ctx, const cj_oscore_req_t *own,
                   const cj_oscore_req_t *req, uint8_t *pt, size_t len);

/* Verify and decrypt in place the ciphertext ct[0..len) of a request
 * (req NULL) or of a response to *req whose OSCORE option decoded to
 * *ov.  Checks in order: a request has a Partial IV and the ciphertext
 * holds a code and the tag (CJ_ERR_OSCORE_DECODE); a request names its
 * kid, and kid and kid context when present are this context's
 * (CJ_ERR_UNKNOWN_CONTEXT); the Partial IV against the replay window
 * (CJ_ERR_REPLAY); the tag (CJ_ERR_AUTH, what was decrypted wiped).
 * Returns the plaintext length, *own the message's binding.  The replay
 * window is not updated: the caller enters the Partial IV
 * (cj_oscore_replay_update()) once it accepts the message. */
int cj_oscore_open(cj_oscore_ctx_t *ctx, const cj_oscore_option_t *ov,
                   const cj_oscore_req_t *req, uint8_t *ct, size_t len,
                   cj_oscore_req_t *own);

/* Replay window primitives (section 7.4), exposed so an engine can test
 * a Partial IV before deciding which context to spend work on. */
int cj_oscore_replay_check(const cj_oscore_replay_t *w, uint64_t piv);
void cj_oscore_replay_update(cj_oscore_replay_t *w, uint64_t piv);

/* Partial IV bytes (big-endian, 1..5 bytes) to a number. */
uint64_t cj_oscore_piv_value(const uint8_t *piv, size_t len);

#endif
