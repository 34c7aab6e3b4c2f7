/*
 * IEEE Std 802.15.4 frames, Information Elements and CCM* security for
 * 6TiSCH.  See cojp/wpan.h for the API.  Section numbers below are those
 * of IEEE Std 802.15.4-2015 unless an RFC is named.
 *
 * Multi-byte fields are little endian on the air (section 7.2), except
 * where a figure of an RFC says otherwise (RFC 9032 Join Info).
 */
#include <string.h>

#include "cojp/crypto.h"
#include "cojp/wpan.h"

/* Frame control bits (section 7.2.1). */
#define FC_SECURITY 0x0008u
#define FC_PENDING 0x0010u
#define FC_AR 0x0020u
#define FC_PANID_COMP 0x0040u
#define FC_RESERVED 0x0080u
#define FC_SNS 0x0100u
#define FC_IE_PRESENT 0x0200u

/* Security control bits (section 9.4.2). */
#define SC_FC_SUPPRESS 0x20u
#define SC_ASN_NONCE 0x40u
#define SC_RESERVED 0x80u

/* IE descriptors (section 7.4).  Bit 15 is the type: 0 Header IE or
 * short sub-IE, 1 Payload IE or long sub-IE. */
#define IE_TYPE 0x8000u
#define HIE_MAX_LEN 0x7fu
#define PIE_MAX_LEN 0x7ffu
#define SUB_SHORT_MAX_LEN 0xffu

/* Internal decode flag: stop after the open part (used before the MIC
 * has been verified, so nothing unauthenticated is interpreted). */
#define DEC_OPEN_ONLY 0x100u

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

/* ---- PAN ID compression --------------------------------------------------
 *
 * Frame version 2 (Table 7-2).  "-" = absent, "x" = present.
 *
 *   dst addr   src addr   PAN ID comp | dst PAN  src PAN
 *   none       none       0           |   -        -
 *   none       none       1           |   x        -
 *   present    none       0           |   x        -
 *   present    none       1           |   -        -
 *   none       present    0           |   -        x
 *   none       present    1           |   -        -
 *   extended   extended   0           |   x        -
 *   extended   extended   1           |   -        -
 *   short      short      0           |   x        x
 *   short      extended   0           |   x        x
 *   extended   short      0           |   x        x
 *   short      short      1           |   x        -
 *   short      extended   1           |   x        -
 *   extended   short      1           |   x        -
 *
 * Frame versions 0 and 1 (2006 section 7.2.1.1.5): each PAN ID is present
 * with its address, except that the source PAN ID is elided when the bit
 * is set, which is only allowed when both addresses are present.
 */
int cj_wpan_pan_ids(uint8_t version, uint8_t dst_mode, uint8_t src_mode,
                    bool panid_comp, bool *has_dst_pan, bool *has_src_pan)
{
    bool d = dst_mode != CJ_WPAN_ADDR_NONE, s = src_mode != CJ_WPAN_ADDR_NONE;

    if (dst_mode == 1 || src_mode == 1 || dst_mode > 3 || src_mode > 3)
        return CJ_ERR_MALFORMED;
    if (version >= CJ_WPAN_VERSION_2015) {
        if (d && s && dst_mode == CJ_WPAN_ADDR_EXT &&
            src_mode == CJ_WPAN_ADDR_EXT) {
            *has_dst_pan = !panid_comp;
            *has_src_pan = false;
        } else if (d && s) {
            *has_dst_pan = true;
            *has_src_pan = !panid_comp;
        } else if (d) {
            *has_dst_pan = !panid_comp;
            *has_src_pan = false;
        } else if (s) {
            *has_dst_pan = false;
            *has_src_pan = !panid_comp;
        } else {
            *has_dst_pan = panid_comp;
            *has_src_pan = false;
        }
        return CJ_OK;
    }
    if (panid_comp && !(d && s))
        return CJ_ERR_MALFORMED;
    *has_dst_pan = d;
    *has_src_pan = s && !panid_comp;
    return CJ_OK;
}

/* ---- FCS (section 7.2.10) --------------------------------------------- */

uint16_t cj_wpan_crc16(const uint8_t *buf, size_t len)
{
    /* The standard's shift register takes bits least significant first,
     * which is the reflected form: polynomial 0x1021 reversed = 0x8408. */
    uint16_t crc = 0;
    for (size_t i = 0; i < len; i++) {
        crc ^= buf[i];
        for (int b = 0; b < 8; b++)
            crc = (uint16_t)((crc & 1u) ? (crc >> 1) ^ 0x8408u : crc >> 1);
    }
    return crc;
}

int cj_wpan_fcs_append(uint8_t *buf, size_t len, size_t cap)
{
    uint16_t crc;
    if (cap < CJ_WPAN_FCS_LEN || len > cap - CJ_WPAN_FCS_LEN)
        return CJ_ERR_NOSPACE;
    crc = cj_wpan_crc16(buf, len);
    buf[len] = (uint8_t)crc;
    buf[len + 1] = (uint8_t)(crc >> 8);
    return (int)(len + CJ_WPAN_FCS_LEN);
}

int cj_wpan_fcs_check(const uint8_t *buf, size_t len)
{
    size_t n;
    if (len < CJ_WPAN_FCS_LEN)
        return CJ_ERR_TRUNCATED;
    n = len - CJ_WPAN_FCS_LEN;
    if (cj_wpan_crc16(buf, n) != rd16(buf + n))
        return CJ_ERR_MALFORMED;
    return (int)n;
}

/* ---- frame decoder ------------------------------------------------------ */

