/*
 * cojp/wpan.h - IEEE Std 802.15.4 frames and Information Elements as
 * 6TiSCH uses them: TSCH (RFC 7554), the minimal configuration's
 * Enhanced Beacon (RFC 8180 section 4 and Appendix A), the 6TiSCH
 * Join Info IE (RFC 9032) and link-layer security with the key usages of
 * RFC 9031 Table 6.
 *
 * Frames: IEEE Std 802.15.4-2015 (frame version 2) is encoded and
 * decoded; 2003/2006 frames (versions 0 and 1) are decoded too.  Frame
 * types beacon, data, acknowledgment and MAC command are supported; the
 * others return CJ_ERR_UNSUPPORTED.  A frame is described by a
 * cj_wpan_frame_t: addressing, auxiliary security header, and three views
 * into the frame: the Header IE list, the Payload IE list (both without
 * their termination IEs) and the MAC payload.  The encoder inserts the
 * termination IEs itself (HT1 before Payload IEs, HT2 before a MAC
 * payload that follows Header IEs only, PT between Payload IEs and a MAC
 * payload) and derives the IE Present bit from the lists.  The decoder
 * accepts any termination the standard allows and sets `ignored` when it
 * met something the encoder would not write (a reserved bit set, a
 * termination IE with nothing after it, IE Present without IEs), so a
 * frame whose `ignored` is false re-encodes to the same bytes.
 *
 * Views in a decoded frame, IE or EB point into the caller's buffer and
 * live as long as it is unchanged.  Addresses are copied out: short
 * addresses and PAN IDs as integers, extended addresses as 8 bytes in
 * the usual written order of an EUI-64 (most significant byte first),
 * which is the reverse of the order on the air.
 *
 * IEs: a builder (cj_wpan_enc_t, sticky overflow, NULL buffer = size
 * only) writes IE lists; iterators walk Header IEs, Payload IEs and the
 * nested sub-IEs of the MLME group; content decoders read the TSCH
 * Synchronization, TSCH Timeslot, Channel Hopping, TSCH Slotframe and
 * Link and 6TiSCH Join Info IEs.  cj_wpan_eb_decode() collects all of
 * them from an Enhanced Beacon.
 *
 * Security (IEEE Std 802.15.4-2015 section 9.3, CCM* through the crypto
 * port): cj_wpan_protect() turns a frame built with the Security Enabled
 * bit into a secured frame in place (writes the MIC, encrypts the private
 * part); cj_wpan_unprotect() verifies and decrypts in place and removes
 * the MIC.  What is authenticated and what is encrypted:
 *   open (authenticated, never encrypted): MHR = frame control,
 *     sequence number, addressing, auxiliary security header, and the
 *     Header IEs including their termination IE HT1/HT2;
 *   private (encrypted at levels 5-7, authenticated only at 1-3): the
 *     Payload IEs (including PT) and the MAC payload.
 * This follows the split of 802.15.4-2015 section 9.3.5 (Header IEs are
 * always in the clear, Payload IEs are encrypted with the payload), which
 * is why 6TiSCH sends Enhanced Beacons at MIC-only levels: a pledge must
 * read their Payload IEs before it holds any key (RFC 9032 section 3).
 * The nonce (section 9.3.2.2) is the 8-byte extended source address
 * followed by the 5-byte ASN when the ASN in Nonce bit is set (TSCH), or
 * by the 4-byte frame counter and the security level otherwise, each
 * number most significant byte first.  Levels 0 and 4 (no MIC) are not
 * supported by protect/unprotect.  Frames handed to protect/unprotect
 * carry no FCS; add or check it with cj_wpan_fcs_append/_check.
 *
 * Errors: CJ_ERR_TRUNCATED (frame or IE ends inside a field),
 * CJ_ERR_MALFORMED (reserved addressing mode, an IE length that runs
 * past its container, a termination IE with content, wrong FCS, a field
 * value the standard forbids), CJ_ERR_UNSUPPORTED (frame version 3,
 * frame types 4-7, 2003 security, IE forms outside the subset above,
 * security levels 0/4 in protect/unprotect), CJ_ERR_AUTH (MIC did not
 * verify), CJ_ERR_NOSPACE (output or table too small), CJ_ERR_INVALID
 * (caller input the API forbids), CJ_ERR_RANGE (value too large for its
 * field).
 */
