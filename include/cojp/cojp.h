/*
 * cojp/cojp.h - the CoJP objects of RFC 9031 section 8.4: Join_Request,
 * Configuration (with its link-layer key set and Short_Identifier) and
 * Unsupported_Configuration, encoded as CBOR.
 *
 * Decoding is strict and copies nothing.  A decoder first checks that the
 * input is exactly one well-formed CBOR item (cj_cbor_validate), then
 * walks it into a caller-allocated struct whose tables are bounded by
 * cojp/config.h.  Every byte string in a decoded struct (network
 * identifier, keys, key_addinfo, short identifier, JRC address, blacklist
 * entries, parameter_addinfo) is a view into the caller's buffer and
 * lives exactly as long as that buffer is unchanged.  On failure the
 * struct's contents are unspecified.
 *
 * When a Join_Request or Configuration decoder fails it also fills a
 * cj_cojp_report_t: the Unsupported_Parameter (section 8.4.5) that the
 * engine should send back, so it can act per section 8.3.1:
 *   - the object came in a CoAP request (Join Request at the JRC,
 *     Parameter Update at a joined node): answer 4.00 (Bad Request) with
 *     an Unsupported_Configuration holding report.param (section 8.3.2);
 *   - the object came in a CoAP response (Join Response at the pledge):
 *     reattempt the join, at most CJ_COJP_MAX_JOIN_ATTEMPTS times, with
 *     report.param in the Join_Request's unsupported configuration.
 * The codec cannot know which case applies; the engine does.
 *
 * Return codes of both object decoders, and what they report:
 *
 *   result               cause                                  code / label / addinfo
 *   CJ_ERR_TRUNCATED     input ends inside the object           - (has_param false)
 *   CJ_ERR_TRAILING      bytes after the object                 -
 *   CJ_ERR_MALFORMED     not well-formed CBOR, not preferred    -
 *                        serialization, tags/floats/indefinite
 *                        lengths, nesting beyond CJ_CBOR_MAX_DEPTH
 *   CJ_ERR_TYPE          top level is not a map, or a label is  -
 *                        not an integer
 *   CJ_ERR_UNSUPPORTED   label unknown to this object (any      UNSUPPORTED / label / null
 *                        label other than 1, 5, 8 in a          (has_param false if the
 *                        Join_Request; 2, 3, 4, 6, 7 in a       label does not fit int64)
 *                        Configuration)
 *   CJ_ERR_MALFORMED     label appears twice (RFC 8949 s. 5.6)  MALFORMED / label / null
 *   CJ_ERR_TYPE          value does not match the CDDL: wrong   MALFORMED / label / null
 *                        CBOR type, empty key set, key set not
 *                        a sequence of Link_Layer_Key, short
 *                        identifier array not of 1..2 items,
 *                        missing network identifier (label 5),
 *                        ill-formed unsupported configuration
 *   CJ_ERR_RANGE         role not in Table 3; key_id above      UNSUPPORTED / label /
 *                        CJ_COJP_MAX_KEY_ID; key_usage not in   encoded value of the
 *                        Table 6                                parameter
 *   CJ_ERR_RANGE         key_value not CJ_COJP_KEY_LEN bytes;   MALFORMED / 2 / null
 *                        key_addinfo contradicting key_id
 *                        (section 8.4.3.3, see cj_cojp_key_t)
 *   CJ_ERR_RANGE         code or label of the Join_Request's    MALFORMED / 8 / null
 *                        unsupported configuration beyond
 *                        int64_t
 *   CJ_ERR_NOSPACE       more keys, blacklist entries or        UNSUPPORTED / label /
 *                        unsupported parameters than            encoded value
 *                        CJ_COJP_MAX_KEYS, _MAX_BLACKLIST,
 *                        _MAX_UNSUPPORTED
 *
 * With has_param false no parameter can be named; an engine answers a
 * request with 4.00 and no payload and a pledge simply reattempts.
 *
 * Not errors: a JRC address whose length is not 16 "MUST be discarded"
 * (section 8.4.2) and an invalid short identifier "MUST [be] silently
 * ignore[d]" (sections 8.4.4, 8.4.4.1).  Both decode as absent and set
 * their bit in cj_cojp_config_t.ignored.
 *
 * Encoders write the preferred form: labels in ascending order, default
 * values (role 0, key_usage 0) omitted.  Decoding then re-encoding a
 * valid object reproduces it byte for byte when the sender did the same,
 * as in RFC 9031 Appendix A.  Every encoder takes (buf, cap), returns the
 * encoded length or CJ_ERR_NOSPACE, and with buf NULL only computes the
 * length.  An encoder refuses (CJ_ERR_INVALID) an object its own decoder
 * would reject, so the other side never has to report it.
 */
#ifndef COJP_COJP_H
#define COJP_COJP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cojp/config.h"
#include "cojp/err.h"