size_t cj_wpan_mic_len(uint8_t level)
{
    /* Table 9-6: the low two bits select MIC-0/32/64/128. */
    static const uint8_t mic[4] = {0, 4, 8, 16};
    return mic[level & 3u];
}

static void rd_ext(const uint8_t *p, uint8_t ext[CJ_WPAN_EXT_LEN])
{
    for (int i = 0; i < CJ_WPAN_EXT_LEN; i++)
        ext[i] = p[CJ_WPAN_EXT_LEN - 1 - i];
}

/* Reads an address of the given mode at buf[*off]. */
static int rd_addr(const uint8_t *buf, size_t end, size_t *off, uint8_t mode,
                   cj_wpan_addr_t *a)
{
    if (mode == CJ_WPAN_ADDR_SHORT) {
        if (end - *off < 2)
            return CJ_ERR_TRUNCATED;
        a->short_addr = rd16(buf + *off);
        *off += 2;
    } else if (mode == CJ_WPAN_ADDR_EXT) {
        if (end - *off < CJ_WPAN_EXT_LEN)
            return CJ_ERR_TRUNCATED;
        rd_ext(buf + *off, a->ext);
        *off += CJ_WPAN_EXT_LEN;
    }
    return CJ_OK;
}

static int rd_pan(const uint8_t *buf, size_t end, size_t *off, bool present,
                  uint16_t *pan)
{
    if (!present)
        return CJ_OK;
    if (end - *off < 2)
        return CJ_ERR_TRUNCATED;
    *pan = rd16(buf + *off);
    *off += 2;
    return CJ_OK;
}

/* Auxiliary security header (section 9.4). */
static int rd_sec(const uint8_t *buf, size_t end, size_t *off,
                  cj_wpan_frame_t *f)
{
    static const uint8_t src_len[4] = {0, 0, 4, 8};
    cj_wpan_sec_t *s = &f->sec;
    uint8_t sc;

    if (end - *off < 1)
        return CJ_ERR_TRUNCATED;
    sc = buf[(*off)++];
    if (sc & SC_RESERVED)
        f->ignored = true;
    if (f->version < CJ_WPAN_VERSION_2015 &&
        (sc & (SC_FC_SUPPRESS | SC_ASN_NONCE))) {
        /* Reserved in the 2006 edition. */
        f->ignored = true;
        sc &= (uint8_t)~(SC_FC_SUPPRESS | SC_ASN_NONCE);
    }
    s->level = sc & 7u;
    s->key_id_mode = (sc >> 3) & 3u;
    s->fc_suppressed = (sc & SC_FC_SUPPRESS) != 0;
    s->asn_in_nonce = (sc & SC_ASN_NONCE) != 0;
    if (!s->fc_suppressed) {
        if (end - *off < 4)
            return CJ_ERR_TRUNCATED;
        s->frame_counter = (uint32_t)buf[*off] |
                           ((uint32_t)buf[*off + 1] << 8) |
                           ((uint32_t)buf[*off + 2] << 16) |
                           ((uint32_t)buf[*off + 3] << 24);
        *off += 4;
    }
    if (s->key_id_mode != 0) {
        size_t n = src_len[s->key_id_mode];
        if (end - *off < n + 1)
            return CJ_ERR_TRUNCATED;
        memcpy(s->key_source, buf + *off, n);
        s->key_index = buf[*off + n];
        *off += n + 1;
    }
    return CJ_OK;
}