#ifndef COJP_WPAN_H
#define COJP_WPAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cojp/config.h"
#include "cojp/crypto.h"
#include "cojp/err.h"

/* Most slotframes one TSCH Slotframe and Link IE may describe, in
 * slotframes.  RFC 8180 section 4.5.2 recommends one. */
#ifndef CJ_WPAN_MAX_SLOTFRAMES
#define CJ_WPAN_MAX_SLOTFRAMES 2
#endif

/* Most links per slotframe in a TSCH Slotframe and Link IE, in links.
 * The minimal configuration advertises one cell (RFC 8180 section 4.1);
 * a few more leave room for extra shared cells. */
#ifndef CJ_WPAN_MAX_LINKS
#define CJ_WPAN_MAX_LINKS 8
#endif

/* Frame types (frame control bits 0-2). */
#define CJ_WPAN_TYPE_BEACON 0
#define CJ_WPAN_TYPE_DATA 1
#define CJ_WPAN_TYPE_ACK 2
#define CJ_WPAN_TYPE_CMD 3

/* Frame versions (frame control bits 12-13). */
#define CJ_WPAN_VERSION_2003 0
#define CJ_WPAN_VERSION_2006 1
#define CJ_WPAN_VERSION_2015 2

/* Addressing modes (frame control bits 10-11 and 14-15); 1 is
 * reserved. */
#define CJ_WPAN_ADDR_NONE 0
#define CJ_WPAN_ADDR_SHORT 2
#define CJ_WPAN_ADDR_EXT 3

#define CJ_WPAN_BROADCAST 0xffff /* short broadcast address and PAN ID */
#define CJ_WPAN_EXT_LEN 8
#define CJ_WPAN_FCS_LEN 2
#define CJ_WPAN_MAX_ASN ((UINT64_C(1) << 40) - 1)

/* Security levels (802.15.4-2015 Table 9-6). */
#define CJ_WPAN_SEC_NONE 0
#define CJ_WPAN_SEC_MIC32 1
#define CJ_WPAN_SEC_MIC64 2
#define CJ_WPAN_SEC_MIC128 3
#define CJ_WPAN_SEC_ENC 4
#define CJ_WPAN_SEC_ENC_MIC32 5
#define CJ_WPAN_SEC_ENC_MIC64 6
#define CJ_WPAN_SEC_ENC_MIC128 7

/* Header IE element IDs. */
#define CJ_WPAN_HIE_TIME_CORRECTION 0x1e /* ACK/NACK time correction */
#define CJ_WPAN_HIE_HT1 0x7e /* termination: Payload IEs follow */
#define CJ_WPAN_HIE_HT2 0x7f /* termination: MAC payload follows */

/* Payload IE group IDs. */
#define CJ_WPAN_PIE_ESDU 0x0
#define CJ_WPAN_PIE_MLME 0x1 /* nested sub-IEs */
#define CJ_WPAN_PIE_IETF 0x5 /* RFC 8137 */
#define CJ_WPAN_PIE_PT 0xf   /* payload termination */

/* MLME sub-IE IDs: short form (7-bit ID, content up to 255 bytes) ... */
#define CJ_WPAN_SUB_TSCH_SYNC 0x1a
#define CJ_WPAN_SUB_TSCH_SLOTFRAME 0x1b
#define CJ_WPAN_SUB_TSCH_TIMESLOT 0x1c
/* ... and long form (4-bit ID, content up to 2047 bytes). */
#define CJ_WPAN_SUB_CHANNEL_HOPPING 0x9

/* IETF IE subtype (RFC 9032 section 5). */
#define CJ_WPAN_IETF_JOIN_INFO 2

/* Link options of the TSCH Slotframe and Link IE. */
#define CJ_WPAN_LINK_TX 0x01
#define CJ_WPAN_LINK_RX 0x02
#define CJ_WPAN_LINK_SHARED 0x04
#define CJ_WPAN_LINK_TIMEKEEPING 0x08

/* An address; which member counts depends on the addressing mode. */
typedef struct cj_wpan_addr {
    uint16_t short_addr;
    uint8_t ext[CJ_WPAN_EXT_LEN]; /* EUI-64, most significant byte first */
} cj_wpan_addr_t;

