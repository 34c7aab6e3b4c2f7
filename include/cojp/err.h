/*
 * cojp/err.h - the one error enum shared by every cojp module.
 *
 * Every function that can fail returns int: 0 (CJ_OK) on success, a
 * negative cj_err value on failure, or a non-negative length where the
 * function documents that it returns one.  Callers that must react
 * differently to two failures get two codes; everything else shares the
 * generic ones.
 */
#ifndef COJP_ERR_H
#define COJP_ERR_H

typedef enum cj_err {
    CJ_OK = 0,

    /* Generic input/output problems. */
    CJ_ERR_TRUNCATED = -1,      /* input ends inside an item */
    CJ_ERR_MALFORMED = -2,      /* input violates the encoding rules */
    CJ_ERR_NOSPACE = -3,        /* output buffer or table too small */
    CJ_ERR_TYPE = -4,           /* item is not of the requested type */
    CJ_ERR_NONCANONICAL = -5,   /* valid but not the shortest encoding */
    CJ_ERR_UNSUPPORTED = -6,    /* valid but outside the implemented subset */
    CJ_ERR_DEPTH = -7,          /* nesting deeper than the configured bound */
    CJ_ERR_TRAILING = -8,       /* bytes left after a complete item */
    CJ_ERR_RANGE = -9,          /* value does not fit the requested type */
    CJ_ERR_INVALID = -10,       /* caller passed an argument the API forbids */

    /* CoAP message format (RFC 7252 section 3). */
    CJ_ERR_COAP_VERSION = -20,  /* version field is not 1 */
    CJ_ERR_COAP_TOKEN = -21,    /* reserved token length (9..12, 15) */
    CJ_ERR_COAP_OPTION = -22,   /* reserved delta/length nibble or overflow */
    CJ_ERR_COAP_PAYLOAD = -23,  /* payload marker followed by nothing */
    CJ_ERR_COAP_EMPTY = -24,    /* Empty message (0.00) carrying bytes */
    CJ_ERR_COAP_CRITICAL = -25, /* unrecognised critical option */

    /* Security. */
    CJ_ERR_AUTH = -30,            /* AEAD tag did not verify */
    CJ_ERR_REPLAY = -31,          /* Partial IV already seen or too old */
    CJ_ERR_UNKNOWN_CONTEXT = -32, /* no security context for kid/kid context */
    CJ_ERR_OSCORE_DECODE = -33,   /* OSCORE option or plaintext malformed */
    CJ_ERR_SEQ_EXHAUSTED = -34,   /* sender sequence number space used up */
    CJ_ERR_CRYPTO = -35,          /* crypto backend failed */
    CJ_ERR_PSK_REUSED = -36,      /* PSK already held by another pledge */

    /* Platform. */
    CJ_ERR_STORAGE = -40,  /* persistent write/read failed */
    CJ_ERR_STATE = -41,    /* operation not allowed in the current state */
    CJ_ERR_NOTFOUND = -42, /* lookup found nothing */
    CJ_ERR_BUSY = -43      /* resource temporarily exhausted, try later */
} cj_err_t;

/* Short English description of an error code; never NULL. */
const char *cj_strerror(int err);

#endif
