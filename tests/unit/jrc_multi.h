/*
 * Two JRC engines over one store (cojp/jrc.h, "Several instances"): a
 * harness shared by the memstore, SQLite and PostgreSQL tests, which
 * hand it two store handles onto the same registry.
 *
 * Pledges are built by hand with the codecs as in test_jrc.c (RFC 9031
 * section 7.3 context, Join Request re-framed by a stateless JP).  Every
 * protected response either engine emits is logged with its pledge and
 * Partial IV; two entries with one (pledge, Partial IV) and different
 * bytes would be a reused AEAD nonce (RFC 8613 section 7.2.1).  Only the
 * engines' byte-identical repeats of a cached response share one.
 */
#ifndef COJP_TEST_JRC_MULTI_H
#define COJP_TEST_JRC_MULTI_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "cojp/coap.h"
#include "cojp/cojp.h"
#include "cojp/jrc.h"
#include "cojp/oscore.h"
#include "../test.h"

#define JM_FN static __attribute__((unused))
#define JM_MAXP 16       /* pledges */
#define JM_LOG_MAX 4096  /* responses logged */
#define JM_BODY 160      /* bytes of a response kept after the token */

typedef struct jm_pledge {
    uint8_t id[8];
    uint8_t psk[16];
    cj_oscore_ctx_t ctx;
    uint16_t mid;
    cj_oscore_req_t bind; /* last request */
} jm_pledge_t;

typedef struct jm_entry {
    uint8_t pledge;
    uint8_t engine;
    uint16_t len;
    uint64_t piv;
    uint8_t body[JM_BODY];
} jm_entry_t;

typedef struct jm_log {
    unsigned n;
    unsigned overflow;
    jm_entry_t e[JM_LOG_MAX];
} jm_log_t;

typedef struct jm_result {
    unsigned answered;          /* fresh requests answered */
    unsigned pledge_ok;         /* ... and the answer verified as 2.04 */
    unsigned replays_dropped;   /* request replayed to the other engine
                                 * from another address */
    unsigned replays_accepted;  /* must stay 0 */
    unsigned cross_repeats;     /* replayed to the other engine from the
                                 * same JP: the first engine's bytes */
    unsigned repeats;           /* identical repeat to the same engine */
    unsigned conflicts;         /* (pledge, PIV) with two ciphertexts */
    unsigned short_dup;         /* two pledges holding one short id */
    unsigned short_moved;       /* a pledge's short id changed */
} jm_result_t;

/* The pledge ids and PSKs a test provisions (in every store). */
JM_FN void jm_make_id(uint8_t id[8], unsigned i)
{
    static const uint8_t base[8] = {0x00, 0x12, 0x4b, 0x00, 0x6d, 0x75, 0, 0};
    memcpy(id, base, 8);
    id[6] = (uint8_t)(i >> 8);
    id[7] = (uint8_t)i;
}

JM_FN void jm_make_psk(uint8_t psk[16], unsigned i)
{
    for (unsigned k = 0; k < 16; k++)
        psk[k] = (uint8_t)(0x51 + 3 * k + 11 * i);
    /* i itself at the end: one PSK per pledge (RFC 9031 section 3) */
    psk[14] = (uint8_t)(i >> 8);
    psk[15] = (uint8_t)i;
}

JM_FN void jm_pledge_init(jm_pledge_t *p, unsigned i)
{
    static const uint8_t jrcid[3] = {0x4a, 0x52, 0x43};
    cj_oscore_params_t prm;

    memset(p, 0, sizeof *p);
    jm_make_id(p->id, i);
    jm_make_psk(p->psk, i);
    memset(&prm, 0, sizeof prm);
    prm.master_secret = p->psk;
    prm.master_secret_len = 16;
    prm.recipient_id = jrcid;
    prm.recipient_id_len = 3;
    prm.id_context = p->id;
    prm.id_context_len = 8;
    prm.has_id_context = true;
    CHECK_EQ(cj_oscore_ctx_derive(&p->ctx, &prm), CJ_OK);
    p->ctx.send_kid_context = true;
    p->mid = (uint16_t)(0x2000 + 64 * i);
}