/* Auxiliary security header (802.15.4-2015 section 9.4). */
typedef struct cj_wpan_sec {
    uint8_t level;        /* CJ_WPAN_SEC_* */
    uint8_t key_id_mode;  /* 0..3 */
    bool fc_suppressed;   /* Frame Counter Suppression: no counter sent */
    bool asn_in_nonce;    /* nonce carries the ASN (TSCH) */
    uint32_t frame_counter;  /* when !fc_suppressed */
    uint8_t key_source[8];   /* mode 2: first 4 bytes; mode 3: all 8, as
                                on the air */
    uint8_t key_index;       /* modes 1-3 */
} cj_wpan_sec_t;

/* One frame.  For the encoder, fill the "in" fields; "out" fields are
 * decoder results that the encoder ignores. */
typedef struct cj_wpan_frame {
    uint8_t type;          /* in: CJ_WPAN_TYPE_* */
    uint8_t version;       /* in: CJ_WPAN_VERSION_*; encoder: 2015 only */
    bool security;         /* in: Security Enabled, sec is meaningful */
    bool frame_pending;    /* in */
    bool ack_request;      /* in */
    bool panid_comp;       /* in: PAN ID Compression bit (see table in
                              wpan.c and cj_wpan_pan_ids()) */
    bool seq_suppressed;   /* in: Sequence Number Suppression */
    bool ie_present;       /* out: IE Present (encoder derives it) */
    uint8_t seq;           /* in, when !seq_suppressed */
    uint8_t dst_mode;      /* in: CJ_WPAN_ADDR_* */
    uint8_t src_mode;      /* in */
    bool has_dst_pan;      /* out: derived from modes and panid_comp */
    bool has_src_pan;      /* out */
    uint16_t dst_pan;      /* in, when the table makes it present */
    uint16_t src_pan;      /* in, when the table makes it present */
    cj_wpan_addr_t dst;    /* in */
    cj_wpan_addr_t src;    /* in */
    cj_wpan_sec_t sec;     /* in, when security */

    /* Header IE list without the termination IE. */
    const uint8_t *hie;
    size_t hie_len;
    /* Payload IE list without PT.  Decoder: NULL/0 while `encrypted`. */
    const uint8_t *pie;
    size_t pie_len;
    /* MAC payload.  Decoder: while `encrypted`, the whole private part
     * (Payload IEs and MAC payload, still ciphertext). */
    const uint8_t *payload;
    size_t payload_len;

    const uint8_t *mic;    /* out: the MIC, NULL/0 when none */
    size_t mic_len;
    size_t open_len;       /* out: bytes of the open part (MHR + Header
                              IEs + termination), i.e. the offset of the
                              private part */
    bool encrypted;        /* out: level 5-7 frame not yet unprotected */
    bool ignored;          /* out: decoder ignored something the encoder
                              would have written differently */
} cj_wpan_frame_t;

/* ---- frames ------------------------------------------------------------ */

/* Flags of cj_wpan_frame_decode(). */
#define CJ_WPAN_DEC_FCS 0x1 /* buf ends with an FCS; check and exclude it */
#define CJ_WPAN_DEC_UNPROTECTED 0x2 /* buf is the output of
    cj_wpan_unprotect() (or of the encoder before cj_wpan_protect()):
    no MIC, private part in plaintext */

/* Decode buf[0..len) into *f.  With CJ_WPAN_DEC_FCS the last two bytes
 * must be the FCS (CJ_ERR_MALFORMED when wrong).  A secured frame is
 * expected to end with its MIC unless CJ_WPAN_DEC_UNPROTECTED is given;
 * a level 5-7 frame then decodes with `encrypted` set and its Payload
 * IEs unparsed.  The Header and Payload IE lists are checked to be a
 * sequence of whole IEs (their content is not interpreted).  Returns
 * CJ_OK or an error listed at the top of this file; *f is unspecified on
 * failure. */
int cj_wpan_frame_decode(const uint8_t *buf, size_t len, unsigned flags,
                         cj_wpan_frame_t *f);

/* Encode *f (frame version 2015 only) into buf[0..cap): MHR, auxiliary
 * security header, Header IEs, termination IEs, Payload IEs, MAC
 * payload; no MIC and no FCS.  buf NULL computes the length.  Returns the
 * length, CJ_ERR_NOSPACE, or CJ_ERR_INVALID for a frame the decoder would
 * reject (reserved mode or type, a sequence number suppressed on a frame
 * version that has none, key id mode > 3, level > 7).  The IE lists are
 * copied as given; build them with cj_wpan_enc_t. */
