/*
 * IEEE Std 802.15.4 frames, IEs and security (cojp/wpan.h).
 *
 * Frames are written out byte by byte with a comment per field; section
 * numbers are those of IEEE Std 802.15.4-2015.  Vectors marked
 * "computed" were produced outside cojp with an independent CCM
 * implementation (Python `cryptography` AESCCM) from the frame bytes
 * shown, the key 000102..0f, the extended source address
 * 00-12-4b-00-01-02-03-04 and ASN 0x123456789a.
 */
#include "test.h"

#include "cojp/cojp.h"
#include "cojp/wpan.h"

static const uint8_t KEY[16] = {0, 1, 2, 3, 4, 5, 6, 7,
                                8, 9, 10, 11, 12, 13, 14, 15};
static const uint8_t SRC_EXT[8] = {0x00, 0x12, 0x4b, 0x00,
                                   0x01, 0x02, 0x03, 0x04};
static const uint8_t KEY2[16] = {1, 1, 2, 3, 4, 5, 6, 7,
                                 8, 9, 10, 11, 12, 13, 14, 15};
#define ASN UINT64_C(0x123456789a)

/* ---- FCS ------------------------------------------------------------------ */

TEST(wpan_crc_known_values)
{
    uint8_t b[8] = {0x02, 0x00, 0x6a};
    /* CRC-16/KERMIT catalogue check value over "123456789". */
    CHECK_EQ(cj_wpan_crc16((const uint8_t *)"123456789", 9), 0x2189);
    /* The worked example of section 7.2.10: the acknowledgment MHR
     * b0..b23 = 0100 0000 0000 0000 0101 0110 (bytes 02 00 6a, bits sent
     * least significant first) gives r0..r15 = 0010 0111 1001 1110, i.e.
     * the bytes e4 79. */
    CHECK_EQ(cj_wpan_fcs_append(b, 3, sizeof b), 5);
    CHECK_HEX(b, 5, "02 00 6a e4 79");
    CHECK_EQ(cj_wpan_fcs_check(b, 5), 3);
    /* ACK 02 00 01 by hand with the shift register of Figure 7-3 (bits
     * of each byte fed least significant first, taps at x^5 and x^12):
     * the register ends at x^15..x^0 = 1000 1100 0010 0101, sent x^15
     * first = bytes 31 a4 (CRC value 0xa431). */
    b[2] = 0x01;
    CHECK_EQ(cj_wpan_crc16(b, 3), 0xa431);
    CHECK_EQ(cj_wpan_fcs_append(b, 3, sizeof b), 5);
    CHECK_HEX(b, 5, "02 00 01 31 a4");
    b[4] ^= 1;
    CHECK_EQ(cj_wpan_fcs_check(b, 5), CJ_ERR_MALFORMED);
    CHECK_EQ(cj_wpan_fcs_check(b, 1), CJ_ERR_TRUNCATED);
    CHECK_EQ(cj_wpan_fcs_append(b, 3, 4), CJ_ERR_NOSPACE);
    CHECK_EQ(cj_wpan_fcs_append(b, 0, 1), CJ_ERR_NOSPACE);
}

/* Imm-Ack of the 2003 edition, the example above with its FCS. */
TEST(wpan_ack_2003_with_fcs)
{
    uint8_t b[8];
    cj_wpan_frame_t f;
    size_t n = cj_hex("02 00 6a e4 79", b, sizeof b);
    CHECK_EQ(cj_wpan_frame_decode(b, n, CJ_WPAN_DEC_FCS, &f), CJ_OK);
    CHECK_EQ(f.type, CJ_WPAN_TYPE_ACK);
    CHECK_EQ(f.version, CJ_WPAN_VERSION_2003);
    CHECK_EQ(f.seq, 0x6a);
    CHECK_EQ(f.dst_mode, CJ_WPAN_ADDR_NONE);
    CHECK_EQ(f.src_mode, CJ_WPAN_ADDR_NONE);
    CHECK(!f.has_dst_pan && !f.has_src_pan && !f.ignored);
    CHECK_EQ(f.payload_len, 0);
    b[2] = 0x6b; /* FCS no longer matches */
    CHECK_EQ(cj_wpan_frame_decode(b, n, CJ_WPAN_DEC_FCS, &f),
             CJ_ERR_MALFORMED);
    for (size_t i = 0; i < 2; i++)
        CHECK_EQ(cj_wpan_frame_decode(b, i, 0, &f), CJ_ERR_TRUNCATED);
    CHECK_EQ(cj_wpan_frame_decode(b, 2, 0, &f), CJ_ERR_TRUNCATED); /* seq */
}

/* Enhanced Acknowledgment with the Time Correction Header IE (RFC 8180
 * Appendix A.3). */
TEST(wpan_enh_ack)
{
    static const char *hex =
        "42 2e"                    /* FC: ack, PAN ID comp, IE present,
                                      dst extended, version 2, no src */
        "2a"                       /* sequence number */
        "04 03 02 01 00 4b 12 00"  /* dst 00-12-4b-00-01-02-03-04 */
        "02 0f 10 00";             /* Header IE len 2, ID 0x1e: 0x0010 */
    uint8_t b[64], ie_buf[8], out[64];
    size_t n = cj_hex(hex, b, sizeof b);
    cj_wpan_frame_t f, g;
    cj_wpan_ie_iter_t it;
    cj_wpan_ie_t ie;
    cj_wpan_enc_t e;
    static const uint8_t ts[2] = {0x10, 0x00};

    CHECK_EQ(cj_wpan_frame_decode(b, n, 0, &f), CJ_OK);
    CHECK_EQ(f.type, CJ_WPAN_TYPE_ACK);
    CHECK(f.ie_present && f.panid_comp && !f.has_dst_pan && !f.ignored);
    CHECK_MEM(f.dst.ext, 8, SRC_EXT, 8);
    CHECK_EQ(f.hie_len, 4);
    CHECK_EQ(f.open_len, n);
    cj_wpan_ie_iter_init(&it, f.hie, f.hie_len);
    CHECK_EQ(cj_wpan_hie_next(&it, &ie), 1);
    CHECK_EQ(ie.id, CJ_WPAN_HIE_TIME_CORRECTION);
    CHECK_HEX(ie.content, ie.len, "10 00");
    CHECK_EQ(cj_wpan_hie_next(&it, &ie), 0);

    cj_wpan_enc_init(&e, ie_buf, sizeof ie_buf);
    cj_wpan_put_hie(&e, CJ_WPAN_HIE_TIME_CORRECTION, ts, 2);
    CHECK_EQ(cj_wpan_enc_finish(&e), 4);
    memset(&g, 0, sizeof g);
    g.type = CJ_WPAN_TYPE_ACK;
    g.version = CJ_WPAN_VERSION_2015;
    g.panid_comp = true;
    g.seq = 0x2a;
    g.dst_mode = CJ_WPAN_ADDR_EXT;
    memcpy(g.dst.ext, SRC_EXT, 8);
    g.hie = ie_buf;
    g.hie_len = 4;
    CHECK_EQ(cj_wpan_frame_encode(&g, out, sizeof out), (int)n);
    CHECK_MEM(out, n, b, n);
    CHECK_EQ(cj_wpan_frame_encode(&g, NULL, 0), (int)n);
    for (size_t i = 0; i < n; i++)
        CHECK_EQ(cj_wpan_frame_encode(&g, out, i), CJ_ERR_NOSPACE);
}

/* ---- Enhanced Beacon -------------------------------------------------- */

/* RFC 8180 Appendix A.1 with a MAC header (section 4.5.1: version 2,
 * dst 0xffff, dst PAN present, src PAN elided) and the RFC 9032 IE. */
static const char *EB_HEX =
    "40 ea"                   /* FC: beacon, PAN ID comp, IE present, dst
                                 short, version 2, src extended */
    "2a"                      /* sequence number */
    "fe ca"                   /* dst PAN 0xcafe */
    "ff ff"                   /* dst 0xffff (broadcast) */
    "04 03 02 01 00 4b 12 00" /* src 00-12-4b-00-01-02-03-04 */
    "00 3f"                   /* HT1: len 0, ID 0x7e, type 0 */
    "1a 88"                   /* Payload IE: len 26, group 1 (MLME) */
    "06 1a"                   /*  sub-IE short: len 6, ID 0x1a (Sync) */
    "05 04 03 02 01"          /*   ASN 0x0102030405 */
    "00"                      /*   join metric 0 */
    "01 1c 00"                /*  len 1, ID 0x1c (Timeslot): template 0 */
    "01 c8 00"                /*  long: len 1, ID 9 (Hopping): seq 0 */
    "0a 1b"                   /*  len 10, ID 0x1b (Slotframe and Link) */
    "01"                      /*   1 slotframe */
    "00 65 00"                /*   handle 0, size 101 */
    "01"                      /*   1 link */
    "00 00 00 00 0f"          /*   slot 0, channel offset 0, options
                                   TX|RX|shared|timekeeping */
    "15 a8"                   /* Payload IE: len 21, group 5 (IETF) */
    "02"                      /*  subtype 2: 6TiSCH Join Info */
    "c0 51 23"                /*  R=1 P=1 res=0 proxy=0x05 rank=0x123 */
    "01"                      /*  PAN priority 1 */
    "02 12 4b 00 01 02 03 04" /*  Join Proxy IID */
    "de ad be ef 01 02 03 04";/*  network ID (8 bytes) */