/* A fresh Join Request (new Partial IV) of p carrying Join_Request
 * jr[0..jrlen), as the JP forwards it. */
JM_FN size_t jm_request_with(jm_pledge_t *p, const uint8_t *jr, size_t jrlen,
                             uint8_t *msg, size_t cap)
{
    static const uint8_t jtok[12] = {0x71, 0x72, 0x73, 0x74, 0x75, 0x76,
                                     0x77, 0x78, 0x79, 0x7a, 0x7b, 0x7c};
    uint8_t coap[128], prot[256];
    uint8_t tok[4] = {0xbe, 0xef, (uint8_t)(p->mid >> 8), (uint8_t)p->mid};
    cj_coap_builder_t b;
    cj_coap_msg_t m;
    cj_coap_opt_iter_t it;
    cj_coap_opt_t o;
    int n;

    cj_coap_build_init(&b, coap, sizeof coap, CJ_COAP_CON, CJ_COAP_POST,
                       p->mid++, tok, 4);
    cj_coap_build_opt_str(&b, CJ_COAP_OPT_URI_HOST, "6tisch.arpa");
    cj_coap_build_opt_str(&b, CJ_COAP_OPT_URI_PATH, "j");
    cj_coap_build_opt_str(&b, CJ_COAP_OPT_PROXY_SCHEME, "coap");
    cj_coap_build_payload(&b, jr, jrlen);
    n = cj_coap_build_finish(&b);
    if (n > 0)
        n = cj_oscore_protect_request(&p->ctx, coap, (size_t)n, prot,
                                      sizeof prot, &p->bind);
    if (n <= 0 || cj_coap_parse(&m, prot, (size_t)n) != CJ_OK)
        return 0;
    cj_coap_build_init(&b, msg, cap, CJ_COAP_NON, m.code, p->mid, jtok,
                       sizeof jtok);
    cj_coap_opt_iter_init(&it, &m);
    while (cj_coap_opt_next(&it, &o))
        if (o.num != CJ_COAP_OPT_PROXY_SCHEME)
            cj_coap_build_opt(&b, o.num, o.val, o.len);
    cj_coap_build_payload(&b, m.payload, m.payload_len);
    n = cj_coap_build_finish(&b);
    return n > 0 ? (size_t)n : 0;
}

/* The Join Request of jm_request_with with network identifier h'cafe'. */
JM_FN size_t jm_request(jm_pledge_t *p, uint8_t *msg, size_t cap)
{
    static const uint8_t jr[5] = {0xa1, 0x05, 0x42, 0xca, 0xfe};
    return jm_request_with(p, jr, sizeof jr, msg, cap);
}

/* The pledge's verification of an answer to its last request: the short
 * id of a verified 2.04 Configuration, or -1. */
JM_FN long jm_open(jm_pledge_t *p, const uint8_t *resp, size_t len)
{
    uint8_t copy[1024], plain[1024];
    cj_coap_msg_t m;
    cj_cojp_config_t c;
    int n;

    if (len > sizeof copy)
        return -1;
    memcpy(copy, resp, len);
    n = cj_oscore_unprotect_response(&p->ctx, &p->bind, copy, len, plain,
                                     sizeof plain);
    if (n < 0 || cj_coap_parse(&m, plain, (size_t)n) != CJ_OK ||
        m.code != CJ_COAP_CHANGED ||
        cj_cojp_config_decode(m.payload, m.payload_len, &c, NULL) != CJ_OK ||
        c.short_id == NULL)
        return -1;
    return (long)(c.short_id[0] << 8 | c.short_id[1]);
}

/* Log a response of engine jeng to pledge i: its Partial IV and what
 * follows the token (the part a cached repeat keeps). */