static int parse(const uint8_t *buf, size_t len, unsigned flags,
                 cj_wpan_frame_t *f)
{
    size_t off = 2, end, hie_start;
    unsigned fc;
    uint8_t term = 0;
    bool pt = false;
    int rc;

    memset(f, 0, sizeof *f);
    if (flags & CJ_WPAN_DEC_FCS) {
        rc = cj_wpan_fcs_check(buf, len);
        if (rc < 0)
            return rc;
        len = (size_t)rc;
    }
    if (len < 2)
        return CJ_ERR_TRUNCATED;
    fc = rd16(buf);
    f->type = fc & 7u;
    f->version = (fc >> 12) & 3u;
    if (f->type > CJ_WPAN_TYPE_CMD || f->version > CJ_WPAN_VERSION_2015)
        return CJ_ERR_UNSUPPORTED;
    f->security = (fc & FC_SECURITY) != 0;
    f->frame_pending = (fc & FC_PENDING) != 0;
    f->ack_request = (fc & FC_AR) != 0;
    f->panid_comp = (fc & FC_PANID_COMP) != 0;
    f->seq_suppressed = (fc & FC_SNS) != 0;
    f->ie_present = (fc & FC_IE_PRESENT) != 0;
    f->dst_mode = (fc >> 10) & 3u;
    f->src_mode = (fc >> 14) & 3u;
    if (fc & FC_RESERVED)
        f->ignored = true;
    if (f->version < CJ_WPAN_VERSION_2015 &&
        (f->seq_suppressed || f->ie_present)) {
        /* Both bits are reserved before the 2015 edition. */
        f->ignored = true;
        f->seq_suppressed = f->ie_present = false;
    }
    /* 2003 security used a different auxiliary header. */
    if (f->security && f->version == CJ_WPAN_VERSION_2003)
        return CJ_ERR_UNSUPPORTED;
    rc = cj_wpan_pan_ids(f->version, f->dst_mode, f->src_mode, f->panid_comp,
                         &f->has_dst_pan, &f->has_src_pan);
    if (rc < 0)
        return rc;

    if (!f->seq_suppressed) {
        if (len - off < 1)
            return CJ_ERR_TRUNCATED;
        f->seq = buf[off++];
    }
    /* Addressing fields in the order of Figure 7-2. */
    if ((rc = rd_pan(buf, len, &off, f->has_dst_pan, &f->dst_pan)) < 0 ||
        (rc = rd_addr(buf, len, &off, f->dst_mode, &f->dst)) < 0 ||
        (rc = rd_pan(buf, len, &off, f->has_src_pan, &f->src_pan)) < 0 ||
        (rc = rd_addr(buf, len, &off, f->src_mode, &f->src)) < 0)
        return rc;
    if (f->security && (rc = rd_sec(buf, len, &off, f)) < 0)
        return rc;

    if (f->security && !(flags & CJ_WPAN_DEC_UNPROTECTED))
        f->mic_len = cj_wpan_mic_len(f->sec.level);
    if (len - off < f->mic_len)
        return CJ_ERR_TRUNCATED;
    end = len - f->mic_len;
    f->mic = f->mic_len ? buf + end : NULL;
    f->encrypted = f->security && (f->sec.level & 4u) &&
                   !(flags & CJ_WPAN_DEC_UNPROTECTED);

    /* Header IEs (section 7.4.2): always in the open part.  The list ends
     * at HT1 (Payload IEs follow), HT2 (MAC payload follows) or at the
     * end of the frame. */
    hie_start = off;
    if (f->ie_present) {
        while (off < end) {
            unsigned d, id, l;
            if (end - off < 2)
                return CJ_ERR_TRUNCATED;
            d = rd16(buf + off);
            if (d & IE_TYPE)
                return CJ_ERR_MALFORMED; /* Payload IE without HT1 */
            id = (d >> 7) & 0xffu;
            l = d & HIE_MAX_LEN;
            if (id == CJ_WPAN_HIE_HT1 || id == CJ_WPAN_HIE_HT2) {
                if (l != 0)
                    return CJ_ERR_MALFORMED;
                term = (uint8_t)id;
                break;
            }
            if (end - off - 2 < l)
                return CJ_ERR_TRUNCATED;
            off += 2 + l;
        }
        f->hie = buf + hie_start;
        f->hie_len = off - hie_start;
        if (term)
            off += 2;
    }
    f->open_len = off;
    if (flags & DEC_OPEN_ONLY)
        return CJ_OK;

    if (f->encrypted) {
        f->payload = buf + off;
        f->payload_len = end - off;
    } else {
        if (term == CJ_WPAN_HIE_HT1) {
            /* Payload IEs (section 7.4.3), ended by PT or the frame. */
            size_t pie_start = off;
            while (off < end) {
                unsigned d, l;
                if (end - off < 2)
                    return CJ_ERR_TRUNCATED;
                d = rd16(buf + off);
                if (!(d & IE_TYPE))
                    return CJ_ERR_MALFORMED; /* Header IE after HT1 */
                l = d & PIE_MAX_LEN;
                if (((d >> 11) & 0xfu) == CJ_WPAN_PIE_PT) {
                    if (l != 0)
                        return CJ_ERR_MALFORMED;
                    pt = true;
                    break;
                }
                if (end - off - 2 < l)
                    return CJ_ERR_TRUNCATED;
                off += 2 + l;
            }
            f->pie = buf + pie_start;
            f->pie_len = off - pie_start;
            if (pt)
                off += 2;
        }
        f->payload = buf + off;
        f->payload_len = end - off;
        /* Termination IEs the encoder would not have written. */
        if ((term == CJ_WPAN_HIE_HT1 && f->pie_len == 0) ||
            (pt && f->payload_len == 0))
            f->ignored = true;
    }
    if ((term == CJ_WPAN_HIE_HT2 &&
         (f->hie_len == 0 || f->payload_len == 0)) ||
        (f->ie_present && f->hie_len == 0 && term == 0))
        f->ignored = true;
    return CJ_OK;
}

int cj_wpan_frame_decode(const uint8_t *buf, size_t len, unsigned flags,
                         cj_wpan_frame_t *f)
{
    if (buf == NULL && len > 0)
        return CJ_ERR_INVALID;
    return parse(buf, len, flags & (CJ_WPAN_DEC_FCS | CJ_WPAN_DEC_UNPROTECTED),
                 f);
}

/* ---- IE builder ---------------------------------------------------------- */

void cj_wpan_enc_init(cj_wpan_enc_t *e, uint8_t *buf, size_t cap)
{
    e->buf = buf;
    e->cap = buf ? cap : 0;
    e->len = 0;
    e->mlme = 0;
    e->err = CJ_OK;
}

static void fail(cj_wpan_enc_t *e, int err)
{
    if (e->err == CJ_OK)
        e->err = err;
}

static void put(cj_wpan_enc_t *e, const uint8_t *p, size_t n)
{
    if (e->buf && e->err == CJ_OK) {
        if (n > e->cap - e->len)
            fail(e, CJ_ERR_NOSPACE);
        else if (n)
            memcpy(e->buf + e->len, p, n);
    }
    e->len += n;
}

static void put8(cj_wpan_enc_t *e, unsigned v)
{
    uint8_t b = (uint8_t)v;
    put(e, &b, 1);
}

static void put16(cj_wpan_enc_t *e, unsigned v)
{
    uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    put(e, b, 2);
}

static bool content_ok(cj_wpan_enc_t *e, const uint8_t *c, size_t len,
                       size_t max)
{
    if (c == NULL && len > 0) {
        fail(e, CJ_ERR_INVALID);
        return false;
    }
    if (len > max) {
        fail(e, CJ_ERR_RANGE);
        return false;
    }
    return true;
}

