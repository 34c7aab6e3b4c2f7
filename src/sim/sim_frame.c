/*
 * sim_frame.c - the bytes on the simulated air: IEEE 802.15.4-2015
 * frames built and parsed with cojp/wpan.h (Enhanced Beacons with the
 * RFC 8180 IEs and the RFC 9032 Join Info IE, data frames, Enhanced
 * ACKs; CCM* through cj_wpan_protect; FCS appended, 127-byte PSDU
 * limit enforced), and inside data frames a minimal RFC 6282 IPHC
 * encoding of IPv6 with UDP (NHC) or ICMPv6 (RPL DIS, DIO, DAO, DAO-ACK
 * of RFC 6550), fragmented per RFC 4944 section 5.3 when a datagram does
 * not fit one frame.  Only the forms this file writes are parsed back.
 */
#include <string.h>

#include "cojp/proxy.h"
#include "cojp/wpan.h"
#include "sim/sim.h"

#define SIM_PAN_ID 0xcafe

/* IEEE 802.15.4-2015 default hopping sequence for the 16 channels of the
 * 2.4 GHz band (as 6TiSCH implementations use it). */
static const uint8_t HOP_SEQ[SIM_NUM_CH] = {16, 17, 23, 18, 26, 15, 25, 22,
                                            19, 11, 12, 13, 24, 14, 20, 21};

uint8_t sim_channel(uint64_t asn, uint16_t ch_offset)
{
    return HOP_SEQ[(asn + ch_offset) % SIM_NUM_CH];
}

/* RFC 9033 Appendix A: h0 = 0, l_bit = 0, r_bit = 1. */
uint16_t sim_sax(const uint8_t eui[8], uint16_t t)
{
    uint32_t h = 0;
    for (int i = 0; i < 8; i++) {
        uint32_t sum = (h << 0) + (h >> 1) + eui[i];
        h = (sum ^ h) % t;
    }
    return (uint16_t)h;
}

int32_t sim_mote_of(const sim_t *s, const uint8_t eui[8])
{
    static const uint8_t pfx[5] = {0x00, 0x12, 0x4b, 0x00, 0x00};
    if (memcmp(eui, pfx, 5) != 0)
        return -1;
    uint32_t i = (uint32_t)eui[5] << 16 | (uint32_t)eui[6] << 8 | eui[7];
    return i < s->n ? (int32_t)i : -1;
}

/* ---- IPv6 addresses -------------------------------------------------- */

static void addr_ll(uint8_t a[16], const uint8_t eui[8])
{
    static const uint8_t ll[8] = {0xfe, 0x80};
    cj_proxy_ipv6_from_eui64(ll, eui, a);
}

/* the network's prefix: 2001:db8::/64 */
static void addr_global(uint8_t a[16], const uint8_t eui[8])
{
    static const uint8_t net[8] = {0x20, 0x01, 0x0d, 0xb8};
    cj_proxy_ipv6_from_eui64(net, eui, a);
}

static void addr_rpl_mcast(uint8_t a[16])
{
    memset(a, 0, 16);
    a[0] = 0xff;
    a[1] = 0x02;
    a[15] = 0x1a; /* all-RPL-nodes */
}

static int32_t mote_of_iid(const sim_t *s, const uint8_t *iid)
{
    uint8_t eui[8];
    memcpy(eui, iid, 8);
    eui[0] ^= 0x02;
    return sim_mote_of(s, eui);
}

/* Internet checksum over the IPv6 pseudo-header and the upper layer. */
static uint16_t l4_checksum(const uint8_t src[16], const uint8_t dst[16],
                            uint8_t nh, const uint8_t *p, size_t len)
{
    uint32_t sum = 0;
    for (int i = 0; i < 16; i += 2) {
        sum += (uint32_t)src[i] << 8 | src[i + 1];
        sum += (uint32_t)dst[i] << 8 | dst[i + 1];
    }
    sum += (uint32_t)(len >> 16) + (uint32_t)(len & 0xffff);
    sum += nh;
    for (size_t i = 0; i + 1 < len; i += 2)
        sum += (uint32_t)p[i] << 8 | p[i + 1];
    if (len & 1)
        sum += (uint32_t)p[len - 1] << 8;
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    uint16_t c = (uint16_t)~sum;
    return c ? c : 0xffff;
}

/* ---- 6LoWPAN payload -------------------------------------------------- */

/* RPL parameters carried in the DODAG Configuration option of DIOs
 * (RFC 6550 section 6.7.6): route lifetimes are in units of 60 s. */