static const uint8_t EB_IID[8] = {0x02, 0x12, 0x4b, 0x00, 1, 2, 3, 4};
static const uint8_t EB_NETID[8] = {0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4};

static void eb_fill(cj_wpan_eb_t *eb)
{
    memset(eb, 0, sizeof *eb);
    eb->has_sync = true;
    eb->asn = UINT64_C(0x0102030405);
    eb->has_timeslot = eb->has_hopping = eb->has_slotframes = true;
    eb->slotframe_count = 1;
    eb->slotframes[0].size = 101;
    eb->slotframes[0].link_count = 1;
    eb->slotframes[0].links[0].options =
        CJ_WPAN_LINK_TX | CJ_WPAN_LINK_RX | CJ_WPAN_LINK_SHARED |
        CJ_WPAN_LINK_TIMEKEEPING;
    eb->has_join_info = true;
    eb->join_info.router = true;
    eb->join_info.proxy_prio = 5;
    eb->join_info.rank_prio = 0x123;
    eb->join_info.pan_prio = 1;
    eb->join_info.jp_iid = EB_IID;
    eb->join_info.network_id = EB_NETID;
    eb->join_info.network_id_len = 8;
}

static void eb_frame(cj_wpan_frame_t *f, const uint8_t *pie, size_t pie_len)
{
    memset(f, 0, sizeof *f);
    f->type = CJ_WPAN_TYPE_BEACON;
    f->version = CJ_WPAN_VERSION_2015;
    f->panid_comp = true;
    f->seq = 0x2a;
    f->dst_mode = CJ_WPAN_ADDR_SHORT;
    f->src_mode = CJ_WPAN_ADDR_EXT;
    f->dst_pan = 0xcafe;
    f->dst.short_addr = CJ_WPAN_BROADCAST;
    memcpy(f->src.ext, SRC_EXT, 8);
    f->pie = pie;
    f->pie_len = pie_len;
}

TEST(wpan_eb_minimal_encode)
{
    uint8_t want[128], pie[64], out[128];
    size_t n = cj_hex(EB_HEX, want, sizeof want);
    cj_wpan_eb_t eb;
    cj_wpan_enc_t e;
    cj_wpan_frame_t f;
    int m;

    CHECK_EQ(n, 68);
    eb_fill(&eb);
    cj_wpan_enc_init(&e, NULL, 0);
    cj_wpan_put_eb(&e, &eb);
    CHECK_EQ(cj_wpan_enc_finish(&e), 51);
    cj_wpan_enc_init(&e, pie, sizeof pie);
    cj_wpan_put_eb(&e, &eb);
    m = cj_wpan_enc_finish(&e);
    CHECK_EQ(m, 51);
    CHECK_MEM(pie, (size_t)m, want + 17, 51);
    eb_frame(&f, pie, (size_t)m);
    CHECK_EQ(cj_wpan_frame_encode(&f, out, sizeof out), (int)n);
    CHECK_MEM(out, n, want, n);
    /* too small a buffer for the IEs */
    cj_wpan_enc_init(&e, pie, 50);
    cj_wpan_put_eb(&e, &eb);
    CHECK_EQ(cj_wpan_enc_finish(&e), CJ_ERR_NOSPACE);
}

TEST(wpan_eb_minimal_decode)
{
    uint8_t b[128];
    size_t n = cj_hex(EB_HEX, b, sizeof b);
    cj_wpan_frame_t f;
    cj_wpan_eb_t eb;

    CHECK_EQ(cj_wpan_frame_decode(b, n, 0, &f), CJ_OK);
    CHECK_EQ(f.type, CJ_WPAN_TYPE_BEACON);
    CHECK_EQ(f.version, CJ_WPAN_VERSION_2015);
    CHECK(f.panid_comp && f.ie_present && f.has_dst_pan && !f.has_src_pan);
    CHECK(!f.security && !f.ack_request && !f.frame_pending && !f.ignored);
    CHECK_EQ(f.seq, 0x2a);
    CHECK_EQ(f.dst_pan, 0xcafe);
    CHECK_EQ(f.dst.short_addr, 0xffff);
    CHECK_MEM(f.src.ext, 8, SRC_EXT, 8);
    CHECK_EQ(f.hie_len, 0);
    CHECK(f.pie == b + 17);
    CHECK_EQ(f.pie_len, 51);
    CHECK_EQ(f.payload_len, 0);
    CHECK_EQ(f.open_len, 17);

    CHECK_EQ(cj_wpan_eb_decode(&f, &eb), CJ_OK);
    CHECK(eb.has_sync && eb.has_timeslot && eb.has_hopping &&
          eb.has_slotframes && eb.has_join_info);
    CHECK(eb.asn == UINT64_C(0x0102030405));
    CHECK_EQ(eb.join_metric, 0);
    CHECK_EQ(eb.timeslot_id, 0);
    CHECK_EQ(eb.hopping_id, 0);
    CHECK_EQ(eb.slotframe_count, 1);
    CHECK_EQ(eb.slotframes[0].handle, 0);
    CHECK_EQ(eb.slotframes[0].size, 101);
    CHECK_EQ(eb.slotframes[0].link_count, 1);
    CHECK_EQ(eb.slotframes[0].links[0].timeslot, 0);
    CHECK_EQ(eb.slotframes[0].links[0].channel_offset, 0);
    CHECK_EQ(eb.slotframes[0].links[0].options, 0x0f);
    CHECK(eb.join_info.router);
    CHECK_EQ(eb.join_info.proxy_prio, 5);
    CHECK_EQ(eb.join_info.rank_prio, 0x123);
    CHECK_EQ(eb.join_info.pan_prio, 1);
    CHECK(eb.join_info.jp_iid == b + 17 + 28 + 7);
    CHECK_MEM(eb.join_info.jp_iid, 8, EB_IID, 8);
    CHECK_MEM(eb.join_info.network_id, eb.join_info.network_id_len,
              EB_NETID, 8);
}

/* Every prefix either ends on an IE boundary (and decodes) or fails
 * with CJ_ERR_TRUNCATED. */
TEST(wpan_eb_truncation)
{
    uint8_t b[128];
    size_t n = cj_hex(EB_HEX, b, sizeof b);
    cj_wpan_frame_t f;
    for (size_t i = 0; i < n; i++) {
        int rc = cj_wpan_frame_decode(b, i, 0, &f);
        if (i == 15 || i == 17 || i == 45)
            CHECK_EQ(rc, CJ_OK);
        else
            CHECK_EQ(rc, CJ_ERR_TRUNCATED);
    }
    /* at 15 the IE Present bit announces nothing, at 17 HT1 announces no
     * Payload IE: both legal, neither what the encoder writes */
    CHECK_EQ(cj_wpan_frame_decode(b, 15, 0, &f), CJ_OK);
    CHECK(f.ignored);
    CHECK_EQ(cj_wpan_frame_decode(b, 17, 0, &f), CJ_OK);
    CHECK(f.ignored);
    CHECK_EQ(cj_wpan_frame_decode(b, 45, 0, &f), CJ_OK);
    CHECK(!f.ignored);
}