/* Parameter labels (section 11.1, Table 5). */
#define CJ_COJP_LABEL_ROLE 1
#define CJ_COJP_LABEL_KEY_SET 2
#define CJ_COJP_LABEL_SHORT_ID 3
#define CJ_COJP_LABEL_JRC_ADDRESS 4
#define CJ_COJP_LABEL_NETWORK_ID 5
#define CJ_COJP_LABEL_BLACKLIST 6
#define CJ_COJP_LABEL_JOIN_RATE 7
#define CJ_COJP_LABEL_UNSUPPORTED 8

/* Roles (section 8.4.1, Table 3). */
#define CJ_COJP_ROLE_6LN 0  /* "6TiSCH Node", the default */
#define CJ_COJP_ROLE_6LBR 1

/* Unsupported Configuration codes (section 11.3, Table 7). */
#define CJ_COJP_CODE_UNSUPPORTED 0
#define CJ_COJP_CODE_MALFORMED 1

/* Key usage values (section 11.2, Table 6).  All use
 * IEEE802154-AES-CCM-128, hence 16-byte keys. */
#define CJ_COJP_KEY_USAGE_K1K2_ENC_MIC32 0 /* the default */
#define CJ_COJP_KEY_USAGE_K1K2_ENC_MIC64 1
#define CJ_COJP_KEY_USAGE_K1K2_ENC_MIC128 2
#define CJ_COJP_KEY_USAGE_K1K2_MIC32 3
#define CJ_COJP_KEY_USAGE_K1K2_MIC64 4
#define CJ_COJP_KEY_USAGE_K1K2_MIC128 5
#define CJ_COJP_KEY_USAGE_K1_MIC32 6
#define CJ_COJP_KEY_USAGE_K1_MIC64 7
#define CJ_COJP_KEY_USAGE_K1_MIC128 8
#define CJ_COJP_KEY_USAGE_K2_MIC32 9
#define CJ_COJP_KEY_USAGE_K2_MIC64 10
#define CJ_COJP_KEY_USAGE_K2_MIC128 11
#define CJ_COJP_KEY_USAGE_K2_ENC_MIC32 12
#define CJ_COJP_KEY_USAGE_K2_ENC_MIC64 13
#define CJ_COJP_KEY_USAGE_K2_ENC_MIC128 14
#define CJ_COJP_KEY_USAGE_MAX 14

#define CJ_COJP_KEY_LEN 16          /* AES-CCM-128 key (Table 6) */
#define CJ_COJP_MAX_KEY_ID 254      /* 255 is reserved (section 8.4.3.3) */
#define CJ_COJP_SHORT_ID_LEN 2      /* 802.15.4 short address (8.4.4.1) */
#define CJ_COJP_JRC_ADDRESS_LEN 16  /* IPv6 address (section 8.4.2) */

/* A byte-string view. */
typedef struct cj_cojp_bytes {
    const uint8_t *p;
    size_t len;
} cj_cojp_bytes_t;

/* One Unsupported_Parameter (section 8.4.5).  addinfo is the complete
 * CBOR encoding of parameter_addinfo (exactly one item), or NULL/0 for
 * null; a CBOR item is never empty, so addinfo_len 0 always means null. */
typedef struct cj_cojp_param {
    int64_t code;  /* CJ_COJP_CODE_*; other registry values are kept */
    int64_t label; /* CJ_COJP_LABEL_* or any other integer label */
    const uint8_t *addinfo;
    size_t addinfo_len;
} cj_cojp_param_t;

/* Unsupported_Configuration (section 8.4.5): 1..CJ_COJP_MAX_UNSUPPORTED
 * parameters. */
typedef struct cj_cojp_unsupported {
    cj_cojp_param_t params[CJ_COJP_MAX_UNSUPPORTED];
    size_t count;
} cj_cojp_unsupported_t;

/* What a failed Join_Request or Configuration decode asks the engine to
 * report (see the table above).  has_param is false when the failure
 * cannot be tied to one parameter.  param.addinfo, if any, is a view
 * into the decoded input. */
typedef struct cj_cojp_report {
    cj_cojp_param_t param;
    bool has_param;
} cj_cojp_report_t;

/* Join_Request (section 8.4.1). */
typedef struct cj_cojp_join_request {
    uint8_t role;          /* CJ_COJP_ROLE_*; 6LN when absent */
    const uint8_t *network_id; /* mandatory; may be NULL only if len 0 */
    size_t network_id_len;
    bool has_unsupported;  /* label 8 present */
    cj_cojp_unsupported_t unsupported;
} cj_cojp_join_request_t;

/* One Link_Layer_Key (section 8.4.3), sent as a flat CBOR sequence
 * key_id, ?key_usage, key_value, ?key_addinfo.  The key_addinfo length
 * must match the IEEE Std 802.15.4 Key ID Mode implied by key_id
 * (section 8.4.3.3):
 *   key_id 0:     mode 0x00, addinfo required: 2 (short address),
 *                 8 (long address) or 10 (long then short) bytes;
 *   key_id 1-254: mode 0x01 without addinfo (addinfo_len 0), mode 0x02
 *                 with 4 bytes, mode 0x03 with 8 bytes. */