int cj_wpan_frame_encode(const cj_wpan_frame_t *f, uint8_t *buf,
                         size_t cap);

/* Which PAN ID fields a frame carries given its version, addressing modes
 * and PAN ID Compression bit (802.15.4-2015 Table 7-2 for version 2,
 * section 7.2.1.5 of the 2006 edition for versions 0/1).  Returns CJ_OK,
 * or CJ_ERR_MALFORMED when the combination is not allowed (a reserved
 * addressing mode, or a 2006 frame with PAN ID Compression without both
 * addresses). */
int cj_wpan_pan_ids(uint8_t version, uint8_t dst_mode, uint8_t src_mode,
                    bool panid_comp, bool *has_dst_pan, bool *has_src_pan);

/* The CRC-16 of 802.15.4 section 7.2.10 (ITU-T polynomial
 * x^16 + x^12 + x^5 + 1, initial value 0, bits taken least significant
 * first; known elsewhere as CRC-16/KERMIT).  The FCS is this value sent
 * least significant byte first. */
uint16_t cj_wpan_crc16(const uint8_t *buf, size_t len);

/* Append the FCS of buf[0..len) at buf[len..len+2).  Returns len + 2 or
 * CJ_ERR_NOSPACE when cap < len + 2. */
int cj_wpan_fcs_append(uint8_t *buf, size_t len, size_t cap);

/* Check the FCS in the last two bytes of buf[0..len).  Returns len - 2,
 * CJ_ERR_TRUNCATED when len < 2, CJ_ERR_MALFORMED when it does not
 * match. */
int cj_wpan_fcs_check(const uint8_t *buf, size_t len);

/* ---- security ---------------------------------------------------------- */

/* MIC length of a security level: 0, 4, 8 or 16 bytes. */
size_t cj_wpan_mic_len(uint8_t level);

/* Secure buf[0..len), an encoded frame (no MIC, no FCS) with Security
 * Enabled at level 1-3 or 5-7, in place: encrypt the private part at
 * levels 5-7, then append the MIC; the result is len + MIC length bytes
 * (<= cap).  src_ext is the originator's extended address (most
 * significant byte first) and asn the ASN of the transmission slot (used
 * when the ASN in Nonce bit is set, else the frame counter is).  Returns
 * the new length, CJ_ERR_NOSPACE, CJ_ERR_INVALID (frame not secured or
 * asn > CJ_WPAN_MAX_ASN), CJ_ERR_UNSUPPORTED (level 0 or 4, or a
 * suppressed frame counter without the ASN in Nonce bit: no nonce), a
 * decode error for a frame that does not parse, or CJ_ERR_CRYPTO. */
int cj_wpan_protect(uint8_t *buf, size_t len, size_t cap,
                    const uint8_t key[CJ_AES_KEY_LEN],
                    const uint8_t src_ext[CJ_WPAN_EXT_LEN], uint64_t asn);

/* Verify and decrypt buf[0..len), a received secured frame without FCS,
 * in place.  Returns the length without the MIC, which
 * cj_wpan_frame_decode() with CJ_WPAN_DEC_UNPROTECTED then parses.
 * CJ_ERR_AUTH when the MIC does not verify (the private part is then
 * wiped: nothing unauthenticated is released); CJ_ERR_TRUNCATED when the
 * frame is too short for its MIC; CJ_ERR_INVALID when the frame is not
 * secured or asn > CJ_WPAN_MAX_ASN; CJ_ERR_UNSUPPORTED as for protect;
 * other decode errors for a malformed open part (only the open part is
 * parsed before the MIC is checked). */
int cj_wpan_unprotect(uint8_t *buf, size_t len,
                      const uint8_t key[CJ_AES_KEY_LEN],
                      const uint8_t src_ext[CJ_WPAN_EXT_LEN], uint64_t asn);

/* What a link-layer key of a given RFC 9031 key usage (Table 6) may
 * protect.  K1 roles cover Enhanced Beacons, K2 roles cover data and
 * acknowledgment frames; MAC command frames appear in no row, so no
 * usage allows them. */
typedef struct cj_wpan_key_policy {
    uint8_t types;      /* bit (1 << CJ_WPAN_TYPE_*) per allowed type */
    uint8_t beacon_level; /* security level for beacons, 0: not allowed */
    uint8_t data_level;   /* security level for data and ACK, 0: not
                             allowed */
} cj_wpan_key_policy_t;

