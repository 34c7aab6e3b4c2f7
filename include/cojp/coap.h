/*
 * cojp/coap.h - CoAP message parsing and building (RFC 7252 section 3),
 * with the extended token lengths of RFC 8974 section 2.1.
 *
 * Parsing copies nothing: cj_coap_parse() validates the whole datagram
 * (header, token, every option, payload marker) once and records offsets
 * into it.  Tokens, option values and the payload are views that live as
 * long as the caller's datagram.  After a successful parse, option
 * iteration cannot fail.
 *
 * Building writes header, token, options (in non-decreasing number order)
 * and payload into a caller buffer.  Overflow and misuse are sticky: only
 * cj_coap_build_finish() needs checking.
 */
#ifndef COJP_COAP_H
#define COJP_COAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cojp/config.h"
#include "cojp/err.h"

/* Message types (RFC 7252 section 3). */
enum { CJ_COAP_CON = 0, CJ_COAP_NON = 1, CJ_COAP_ACK = 2, CJ_COAP_RST = 3 };

/* Codes as class << 5 | detail. */
#define CJ_COAP_CODE(c, d) ((uint8_t)(((c) << 5) | (d)))
enum {
    CJ_COAP_EMPTY = CJ_COAP_CODE(0, 0),
    CJ_COAP_GET = CJ_COAP_CODE(0, 1),
    CJ_COAP_POST = CJ_COAP_CODE(0, 2),
    CJ_COAP_PUT = CJ_COAP_CODE(0, 3),
    CJ_COAP_DELETE = CJ_COAP_CODE(0, 4),
    CJ_COAP_FETCH = CJ_COAP_CODE(0, 5),
    CJ_COAP_CREATED = CJ_COAP_CODE(2, 1),
    CJ_COAP_DELETED = CJ_COAP_CODE(2, 2),
    CJ_COAP_VALID = CJ_COAP_CODE(2, 3),
    CJ_COAP_CHANGED = CJ_COAP_CODE(2, 4),
    CJ_COAP_CONTENT = CJ_COAP_CODE(2, 5),
    CJ_COAP_BAD_REQUEST = CJ_COAP_CODE(4, 0),
    CJ_COAP_UNAUTHORIZED = CJ_COAP_CODE(4, 1),
    CJ_COAP_BAD_OPTION = CJ_COAP_CODE(4, 2),
    CJ_COAP_FORBIDDEN = CJ_COAP_CODE(4, 3),
    CJ_COAP_NOT_FOUND = CJ_COAP_CODE(4, 4),
    CJ_COAP_METHOD_NOT_ALLOWED = CJ_COAP_CODE(4, 5),
    CJ_COAP_INTERNAL_ERROR = CJ_COAP_CODE(5, 0),
    CJ_COAP_SERVICE_UNAVAILABLE = CJ_COAP_CODE(5, 3),
    CJ_COAP_PROXYING_NOT_SUPPORTED = CJ_COAP_CODE(5, 5)
};

/* Option numbers (RFC 7252 section 12.2, RFC 8613, RFC 9175). */
enum {
    CJ_COAP_OPT_IF_MATCH = 1,
    CJ_COAP_OPT_URI_HOST = 3,
    CJ_COAP_OPT_ETAG = 4,
    CJ_COAP_OPT_IF_NONE_MATCH = 5,
    CJ_COAP_OPT_OBSERVE = 6,
    CJ_COAP_OPT_URI_PORT = 7,
    CJ_COAP_OPT_LOCATION_PATH = 8,
    CJ_COAP_OPT_OSCORE = 9,
    CJ_COAP_OPT_URI_PATH = 11,
    CJ_COAP_OPT_CONTENT_FORMAT = 12,
    CJ_COAP_OPT_MAX_AGE = 14,
    CJ_COAP_OPT_URI_QUERY = 15,
    CJ_COAP_OPT_ACCEPT = 17,
    CJ_COAP_OPT_LOCATION_QUERY = 20,
    CJ_COAP_OPT_BLOCK2 = 23,
    CJ_COAP_OPT_BLOCK1 = 27,
    CJ_COAP_OPT_SIZE2 = 28,
    CJ_COAP_OPT_PROXY_URI = 35,
    CJ_COAP_OPT_PROXY_SCHEME = 39,
    CJ_COAP_OPT_SIZE1 = 60,
    CJ_COAP_OPT_ECHO = 252,
    CJ_COAP_OPT_NO_RESPONSE = 258
};

/* Option properties (RFC 7252 section 5.4.6). */
static inline bool cj_coap_opt_is_critical(uint16_t num) { return (num & 1) != 0; }
static inline bool cj_coap_opt_is_unsafe(uint16_t num) { return (num & 2) != 0; }
static inline bool cj_coap_opt_is_nocachekey(uint16_t num) { return (num & 0x1e) == 0x1c; }

/* A parsed message: views into the datagram passed to cj_coap_parse(). */
typedef struct cj_coap_msg {
    const uint8_t *buf;     /* the whole datagram */
    size_t len;
    uint8_t type;           /* CJ_COAP_CON .. CJ_COAP_RST */
    uint8_t code;
    uint16_t mid;
    const uint8_t *token;   /* NULL when token_len is 0 */
    size_t token_len;       /* 0..CJ_COAP_MAX_TOKEN */
    const uint8_t *opts;    /* first option byte */
    size_t opts_len;        /* bytes of options, payload marker excluded */
    size_t opt_count;
    const uint8_t *payload; /* NULL when payload_len is 0 */
    size_t payload_len;
} cj_coap_msg_t;