JM_FN void jm_log_add(jm_log_t *l, unsigned i, unsigned jeng,
                      const uint8_t *resp, size_t len)
{
    cj_coap_msg_t m;
    cj_coap_opt_t o;
    cj_oscore_option_t ov;
    jm_entry_t *e;
    size_t off;

    if (l->n == JM_LOG_MAX) {
        l->overflow++;
        return;
    }
    e = &l->e[l->n];
    memset(e, 0, sizeof *e);
    e->pledge = (uint8_t)i;
    e->engine = (uint8_t)jeng;
    e->piv = UINT64_MAX;
    if (cj_coap_parse(&m, resp, len) != CJ_OK) {
        l->n++;
        return;
    }
    if (cj_coap_opt_find(&m, CJ_COAP_OPT_OSCORE, &o) &&
        cj_oscore_option_decode(o.val, o.len, &ov) == CJ_OK && ov.piv_len)
        e->piv = cj_oscore_piv_value(ov.piv, ov.piv_len);
    off = m.token_len ? (size_t)(m.token + m.token_len - resp) : 4u;
    if (off <= len && len - off <= JM_BODY) {
        e->len = (uint16_t)(len - off);
        memcpy(e->body, resp + off, len - off);
    }
    l->n++;
}

/* Pairs of entries with one (pledge, Partial IV) and different bytes;
 * an entry without Partial IV counts as a conflict too. */
JM_FN unsigned jm_log_conflicts(const jm_log_t *l)
{
    unsigned bad = l->overflow;

    for (unsigned a = 0; a < l->n; a++) {
        const jm_entry_t *x = &l->e[a];
        if (x->piv == UINT64_MAX) {
            bad++;
            continue;
        }
        for (unsigned b = a + 1; b < l->n; b++) {
            const jm_entry_t *y = &l->e[b];
            if (x->pledge == y->pledge && x->piv == y->piv &&
                (x->len != y->len || memcmp(x->body, y->body, x->len) != 0))
                bad++;
        }
    }
    return bad;
}

JM_FN int jm_engine_init(cj_jrc_t *j, cj_jrc_cfg_t *jcfg, cj_jrc_slot_t *jslots,
                         size_t nslots, const cj_jrc_store_t *st,
                         uint32_t ssn_block)
{
    memset(jcfg, 0, sizeof *jcfg);
    jcfg->keys[0].key_id = 1;
    memset(jcfg->keys[0].key, 0x6b, 16);
    jcfg->key_count = 1;
    jcfg->join_rate = UINT32_MAX;
    jcfg->slots = jslots;
    jcfg->slot_count = nslots;
    jcfg->ssn_block = ssn_block;
    return cj_jrc_init(j, jcfg, st, NULL);
}

/* Short ids: every pledge keeps one id, no two pledges share one. */
JM_FN void jm_check_short(const long *shorts, unsigned np, jm_result_t *r)
{
    for (unsigned a = 0; a < np; a++)
        for (unsigned b = a + 1; b < np; b++)
            if (shorts[a] >= 0 && shorts[a] == shorts[b])
                r->short_dup++;
}

/* np pledges (provisioned as jm_make_id/jm_make_psk 0..np-1 in the
 * store behind sa and sb) send rounds fresh Join Requests each, each to
 * engine A or B as a fixed pseudo-random sequence says (runs on one
 * engine, then switches, so the engines' cached sequence numbers drift
 * apart).  With nslots >= np every context stays cached
 * in both engines (their cached mutable state goes stale: the case the
 * store's atomic calls exist for); with fewer they are also evicted and
 * reloaded.  Every other request is then replayed to the other engine,
 * alternately from the JP it came through (a retransmission: answered
 * with the first engine's bytes, through the store's repeat cache) and
 * from another address (dropped), and every third round's repeated byte
 * for byte to the engine that answered it. */
