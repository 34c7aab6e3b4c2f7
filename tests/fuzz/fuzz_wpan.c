/*
 * Fuzz the IEEE 802.15.4 frame and IE codecs (cojp/wpan.h).  Each input
 * is decoded as a received frame, as a frame with FCS and as an
 * unprotected frame.  A 2015 frame that decodes and is not encrypted is
 * re-encoded: the bytes must equal the input (less MIC) unless the
 * decoder reported `ignored`, and must decode to the same fields in
 * every case.  Every IE list is walked, the Enhanced Beacon IEs are
 * decoded, re-encoded and decoded again, and protect followed by
 * unprotect must give back the frame.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cojp/wpan.h"

#define CAP 4096
static uint8_t work[CAP + 32], enc[CAP + 32], pie[CAP];

static const uint8_t KEY[16] = {0x5a, 1, 2, 3, 4, 5, 6, 7,
                                8, 9, 10, 11, 12, 13, 14, 15};
static const uint8_t EXT[8] = {0, 0x12, 0x4b, 0, 1, 2, 3, 4};

static bool same(const uint8_t *a, size_t alen, const uint8_t *b,
                 size_t blen)
{
    return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

static bool frame_eq(const cj_wpan_frame_t *a, const cj_wpan_frame_t *b)
{
    if (a->type != b->type || a->version != b->version ||
        a->security != b->security || a->frame_pending != b->frame_pending ||
        a->ack_request != b->ack_request || a->panid_comp != b->panid_comp ||
        a->seq_suppressed != b->seq_suppressed ||
        (!a->seq_suppressed && a->seq != b->seq) ||
        a->dst_mode != b->dst_mode || a->src_mode != b->src_mode ||
        a->has_dst_pan != b->has_dst_pan || a->has_src_pan != b->has_src_pan ||
        (a->has_dst_pan && a->dst_pan != b->dst_pan) ||
        (a->has_src_pan && a->src_pan != b->src_pan) ||
        memcmp(&a->dst, &b->dst, sizeof a->dst) != 0 ||
        memcmp(&a->src, &b->src, sizeof a->src) != 0 ||
        !same(a->hie, a->hie_len, b->hie, b->hie_len) ||
        !same(a->pie, a->pie_len, b->pie, b->pie_len) ||
        !same(a->payload, a->payload_len, b->payload, b->payload_len))
        return false;
    if (a->security &&
        (a->sec.level != b->sec.level ||
         a->sec.key_id_mode != b->sec.key_id_mode ||
         a->sec.fc_suppressed != b->sec.fc_suppressed ||
         a->sec.asn_in_nonce != b->sec.asn_in_nonce ||
         (!a->sec.fc_suppressed &&
          a->sec.frame_counter != b->sec.frame_counter) ||
         (a->sec.key_id_mode &&
          (a->sec.key_index != b->sec.key_index ||
           memcmp(a->sec.key_source, b->sec.key_source, 8) != 0))))
        return false;
    return true;
}

static bool eb_eq(const cj_wpan_eb_t *a, const cj_wpan_eb_t *b)
{
    if (a->has_sync != b->has_sync || a->has_timeslot != b->has_timeslot ||
        a->has_hopping != b->has_hopping ||
        a->has_slotframes != b->has_slotframes ||
        a->has_join_info != b->has_join_info)
        return false;
    if ((a->has_sync &&
         (a->asn != b->asn || a->join_metric != b->join_metric)) ||
        (a->has_timeslot && a->timeslot_id != b->timeslot_id) ||
        (a->has_hopping && a->hopping_id != b->hopping_id))
        return false;
    if (a->has_slotframes) {
        if (a->slotframe_count != b->slotframe_count)
            return false;
        for (size_t i = 0; i < a->slotframe_count; i++) {
            const cj_wpan_slotframe_t *x = &a->slotframes[i],
                                      *y = &b->slotframes[i];
            if (x->handle != y->handle || x->size != y->size ||
                x->link_count != y->link_count ||
                memcmp(x->links, y->links,
                       x->link_count * sizeof x->links[0]) != 0)
                return false;
        }
    }
    if (a->has_join_info) {
        const cj_wpan_join_info_t *x = &a->join_info, *y = &b->join_info;
        if (x->router != y->router || x->proxy_prio != y->proxy_prio ||
            x->rank_prio != y->rank_prio || x->pan_prio != y->pan_prio ||
            (x->jp_iid == NULL) != (y->jp_iid == NULL) ||
            (x->jp_iid && memcmp(x->jp_iid, y->jp_iid, 8) != 0) ||
            !same(x->network_id, x->network_id_len, y->network_id,
                  y->network_id_len))
            return false;
    }
    return true;
}

static void walk(const cj_wpan_frame_t *f)
{
    cj_wpan_ie_iter_t it, sub;
    cj_wpan_ie_t ie, s;
    cj_wpan_eb_t eb, eb2;
    cj_wpan_frame_t g;
    cj_wpan_enc_t e;
    int rc, n;

    cj_wpan_ie_iter_init(&it, f->hie, f->hie_len);
    while ((rc = cj_wpan_hie_next(&it, &ie)) > 0)
        ;
    if (rc != 0) /* the decoder validated this list */
        abort();
    cj_wpan_ie_iter_init(&it, f->pie, f->pie_len);
    while ((rc = cj_wpan_pie_next(&it, &ie)) > 0) {
        if (ie.id != CJ_WPAN_PIE_MLME)
            continue;
        cj_wpan_ie_iter_init(&sub, ie.content, ie.len);
        while (cj_wpan_sub_ie_next(&sub, &s) > 0)
            if (s.content < f->pie || s.content + s.len > f->pie + f->pie_len)
                abort();
    }
    if (rc != 0)
        abort();

    if (cj_wpan_eb_decode(f, &eb) != CJ_OK)
        return;
    cj_wpan_enc_init(&e, NULL, 0);
    cj_wpan_put_eb(&e, &eb);
    n = cj_wpan_enc_finish(&e);
    if (n < 0 || (size_t)n > sizeof pie)
        abort();
    cj_wpan_enc_init(&e, pie, sizeof pie);
    cj_wpan_put_eb(&e, &eb);
    if (cj_wpan_enc_finish(&e) != n)
        abort();
    memset(&g, 0, sizeof g);
    g.pie = pie;
    g.pie_len = (size_t)n;
    if (cj_wpan_eb_decode(&g, &eb2) != CJ_OK || !eb_eq(&eb, &eb2))
        abort();
}