#define RPL_DEFAULT_LIFETIME 30 /* lifetime units: 30 min */
#define RPL_LIFETIME_UNIT 60    /* seconds */

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Upper-layer bytes (UDP header + payload, or ICMPv6 message) of pkt. */
static size_t upper_build(const sim_t *s, uint32_t from, const sim_pkt_t *pkt,
                          uint8_t *u, size_t cap, uint8_t *nh)
{
    const sim_mote_t *m = &s->m[from];
    size_t n = 0;
    switch (pkt->kind) {
    case PK_UDP:
    case PK_JOIN:
        if (8u + pkt->len > cap)
            return 0;
        *nh = 17;
        u[0] = SIM_UDP_PORT >> 8;
        u[1] = SIM_UDP_PORT & 0xff;
        u[2] = SIM_UDP_PORT >> 8;
        u[3] = SIM_UDP_PORT & 0xff;
        u[4] = (uint8_t)((8 + pkt->len) >> 8);
        u[5] = (uint8_t)(8 + pkt->len);
        u[6] = u[7] = 0;
        memcpy(u + 8, pkt->data, pkt->len);
        return 8u + pkt->len;
    case PK_DIS:
        *nh = 58;
        u[n++] = 155;
        u[n++] = 0x00;
        u[n++] = 0;
        u[n++] = 0;
        u[n++] = 0; /* flags */
        u[n++] = 0; /* reserved */
        return n;
    case PK_DIO:
        *nh = 58;
        u[n++] = 155;
        u[n++] = 0x01;
        u[n++] = 0;
        u[n++] = 0;
        u[n++] = 0;             /* RPLInstanceID */
        u[n++] = 1;             /* Version Number */
        u[n++] = (uint8_t)(m->rank >> 8);
        u[n++] = (uint8_t)m->rank;
        u[n++] = 0x80 | 2 << 3; /* G, MOP 2 (storing, no multicast) */
        u[n++] = 0;             /* DTSN */
        u[n++] = 0;             /* flags */
        u[n++] = 0;             /* reserved */
        addr_global(u + n, s->m[0].eui); /* DODAGID */
        n += 16;
        /* DODAG Configuration (section 6.7.6): Trickle as the simulator
         * runs it, OF0, and the route lifetime DAOs refer to */
        u[n++] = 4;
        u[n++] = 14;
        u[n++] = 0;    /* flags, A, PCS 0 */
        u[n++] = 8;    /* DIOIntervalDoublings */
        u[n++] = 12;   /* DIOIntervalMin: 2^12 ms */
        u[n++] = 10;   /* DIORedundancyConstant */
        u[n++] = 0x07; /* MaxRankIncrease 7 * 256 */
        u[n++] = 0x00;
        u[n++] = SIM_MIN_HOP_RANK >> 8;
        u[n++] = SIM_MIN_HOP_RANK & 0xff;
        u[n++] = 0;    /* OCP 0: OF0 (RFC 6552) */
        u[n++] = 0;
        u[n++] = 0;    /* reserved */
        u[n++] = RPL_DEFAULT_LIFETIME;
        u[n++] = RPL_LIFETIME_UNIT >> 8;
        u[n++] = RPL_LIFETIME_UNIT & 0xff;
        return n;
    case PK_DAO: {
        /* storing mode (RFC 6550 sections 6.4 and 9.2): one RPL Target
         * + Transit Information pair per target; no DODAGID (global
         * instance) */
        uint8_t cnt = pkt->len >= 3 ? pkt->data[2] : 0;
        if (cnt > SIM_DAO_TARGETS || pkt->len < 3u + 6u * cnt)
            return 0;
        *nh = 58;
        u[n++] = 155;
        u[n++] = 0x02;
        u[n++] = 0;
        u[n++] = 0;
        u[n++] = 0;                          /* RPLInstanceID */
        u[n++] = pkt->data[1] ? 0x80 : 0x00; /* K: DAO-ACK wanted */
        u[n++] = 0;
        u[n++] = pkt->data[0];               /* DAOSequence */
        for (uint8_t k = 0; k < cnt; k++) {
            const uint8_t *t = pkt->data + 3 + 6 * k;
            uint32_t idx = get32(t);
            if (idx >= s->n)
                return 0;
            u[n++] = 5;  /* RPL Target */
            u[n++] = 18;
            u[n++] = 0;
            u[n++] = 128;
            addr_global(u + n, s->m[idx].eui);
            n += 16;
            u[n++] = 6;  /* Transit Information */
            u[n++] = 4;
            u[n++] = 0;  /* E = 0, flags */
            u[n++] = 0;  /* path control */
            u[n++] = t[4]; /* path sequence */
            u[n++] = t[5]; /* path lifetime; 0: No-Path */
        }
        return n;
    }
    case PK_DAO_ACK:
        if (pkt->len < 2)
            return 0;
        *nh = 58;
        u[n++] = 155;
        u[n++] = 0x03;
        u[n++] = 0;
        u[n++] = 0;
        u[n++] = 0;            /* RPLInstanceID */
        u[n++] = 0;            /* D = 0 */
        u[n++] = pkt->data[0]; /* DAOSequence */
        u[n++] = pkt->data[1]; /* Status */
        return n;
    default:
        return 0;
    }
}