JM_FN void jm_alternate(const cj_jrc_store_t *sa, const cj_jrc_store_t *sb,
                        unsigned np, unsigned rounds, uint32_t ssn_block,
                        size_t nslots, jm_result_t *r)
{
    static cj_jrc_t jeng[2];
    static cj_jrc_cfg_t jcfg[2];
    static cj_jrc_slot_t jslots[2][JM_MAXP];
    static jm_pledge_t jpl[JM_MAXP];
    static jm_log_t log;
    static uint8_t joutbuf[1024];
    static const cj_addr_t jp = {2, {0x0a, 0x02}};
    static const cj_addr_t elsewhere = {2, {0x0a, 0x03}};
    uint8_t first[1024];
    size_t first_len;
    long shorts[JM_MAXP];
    cj_out_t jo;
    uint64_t now = 1000;
    uint32_t rng = 0x2545f491u;

    memset(r, 0, sizeof *r);
    memset(&log, 0, sizeof log);
    if (np > JM_MAXP)
        np = JM_MAXP;
    if (nslots == 0 || nslots > JM_MAXP)
        nslots = JM_MAXP;
    CHECK_EQ(jm_engine_init(&jeng[0], &jcfg[0], jslots[0], nslots, sa, ssn_block),
             CJ_OK);
    CHECK_EQ(jm_engine_init(&jeng[1], &jcfg[1], jslots[1], nslots, sb, ssn_block),
             CJ_OK);
    for (unsigned i = 0; i < np; i++) {
        jm_pledge_init(&jpl[i], i);
        shorts[i] = -1;
    }
    jo.buf = joutbuf;
    jo.cap = sizeof joutbuf;
    for (unsigned round = 0; round < rounds; round++) {
        for (unsigned i = 0; i < np; i++) {
            uint8_t msg[256], again[256], same[256];
            unsigned k;
            size_t n = jm_request(&jpl[i], msg, sizeof msg);
            long sid;

            rng = rng * 1103515245u + 12345u;
            k = (rng >> 16) % 3 == 0; /* two thirds to A */
            CHECK(n > 0);
            memcpy(again, msg, n);
            memcpy(same, msg, n);
            now += 10;
            if (cj_jrc_input(&jeng[k], now, &jp, msg, n, &jo) != 1 ||
                jo.len == 0)
                continue;
            r->answered++;
            jm_log_add(&log, i, k, jo.buf, jo.len);
            first_len = jo.len;
            memcpy(first, jo.buf, jo.len);
            sid = jm_open(&jpl[i], jo.buf, jo.len);
            if (sid >= 0) {
                r->pledge_ok++;
                if (shorts[i] >= 0 && shorts[i] != sid)
                    r->short_moved++;
                shorts[i] = sid;
            }
            /* every other request replayed to the other engine */
            if ((round + i) % 2)
                ;
            else if (cj_jrc_input(&jeng[1 - k], now,
                                  (round + i) % 4 ? &elsewhere : &jp, again,
                                  n, &jo) == 1 &&
                     jo.len > 0) {
                /* only the same JP, and only the first answer's bytes
                 * (MID aside: bytes 2-3) */
                if ((round + i) % 4 == 0 && jo.len == first_len &&
                    memcmp(jo.buf, first, 2) == 0 &&
                    memcmp(jo.buf + 4, first + 4, first_len - 4) == 0)
                    r->cross_repeats++;
                else
                    r->replays_accepted++;
                jm_log_add(&log, i, 1 - k, jo.buf, jo.len);
            } else {
                r->replays_dropped++;
            }
            /* a retransmission reaching the engine that answered */
            if (round % 3 == 0 &&
                cj_jrc_input(&jeng[k], now, &jp, same, n, &jo) == 1 &&
                jo.len > 0) {
                r->repeats++;
                jm_log_add(&log, i, k, jo.buf, jo.len);
            }
        }
    }
    r->conflicts = jm_log_conflicts(&log);
    jm_check_short(shorts, np, r);
}

#endif