/* The Join Info first word, read literally from RFC 9032 Figure 1. */
TEST(wpan_join_info_bits)
{
    uint8_t b[32];
    cj_wpan_join_info_t ji, d;
    cj_wpan_enc_t e;
    memset(&ji, 0, sizeof ji);
    ji.proxy_prio = 0x7f;
    ji.rank_prio = 0xfff;
    ji.pan_prio = 0xff;
    cj_wpan_enc_init(&e, b, sizeof b);
    cj_wpan_put_join_info(&e, &ji);
    CHECK_EQ(cj_wpan_enc_finish(&e), 7);
    /* len 5, group 5 | subtype | R0 P0 res000 proxy 111 | 1111 rank 1111
     * | rank 11111111 | PAN priority, no IID, empty network ID */
    CHECK_HEX(b, 7, "05 a8 02 07 ff ff ff");
    CHECK_EQ(cj_wpan_join_info_decode(b + 2, 5, &d), CJ_OK);
    CHECK(!d.router && d.jp_iid == NULL && d.network_id_len == 0);
    CHECK_EQ(d.proxy_prio, 0x7f);
    CHECK_EQ(d.rank_prio, 0xfff);
    CHECK_EQ(d.pan_prio, 0xff);
    /* reserved bits are ignored on receipt */
    b[3] |= 0x38;
    CHECK_EQ(cj_wpan_join_info_decode(b + 2, 5, &d), CJ_OK);
    CHECK_EQ(d.proxy_prio, 0x7f);
    /* range checks in the encoder */
    ji.proxy_prio = 0x80;
    cj_wpan_enc_init(&e, b, sizeof b);
    cj_wpan_put_join_info(&e, &ji);
    CHECK_EQ(cj_wpan_enc_finish(&e), CJ_ERR_RANGE);
    ji.proxy_prio = 0;
    ji.rank_prio = 0x1000;
    cj_wpan_enc_init(&e, b, sizeof b);
    cj_wpan_put_join_info(&e, &ji);
    CHECK_EQ(cj_wpan_enc_finish(&e), CJ_ERR_RANGE);
    ji.rank_prio = 0;
    ji.network_id = b;
    ji.network_id_len = 17;
    cj_wpan_enc_init(&e, b, sizeof b);
    cj_wpan_put_join_info(&e, &ji);
    CHECK_EQ(cj_wpan_enc_finish(&e), CJ_ERR_RANGE);
    ji.network_id = NULL;
    ji.network_id_len = 1;
    cj_wpan_enc_init(&e, b, sizeof b);
    cj_wpan_put_join_info(&e, &ji);
    CHECK_EQ(cj_wpan_enc_finish(&e), CJ_ERR_INVALID);
}

TEST(wpan_join_info_decode_errors)
{
    uint8_t c[32];
    cj_wpan_join_info_t ji;
    size_t n = cj_hex("02 40 00 00 00 01 02 03 04 05 06 07", c, sizeof c);
    /* P set but only 7 IID bytes */
    CHECK_EQ(cj_wpan_join_info_decode(c, n, &ji), CJ_ERR_TRUNCATED);
    CHECK_EQ(cj_wpan_join_info_decode(c, 13, &ji), CJ_OK);
    for (size_t i = 0; i < 5; i++)
        CHECK_EQ(cj_wpan_join_info_decode(c, i, &ji), CJ_ERR_TRUNCATED);
    c[0] = 1; /* not subtype 2 */
    CHECK_EQ(cj_wpan_join_info_decode(c, 13, &ji), CJ_ERR_MALFORMED);
    c[0] = 2;
    c[1] = 0; /* no IID: 27 - 5 = 22 bytes of network ID is too many */
    memset(c + 5, 0xaa, 22);
    CHECK_EQ(cj_wpan_join_info_decode(c, 22, &ji), CJ_ERR_MALFORMED);
    CHECK_EQ(cj_wpan_join_info_decode(c, 21, &ji), CJ_OK);
    CHECK_EQ(ji.network_id_len, 16);
}

/* ---- data frames and the PAN ID compression table --------------------- */

/* Table 7-2 of 802.15.4-2015, one data frame per row (plus the rows
 * with one extended address).  Fields: FC, seq 55, [dst PAN abcd],
 * [dst 1234 | 0011223344556677], [src PAN ef01], [src 5678 |
 * 8899aabbccddeeff], payload aa bb. */
static const struct {
    uint8_t dm, sm;
    bool comp, dpan, span;
    const char *hex;
} PAN_ROWS[] = {
    {0, 0, 0, 0, 0, "01 20 55 aa bb"},
    {0, 0, 1, 1, 0, "41 20 55 cd ab aa bb"},
    {2, 0, 0, 1, 0, "01 28 55 cd ab 34 12 aa bb"},
    {2, 0, 1, 0, 0, "41 28 55 34 12 aa bb"},
    {3, 0, 0, 1, 0, "01 2c 55 cd ab 77 66 55 44 33 22 11 00 aa bb"},
    {3, 0, 1, 0, 0, "41 2c 55 77 66 55 44 33 22 11 00 aa bb"},
    {0, 2, 0, 0, 1, "01 a0 55 01 ef 78 56 aa bb"},
    {0, 2, 1, 0, 0, "41 a0 55 78 56 aa bb"},
    {0, 3, 0, 0, 1, "01 e0 55 01 ef ff ee dd cc bb aa 99 88 aa bb"},
    {0, 3, 1, 0, 0, "41 e0 55 ff ee dd cc bb aa 99 88 aa bb"},
    {3, 3, 0, 1, 0, "01 ec 55 cd ab 77 66 55 44 33 22 11 00"
                    " ff ee dd cc bb aa 99 88 aa bb"},
    {3, 3, 1, 0, 0, "41 ec 55 77 66 55 44 33 22 11 00"
                    " ff ee dd cc bb aa 99 88 aa bb"},
    {2, 2, 0, 1, 1, "01 a8 55 cd ab 34 12 01 ef 78 56 aa bb"},
    {2, 3, 0, 1, 1, "01 e8 55 cd ab 34 12 01 ef"
                    " ff ee dd cc bb aa 99 88 aa bb"},
    {3, 2, 0, 1, 1, "01 ac 55 cd ab 77 66 55 44 33 22 11 00 01 ef 78 56"
                    " aa bb"},
    {2, 3, 1, 1, 0, "41 e8 55 cd ab 34 12 ff ee dd cc bb aa 99 88 aa bb"},
    {3, 2, 1, 1, 0, "41 ac 55 cd ab 77 66 55 44 33 22 11 00 78 56 aa bb"},
    {2, 2, 1, 1, 0, "41 a8 55 cd ab 34 12 78 56 aa bb"},
};

TEST(wpan_data_panid_compression)
{
    static const uint8_t dext[8] = {0x00, 0x11, 0x22, 0x33,
                                    0x44, 0x55, 0x66, 0x77};
    static const uint8_t sext[8] = {0x88, 0x99, 0xaa, 0xbb,
                                    0xcc, 0xdd, 0xee, 0xff};
    static const uint8_t pl[2] = {0xaa, 0xbb};
    for (size_t r = 0; r < sizeof PAN_ROWS / sizeof PAN_ROWS[0]; r++) {
        uint8_t want[64], out[64];
        size_t n = cj_hex(PAN_ROWS[r].hex, want, sizeof want);
        cj_wpan_frame_t f, d;
        bool hd, hs;

        CHECK_EQ(cj_wpan_pan_ids(2, PAN_ROWS[r].dm, PAN_ROWS[r].sm,
                                 PAN_ROWS[r].comp, &hd, &hs), CJ_OK);
        CHECK_EQ(hd, PAN_ROWS[r].dpan);
        CHECK_EQ(hs, PAN_ROWS[r].span);
        memset(&f, 0, sizeof f);
        f.type = CJ_WPAN_TYPE_DATA;
        f.version = CJ_WPAN_VERSION_2015;
        f.panid_comp = PAN_ROWS[r].comp;
        f.seq = 0x55;
        f.dst_mode = PAN_ROWS[r].dm;
        f.src_mode = PAN_ROWS[r].sm;
        f.dst_pan = 0xabcd;
        f.src_pan = 0xef01;
        f.dst.short_addr = 0x1234;
        f.src.short_addr = 0x5678;
        memcpy(f.dst.ext, dext, 8);
        memcpy(f.src.ext, sext, 8);
        f.payload = pl;
        f.payload_len = 2;
        CHECK_EQ(cj_wpan_frame_encode(&f, out, sizeof out), (int)n);
        CHECK_MEM(out, n, want, n);

        CHECK_EQ(cj_wpan_frame_decode(want, n, 0, &d), CJ_OK);
        CHECK(!d.ignored && !d.ie_present);
        CHECK_EQ(d.has_dst_pan, PAN_ROWS[r].dpan);
        CHECK_EQ(d.has_src_pan, PAN_ROWS[r].span);
        if (d.has_dst_pan)
            CHECK_EQ(d.dst_pan, 0xabcd);
        if (d.has_src_pan)
            CHECK_EQ(d.src_pan, 0xef01);
        if (d.dst_mode == CJ_WPAN_ADDR_SHORT)
            CHECK_EQ(d.dst.short_addr, 0x1234);
        if (d.dst_mode == CJ_WPAN_ADDR_EXT)
            CHECK_MEM(d.dst.ext, 8, dext, 8);
        if (d.src_mode == CJ_WPAN_ADDR_SHORT)
            CHECK_EQ(d.src.short_addr, 0x5678);
        if (d.src_mode == CJ_WPAN_ADDR_EXT)
            CHECK_MEM(d.src.ext, 8, sext, 8);
        CHECK_HEX(d.payload, d.payload_len, "aa bb");
        /* the header truncated anywhere fails; the payload has no length
         * field, so a shorter payload is still a frame */
        for (size_t i = 0; i < n - 2; i++)
            CHECK_EQ(cj_wpan_frame_decode(want, i, 0, &d), CJ_ERR_TRUNCATED);
        CHECK_EQ(cj_wpan_frame_decode(want, n - 1, 0, &d), CJ_OK);
        CHECK_EQ(d.payload_len, 1);
        /* with an FCS every truncation fails */
        CHECK_EQ(cj_wpan_fcs_append(want, n, sizeof want), (int)n + 2);
        CHECK_EQ(cj_wpan_frame_decode(want, n + 2, CJ_WPAN_DEC_FCS, &d),
                 CJ_OK);
        for (size_t i = 0; i < n + 2; i++)
            CHECK(cj_wpan_frame_decode(want, i, CJ_WPAN_DEC_FCS, &d) < 0);
    }
}