/* Fill *p for key_usage (0..14, cojp.h CJ_COJP_KEY_USAGE_*).  Returns
 * CJ_OK or CJ_ERR_RANGE for an unknown usage. */
int cj_wpan_key_policy(unsigned key_usage, cj_wpan_key_policy_t *p);

/* ---- IE builder ---------------------------------------------------------- */

typedef struct cj_wpan_enc {
    uint8_t *buf;  /* NULL: size-only dry run */
    size_t cap;
    size_t len;
    size_t mlme;   /* where the open MLME IE's content starts, 0: none */
    int err;       /* first error, sticky */
} cj_wpan_enc_t;

/* Start writing an IE list into buf[0..cap) (buf may be NULL). */
void cj_wpan_enc_init(cj_wpan_enc_t *e, uint8_t *buf, size_t cap);

/* A Header IE with content[0..len), len <= 127 (else CJ_ERR_RANGE).
 * Termination IEs are the frame encoder's job. */
void cj_wpan_put_hie(cj_wpan_enc_t *e, uint8_t element_id,
                     const uint8_t *content, size_t len);

/* A Payload IE of group 0..14 with content[0..len), len <= 2047. */
void cj_wpan_put_pie(cj_wpan_enc_t *e, uint8_t group,
                     const uint8_t *content, size_t len);

/* Open an MLME Payload IE; sub-IEs follow until cj_wpan_mlme_end(), which
 * writes its length.  MLME IEs do not nest (CJ_ERR_INVALID). */
void cj_wpan_mlme_begin(cj_wpan_enc_t *e);
void cj_wpan_mlme_end(cj_wpan_enc_t *e);

/* An MLME sub-IE (inside begin/end, else CJ_ERR_INVALID): long form when
 * is_long (sub_id 0..15, len <= 2047), short form otherwise (sub_id
 * 0..127, len <= 255). */
void cj_wpan_put_sub_ie(cj_wpan_enc_t *e, bool is_long, uint8_t sub_id,
                        const uint8_t *content, size_t len);

/* TSCH Synchronization IE: 5-byte ASN (little endian) and join metric. */
void cj_wpan_put_sync(cj_wpan_enc_t *e, uint64_t asn, uint8_t join_metric);
/* TSCH Timeslot IE, timeslot-ID-only form. */
void cj_wpan_put_timeslot(cj_wpan_enc_t *e, uint8_t timeslot_id);
/* Channel Hopping IE, hopping-sequence-ID-only form. */
void cj_wpan_put_hopping(cj_wpan_enc_t *e, uint8_t sequence_id);

typedef struct cj_wpan_link {
    uint16_t timeslot;
    uint16_t channel_offset;
    uint8_t options; /* CJ_WPAN_LINK_* */
} cj_wpan_link_t;

typedef struct cj_wpan_slotframe {
    uint8_t handle;
    uint16_t size; /* in timeslots */
    size_t link_count;
    cj_wpan_link_t links[CJ_WPAN_MAX_LINKS];
} cj_wpan_slotframe_t;

/* TSCH Slotframe and Link IE with sf[0..count), count <= 255. */
void cj_wpan_put_slotframes(cj_wpan_enc_t *e, const cj_wpan_slotframe_t *sf,
                            size_t count);

/* 6TiSCH Join Info (RFC 9032 section 2, Figure 1).  The figure's first
 * word is read literally, most significant bit first as IETF figures
 * are: subtype (8 bits), R, P, reserved (3 bits), proxy priority
 * (7 bits), rank priority (12 bits); then PAN priority (8 bits), the
 * Join Proxy Interface ID (8 bytes, present iff P) and the network ID
 * (the rest of the IE, 0..16 bytes). */
typedef struct cj_wpan_join_info {
    bool router;           /* R: acts as router for SLAAC hosts */
    uint8_t proxy_prio;    /* 0x00 most willing .. 0x7f never a JP */
    uint16_t rank_prio;    /* 0..0xfff */
    uint8_t pan_prio;
    const uint8_t *jp_iid; /* P: 8-byte IID of the JP's fe80::/64
                              address, NULL when absent */
    const uint8_t *network_id; /* may be NULL when network_id_len is 0 */
    size_t network_id_len;     /* 0..16 */
} cj_wpan_join_info_t;

/* The IETF Payload IE (group 0x5, RFC 8137) holding one 6TiSCH Join Info
 * subtype.  CJ_ERR_RANGE when a field exceeds its width. */