/* The compressed datagram of pkt: IPHC (RFC 6282) + UDP NHC or inline
 * ICMPv6.  *hdr_c / *hdr_u: header bytes compressed / uncompressed (what
 * RFC 4944 fragment offsets are counted against).  Returns the length or
 * 0. */
static size_t lowpan_build(const sim_t *s, uint32_t from, const sim_pkt_t *pkt,
                           uint8_t *out, size_t cap, uint16_t *hdr_c, uint16_t *hdr_u)
{
    uint8_t u[SIM_DGRAM_MAX], src[16], dst[16], nh = 0;
    size_t ulen = upper_build(s, from, pkt, u, sizeof u, &nh);
    size_t n = 0;
    bool mcast = pkt->kind == PK_DIO || pkt->kind == PK_DIS;
    bool ll = mcast || pkt->kind == PK_JOIN || pkt->kind == PK_DAO || pkt->kind == PK_DAO_ACK;

    if (ulen == 0 || ulen + 48 > cap)
        return 0;
    if (mcast) {
        addr_ll(src, s->m[from].eui);
        addr_rpl_mcast(dst);
    } else if (ll) {
        addr_ll(src, s->m[pkt->src].eui);
        addr_ll(dst, s->m[pkt->dst].eui);
    } else {
        addr_global(src, s->m[pkt->src].eui);
        addr_global(dst, s->m[pkt->dst].eui);
    }
    /* IPHC (RFC 6282 section 3.1): TF 11 (elided), NH 1 for UDP NHC or
     * 0 with the Next Header inline, HLIM 00 (inline). */
    out[n++] = (uint8_t)(0x78 | (nh == 17 ? 0x04 : 0x00));
    /* SAC 0; SAM 11 (from the link-layer source) for link-local, 00
     * (inline) for global; M/DAC/DAM: 1/0/11 (ff02::00XX, 8 bits) for
     * multicast, 0/0/11 for link-local, 0/0/00 for global. */
    out[n++] = mcast ? 0x3b : ll ? 0x33 : 0x00;
    if (nh != 17)
        out[n++] = nh;
    out[n++] = pkt->hop_limit;
    if (!ll) {
        memcpy(out + n, src, 16);
        memcpy(out + n + 16, dst, 16);
        n += 32;
    }
    if (mcast)
        out[n++] = dst[15];
    if (nh == 17) {
        uint16_t c = l4_checksum(src, dst, 17, u, ulen);
        /* UDP NHC 11110 C=0 P=00: ports and checksum inline, length
         * elided (section 4.3.3) */
        out[n++] = 0xf0;
        memcpy(out + n, u, 4);
        n += 4;
        out[n++] = (uint8_t)(c >> 8);
        out[n++] = (uint8_t)c;
        *hdr_c = (uint16_t)n;
        *hdr_u = 48;
        memcpy(out + n, u + 8, ulen - 8);
        n += ulen - 8;
    } else {
        uint16_t c = l4_checksum(src, dst, 58, u, ulen);
        u[2] = (uint8_t)(c >> 8);
        u[3] = (uint8_t)c;
        *hdr_c = (uint16_t)n;
        *hdr_u = 40;
        memcpy(out + n, u, ulen);
        n += ulen;
    }
    return n;
}

int sim_lowpan_hdr(const uint8_t *p, size_t len, uint16_t *hdr_c, uint16_t *hdr_u)
{
    size_t n = 2;
    if (len < 4 || (p[0] & 0xfb) != 0x78)
        return -1;
    bool nhc = p[0] & 0x04;
    if (!nhc)
        n++;
    n++; /* hop limit */
    if (p[1] == 0x3b)
        n++;
    else if (p[1] == 0x00)
        n += 32;
    else if (p[1] != 0x33)
        return -1;
    if (nhc)
        n += 7;
    if (n > len)
        return -1;
    *hdr_c = (uint16_t)n;
    *hdr_u = nhc ? 48 : 40;
    return 0;
}