/* Frame versions 0 and 1 (2006 section 7.2.1.1.5). */
TEST(wpan_data_2006)
{
    uint8_t b[64];
    cj_wpan_frame_t f;
    bool hd, hs;
    /* 2003 data frame, AR, PAN ID comp, short/short: dst PAN only */
    size_t n = cj_hex("61 88 55 cd ab 34 12 78 56 aa", b, sizeof b);
    CHECK_EQ(cj_wpan_frame_decode(b, n, 0, &f), CJ_OK);
    CHECK(f.ack_request && f.has_dst_pan && !f.has_src_pan && !f.ignored);
    CHECK_EQ(f.version, 0);
    CHECK_EQ(f.src.short_addr, 0x5678);
    /* version 1, extended/extended with PAN ID comp: the 2006 rule keeps
     * the dst PAN, as the 2015 table does */
    n = cj_hex("41 dc 55 cd ab 77 66 55 44 33 22 11 00"
               " ff ee dd cc bb aa 99 88", b, sizeof b);
    CHECK_EQ(cj_wpan_frame_decode(b, n, 0, &f), CJ_OK);
    CHECK(f.has_dst_pan && !f.has_src_pan);
    CHECK_EQ(f.version, 1);
    /* but extended/extended without the bit carries both PAN IDs in
     * 2006, only the dst PAN in 2015 */
    CHECK_EQ(cj_wpan_pan_ids(1, 3, 3, false, &hd, &hs), CJ_OK);
    CHECK(hd && hs);
    CHECK_EQ(cj_wpan_pan_ids(2, 3, 3, false, &hd, &hs), CJ_OK);
    CHECK(hd && !hs);
    /* PAN ID comp without both addresses is not allowed in 2006 */
    n = cj_hex("41 18 55 cd ab 34 12", b, sizeof b);
    CHECK_EQ(cj_wpan_frame_decode(b, n, 0, &f), CJ_ERR_MALFORMED);
    CHECK_EQ(cj_wpan_pan_ids(1, 0, 0, true, &hd, &hs), CJ_ERR_MALFORMED);
    /* the 2015 bits SNS and IE present are reserved there: ignored */
    n = cj_hex("01 1b 55 cd ab 34 12 aa", b, sizeof b);
    CHECK_EQ(cj_wpan_frame_decode(b, n, 0, &f), CJ_OK);
    CHECK(f.ignored && !f.seq_suppressed && !f.ie_present);
    CHECK_EQ(f.payload_len, 1);
    /* 2003 security is not the 2006/2015 auxiliary header */
    n = cj_hex("09 08 55 cd ab 34 12", b, sizeof b);
    CHECK_EQ(cj_wpan_frame_decode(b, n, 0, &f), CJ_ERR_UNSUPPORTED);
    /* the encoder writes 2015 frames only */
    memset(&f, 0, sizeof f);
    f.type = CJ_WPAN_TYPE_DATA;
    f.version = 1;
    CHECK_EQ(cj_wpan_frame_encode(&f, b, sizeof b), CJ_ERR_INVALID);
}

/* A command frame with suppressed sequence number, frame pending and
 * Header IEs followed by a MAC payload (HT2). */
TEST(wpan_cmd_ht2)
{
    static const char *hex =
        "13 a3"        /* FC: command, frame pending, SNS, IE present,
                          dst none, version 2, src short; comp 0 */
        "01 ef 78 56"  /* src PAN 0xef01, src 0x5678 */
        "01 0f 09"     /* Header IE len 1, ID 0x1e */
        "80 3f"        /* HT2: len 0, ID 0x7f */
        "04 aa";       /* MAC payload: command ID 4, one byte */
    uint8_t b[32], out[32];
    size_t n = cj_hex(hex, b, sizeof b);
    cj_wpan_frame_t f;
    CHECK_EQ(cj_wpan_frame_decode(b, n, 0, &f), CJ_OK);
    CHECK(f.seq_suppressed && f.frame_pending && !f.has_dst_pan &&
          f.has_src_pan && !f.ignored);
    CHECK_EQ(f.type, CJ_WPAN_TYPE_CMD);
    CHECK_HEX(f.hie, f.hie_len, "01 0f 09");
    CHECK_EQ(f.pie_len, 0);
    CHECK_HEX(f.payload, f.payload_len, "04 aa");
    CHECK_EQ(cj_wpan_frame_encode(&f, out, sizeof out), (int)n);
    CHECK_MEM(out, n, b, n);
    /* HT2 without a payload after it: legal, not what we write */
    CHECK_EQ(cj_wpan_frame_decode(b, n - 2, 0, &f), CJ_OK);
    CHECK(f.ignored);
    CHECK_EQ(cj_wpan_frame_encode(&f, out, sizeof out), (int)n - 4);
}

/* Payload IEs followed by a MAC payload need PT. */
TEST(wpan_data_pie_pt)
{
    static const char *hex =
        "01 22"        /* FC: data, IE present, no addresses, version 2 */
        "09"           /* seq */
        "00 3f"        /* HT1 */
        "02 80 aa bb"  /* Payload IE group 0 (ESDU), len 2 */
        "00 f8"        /* PT: len 0, group 0xf */
        "cc";          /* MAC payload */
    uint8_t b[32], out[32];
    size_t n = cj_hex(hex, b, sizeof b);
    cj_wpan_frame_t f;
    cj_wpan_ie_iter_t it;
    cj_wpan_ie_t ie;
    CHECK_EQ(cj_wpan_frame_decode(b, n, 0, &f), CJ_OK);
    CHECK(!f.ignored);
    CHECK_EQ(f.hie_len, 0);
    CHECK_HEX(f.pie, f.pie_len, "02 80 aa bb");
    CHECK_HEX(f.payload, f.payload_len, "cc");
    cj_wpan_ie_iter_init(&it, f.pie, f.pie_len);
    CHECK_EQ(cj_wpan_pie_next(&it, &ie), 1);
    CHECK_EQ(ie.id, CJ_WPAN_PIE_ESDU);
    CHECK_HEX(ie.content, ie.len, "aa bb");
    CHECK_EQ(cj_wpan_pie_next(&it, &ie), 0);
    CHECK_EQ(cj_wpan_frame_encode(&f, out, sizeof out), (int)n);
    CHECK_MEM(out, n, b, n);
    /* PT at the very end: legal, flagged */
    CHECK_EQ(cj_wpan_frame_decode(b, n - 1, 0, &f), CJ_OK);
    CHECK(f.ignored);
    /* a reserved frame control bit is ignored and flagged */
    b[0] |= 0x80;
    CHECK_EQ(cj_wpan_frame_decode(b, n, 0, &f), CJ_OK);
    CHECK(f.ignored);
}

/* ---- decoder error paths ---------------------------------------------- */

static int dec(const char *hex)
{
    uint8_t b[128];
    cj_wpan_frame_t f;
    size_t n = cj_hex(hex, b, sizeof b);
    return cj_wpan_frame_decode(b, n, 0, &f);
}