void cj_wpan_put_hie(cj_wpan_enc_t *e, uint8_t element_id,
                     const uint8_t *content, size_t len)
{
    if (e->mlme || element_id == CJ_WPAN_HIE_HT1 ||
        element_id == CJ_WPAN_HIE_HT2) {
        fail(e, CJ_ERR_INVALID);
        return;
    }
    if (!content_ok(e, content, len, HIE_MAX_LEN))
        return;
    put16(e, (unsigned)len | ((unsigned)element_id << 7));
    put(e, content, len);
}

void cj_wpan_put_pie(cj_wpan_enc_t *e, uint8_t group, const uint8_t *content,
                     size_t len)
{
    if (e->mlme || group >= CJ_WPAN_PIE_PT) {
        fail(e, CJ_ERR_INVALID);
        return;
    }
    if (!content_ok(e, content, len, PIE_MAX_LEN))
        return;
    put16(e, IE_TYPE | ((unsigned)group << 11) | (unsigned)len);
    put(e, content, len);
}

void cj_wpan_mlme_begin(cj_wpan_enc_t *e)
{
    if (e->mlme) {
        fail(e, CJ_ERR_INVALID);
        return;
    }
    put16(e, 0); /* patched by cj_wpan_mlme_end */
    e->mlme = e->len;
}

void cj_wpan_mlme_end(cj_wpan_enc_t *e)
{
    size_t n, at;
    if (!e->mlme) {
        fail(e, CJ_ERR_INVALID);
        return;
    }
    at = e->mlme - 2;
    n = e->len - e->mlme;
    e->mlme = 0;
    if (n > PIE_MAX_LEN) {
        fail(e, CJ_ERR_RANGE);
        return;
    }
    if (e->buf && e->err == CJ_OK) {
        unsigned d = IE_TYPE | (CJ_WPAN_PIE_MLME << 11) | (unsigned)n;
        e->buf[at] = (uint8_t)d;
        e->buf[at + 1] = (uint8_t)(d >> 8);
    }
}

/* Descriptor of an MLME sub-IE (section 7.4.4.1). */
static bool sub_head(cj_wpan_enc_t *e, bool is_long, uint8_t sub_id,
                     size_t len)
{
    if (!e->mlme || sub_id > (is_long ? 0xfu : 0x7fu)) {
        fail(e, CJ_ERR_INVALID);
        return false;
    }
    if (len > (is_long ? PIE_MAX_LEN : SUB_SHORT_MAX_LEN)) {
        fail(e, CJ_ERR_RANGE);
        return false;
    }
    if (is_long)
        put16(e, IE_TYPE | ((unsigned)sub_id << 11) | (unsigned)len);
    else
        put16(e, ((unsigned)sub_id << 8) | (unsigned)len);
    return true;
}

void cj_wpan_put_sub_ie(cj_wpan_enc_t *e, bool is_long, uint8_t sub_id,
                        const uint8_t *content, size_t len)
{
    if (!content_ok(e, content, len, PIE_MAX_LEN))
        return;
    if (sub_head(e, is_long, sub_id, len))
        put(e, content, len);
}

void cj_wpan_put_sync(cj_wpan_enc_t *e, uint64_t asn, uint8_t join_metric)
{
    uint8_t c[6];
    if (asn > CJ_WPAN_MAX_ASN) {
        fail(e, CJ_ERR_RANGE);
        return;
    }
    for (int i = 0; i < 5; i++)
        c[i] = (uint8_t)(asn >> (8 * i));
    c[5] = join_metric;
    cj_wpan_put_sub_ie(e, false, CJ_WPAN_SUB_TSCH_SYNC, c, sizeof c);
}

void cj_wpan_put_timeslot(cj_wpan_enc_t *e, uint8_t timeslot_id)
{
    cj_wpan_put_sub_ie(e, false, CJ_WPAN_SUB_TSCH_TIMESLOT, &timeslot_id, 1);
}

void cj_wpan_put_hopping(cj_wpan_enc_t *e, uint8_t sequence_id)
{
    cj_wpan_put_sub_ie(e, true, CJ_WPAN_SUB_CHANNEL_HOPPING, &sequence_id, 1);
}

void cj_wpan_put_slotframes(cj_wpan_enc_t *e, const cj_wpan_slotframe_t *sf,
                            size_t count)
{
    size_t len = 1;
    if ((sf == NULL && count > 0) || count > 0xff) {
        fail(e, CJ_ERR_INVALID);
        return;
    }
    for (size_t i = 0; i < count; i++) {
        if (sf[i].link_count > CJ_WPAN_MAX_LINKS) {
            fail(e, CJ_ERR_INVALID);
            return;
        }
        len += 4 + 5 * sf[i].link_count;
    }
    if (!sub_head(e, false, CJ_WPAN_SUB_TSCH_SLOTFRAME, len))
        return;
    /* Figure 7-63: count, then per slotframe handle, size, link count
     * and the links (timeslot, channel offset, options). */
    put8(e, (unsigned)count);
    for (size_t i = 0; i < count; i++) {
        put8(e, sf[i].handle);
        put16(e, sf[i].size);
        put8(e, (unsigned)sf[i].link_count);
        for (size_t j = 0; j < sf[i].link_count; j++) {
            put16(e, sf[i].links[j].timeslot);
            put16(e, sf[i].links[j].channel_offset);
            put8(e, sf[i].links[j].options);
        }
    }
}

#define JI_R 0x80u
#define JI_P 0x40u
#define JI_FIXED 5u  /* subtype, flags/priorities (3 bytes), PAN priority */
#define JI_MAX_NETID 16u