/* One option: its absolute number and a view of its value. */
typedef struct cj_coap_opt {
    uint16_t num;
    uint16_t len;
    const uint8_t *val;
} cj_coap_opt_t;

/* Parse and validate a datagram.  Errors:
 *   CJ_ERR_TRUNCATED     shorter than the 4-byte header, or a token,
 *                        extended token length, option delta/length or
 *                        option value running past the end;
 *   CJ_ERR_COAP_VERSION  version is not 1;
 *   CJ_ERR_COAP_TOKEN    token length nibble 15 (reserved), or a token
 *                        longer than CJ_COAP_MAX_TOKEN.  Lengths 9..12 are
 *                        ordinary since RFC 8974 section 2.1, and the
 *                        extended forms (13 + one byte, 269 + two bytes)
 *                        cannot overlap, so every length has one encoding;
 *   CJ_ERR_COAP_OPTION   delta or length nibble 15 outside a payload
 *                        marker, or option number above 65535;
 *   CJ_ERR_COAP_PAYLOAD  payload marker with no payload after it;
 *   CJ_ERR_COAP_EMPTY    code 0.00 with a token, options or payload. */
int cj_coap_parse(cj_coap_msg_t *m, const uint8_t *buf, size_t len);

/* Iterate over the options of a parsed message in wire order. */
typedef struct cj_coap_opt_iter {
    const uint8_t *p;
    const uint8_t *end;
    uint16_t num;
} cj_coap_opt_iter_t;

void cj_coap_opt_iter_init(cj_coap_opt_iter_t *it, const cj_coap_msg_t *m);
/* 1 and *o filled while options remain, 0 at the end. */
int cj_coap_opt_next(cj_coap_opt_iter_t *it, cj_coap_opt_t *o);

/* First option with number num: 1 and *o filled, 0 when absent. */
int cj_coap_opt_find(const cj_coap_msg_t *m, uint16_t num, cj_coap_opt_t *o);

/* Decode an unsigned-integer option value (0..4 bytes, RFC 7252 3.2).
 * CJ_ERR_RANGE when longer than 4 bytes. */
int cj_coap_opt_uint(const cj_coap_opt_t *o, uint32_t *v);

/* Check that every critical option in m is listed in known[0..n); on
 * failure returns CJ_ERR_COAP_CRITICAL and, if bad is not NULL, stores
 * the first unrecognised number there (RFC 7252 section 5.4.1). */
int cj_coap_check_critical(const cj_coap_msg_t *m, const uint16_t *known,
                           size_t n, uint16_t *bad);

/* ---- builder ---------------------------------------------------------- */

typedef struct cj_coap_builder {
    uint8_t *buf;
    size_t cap;
    size_t len;
    uint16_t last_opt; /* number of the last option written */
    int err;           /* sticky: CJ_ERR_NOSPACE or CJ_ERR_INVALID */
    bool has_payload;
} cj_coap_builder_t;

/* Write the header and token.  token_len may be 0..CJ_COAP_MAX_TOKEN;
 * lengths 13 and above use the RFC 8974 extended forms. */
void cj_coap_build_init(cj_coap_builder_t *b, uint8_t *buf, size_t cap,
                        uint8_t type, uint8_t code, uint16_t mid,
                        const uint8_t *token, size_t token_len);
/* Append an option.  Numbers must be non-decreasing (CJ_ERR_INVALID
 * otherwise); no option may follow the payload. */
void cj_coap_build_opt(cj_coap_builder_t *b, uint16_t num, const void *val,
                       size_t len);
/* Unsigned integer option in its shortest form (0 is zero bytes). */
void cj_coap_build_opt_uint(cj_coap_builder_t *b, uint16_t num, uint32_t v);
/* NUL-terminated string option. */
void cj_coap_build_opt_str(cj_coap_builder_t *b, uint16_t num, const char *s);
/* Payload marker and payload.  An empty payload writes nothing. */
void cj_coap_build_payload(cj_coap_builder_t *b, const uint8_t *p, size_t n);
/* Message length (>= 0) or the sticky error. */
static inline int cj_coap_build_finish(const cj_coap_builder_t *b)
{
    return b->err ? b->err : (int)b->len;
}

/* Encode one option's delta/length header and value at out, given the
 * previous option number; returns bytes written or CJ_ERR_NOSPACE.  Used
 * by the builder and by OSCORE to encode inner options. */
int cj_coap_opt_encode(uint8_t *out, size_t cap, uint16_t prev, uint16_t num,
                       const uint8_t *val, size_t len);

/* Walk a bare option sequence (no header), as found in an OSCORE
 * plaintext: fills opts[0..max) and returns the count; *payload and
 * *payload_len receive what follows a payload marker (NULL/0 if none).
 * Same errors as cj_coap_parse(); CJ_ERR_NOSPACE past max options. */
int cj_coap_opts_decode(const uint8_t *p, size_t len, cj_coap_opt_t *opts,
                        size_t max, const uint8_t **payload,
                        size_t *payload_len);

#endif