TEST(wpan_decode_errors)
{
    cj_wpan_frame_t f;
    CHECK_EQ(cj_wpan_frame_decode(NULL, 0, 0, &f), CJ_ERR_TRUNCATED);
    CHECK_EQ(cj_wpan_frame_decode(NULL, 1, 0, &f), CJ_ERR_INVALID);
    CHECK_EQ(dec("01"), CJ_ERR_TRUNCATED);
    /* frame types 4-7 (multipurpose, fragment, extended, reserved) */
    CHECK_EQ(dec("04 20 00"), CJ_ERR_UNSUPPORTED);
    CHECK_EQ(dec("05 20 00"), CJ_ERR_UNSUPPORTED);
    CHECK_EQ(dec("07 20 00"), CJ_ERR_UNSUPPORTED);
    /* frame version 3 */
    CHECK_EQ(dec("01 30 00"), CJ_ERR_UNSUPPORTED);
    /* addressing mode 1 is reserved, dst or src */
    CHECK_EQ(dec("01 24 00 00 00 00"), CJ_ERR_MALFORMED);
    CHECK_EQ(dec("01 60 00 00 00 00"), CJ_ERR_MALFORMED);
    /* truncated seq, dst PAN, dst addr, src PAN, src addr */
    CHECK_EQ(dec("01 e8"), CJ_ERR_TRUNCATED);
    CHECK_EQ(dec("01 e8 00 01"), CJ_ERR_TRUNCATED);
    CHECK_EQ(dec("01 e8 00 01 02 03"), CJ_ERR_TRUNCATED);
    CHECK_EQ(dec("01 e8 00 01 02 03 04 05"), CJ_ERR_TRUNCATED);
    CHECK_EQ(dec("01 e8 00 01 02 03 04 05 06 01 02 03 04 05 06 07"),
             CJ_ERR_TRUNCATED);
    /* secured, SNS, no addresses: security control missing */
    CHECK_EQ(dec("09 21"), CJ_ERR_TRUNCATED);
    /* frame counter cut (level 5, key id mode 0, counter present) */
    CHECK_EQ(dec("09 21 05 01 02"), CJ_ERR_TRUNCATED);
    /* key id mode 3: 8-byte key source and index cut */
    CHECK_EQ(dec("09 21 3d 01 02 03 04 05 06 07 08"), CJ_ERR_TRUNCATED);
    /* key id mode 2: 4-byte source then the index */
    CHECK_EQ(dec("09 21 35 01 02 03"), CJ_ERR_TRUNCATED);
    /* key id mode 1 */
    CHECK_EQ(dec("09 21 2d"), CJ_ERR_TRUNCATED);
    /* MIC-32 announced, 3 bytes left */
    CHECK_EQ(dec("09 21 69 01 aa bb cc"), CJ_ERR_TRUNCATED);
    CHECK_EQ(dec("09 21 69 01 aa bb cc dd"), CJ_OK);
    /* MIC-128 announced, 15 bytes left */
    CHECK_EQ(dec("09 21 6b 01 00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e"),
             CJ_ERR_TRUNCATED);
    /* Header IE descriptor cut; content cut */
    CHECK_EQ(dec("01 23 3f"), CJ_ERR_TRUNCATED);
    CHECK_EQ(dec("01 23 02 0f 00"), CJ_ERR_TRUNCATED);
    /* a Payload IE where a Header IE must be (no HT1) */
    CHECK_EQ(dec("01 23 00 80"), CJ_ERR_MALFORMED);
    /* HT1 / HT2 with content */
    CHECK_EQ(dec("01 23 01 3f 00"), CJ_ERR_MALFORMED);
    CHECK_EQ(dec("01 23 81 3f 00"), CJ_ERR_MALFORMED);
    /* after HT1: a Header IE, a cut descriptor, cut content, PT with
     * content */
    CHECK_EQ(dec("01 23 00 3f 00 0f"), CJ_ERR_MALFORMED);
    CHECK_EQ(dec("01 23 00 3f 00"), CJ_ERR_TRUNCATED);
    CHECK_EQ(dec("01 23 00 3f 02 88 00"), CJ_ERR_TRUNCATED);
    CHECK_EQ(dec("01 23 00 3f 01 f8 00"), CJ_ERR_MALFORMED);
    /* FCS flag with a wrong FCS */
    {
        uint8_t b[4] = {0x02, 0x00, 0x01, 0x00};
        CHECK_EQ(cj_wpan_frame_decode(b, 4, CJ_WPAN_DEC_FCS, &f),
                 CJ_ERR_MALFORMED);
        CHECK_EQ(cj_wpan_frame_decode(b, 1, CJ_WPAN_DEC_FCS, &f),
                 CJ_ERR_TRUNCATED);
    }
}

TEST(wpan_iterator_errors)
{
    uint8_t b[16];
    cj_wpan_ie_iter_t it;
    cj_wpan_ie_t ie;
    size_t n = cj_hex("02 0f 00", b, sizeof b);
    cj_wpan_ie_iter_init(&it, b, n);
    CHECK_EQ(cj_wpan_hie_next(&it, &ie), CJ_ERR_TRUNCATED);
    cj_wpan_ie_iter_init(&it, b, 1);
    CHECK_EQ(cj_wpan_hie_next(&it, &ie), CJ_ERR_TRUNCATED);
    cj_wpan_ie_iter_init(&it, b, n);
    CHECK_EQ(cj_wpan_pie_next(&it, &ie), CJ_ERR_MALFORMED);
    n = cj_hex("00 80", b, sizeof b);
    cj_wpan_ie_iter_init(&it, b, n);
    CHECK_EQ(cj_wpan_hie_next(&it, &ie), CJ_ERR_MALFORMED);
    /* sub-IEs: short len 2 with one byte; long len 1 with none */
    n = cj_hex("02 1c 00", b, sizeof b);
    cj_wpan_ie_iter_init(&it, b, n);
    CHECK_EQ(cj_wpan_sub_ie_next(&it, &ie), CJ_ERR_TRUNCATED);
    n = cj_hex("01 c8", b, sizeof b);
    cj_wpan_ie_iter_init(&it, b, n);
    CHECK_EQ(cj_wpan_sub_ie_next(&it, &ie), CJ_ERR_TRUNCATED);
    cj_wpan_ie_iter_init(&it, b, 1);
    CHECK_EQ(cj_wpan_sub_ie_next(&it, &ie), CJ_ERR_TRUNCATED);
    cj_wpan_ie_iter_init(&it, NULL, 0);
    CHECK_EQ(cj_wpan_sub_ie_next(&it, &ie), 0);
}

TEST(wpan_ie_content_errors)
{
    uint8_t c[64];
    uint64_t asn;
    uint8_t v;
    size_t count;
    cj_wpan_slotframe_t sf[CJ_WPAN_MAX_SLOTFRAMES];
    size_t n;

    n = cj_hex("05 04 03 02 01 00 ff", c, sizeof c);
    CHECK_EQ(cj_wpan_sync_decode(c, 5, &asn, &v), CJ_ERR_TRUNCATED);
    CHECK_EQ(cj_wpan_sync_decode(c, n, &asn, &v), CJ_ERR_MALFORMED);
    CHECK_EQ(cj_wpan_sync_decode(c, 6, &asn, &v), CJ_OK);
    CHECK(asn == UINT64_C(0x0102030405));
    CHECK_EQ(cj_wpan_timeslot_decode(c, 0, &v), CJ_ERR_TRUNCATED);
    CHECK_EQ(cj_wpan_timeslot_decode(c, 25, &v), CJ_ERR_UNSUPPORTED);
    CHECK_EQ(cj_wpan_timeslot_decode(c, 1, &v), CJ_OK);
    CHECK_EQ(v, 5);
    CHECK_EQ(cj_wpan_hopping_decode(c, 0, &v), CJ_ERR_TRUNCATED);
    CHECK_EQ(cj_wpan_hopping_decode(c, 2, &v), CJ_ERR_UNSUPPORTED);

    /* 2 slotframes: handle 1 size 7 with 1 link, handle 2 size 11 with
     * 0 links */
    n = cj_hex("02 01 07 00 01 03 00 04 00 01 02 0b 00 00", c, sizeof c);
    CHECK_EQ(cj_wpan_slotframes_decode(c, n, sf, 2, &count), CJ_OK);
    CHECK_EQ(count, 2);
    CHECK_EQ(sf[0].links[0].timeslot, 3);
    CHECK_EQ(sf[0].links[0].channel_offset, 4);
    CHECK_EQ(sf[1].size, 11);
    CHECK_EQ(sf[1].link_count, 0);
    for (size_t i = 0; i < n; i++)
        CHECK_EQ(cj_wpan_slotframes_decode(c, i, sf, 2, &count),
                 CJ_ERR_TRUNCATED);
    CHECK_EQ(cj_wpan_slotframes_decode(c, n, sf, 1, &count), CJ_ERR_NOSPACE);
    c[n] = 0;
    CHECK_EQ(cj_wpan_slotframes_decode(c, n + 1, sf, 2, &count),
             CJ_ERR_MALFORMED);
    /* more links than CJ_WPAN_MAX_LINKS */
    memset(c, 0, sizeof c);
    c[0] = 1;
    c[4] = CJ_WPAN_MAX_LINKS + 1;
    CHECK_EQ(cj_wpan_slotframes_decode(c, 5 + 5 * (CJ_WPAN_MAX_LINKS + 1), sf,
                                       2, &count), CJ_ERR_NOSPACE);
}

/* cj_wpan_eb_decode over hand-made Payload IE lists. */
static int eb_of(const char *pie_hex, cj_wpan_eb_t *eb)
{
    static uint8_t b[128];
    cj_wpan_frame_t f;
    memset(&f, 0, sizeof f);
    f.pie = b;
    f.pie_len = cj_hex(pie_hex, b, sizeof b);
    return cj_wpan_eb_decode(&f, eb);
}