int sim_lowpan_parse(const sim_t *s, const uint8_t *p, size_t len,
                     int32_t from, int32_t to, sim_rx_t *rx)
{
    size_t n = 2;
    uint8_t nh;
    memset(rx, 0, sizeof *rx);
    rx->src = rx->dst = -1;
    if (len < 4 || (p[0] & 0xfb) != 0x78)
        return -1;
    bool nhc = p[0] & 0x04;
    uint8_t b = p[1];
    if (!nhc)
        nh = p[n++];
    else
        nh = 17;
    rx->hop_limit = p[n++];
    if (b == 0x3b || b == 0x33) {
        rx->link_local = true;
        rx->src = from;
        rx->dst = b == 0x3b ? -1 : to;
        if (b == 0x3b && (n >= len || p[n++] != 0x1a))
            return -1;
    } else if (b == 0x00) {
        if (n + 32 > len)
            return -1;
        rx->src = mote_of_iid(s, p + n + 8);
        rx->dst = mote_of_iid(s, p + n + 24);
        n += 32;
        if (rx->src < 0 || rx->dst < 0)
            return -1;
    } else {
        return -1;
    }
    if (nh == 17) {
        if (n + 7 > len || p[n] != 0xf0)
            return -1;
        rx->sport = (uint16_t)(p[n + 1] << 8 | p[n + 2]);
        rx->dport = (uint16_t)(p[n + 3] << 8 | p[n + 4]);
        n += 7;
        rx->data = p + n;
        rx->len = len - n;
        rx->kind = rx->link_local ? PK_JOIN : PK_UDP;
        return 0;
    }
    if (nh != 58 || n + 4 > len || p[n] != 155)
        return -1;
    switch (p[n + 1]) {
    case 0x00:
        rx->kind = PK_DIS;
        return 0;
    case 0x01:
        if (n + 28 > len)
            return -1;
        rx->kind = PK_DIO;
        rx->rank = (uint16_t)(p[n + 6] << 8 | p[n + 7]);
        return 0;
    case 0x02: {
        if (n + 8 > len || !rx->link_local)
            return -1;
        rx->kind = PK_DAO;
        rx->dao_k = p[n + 5] & 0x80;
        rx->dao_seq = p[n + 7];
        size_t o = n + 8 + ((p[n + 5] & 0x40) ? 16 : 0);
        while (o + 2 <= len) {
            uint8_t t = p[o];
            if (t == 0) { /* Pad1 */
                o++;
                continue;
            }
            size_t ol = p[o + 1];
            if (o + 2 + ol > len)
                return -1;
            if (t == 5 && ol >= 2 + 16 && p[o + 3] == 128) {
                if (rx->ntargets == SIM_DAO_TARGETS)
                    return -1;
                int32_t tg = mote_of_iid(s, p + o + 4 + 8);
                if (tg < 0)
                    return -1;
                rx->target[rx->ntargets] = tg;
                rx->target_seq[rx->ntargets] = 0;
                rx->target_life[rx->ntargets] = 0;
                rx->ntargets++;
            } else if (t == 6 && ol >= 4 && rx->ntargets > 0) {
                rx->target_seq[rx->ntargets - 1] = p[o + 4];
                rx->target_life[rx->ntargets - 1] = p[o + 5];
            }
            o += 2 + ol;
        }
        return 0;
    }
    case 0x03:
        if (n + 8 > len || !rx->link_local)
            return -1;
        rx->kind = PK_DAO_ACK;
        rx->dao_seq = p[n + 6];
        rx->dao_status = p[n + 7];
        return 0;
    default:
        return -1;
    }
}

/* ---- 802.15.4 frames -------------------------------------------------- */

static void frame_common(cj_wpan_frame_t *f, uint8_t type, uint8_t seq,
                         const uint8_t *key, uint8_t key_id, uint8_t level)
{
    memset(f, 0, sizeof *f);
    f->type = type;
    f->version = CJ_WPAN_VERSION_2015;
    f->seq = seq;
    if (key) {
        f->security = true;
        f->sec.level = level;
        f->sec.key_id_mode = 1;
        f->sec.key_index = key_id;
        f->sec.fc_suppressed = true; /* TSCH: the ASN is in the nonce */
        f->sec.asn_in_nonce = true;
    }
}