void cj_wpan_put_join_info(cj_wpan_enc_t *e, const cj_wpan_join_info_t *ji)
{
    size_t len;
    if (e->mlme || (ji->network_id == NULL && ji->network_id_len > 0)) {
        fail(e, CJ_ERR_INVALID);
        return;
    }
    if (ji->proxy_prio > 0x7f || ji->rank_prio > 0xfff ||
        ji->network_id_len > JI_MAX_NETID) {
        fail(e, CJ_ERR_RANGE);
        return;
    }
    len = JI_FIXED + (ji->jp_iid ? 8 : 0) + ji->network_id_len;
    put16(e, IE_TYPE | (CJ_WPAN_PIE_IETF << 11) | (unsigned)len);
    /* RFC 9032 Figure 1, most significant bit first. */
    put8(e, CJ_WPAN_IETF_JOIN_INFO);
    put8(e, (ji->router ? JI_R : 0) | (ji->jp_iid ? JI_P : 0) |
                (unsigned)(ji->proxy_prio >> 4));
    put8(e, ((unsigned)(ji->proxy_prio & 0xfu) << 4) |
                (unsigned)(ji->rank_prio >> 8));
    put8(e, ji->rank_prio & 0xffu);
    put8(e, ji->pan_prio);
    if (ji->jp_iid)
        put(e, ji->jp_iid, 8);
    put(e, ji->network_id, ji->network_id_len);
}

void cj_wpan_put_eb(cj_wpan_enc_t *e, const cj_wpan_eb_t *eb)
{
    if (eb->has_sync || eb->has_timeslot || eb->has_hopping ||
        eb->has_slotframes) {
        cj_wpan_mlme_begin(e);
        if (eb->has_sync)
            cj_wpan_put_sync(e, eb->asn, eb->join_metric);
        if (eb->has_timeslot)
            cj_wpan_put_timeslot(e, eb->timeslot_id);
        if (eb->has_hopping)
            cj_wpan_put_hopping(e, eb->hopping_id);
        if (eb->has_slotframes) {
            if (eb->slotframe_count > CJ_WPAN_MAX_SLOTFRAMES)
                fail(e, CJ_ERR_INVALID);
            else
                cj_wpan_put_slotframes(e, eb->slotframes,
                                       eb->slotframe_count);
        }
        cj_wpan_mlme_end(e);
    }
    if (eb->has_join_info)
        cj_wpan_put_join_info(e, &eb->join_info);
}

int cj_wpan_enc_finish(const cj_wpan_enc_t *e)
{
    if (e->err != CJ_OK)
        return e->err;
    if (e->mlme)
        return CJ_ERR_INVALID; /* MLME IE left open */
    if (e->len > (size_t)INT32_MAX)
        return CJ_ERR_NOSPACE;
    return (int)e->len;
}

/* ---- IE iterators and content decoders ------------------------------- */

void cj_wpan_ie_iter_init(cj_wpan_ie_iter_t *it, const uint8_t *list,
                          size_t len)
{
    it->p = list;
    it->len = list ? len : 0;
    it->off = 0;
}

/* Reads a descriptor; returns it, or -1 when fewer than two bytes are
 * left (the caller distinguishes the end from a truncation). */
static int next_desc(cj_wpan_ie_iter_t *it, unsigned *d)
{
    if (it->off == it->len)
        return 0;
    if (it->len - it->off < 2)
        return CJ_ERR_TRUNCATED;
    *d = rd16(it->p + it->off);
    return 1;
}

static int take(cj_wpan_ie_iter_t *it, cj_wpan_ie_t *ie, unsigned id,
                size_t len)
{
    if (it->len - it->off - 2 < len)
        return CJ_ERR_TRUNCATED;
    ie->id = (uint8_t)id;
    ie->content = it->p + it->off + 2;
    ie->len = len;
    it->off += 2 + len;
    return 1;
}

int cj_wpan_hie_next(cj_wpan_ie_iter_t *it, cj_wpan_ie_t *ie)
{
    unsigned d, id;
    int rc = next_desc(it, &d);
    if (rc <= 0)
        return rc;
    if (d & IE_TYPE)
        return CJ_ERR_MALFORMED;
    id = (d >> 7) & 0xffu;
    if (id == CJ_WPAN_HIE_HT1 || id == CJ_WPAN_HIE_HT2)
        return 0;
    ie->is_long = false;
    return take(it, ie, id, d & HIE_MAX_LEN);
}

int cj_wpan_pie_next(cj_wpan_ie_iter_t *it, cj_wpan_ie_t *ie)
{
    unsigned d, group;
    int rc = next_desc(it, &d);
    if (rc <= 0)
        return rc;
    if (!(d & IE_TYPE))
        return CJ_ERR_MALFORMED;
    group = (d >> 11) & 0xfu;
    if (group == CJ_WPAN_PIE_PT)
        return 0;
    ie->is_long = false;
    return take(it, ie, group, d & PIE_MAX_LEN);
}

int cj_wpan_sub_ie_next(cj_wpan_ie_iter_t *it, cj_wpan_ie_t *ie)
{
    unsigned d;
    int rc = next_desc(it, &d);
    if (rc <= 0)
        return rc;
    ie->is_long = (d & IE_TYPE) != 0;
    if (ie->is_long)
        return take(it, ie, (d >> 11) & 0xfu, d & PIE_MAX_LEN);
    return take(it, ie, (d >> 8) & 0x7fu, d & SUB_SHORT_MAX_LEN);
}