TEST(wpan_eb_decode_errors)
{
    cj_wpan_eb_t eb;
    cj_wpan_frame_t f;
    /* Sync twice */
    CHECK_EQ(eb_of("10 88 06 1a 00 00 00 00 00 00 06 1a 00 00 00 00 00 00",
                   &eb), CJ_ERR_MALFORMED);
    /* Timeslot twice, Hopping twice */
    CHECK_EQ(eb_of("06 88 01 1c 00 01 1c 00", &eb), CJ_ERR_MALFORMED);
    CHECK_EQ(eb_of("06 88 01 c8 00 01 c8 00", &eb), CJ_ERR_MALFORMED);
    /* Sync IE too short */
    CHECK_EQ(eb_of("07 88 05 1a 00 00 00 00 00", &eb), CJ_ERR_TRUNCATED);
    /* sub-IE runs past the MLME IE */
    CHECK_EQ(eb_of("03 88 06 1a 00", &eb), CJ_ERR_TRUNCATED);
    /* empty IETF IE: no subtype */
    CHECK_EQ(eb_of("00 a8", &eb), CJ_ERR_TRUNCATED);
    /* Join Info twice; bad Join Info */
    CHECK_EQ(eb_of("05 a8 02 00 00 00 00 05 a8 02 00 00 00 00", &eb),
             CJ_ERR_MALFORMED);
    CHECK_EQ(eb_of("04 a8 02 00 00 00", &eb), CJ_ERR_TRUNCATED);
    /* unknown IETF subtype, unknown sub-IEs (short 0x09 is not the long
     * Channel Hopping), another group: all skipped */
    CHECK_EQ(eb_of("02 a8 01 00 03 88 01 09 00 01 80 00", &eb), CJ_OK);
    CHECK(!eb.has_hopping && !eb.has_join_info);
    /* Slotframe and Link IE with trailing byte */
    CHECK_EQ(eb_of("04 88 02 1b 00 00", &eb), CJ_ERR_MALFORMED);
    /* an encrypted frame cannot be read */
    memset(&f, 0, sizeof f);
    f.encrypted = true;
    CHECK_EQ(cj_wpan_eb_decode(&f, &eb), CJ_ERR_INVALID);
}

/* ---- builder and encoder errors ---------------------------------------- */

TEST(wpan_builder_errors)
{
    uint8_t b[64], big[300];
    cj_wpan_enc_t e;
    cj_wpan_slotframe_t sf[1];
    memset(big, 0, sizeof big);
    memset(sf, 0, sizeof sf);

    cj_wpan_enc_init(&e, b, sizeof b);
    cj_wpan_put_hie(&e, 0x1e, big, 128);
    CHECK_EQ(cj_wpan_enc_finish(&e), CJ_ERR_RANGE);
    cj_wpan_enc_init(&e, b, sizeof b);
    cj_wpan_put_hie(&e, CJ_WPAN_HIE_HT1, NULL, 0);
    CHECK_EQ(cj_wpan_enc_finish(&e), CJ_ERR_INVALID);
    cj_wpan_enc_init(&e, b, sizeof b);
    cj_wpan_put_hie(&e, 0x1e, NULL, 1);
    CHECK_EQ(cj_wpan_enc_finish(&e), CJ_ERR_INVALID);
    cj_wpan_enc_init(&e, b, sizeof b);
    cj_wpan_put_pie(&e, CJ_WPAN_PIE_PT, NULL, 0);
    CHECK_EQ(cj_wpan_enc_finish(&e), CJ_ERR_INVALID);
    cj_wpan_enc_init(&e, NULL, 0);
    cj_wpan_put_pie(&e, 0, big, 2048);
    CHECK_EQ(cj_wpan_enc_finish(&e), CJ_ERR_RANGE);
    /* sub-IE outside an MLME IE; nested begin; end without begin; left
     * open; Header IE inside */
    cj_wpan_enc_init(&e, b, sizeof b);
    cj_wpan_put_timeslot(&e, 0);
    CHECK_EQ(cj_wpan_enc_finish(&e), CJ_ERR_INVALID);
    cj_wpan_enc_init(&e, b, sizeof b);
    cj_wpan_mlme_begin(&e);
    cj_wpan_mlme_begin(&e);
    CHECK_EQ(cj_wpan_enc_finish(&e), CJ_ERR_INVALID);
    cj_wpan_enc_init(&e, b, sizeof b);
    cj_wpan_mlme_end(&e);
    CHECK_EQ(cj_wpan_enc_finish(&e), CJ_ERR_INVALID);
    cj_wpan_enc_init(&e, b, sizeof b);
    cj_wpan_mlme_begin(&e);
    CHECK_EQ(cj_wpan_enc_finish(&e), CJ_ERR_INVALID);
    cj_wpan_put_hie(&e, 1, NULL, 0);
    cj_wpan_mlme_end(&e);
    CHECK_EQ(cj_wpan_enc_finish(&e), CJ_ERR_INVALID);
    /* sub-IE ID and length limits */
    cj_wpan_enc_init(&e, NULL, 0);
    cj_wpan_mlme_begin(&e);
    cj_wpan_put_sub_ie(&e, true, 16, NULL, 0);
    cj_wpan_mlme_end(&e);
    CHECK_EQ(cj_wpan_enc_finish(&e), CJ_ERR_INVALID);
    cj_wpan_enc_init(&e, NULL, 0);
    cj_wpan_mlme_begin(&e);
    cj_wpan_put_sub_ie(&e, false, 0x1a, big, 256);
    cj_wpan_mlme_end(&e);
    CHECK_EQ(cj_wpan_enc_finish(&e), CJ_ERR_RANGE);
    cj_wpan_enc_init(&e, NULL, 0);
    cj_wpan_mlme_begin(&e);
    cj_wpan_put_sync(&e, CJ_WPAN_MAX_ASN + 1, 0);
    cj_wpan_mlme_end(&e);
    CHECK_EQ(cj_wpan_enc_finish(&e), CJ_ERR_RANGE);
    cj_wpan_enc_init(&e, NULL, 0);
    cj_wpan_mlme_begin(&e);
    sf[0].link_count = CJ_WPAN_MAX_LINKS + 1;
    cj_wpan_put_slotframes(&e, sf, 1);
    cj_wpan_mlme_end(&e);
    CHECK_EQ(cj_wpan_enc_finish(&e), CJ_ERR_INVALID);
    /* MLME IE content over 2047 bytes */
    cj_wpan_enc_init(&e, NULL, 0);
    cj_wpan_mlme_begin(&e);
    for (int i = 0; i < 9; i++)
        cj_wpan_put_sub_ie(&e, false, 0x40, big, 255);
    cj_wpan_mlme_end(&e);
    CHECK_EQ(cj_wpan_enc_finish(&e), CJ_ERR_RANGE);
    /* long-form sub-IE and the size-only dry run */
    cj_wpan_enc_init(&e, b, sizeof b);
    cj_wpan_mlme_begin(&e);
    cj_wpan_put_sub_ie(&e, true, 0xa, big, 3);
    cj_wpan_mlme_end(&e);
    CHECK_EQ(cj_wpan_enc_finish(&e), 7);
    CHECK_HEX(b, 7, "05 88 03 d0 00 00 00");
}

TEST(wpan_encode_errors)
{
    uint8_t b[64];
    static const uint8_t bad_hie[3] = {0x02, 0x0f, 0x00}; /* cut */
    static const uint8_t ht1[2] = {0x00, 0x3f};
    cj_wpan_frame_t f;
    memset(&f, 0, sizeof f);
    f.version = CJ_WPAN_VERSION_2015;
    f.type = 4;
    CHECK_EQ(cj_wpan_frame_encode(&f, b, sizeof b), CJ_ERR_INVALID);
    f.type = CJ_WPAN_TYPE_DATA;
    f.dst_mode = 1;
    CHECK_EQ(cj_wpan_frame_encode(&f, b, sizeof b), CJ_ERR_INVALID);
    f.dst_mode = 0;
    f.security = true;
    f.sec.level = 8;
    CHECK_EQ(cj_wpan_frame_encode(&f, b, sizeof b), CJ_ERR_INVALID);
    f.sec.level = 5;
    f.sec.key_id_mode = 4;
    CHECK_EQ(cj_wpan_frame_encode(&f, b, sizeof b), CJ_ERR_INVALID);
    f.security = false;
    f.hie = bad_hie;
    f.hie_len = sizeof bad_hie;
    CHECK_EQ(cj_wpan_frame_encode(&f, b, sizeof b), CJ_ERR_INVALID);
    f.hie = ht1; /* termination IEs are not part of the list */
    f.hie_len = 2;
    CHECK_EQ(cj_wpan_frame_encode(&f, b, sizeof b), CJ_ERR_INVALID);
    f.hie_len = 0;
    f.pie = ht1; /* a Header IE in the Payload IE list */
    f.pie_len = 2;
    CHECK_EQ(cj_wpan_frame_encode(&f, b, sizeof b), CJ_ERR_INVALID);
    f.pie_len = 0;
    f.payload_len = 1;
    CHECK_EQ(cj_wpan_frame_encode(&f, b, sizeof b), CJ_ERR_INVALID);
    f.payload_len = 0;
    CHECK_EQ(cj_wpan_frame_encode(&f, b, sizeof b), 3);
    CHECK_HEX(b, 3, "01 20 00");
}