/* Secure (when key != NULL) and append the FCS; the result must fit
 * aMaxPhyPacketSize. */
static int finish_frame(const uint8_t *src_eui, uint64_t asn, const uint8_t *key,
                        uint8_t *out, int len, size_t cap)
{
    if (len < 0)
        return len;
    if (key) {
        len = cj_wpan_protect(out, (size_t)len, cap, key, src_eui, asn);
        if (len < 0)
            return len;
    }
    len = cj_wpan_fcs_append(out, (size_t)len, cap);
    if (len < 0 || len > SIM_PHY_MAX)
        return CJ_ERR_NOSPACE;
    return len;
}

int sim_frame_build(const sim_t *s, uint32_t from, const sim_pkt_t *pkt,
                    uint64_t asn, const uint8_t *key, uint8_t key_id,
                    uint8_t level, uint8_t *out, size_t cap, uint16_t *next_off)
{
    const sim_mote_t *m = &s->m[from];
    cj_wpan_frame_t f;
    uint8_t ies[160], dg[SIM_DGRAM_MAX], body[SIM_PHY_MAX];
    int len;

    *next_off = 0;
    if (pkt->kind == PK_EB) {
        cj_wpan_eb_t eb;
        cj_wpan_enc_t e;
        memset(&eb, 0, sizeof eb);
        eb.has_sync = true;
        eb.asn = asn;
        /* join metric: hops to the root (RFC 8180 section 6.1) */
        eb.join_metric = (uint8_t)(m->rank / SIM_MIN_HOP_RANK > 255
                                       ? 255
                                       : m->rank / SIM_MIN_HOP_RANK - 1);
        eb.has_timeslot = true;
        eb.has_hopping = true;
        eb.has_slotframes = true;
        eb.slotframe_count = 1;
        eb.slotframes[0].handle = 0;
        eb.slotframes[0].size = (uint16_t)s->cfg.slotframe;
        eb.slotframes[0].link_count = 1;
        eb.slotframes[0].links[0].options = CJ_WPAN_LINK_TX | CJ_WPAN_LINK_RX |
                                            CJ_WPAN_LINK_SHARED |
                                            CJ_WPAN_LINK_TIMEKEEPING;
        eb.has_join_info = true;
        /* proxy priority: hops to the root (closer JPs join faster);
         * rank priority from the rank (RFC 9032 section 2) */
        unsigned hops = m->rank / SIM_MIN_HOP_RANK;
        eb.join_info.proxy_prio = (uint8_t)(hops > 0x7e ? 0x7e : hops - 1);
        eb.join_info.rank_prio = (uint16_t)(hops > 0xfff ? 0xfff : hops);
        eb.join_info.pan_prio = 0;
        eb.join_info.network_id = s->netid;
        eb.join_info.network_id_len = sizeof s->netid;
        cj_wpan_enc_init(&e, ies, sizeof ies);
        cj_wpan_put_eb(&e, &eb);
        int il = cj_wpan_enc_finish(&e);
        if (il < 0)
            return il;
        frame_common(&f, CJ_WPAN_TYPE_BEACON, pkt->dsn, key, key_id, level);
        f.dst_mode = CJ_WPAN_ADDR_SHORT;
        f.dst.short_addr = CJ_WPAN_BROADCAST;
        f.src_mode = CJ_WPAN_ADDR_EXT;
        memcpy(f.src.ext, m->eui, 8);
        f.panid_comp = true;
        f.dst_pan = SIM_PAN_ID;
        f.pie = ies;
        f.pie_len = (size_t)il;
        len = cj_wpan_frame_encode(&f, out, cap);
        return finish_frame(m->eui, asn, key, out, len, cap);
    }
    uint16_t hdr_c, hdr_u;
    size_t dl = lowpan_build(s, from, pkt, dg, sizeof dg, &hdr_c, &hdr_u);
    if (dl == 0)
        return CJ_ERR_NOSPACE;
    frame_common(&f, CJ_WPAN_TYPE_DATA, pkt->dsn, key, key_id, level);
    if (pkt->nexthop < 0) {
        f.dst_mode = CJ_WPAN_ADDR_SHORT;
        f.dst.short_addr = CJ_WPAN_BROADCAST;
    } else {
        f.dst_mode = CJ_WPAN_ADDR_EXT;
        memcpy(f.dst.ext, s->m[pkt->nexthop].eui, 8);
        f.ack_request = true;
    }
    f.src_mode = CJ_WPAN_ADDR_EXT;
    memcpy(f.src.ext, m->eui, 8);
    f.panid_comp = true;
    f.dst_pan = SIM_PAN_ID;
    /* room for the MAC payload: aMaxPhyPacketSize - MHR - MIC - FCS */
    f.payload = NULL;
    f.payload_len = 0;
    int mhr = cj_wpan_frame_encode(&f, NULL, 0);
    if (mhr < 0)
        return mhr;
    int room = SIM_PHY_MAX - mhr - (key ? (int)cj_wpan_mic_len(level) : 0) - SIM_FCS_LEN;
    size_t bl;
    if (pkt->frag_off == 0 && (int)dl <= room) {
        memcpy(body, dg, dl);
        bl = dl;
    } else {
        /* RFC 4944 section 5.3 (with RFC 6282 section 2: offsets and
         * size count the uncompressed IPv6 datagram).  FRAG1 carries the
         * compressed headers and as much payload as keeps the next
         * offset a multiple of 8; each FRAGN a multiple of 8 bytes but
         * the last.  A fragment whose headers do not fit is an error
         * (the datagram cannot be sent). */
        size_t size = hdr_u + (dl - hdr_c);
        if (size > 0x7ff || pkt->nexthop < 0)
            return CJ_ERR_NOSPACE;
        if (pkt->frag_off == 0) {
            int r1 = (room - 4 - (int)hdr_c + (int)hdr_u) / 8 * 8 - (int)hdr_u;
            if (r1 <= 0 || (size_t)r1 >= dl - hdr_c)
                return CJ_ERR_NOSPACE;
            body[0] = (uint8_t)(SIM_FRAG1 | (size >> 8));
            body[1] = (uint8_t)size;
            body[2] = (uint8_t)(pkt->tag >> 8);
            body[3] = (uint8_t)pkt->tag;
            memcpy(body + 4, dg, hdr_c + (size_t)r1);
            bl = 4 + hdr_c + (size_t)r1;
            *next_off = (uint16_t)(hdr_c + (size_t)r1);
        } else {
            size_t c = pkt->frag_off;
            size_t uo = hdr_u + (c - hdr_c);
            size_t fl = (size_t)((room - 5) / 8 * 8);
            if (c <= hdr_c || c >= dl || uo % 8 || fl == 0)
                return CJ_ERR_INVALID;
            if (fl > dl - c)
                fl = dl - c;
            body[0] = (uint8_t)(SIM_FRAGN | (size >> 8));
            body[1] = (uint8_t)size;
            body[2] = (uint8_t)(pkt->tag >> 8);
            body[3] = (uint8_t)pkt->tag;
            body[4] = (uint8_t)(uo / 8);
            memcpy(body + 5, dg + c, fl);
            bl = 5 + fl;
            *next_off = c + fl < dl ? (uint16_t)(c + fl) : 0;
        }
    }
    f.payload = body;
    f.payload_len = bl;
    len = cj_wpan_frame_encode(&f, out, cap);
    return finish_frame(m->eui, asn, key, out, len, cap);
}