/* A fixed-size content: shorter is truncated, longer is malformed. */
static int exact(size_t len, size_t want)
{
    if (len < want)
        return CJ_ERR_TRUNCATED;
    return len > want ? CJ_ERR_MALFORMED : CJ_OK;
}

int cj_wpan_sync_decode(const uint8_t *c, size_t len, uint64_t *asn,
                        uint8_t *join_metric)
{
    int rc = exact(len, 6);
    if (rc < 0)
        return rc;
    *asn = 0;
    for (int i = 4; i >= 0; i--)
        *asn = (*asn << 8) | c[i];
    *join_metric = c[5];
    return CJ_OK;
}

/* The ID-only forms are one byte; longer contents carry a full timeslot
 * template (section 7.4.4.3) or hopping sequence (7.4.4.31). */
static int id_only(const uint8_t *c, size_t len, uint8_t *id)
{
    if (len == 0)
        return CJ_ERR_TRUNCATED;
    if (len != 1)
        return CJ_ERR_UNSUPPORTED;
    *id = c[0];
    return CJ_OK;
}

int cj_wpan_timeslot_decode(const uint8_t *c, size_t len,
                            uint8_t *timeslot_id)
{
    return id_only(c, len, timeslot_id);
}

int cj_wpan_hopping_decode(const uint8_t *c, size_t len,
                           uint8_t *sequence_id)
{
    return id_only(c, len, sequence_id);
}

int cj_wpan_slotframes_decode(const uint8_t *c, size_t len,
                              cj_wpan_slotframe_t *sf, size_t max,
                              size_t *count)
{
    size_t off = 1, n;
    if (len < 1)
        return CJ_ERR_TRUNCATED;
    n = c[0];
    for (size_t i = 0; i < n; i++) {
        size_t links;
        if (len - off < 4)
            return CJ_ERR_TRUNCATED;
        links = c[off + 3];
        if (len - off - 4 < 5 * links)
            return CJ_ERR_TRUNCATED;
        if (i >= max || links > CJ_WPAN_MAX_LINKS)
            return CJ_ERR_NOSPACE;
        sf[i].handle = c[off];
        sf[i].size = rd16(c + off + 1);
        sf[i].link_count = links;
        off += 4;
        for (size_t j = 0; j < links; j++, off += 5) {
            sf[i].links[j].timeslot = rd16(c + off);
            sf[i].links[j].channel_offset = rd16(c + off + 2);
            sf[i].links[j].options = c[off + 4];
        }
    }
    if (off != len)
        return CJ_ERR_MALFORMED;
    *count = n;
    return CJ_OK;
}

int cj_wpan_join_info_decode(const uint8_t *c, size_t len,
                             cj_wpan_join_info_t *ji)
{
    size_t off = JI_FIXED;
    if (len < JI_FIXED)
        return CJ_ERR_TRUNCATED;
    if (c[0] != CJ_WPAN_IETF_JOIN_INFO)
        return CJ_ERR_MALFORMED;
    ji->router = (c[1] & JI_R) != 0;
    ji->proxy_prio = (uint8_t)(((c[1] & 7u) << 4) | (c[2] >> 4));
    ji->rank_prio = (uint16_t)(((c[2] & 0xfu) << 8) | c[3]);
    ji->pan_prio = c[4];
    ji->jp_iid = NULL;
    if (c[1] & JI_P) {
        if (len - off < 8)
            return CJ_ERR_TRUNCATED;
        ji->jp_iid = c + off;
        off += 8;
    }
    /* "whatever is left in the IE", at most 16 bytes (RFC 9032 s. 2). */
    if (len - off > JI_MAX_NETID)
        return CJ_ERR_MALFORMED;
    ji->network_id = len > off ? c + off : NULL;
    ji->network_id_len = len - off;
    return CJ_OK;
}

static int eb_mlme(const cj_wpan_ie_t *mlme, cj_wpan_eb_t *eb)
{
    cj_wpan_ie_iter_t it;
    cj_wpan_ie_t s;
    int rc;

    cj_wpan_ie_iter_init(&it, mlme->content, mlme->len);
    while ((rc = cj_wpan_sub_ie_next(&it, &s)) > 0) {
        bool *seen = NULL;
        if (!s.is_long && s.id == CJ_WPAN_SUB_TSCH_SYNC) {
            seen = &eb->has_sync;
            rc = cj_wpan_sync_decode(s.content, s.len, &eb->asn,
                                     &eb->join_metric);
        } else if (!s.is_long && s.id == CJ_WPAN_SUB_TSCH_TIMESLOT) {
            seen = &eb->has_timeslot;
            rc = cj_wpan_timeslot_decode(s.content, s.len, &eb->timeslot_id);
        } else if (s.is_long && s.id == CJ_WPAN_SUB_CHANNEL_HOPPING) {
            seen = &eb->has_hopping;
            rc = cj_wpan_hopping_decode(s.content, s.len, &eb->hopping_id);
        } else if (!s.is_long && s.id == CJ_WPAN_SUB_TSCH_SLOTFRAME) {
            seen = &eb->has_slotframes;
            rc = cj_wpan_slotframes_decode(s.content, s.len, eb->slotframes,
                                           CJ_WPAN_MAX_SLOTFRAMES,
                                           &eb->slotframe_count);
        }
        if (seen == NULL)
            continue;
        if (*seen)
            return CJ_ERR_MALFORMED;
        if (rc < 0)
            return rc;
        *seen = true;
    }
    return rc;
}