/* ---- security ------------------------------------------------------------ */

/* The secured data frame (levels differ only in the security control
 * byte and the MIC):
 *   69 ea                   FC: data, security, AR, PAN ID comp, IE
 *                           present, dst short, version 2, src extended
 *   07                      seq
 *   fe ca                   dst PAN 0xcafe
 *   01 00                   dst 0x0001
 *   04 03 02 01 00 4b 12 00 src 00-12-4b-00-01-02-03-04
 *   6L                      security control: level L, key id mode 1,
 *                           frame counter suppressed, ASN in nonce
 *                           (RFC 8180 A.4: 6d for ENC-MIC-32)
 *   01                      key index 1
 *   02 0f 34 12             Header IE 0x1e, len 2   } open
 *   00 3f                   HT1                     }
 *   03 80 01 02 03          Payload IE group 0      } private
 *   00 f8                   PT                      }
 *   68 65 6c 6c 6f          "hello"                 }
 * Outputs computed as described at the top of this file. */
static const struct {
    uint8_t level;
    const char *out;
} SECURED[] = {
    {1, "69ea07feca010004030201004b12006901020f3412003f038001020300f8"
        "68656c6c6f 175faa72"},
    {2, "69ea07feca010004030201004b12006a01020f3412003f038001020300f8"
        "68656c6c6f 3a7600a0c7c40c1e"},
    {3, "69ea07feca010004030201004b12006b01020f3412003f038001020300f8"
        "68656c6c6f 0d3ebb69b385b21549326d110121317f"},
    {5, "69ea07feca010004030201004b12006d01020f3412003f"
        "90e5b430d979653c757046bb e02e60a2"},
    {6, "69ea07feca010004030201004b12006e01020f3412003f"
        "90e5b430d979653c757046bb 932c535abd4734aa"},
    {7, "69ea07feca010004030201004b12006f01020f3412003f"
        "90e5b430d979653c757046bb bc071318f2838d3945ab7bd6d58516b7"},
};

static const uint8_t SEC_HIE[4] = {0x02, 0x0f, 0x34, 0x12};
static const uint8_t SEC_PIE[5] = {0x03, 0x80, 0x01, 0x02, 0x03};

static void sec_frame(cj_wpan_frame_t *f, uint8_t level)
{
    memset(f, 0, sizeof *f);
    f->type = CJ_WPAN_TYPE_DATA;
    f->version = CJ_WPAN_VERSION_2015;
    f->security = true;
    f->ack_request = true;
    f->panid_comp = true;
    f->seq = 7;
    f->dst_mode = CJ_WPAN_ADDR_SHORT;
    f->src_mode = CJ_WPAN_ADDR_EXT;
    f->dst_pan = 0xcafe;
    f->dst.short_addr = 1;
    memcpy(f->src.ext, SRC_EXT, 8);
    f->sec.level = level;
    f->sec.key_id_mode = 1;
    f->sec.fc_suppressed = true;
    f->sec.asn_in_nonce = true;
    f->sec.key_index = 1;
    f->hie = SEC_HIE;
    f->hie_len = sizeof SEC_HIE;
    f->pie = SEC_PIE;
    f->pie_len = sizeof SEC_PIE;
    f->payload = (const uint8_t *)"hello";
    f->payload_len = 5;
}

TEST(wpan_secured_levels)
{
    for (size_t k = 0; k < sizeof SECURED / sizeof SECURED[0]; k++) {
        uint8_t want[128], b[128], t[128];
        size_t n = cj_hex(SECURED[k].out, want, sizeof want);
        size_t mic = cj_wpan_mic_len(SECURED[k].level);
        bool enc = SECURED[k].level >= 5;
        cj_wpan_frame_t f, d;
        int len;

        sec_frame(&f, SECURED[k].level);
        len = cj_wpan_frame_encode(&f, b, sizeof b);
        CHECK_EQ(len, 35);
        CHECK_EQ(cj_wpan_protect(b, (size_t)len, (size_t)len + mic - 1, KEY,
                                 SRC_EXT, ASN), CJ_ERR_NOSPACE);
        CHECK_EQ(cj_wpan_protect(b, (size_t)len, sizeof b, KEY, SRC_EXT,
                                 ASN), (int)n);
        CHECK_MEM(b, n, want, n);

        /* as received: the open part is readable, the private part is
         * readable only at MIC-only levels */
        CHECK_EQ(cj_wpan_frame_decode(b, n, 0, &d), CJ_OK);
        CHECK_EQ(d.encrypted, enc);
        CHECK_EQ(d.mic_len, mic);
        CHECK(d.mic == b + n - mic);
        CHECK_EQ(d.open_len, 23);
        CHECK_EQ(d.sec.level, SECURED[k].level);
        CHECK_EQ(d.sec.key_id_mode, 1);
        CHECK_EQ(d.sec.key_index, 1);
        CHECK(d.sec.fc_suppressed && d.sec.asn_in_nonce);
        CHECK_HEX(d.hie, d.hie_len, "02 0f 34 12");
        if (enc) {
            CHECK(d.pie == NULL);
            CHECK_EQ(d.payload_len, 12);
        } else {
            CHECK_HEX(d.pie, d.pie_len, "03 80 01 02 03");
            CHECK_HEX(d.payload, d.payload_len, "68 65 6c 6c 6f");
        }

        /* every single-bit change anywhere fails */
        for (size_t i = 0; i < n; i++) {
            memcpy(t, want, n);
            t[i] ^= 0x01;
            CHECK(cj_wpan_unprotect(t, n, KEY, SRC_EXT, ASN) < 0);
            memcpy(t, want, n);
            t[i] ^= 0x80;
            CHECK(cj_wpan_unprotect(t, n, KEY, SRC_EXT, ASN) < 0);
        }
        /* a change in the private part or the MIC is an AUTH failure */
        memcpy(t, want, n);
        t[30] ^= 0x10;
        CHECK_EQ(cj_wpan_unprotect(t, n, KEY, SRC_EXT, ASN), CJ_ERR_AUTH);
        memcpy(t, want, n);
        t[n - 1] ^= 0x10;
        CHECK_EQ(cj_wpan_unprotect(t, n, KEY, SRC_EXT, ASN), CJ_ERR_AUTH);
        /* wrong ASN, wrong address, wrong key */
        memcpy(t, want, n);
        CHECK_EQ(cj_wpan_unprotect(t, n, KEY, SRC_EXT, ASN + 1), CJ_ERR_AUTH);
        memcpy(t, want, n);
        CHECK_EQ(cj_wpan_unprotect(t, n, KEY, EB_IID, ASN), CJ_ERR_AUTH);
        memcpy(t, want, n);
        CHECK_EQ(cj_wpan_unprotect(t, n, KEY2, SRC_EXT, ASN), CJ_ERR_AUTH);
        /* every truncation fails */
        for (size_t i = 0; i < n; i++) {
            memcpy(t, want, n);
            CHECK(cj_wpan_unprotect(t, i, KEY, SRC_EXT, ASN) < 0);
        }

        CHECK_EQ(cj_wpan_unprotect(b, n, KEY, SRC_EXT, ASN), 35);
        CHECK_EQ(cj_wpan_frame_decode(b, 35, CJ_WPAN_DEC_UNPROTECTED, &d),
                 CJ_OK);
        CHECK(!d.encrypted && d.mic == NULL && !d.ignored);
        CHECK_HEX(d.pie, d.pie_len, "03 80 01 02 03");
        CHECK_HEX(d.payload, d.payload_len, "68 65 6c 6c 6f");
        /* and the plaintext re-encodes to the frame protect was given */
        CHECK_EQ(cj_wpan_frame_encode(&d, t, sizeof t), 35);
        CHECK_MEM(t, 35, b, 35);
    }
}

/* Without the ASN in Nonce bit the nonce is address || frame counter ||
 * level (section 9.3.2.2).  Frame as above at level 5 with security
 * control 0d and frame counter 5 (05 00 00 00); output computed. */