void cj_wpan_put_join_info(cj_wpan_enc_t *e, const cj_wpan_join_info_t *ji);

/* Length written (or needed), or the first error. */
int cj_wpan_enc_finish(const cj_wpan_enc_t *e);

/* ---- IE decoders ------------------------------------------------------- */

/* One IE seen by an iterator.  id is the element ID (Header IE), the
 * group ID (Payload IE) or the sub-ID (MLME sub-IE). */
typedef struct cj_wpan_ie {
    uint8_t id;
    bool is_long; /* MLME sub-IE in long form */
    const uint8_t *content;
    size_t len;
} cj_wpan_ie_t;

typedef struct cj_wpan_ie_iter {
    const uint8_t *p;
    size_t len;
    size_t off;
} cj_wpan_ie_iter_t;

/* Iterate over list[0..len): a Header IE list, a Payload IE list or the
 * content of an MLME Payload IE.  Each next call returns 1 with *ie
 * filled, 0 at the end, CJ_ERR_TRUNCATED when an IE runs past the list.
 * The Header and Payload iterators stop (return 0) at a termination
 * IE. */
void cj_wpan_ie_iter_init(cj_wpan_ie_iter_t *it, const uint8_t *list,
                          size_t len);
int cj_wpan_hie_next(cj_wpan_ie_iter_t *it, cj_wpan_ie_t *ie);
int cj_wpan_pie_next(cj_wpan_ie_iter_t *it, cj_wpan_ie_t *ie);
int cj_wpan_sub_ie_next(cj_wpan_ie_iter_t *it, cj_wpan_ie_t *ie);

/* Content decoders: each takes the content of one IE (cj_wpan_ie_t) and
 * returns CJ_OK, CJ_ERR_TRUNCATED/CJ_ERR_MALFORMED, or
 * CJ_ERR_UNSUPPORTED for a form outside the subset (full timeslot
 * template, full hopping sequence). */
int cj_wpan_sync_decode(const uint8_t *c, size_t len, uint64_t *asn,
                        uint8_t *join_metric);
int cj_wpan_timeslot_decode(const uint8_t *c, size_t len,
                            uint8_t *timeslot_id);
int cj_wpan_hopping_decode(const uint8_t *c, size_t len,
                           uint8_t *sequence_id);
/* Slotframes into sf[0..max); *count set.  CJ_ERR_NOSPACE when the IE
 * has more than max slotframes or one has more than CJ_WPAN_MAX_LINKS
 * links. */
int cj_wpan_slotframes_decode(const uint8_t *c, size_t len,
                              cj_wpan_slotframe_t *sf, size_t max,
                              size_t *count);
/* Content of an IETF IE whose subtype byte is 2 (the subtype byte
 * included).  Views into c.  Reserved bits are ignored. */
int cj_wpan_join_info_decode(const uint8_t *c, size_t len,
                             cj_wpan_join_info_t *ji);

/* What a 6TiSCH Enhanced Beacon announces (RFC 8180 section 4.5.2 and
 * RFC 9032).  Each has_* tells whether the IE was present. */
typedef struct cj_wpan_eb {
    bool has_sync;
    uint64_t asn;
    uint8_t join_metric;
    bool has_timeslot;
    uint8_t timeslot_id;
    bool has_hopping;
    uint8_t hopping_id;
    bool has_slotframes;
    size_t slotframe_count;
    cj_wpan_slotframe_t slotframes[CJ_WPAN_MAX_SLOTFRAMES];
    bool has_join_info;
    cj_wpan_join_info_t join_info;
} cj_wpan_eb_t;

/* Collect the IEs above from the Payload IEs of a decoded frame (any
 * frame type; unknown IEs and sub-IEs are skipped).  CJ_ERR_INVALID when
 * f is still `encrypted`; CJ_ERR_MALFORMED when one of these IEs appears
 * twice; otherwise the content decoders' errors. */
int cj_wpan_eb_decode(const cj_wpan_frame_t *f, cj_wpan_eb_t *eb);

/* Write the IEs *eb marks present: one MLME Payload IE with Sync,
 * Timeslot, Channel Hopping and Slotframe and Link sub-IEs in that order
 * (RFC 8180 Appendix A.1), then the Join Info IETF IE. */
void cj_wpan_put_eb(cj_wpan_enc_t *e, const cj_wpan_eb_t *eb);

#endif