int cj_wpan_eb_decode(const cj_wpan_frame_t *f, cj_wpan_eb_t *eb)
{
    cj_wpan_ie_iter_t it;
    cj_wpan_ie_t ie;
    int rc;

    memset(eb, 0, sizeof *eb);
    if (f->encrypted)
        return CJ_ERR_INVALID;
    cj_wpan_ie_iter_init(&it, f->pie, f->pie_len);
    while ((rc = cj_wpan_pie_next(&it, &ie)) > 0) {
        if (ie.id == CJ_WPAN_PIE_MLME) {
            if ((rc = eb_mlme(&ie, eb)) < 0)
                return rc;
        } else if (ie.id == CJ_WPAN_PIE_IETF) {
            /* RFC 8137 section 7: a subtype byte, then its content. */
            if (ie.len < 1)
                return CJ_ERR_TRUNCATED;
            if (ie.content[0] != CJ_WPAN_IETF_JOIN_INFO)
                continue;
            if (eb->has_join_info)
                return CJ_ERR_MALFORMED;
            rc = cj_wpan_join_info_decode(ie.content, ie.len, &eb->join_info);
            if (rc < 0)
                return rc;
            eb->has_join_info = true;
        }
    }
    return rc;
}

/* ---- frame encoder ------------------------------------------------------ */

static void put_ext(cj_wpan_enc_t *e, const uint8_t ext[CJ_WPAN_EXT_LEN])
{
    for (int i = CJ_WPAN_EXT_LEN - 1; i >= 0; i--)
        put8(e, ext[i]);
}

static void put_addr(cj_wpan_enc_t *e, uint8_t mode, const cj_wpan_addr_t *a)
{
    if (mode == CJ_WPAN_ADDR_SHORT)
        put16(e, a->short_addr);
    else if (mode == CJ_WPAN_ADDR_EXT)
        put_ext(e, a->ext);
}

/* True when list[0..len) is a sequence of whole IEs of one kind with no
 * termination IE, as the decoder would find it. */
static bool list_ok(const uint8_t *list, size_t len, bool payload)
{
    cj_wpan_ie_iter_t it;
    cj_wpan_ie_t ie;
    int rc;
    if (list == NULL && len > 0)
        return false;
    cj_wpan_ie_iter_init(&it, list, len);
    do
        rc = payload ? cj_wpan_pie_next(&it, &ie) : cj_wpan_hie_next(&it, &ie);
    while (rc > 0);
    return rc == 0 && it.off == len;
}

int cj_wpan_frame_encode(const cj_wpan_frame_t *f, uint8_t *buf, size_t cap)
{
    static const uint8_t src_len[4] = {0, 0, 4, 8};
    cj_wpan_enc_t e;
    bool dpan, span, ie = f->hie_len > 0 || f->pie_len > 0;
    unsigned fc;

    if (f->version != CJ_WPAN_VERSION_2015 || f->type > CJ_WPAN_TYPE_CMD ||
        cj_wpan_pan_ids(f->version, f->dst_mode, f->src_mode, f->panid_comp,
                        &dpan, &span) < 0 ||
        (f->security && (f->sec.level > 7 || f->sec.key_id_mode > 3)) ||
        !list_ok(f->hie, f->hie_len, false) ||
        !list_ok(f->pie, f->pie_len, true) ||
        (f->payload == NULL && f->payload_len > 0))
        return CJ_ERR_INVALID;

    fc = f->type | ((unsigned)f->dst_mode << 10) |
         ((unsigned)f->version << 12) | ((unsigned)f->src_mode << 14);
    fc |= (f->security ? FC_SECURITY : 0) | (f->frame_pending ? FC_PENDING : 0) |
          (f->ack_request ? FC_AR : 0) | (f->panid_comp ? FC_PANID_COMP : 0) |
          (f->seq_suppressed ? FC_SNS : 0) | (ie ? FC_IE_PRESENT : 0);

    cj_wpan_enc_init(&e, buf, cap);
    put16(&e, fc);
    if (!f->seq_suppressed)
        put8(&e, f->seq);
    if (dpan)
        put16(&e, f->dst_pan);
    put_addr(&e, f->dst_mode, &f->dst);
    if (span)
        put16(&e, f->src_pan);
    put_addr(&e, f->src_mode, &f->src);
    if (f->security) {
        const cj_wpan_sec_t *s = &f->sec;
        put8(&e, s->level | ((unsigned)s->key_id_mode << 3) |
                     (s->fc_suppressed ? SC_FC_SUPPRESS : 0) |
                     (s->asn_in_nonce ? SC_ASN_NONCE : 0));
        if (!s->fc_suppressed) {
            put16(&e, s->frame_counter & 0xffffu);
            put16(&e, s->frame_counter >> 16);
        }
        if (s->key_id_mode) {
            put(&e, s->key_source, src_len[s->key_id_mode]);
            put8(&e, s->key_index);
        }
    }
    /* Termination rules (section 7.4.1): HT1 whenever Payload IEs
     * follow, HT2 when only a MAC payload follows Header IEs, PT when a
     * MAC payload follows Payload IEs; none before the end of the frame. */
    put(&e, f->hie, f->hie_len);
    if (f->pie_len > 0)
        put16(&e, (unsigned)CJ_WPAN_HIE_HT1 << 7);
    else if (f->hie_len > 0 && f->payload_len > 0)
        put16(&e, (unsigned)CJ_WPAN_HIE_HT2 << 7);
    put(&e, f->pie, f->pie_len);
    if (f->pie_len > 0 && f->payload_len > 0)
        put16(&e, IE_TYPE | ((unsigned)CJ_WPAN_PIE_PT << 11));
    put(&e, f->payload, f->payload_len);
    return cj_wpan_enc_finish(&e);
}