typedef struct cj_cojp_key {
    uint8_t key_id;        /* 0..CJ_COJP_MAX_KEY_ID */
    uint8_t key_usage;     /* CJ_COJP_KEY_USAGE_*; 0 when absent */
    const uint8_t *key;    /* CJ_COJP_KEY_LEN bytes */
    const uint8_t *addinfo; /* key_addinfo, NULL/0 when absent */
    size_t addinfo_len;
} cj_cojp_key_t;

/* Configuration (section 8.4.2).  Zero it (memset) before filling it for
 * the encoder; every parameter is then absent. */
typedef struct cj_cojp_config {
    /* link-layer key set (label 2); key_count 0: absent, since a present
     * set holds at least one key */
    cj_cojp_key_t keys[CJ_COJP_MAX_KEYS];
    size_t key_count;
    /* short identifier (label 3); short_id NULL: absent.  lease_time in
     * hours, positive infinity when !has_lease_time (section 8.4.4). */
    const uint8_t *short_id; /* CJ_COJP_SHORT_ID_LEN bytes */
    bool has_lease_time;
    uint64_t lease_time;
    /* JRC address (label 4); NULL: absent, the JRC shares the 6LBR's
     * address (section 8.4.2) */
    const uint8_t *jrc_address; /* CJ_COJP_JRC_ADDRESS_LEN bytes */
    /* blacklist (label 6); present and empty is meaningful: it clears
     * the previous blacklist */
    bool has_blacklist;
    size_t blacklist_count;
    cj_cojp_bytes_t blacklist[CJ_COJP_MAX_BLACKLIST];
    /* join rate (label 7) in bytes per second; positive infinity when
     * !has_join_rate */
    bool has_join_rate;
    uint64_t join_rate;
    /* Decoder output: bit (1u << label) set for each parameter present in
     * the input but discarded as the RFC requires (invalid short
     * identifier, JRC address not 16 bytes).  Ignored by the encoder. */
    uint8_t ignored;
} cj_cojp_config_t;

/* Encode a Join_Request.  Returns the length (>= 0), CJ_ERR_NOSPACE when
 * cap is too small, or CJ_ERR_INVALID when role is not in Table 3, the
 * network identifier pointer is NULL with a non-zero length, or the
 * unsupported configuration (when has_unsupported) is invalid as for
 * cj_cojp_unsupported_encode(). */
int cj_cojp_join_request_encode(const cj_cojp_join_request_t *jr,
                                uint8_t *buf, size_t cap);

/* Decode a Join_Request from buf[0..len) into *jr.  Returns CJ_OK or one
 * of the errors in the table at the top; why (may be NULL) receives the
 * parameter to report and is cleared (has_param false) on success.
 * Views in *jr and *why live as long as buf. */
int cj_cojp_join_request_decode(const uint8_t *buf, size_t len,
                                cj_cojp_join_request_t *jr,
                                cj_cojp_report_t *why);

/* Encode a Configuration.  Returns the length, CJ_ERR_NOSPACE, or
 * CJ_ERR_INVALID when a table count exceeds its limit, a key breaks the
 * rules of cj_cojp_key_t (key_id, key_usage, NULL key, addinfo length),
 * a blacklist entry is NULL with a non-zero length, or the short
 * identifier is 0xfffe or 0xffff (reserved, section 8.4.4.1). */
int cj_cojp_config_encode(const cj_cojp_config_t *c, uint8_t *buf,
                          size_t cap);

/* Decode a Configuration from buf[0..len) into *c (all fields are
 * written).  Returns CJ_OK or one of the errors in the table at the top;
 * why (may be NULL) receives the parameter to report.  Views live as
 * long as buf. */
int cj_cojp_config_decode(const uint8_t *buf, size_t len,
                          cj_cojp_config_t *c, cj_cojp_report_t *why);

/* Encode an Unsupported_Configuration, e.g. the payload of a Diagnostic
 * Response (section 8.3.2).  Returns the length, CJ_ERR_NOSPACE, or
 * CJ_ERR_INVALID when count is 0 or above CJ_COJP_MAX_UNSUPPORTED, or an
 * addinfo is not exactly one CBOR item of the cojp/cbor.h subset. */
int cj_cojp_unsupported_encode(const cj_cojp_unsupported_t *u, uint8_t *buf,
                               size_t cap);

/* Decode an Unsupported_Configuration from buf[0..len).  Any integer code
 * and label is accepted (the registries may grow).  Returns CJ_OK,
 * CJ_ERR_TRUNCATED, CJ_ERR_TRAILING, CJ_ERR_MALFORMED (CBOR level, as
 * above), CJ_ERR_TYPE (not an array of 3n items, n >= 1, with integer
 * code and label), CJ_ERR_RANGE (code or label outside int64_t) or
 * CJ_ERR_NOSPACE (more than CJ_COJP_MAX_UNSUPPORTED parameters).  Views
 * live as long as buf. */
int cj_cojp_unsupported_decode(const uint8_t *buf, size_t len,
                               cj_cojp_unsupported_t *u);

#endif