static void reencode(const uint8_t *data, size_t size, const cj_wpan_frame_t *f)
{
    cj_wpan_frame_t g;
    size_t want = size - f->mic_len;
    int n;

    if (f->version != CJ_WPAN_VERSION_2015) {
        if (cj_wpan_frame_encode(f, enc, sizeof enc) != CJ_ERR_INVALID)
            abort();
        return;
    }
    n = cj_wpan_frame_encode(f, enc, sizeof enc);
    if (n < 0 || n != cj_wpan_frame_encode(f, NULL, 0) || (size_t)n > want)
        abort();
    if (!f->ignored && ((size_t)n != want || memcmp(enc, data, want) != 0))
        abort();
    if (cj_wpan_frame_decode(enc, (size_t)n, CJ_WPAN_DEC_UNPROTECTED, &g) !=
            CJ_OK ||
        g.ignored || !frame_eq(f, &g))
        abort();
}

static void roundtrip_security(const uint8_t *data, size_t size)
{
    int n, m;
    if (size > CAP)
        return;
    memcpy(work, data, size);
    n = cj_wpan_protect(work, size, sizeof work, KEY, EXT, 0x1234);
    if (n < 0)
        return;
    m = cj_wpan_unprotect(work, (size_t)n, KEY, EXT, 0x1234);
    if (m != (int)size || memcmp(work, data, size) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cj_wpan_frame_t f;
    if (size > CAP)
        return 0;

    if (cj_wpan_frame_decode(data, size, 0, &f) == CJ_OK) {
        if (f.open_len > size || f.mic_len > size ||
            (f.mic && f.mic + f.mic_len != data + size))
            abort();
        walk(&f);
        if (!f.encrypted)
            reencode(data, size, &f);
        /* a received frame: unprotect a copy; seeds made with KEY pass */
        memcpy(work, data, size);
        int n = cj_wpan_unprotect(work, size, KEY, EXT, 0x1234);
        if (n >= 0 && cj_wpan_frame_decode(work, (size_t)n,
                                           CJ_WPAN_DEC_UNPROTECTED,
                                           &f) == CJ_OK)
            walk(&f);
    }
    if (cj_wpan_frame_decode(data, size, CJ_WPAN_DEC_FCS, &f) == CJ_OK)
        walk(&f);
    if (cj_wpan_frame_decode(data, size, CJ_WPAN_DEC_UNPROTECTED, &f) ==
        CJ_OK) {
        if (f.encrypted || f.mic_len)
            abort();
        walk(&f);
        reencode(data, size, &f);
    }
    roundtrip_security(data, size);
    return 0;
}