/* ---- security (section 9.3) ------------------------------------------- */

int cj_wpan_key_policy(unsigned key_usage, cj_wpan_key_policy_t *p)
{
    /* RFC 9031 Table 6: usages come in rows of three, MIC-32/64/128,
     * which are levels 1/2/3 (MIC only) or 5/6/7 (ENC-MIC). */
    static const struct {
        uint8_t beacon_base, data_base; /* 0: not allowed */
    } rows[5] = {
        {1, 5}, /* 0-2   K1K2-ENC-MIC: MIC for EBs, ENC-MIC for data/ACK */
        {1, 1}, /* 3-5   K1K2-MIC */
        {1, 0}, /* 6-8   K1-MIC: EBs only */
        {0, 1}, /* 9-11  K2-MIC: data/ACK only */
        {0, 5}, /* 12-14 K2-ENC-MIC */
    };
    unsigned row = key_usage / 3, size = key_usage % 3;

    if (key_usage > 14)
        return CJ_ERR_RANGE;
    p->beacon_level =
        rows[row].beacon_base ? (uint8_t)(rows[row].beacon_base + size) : 0;
    p->data_level =
        rows[row].data_base ? (uint8_t)(rows[row].data_base + size) : 0;
    p->types = (uint8_t)((p->beacon_level ? 1u << CJ_WPAN_TYPE_BEACON : 0) |
                         (p->data_level ? (1u << CJ_WPAN_TYPE_DATA) |
                                              (1u << CJ_WPAN_TYPE_ACK)
                                        : 0));
    return CJ_OK;
}

/* CCM* nonce (section 9.3.2.2): source extended address, then the ASN
 * (TSCH) or the frame counter and security level, numbers most
 * significant byte first (Annex B.2). */
static int make_nonce(const cj_wpan_frame_t *f,
                      const uint8_t src_ext[CJ_WPAN_EXT_LEN], uint64_t asn,
                      uint8_t nonce[CJ_CCM_NONCE_LEN])
{
    const cj_wpan_sec_t *s = &f->sec;
    if (!f->security || asn > CJ_WPAN_MAX_ASN)
        return CJ_ERR_INVALID;
    if (s->level == CJ_WPAN_SEC_NONE || s->level == CJ_WPAN_SEC_ENC)
        return CJ_ERR_UNSUPPORTED;
    memcpy(nonce, src_ext, CJ_WPAN_EXT_LEN);
    if (s->asn_in_nonce) {
        for (int i = 0; i < 5; i++)
            nonce[8 + i] = (uint8_t)(asn >> (8 * (4 - i)));
    } else {
        /* Without the ASN the frame counter is the only freshness. */
        if (s->fc_suppressed)
            return CJ_ERR_UNSUPPORTED;
        for (int i = 0; i < 4; i++)
            nonce[8 + i] = (uint8_t)(s->frame_counter >> (8 * (3 - i)));
        nonce[12] = s->level;
    }
    return CJ_OK;
}

int cj_wpan_protect(uint8_t *buf, size_t len, size_t cap,
                    const uint8_t key[CJ_AES_KEY_LEN],
                    const uint8_t src_ext[CJ_WPAN_EXT_LEN], uint64_t asn)
{
    uint8_t nonce[CJ_CCM_NONCE_LEN];
    cj_wpan_frame_t f;
    size_t mic;
    int rc;

    if (buf == NULL || key == NULL || src_ext == NULL || len > cap)
        return CJ_ERR_INVALID;
    rc = parse(buf, len, CJ_WPAN_DEC_UNPROTECTED, &f);
    if (rc < 0)
        return rc;
    if ((rc = make_nonce(&f, src_ext, asn, nonce)) < 0)
        return rc;
    mic = cj_wpan_mic_len(f.sec.level);
    if (cap - len < mic)
        return CJ_ERR_NOSPACE;
    if (f.sec.level & 4u)
        rc = cj_crypto_ccm_seal(key, nonce, buf, f.open_len, buf + f.open_len,
                                len - f.open_len, mic);
    else /* MIC only: the whole frame is additional data */
        rc = cj_crypto_ccm_seal(key, nonce, buf, len, buf + len, 0, mic);
    cj_crypto_wipe(nonce, sizeof nonce);
    return rc < 0 ? rc : (int)(len + mic);
}

int cj_wpan_unprotect(uint8_t *buf, size_t len,
                      const uint8_t key[CJ_AES_KEY_LEN],
                      const uint8_t src_ext[CJ_WPAN_EXT_LEN], uint64_t asn)
{
    uint8_t nonce[CJ_CCM_NONCE_LEN];
    cj_wpan_frame_t f;
    size_t mic;
    int rc;

    if (buf == NULL || key == NULL || src_ext == NULL)
        return CJ_ERR_INVALID;
    /* Only the open part is parsed before the MIC is verified. */
    rc = parse(buf, len, DEC_OPEN_ONLY, &f);
    if (rc < 0)
        return rc;
    if ((rc = make_nonce(&f, src_ext, asn, nonce)) < 0)
        return rc;
    mic = f.mic_len;
    if (f.sec.level & 4u)
        rc = cj_crypto_ccm_open(key, nonce, buf, f.open_len, buf + f.open_len,
                                len - f.open_len, mic);
    else
        rc = cj_crypto_ccm_open(key, nonce, buf, len - mic, buf + len - mic,
                                mic, mic);
    cj_crypto_wipe(nonce, sizeof nonce);
    return rc < 0 ? rc : (int)(len - mic);
}