TEST(wpan_secured_frame_counter_nonce)
{
    uint8_t b[128];
    cj_wpan_frame_t f;
    int len;
    sec_frame(&f, 5);
    f.sec.fc_suppressed = false;
    f.sec.asn_in_nonce = false;
    f.sec.frame_counter = 5;
    len = cj_wpan_frame_encode(&f, b, sizeof b);
    CHECK_EQ(len, 39);
    /* the ASN argument is not used */
    CHECK_EQ(cj_wpan_protect(b, (size_t)len, sizeof b, KEY, SRC_EXT, 0), 43);
    CHECK_HEX(b, 43,
              "69ea07feca010004030201004b12000d0500000001020f3412003f"
              "04a36367821603ca51a60487 471e1e4d");
    CHECK_EQ(cj_wpan_frame_decode(b, 43, 0, &f), CJ_OK);
    CHECK_EQ(f.sec.frame_counter, 5);
    CHECK_EQ(cj_wpan_unprotect(b, 43, KEY, SRC_EXT, 99), 39);
}

/* A 6TiSCH EB authenticated with K1 at MIC-32: its IEs stay readable
 * before any key is known (RFC 9032 section 3). */
TEST(wpan_secured_eb_readable)
{
    uint8_t pie[64], b[128];
    cj_wpan_eb_t eb, d;
    cj_wpan_enc_t e;
    cj_wpan_frame_t f;
    int m, n;
    eb_fill(&eb);
    cj_wpan_enc_init(&e, pie, sizeof pie);
    cj_wpan_put_eb(&e, &eb);
    m = cj_wpan_enc_finish(&e);
    eb_frame(&f, pie, (size_t)m);
    f.security = true;
    f.sec.level = CJ_WPAN_SEC_MIC32;
    f.sec.key_id_mode = 1;
    f.sec.fc_suppressed = f.sec.asn_in_nonce = true;
    f.sec.key_index = 1;
    n = cj_wpan_frame_encode(&f, b, sizeof b);
    CHECK_EQ(n, 70);
    n = cj_wpan_protect(b, (size_t)n, sizeof b, KEY, SRC_EXT, eb.asn);
    CHECK_EQ(n, 74);
    CHECK_EQ(cj_wpan_fcs_append(b, (size_t)n, sizeof b), 76);
    CHECK_EQ(cj_wpan_frame_decode(b, 76, CJ_WPAN_DEC_FCS, &f), CJ_OK);
    CHECK_EQ(cj_wpan_eb_decode(&f, &d), CJ_OK);
    CHECK(d.asn == eb.asn && d.has_join_info);
    CHECK_EQ(cj_wpan_unprotect(b, 74, KEY, SRC_EXT, d.asn), 70);
}

TEST(wpan_protect_errors)
{
    uint8_t b[128];
    cj_wpan_frame_t f;
    int len;

    sec_frame(&f, 5);
    f.security = false;
    len = cj_wpan_frame_encode(&f, b, sizeof b);
    CHECK_EQ(cj_wpan_protect(b, (size_t)len, sizeof b, KEY, SRC_EXT, ASN),
             CJ_ERR_INVALID);
    CHECK_EQ(cj_wpan_unprotect(b, (size_t)len, KEY, SRC_EXT, ASN),
             CJ_ERR_INVALID);
    for (uint8_t level = 0; level <= 4; level += 4) {
        sec_frame(&f, level);
        len = cj_wpan_frame_encode(&f, b, sizeof b);
        CHECK_EQ(cj_wpan_protect(b, (size_t)len, sizeof b, KEY, SRC_EXT, ASN),
                 CJ_ERR_UNSUPPORTED);
        CHECK_EQ(cj_wpan_unprotect(b, (size_t)len, KEY, SRC_EXT, ASN),
                 CJ_ERR_UNSUPPORTED);
    }
    sec_frame(&f, 5);
    f.sec.asn_in_nonce = false; /* and no frame counter: no nonce */
    len = cj_wpan_frame_encode(&f, b, sizeof b);
    CHECK_EQ(cj_wpan_protect(b, (size_t)len, sizeof b, KEY, SRC_EXT, ASN),
             CJ_ERR_UNSUPPORTED);
    sec_frame(&f, 5);
    len = cj_wpan_frame_encode(&f, b, sizeof b);
    CHECK_EQ(cj_wpan_protect(b, (size_t)len, sizeof b, KEY, SRC_EXT,
                             CJ_WPAN_MAX_ASN + 1), CJ_ERR_INVALID);
    CHECK_EQ(cj_wpan_protect(b, (size_t)len, (size_t)len - 1, KEY, SRC_EXT,
                             ASN), CJ_ERR_INVALID);
    CHECK_EQ(cj_wpan_protect(b, 1, sizeof b, KEY, SRC_EXT, ASN),
             CJ_ERR_TRUNCATED);
    CHECK_EQ(cj_wpan_unprotect(b, 1, KEY, SRC_EXT, ASN), CJ_ERR_TRUNCATED);
    /* shorter than the MIC after the header */
    CHECK_EQ(cj_wpan_unprotect(b, 17, KEY, SRC_EXT, ASN), CJ_ERR_TRUNCATED);
}

/* RFC 9031 Table 6. */
TEST(wpan_key_policy)
{
    static const struct {
        uint8_t usage, beacon, data;
    } rows[] = {
        {CJ_COJP_KEY_USAGE_K1K2_ENC_MIC32, 1, 5},
        {CJ_COJP_KEY_USAGE_K1K2_ENC_MIC64, 2, 6},
        {CJ_COJP_KEY_USAGE_K1K2_ENC_MIC128, 3, 7},
        {CJ_COJP_KEY_USAGE_K1K2_MIC32, 1, 1},
        {CJ_COJP_KEY_USAGE_K1K2_MIC64, 2, 2},
        {CJ_COJP_KEY_USAGE_K1K2_MIC128, 3, 3},
        {CJ_COJP_KEY_USAGE_K1_MIC32, 1, 0},
        {CJ_COJP_KEY_USAGE_K1_MIC64, 2, 0},
        {CJ_COJP_KEY_USAGE_K1_MIC128, 3, 0},
        {CJ_COJP_KEY_USAGE_K2_MIC32, 0, 1},
        {CJ_COJP_KEY_USAGE_K2_MIC64, 0, 2},
        {CJ_COJP_KEY_USAGE_K2_MIC128, 0, 3},
        {CJ_COJP_KEY_USAGE_K2_ENC_MIC32, 0, 5},
        {CJ_COJP_KEY_USAGE_K2_ENC_MIC64, 0, 6},
        {CJ_COJP_KEY_USAGE_K2_ENC_MIC128, 0, 7},
    };
    cj_wpan_key_policy_t p;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        unsigned types = (rows[i].beacon ? 1u : 0) |
                         (rows[i].data ? 6u : 0); /* data | ack */
        CHECK_EQ(cj_wpan_key_policy(rows[i].usage, &p), CJ_OK);
        CHECK_EQ(p.beacon_level, rows[i].beacon);
        CHECK_EQ(p.data_level, rows[i].data);
        CHECK_EQ(p.types, types);
        CHECK(!(p.types & (1u << CJ_WPAN_TYPE_CMD)));
    }
    CHECK_EQ(cj_wpan_key_policy(15, &p), CJ_ERR_RANGE);
    CHECK_EQ(cj_wpan_mic_len(0), 0);
    CHECK_EQ(cj_wpan_mic_len(4), 0);
    CHECK_EQ(cj_wpan_mic_len(7), 16);
}

/* IEEE Std 802.15.4-2015 section 9.4.2: Frame Counter Suppression and
 * ASN in Nonce are new in that edition; in a 2006 frame (version 1)
 * those bits of the Security Control field are reserved, so they are
 * ignored on receipt: the 4-byte frame counter is still read, and the
 * nonce is not the TSCH one. */
TEST(wpan_2006_security_control_reserved_bits)
{
    uint8_t b[64];
    cj_wpan_frame_t f;
    /* data, security, PAN ID comp, short/short, version 1; security
     * control: MIC-32, key id mode 0, bits 5 and 6 set; counter 1;
     * payload aa; MIC 11223344 */
    size_t n = cj_hex("49 98 55 cd ab 34 12 78 56 61 01000000 aa 11223344",
                      b, sizeof b);

    CHECK_EQ(cj_wpan_frame_decode(b, n, 0, &f), CJ_OK);
    CHECK_EQ(f.version, 1);
    CHECK(f.security && f.ignored);
    CHECK_EQ(f.sec.level, 1);
    CHECK_EQ(f.sec.key_id_mode, 0);
    CHECK(!f.sec.fc_suppressed && !f.sec.asn_in_nonce);
    CHECK_EQ(f.sec.frame_counter, 1);
    CHECK_EQ(f.mic_len, 4);
    CHECK_HEX(f.payload, f.payload_len, "aa");
    /* the same bits in a 2015 frame (version 2) mean what they say: no
     * counter follows, and the payload starts right after the control */
    b[1] = 0xa8;
    CHECK_EQ(cj_wpan_frame_decode(b, n, 0, &f), CJ_OK);
    CHECK(f.sec.fc_suppressed && f.sec.asn_in_nonce);
    CHECK(!f.ignored);
    CHECK_EQ(f.payload_len, 5);
}