int sim_ack_build(const sim_t *s, uint32_t from, uint32_t to, uint8_t seq,
                  uint64_t asn, const uint8_t *key, uint8_t key_id,
                  uint8_t level, uint8_t *out, size_t cap)
{
    cj_wpan_frame_t f;
    cj_wpan_enc_t e;
    uint8_t hie[8];
    static const uint8_t tc[2] = {0, 0}; /* time correction 0 us, ACK */
    cj_wpan_enc_init(&e, hie, sizeof hie);
    cj_wpan_put_hie(&e, CJ_WPAN_HIE_TIME_CORRECTION, tc, 2);
    int hl = cj_wpan_enc_finish(&e);
    if (hl < 0)
        return hl;
    frame_common(&f, CJ_WPAN_TYPE_ACK, seq, key, key_id, level);
    f.dst_mode = CJ_WPAN_ADDR_EXT;
    memcpy(f.dst.ext, s->m[to].eui, 8);
    f.src_mode = CJ_WPAN_ADDR_NONE;
    f.panid_comp = true; /* no PAN ID: 802.15.4-2015 Table 7-2 */
    f.hie = hie;
    f.hie_len = (size_t)hl;
    int len = cj_wpan_frame_encode(&f, out, cap);
    return finish_frame(s->m[from].eui, asn, key, out, len, cap);
}
