/*
 * sim.h - internals of `cojp sim`, the discrete-event 6TiSCH simulator
 * (host layer: malloc and libc allowed).  Every mote runs the project's
 * engines (pledge, Join Proxy, and on the root the JRC with an in-memory
 * store) over a TSCH MAC and radio model; every frame on the air is real
 * IEEE 802.15.4 bytes (cojp/wpan.h) secured with real CCM*.  What is
 * modelled and what is simplified is documented in docs/simulator.md.
 *
 * Files: sim.c (scheduler, MAC, radio, routing, engines), sim_frame.c
 * (802.15.4 frames, 6LoWPAN IPHC, RPL messages), sim_out.c (timeline,
 * JSON, SVG plot, pcap), sim_cmd.c (command line).
 */
#ifndef COJP_SIM_H
#define COJP_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cojp/jrc.h"
#include "cojp/jrc_memstore.h"
#include "cojp/pledge.h"
#include "cojp/proxy.h"
#include "port/platform_mem.h"

#define SIM_SLOT_MS 10u          /* TSCH timeslot, RFC 8180 section 4.1 */
#define SIM_NUM_CH 16u           /* 2.4 GHz O-QPSK channels 11..26 */
#define SIM_NEVER UINT64_MAX
#define SIM_PHY_MAX 127          /* aMaxPhyPacketSize: bytes of a PSDU, MAC
                                    header + payload + MIC + FCS (IEEE
                                    802.15.4-2015 section 11.3) */
#define SIM_FCS_LEN 2
#define SIM_FRAME_MAX SIM_PHY_MAX /* frame buffers hold one PSDU */
#define SIM_DGRAM_MAX 640        /* bytes of one 6LoWPAN datagram (compressed
                                    form sent, uncompressed size reassembled);
                                    the largest CoJP message is ~300 */
#define SIM_REASS_SLOTS 4        /* reassembly buffers per mote */
#define SIM_REASS_TIMEOUT_MS 60000u /* RFC 4944 section 5.3: at most 60 s */
#define SIM_DUP_HIST 8           /* (source, DSN) pairs remembered per mote
                                    for MAC duplicate detection */
#define SIM_DAO_TARGETS 4        /* RPL Target options per DAO */
#define SIM_QUEUE_MAX 64         /* packets (datagrams) queued per mote;
                                    drop-tail when full */
#define SIM_MAX_CAND 4           /* JP candidates a pledge remembers */
#define SIM_UDP_PORT 5683
#define SIM_MIN_HOP_RANK 256u    /* MinHopRankIncrease, RFC 6550 */
#define SIM_INFINITE_RANK 0xffffu

/* Packet kinds (what the network layer queued). */
enum {
    PK_EB = 1,   /* Enhanced Beacon, K1 MIC-only, minimal cell */
    PK_DIO,      /* RPL DIO to ff02::1a, K2 */
    PK_DIS,      /* RPL DIS to ff02::1a, K2 */
    PK_DAO,      /* RPL DAO to the preferred parent (storing mode,
                    link-local, hop by hop), K2 */
    PK_DAO_ACK,  /* RPL DAO-ACK from a parent to its child, K2 */
    PK_UDP,      /* CoAP over UDP, routed between global addresses, K2 */
    PK_JOIN      /* CoAP over UDP between link-local addresses of a pledge
                    and its JP: unsecured frames (RFC 9031 section 5) */
};

/* Mote roles in the join life cycle. */
enum {
    ST_SCAN = 0, /* passive scan on one channel */
    ST_COLLECT,  /* synchronised, gathering EBs for JP selection */
    ST_JOINING,  /* pledge engine running */
    ST_JOINED,   /* has the keys; routing and JP roles active */
    ST_WAIT      /* join failed, rescan after a pause */
};

typedef struct sim_pkt {
    uint8_t kind;
    uint8_t retries;      /* MAC retransmissions of the current frame */
    uint8_t hop_limit;
    bool dsn_set;         /* dsn drawn for the current frame */
    uint8_t dsn;          /* 802.15.4 sequence number of the current frame */
    bool tag_set;
    uint16_t tag;         /* 6LoWPAN datagram tag (fragmented datagrams) */
    uint16_t frag_off;    /* bytes of the compressed datagram already sent
                             in acknowledged fragments */
    uint64_t not_before;  /* CSMA-CA backoff: no attempt before this slot */
    int32_t nexthop;      /* link destination mote, -1 broadcast */
    int32_t src, dst;     /* IPv6 end points (motes) of routed packets;
                             link ends for PK_JOIN */
    uint16_t len;         /* bytes of data: UDP payload (CoAP); for
                             PK_DAO: seq, K flag, count, then per target
                             mote (4 bytes), path sequence, lifetime; for
                             PK_DAO_ACK: seq, status */
    uint8_t data[];
} sim_pkt_t;

/* One datagram being reassembled (RFC 4944 section 5.3). */
typedef struct sim_reass {
    uint32_t from;            /* link-layer sender (mote) */
    uint16_t tag, size;       /* datagram_tag, datagram_size */
    bool secured;             /* all fragments must match */
    uint64_t deadline;        /* ms */
    uint16_t first_len;       /* bytes of FRAG1 content; 0: not yet */
    uint16_t hdr_c, hdr_u;    /* compressed / uncompressed header bytes */
    uint8_t have[SIM_DGRAM_MAX / 64 + 1]; /* bit u: 8-octet unit u */
    uint8_t first[SIM_PHY_MAX];
    uint8_t buf[SIM_DGRAM_MAX]; /* by uncompressed offset */
} sim_reass_t;

typedef struct sim_nb {
    uint32_t idx;         /* neighbour mote */
    float pdr;            /* packet delivery ratio of the link */
    uint16_t rank;        /* rank last advertised in a DIO, or infinite */
} sim_nb_t;

typedef struct sim_cand {
    int32_t idx;
    uint8_t proxy_prio, pan_prio;
    float pdr;
} sim_cand_t;

typedef struct sim_mote {
    uint8_t eui[8];
    float x, y;
    uint32_t nb_off, nb_cnt;
    bool is_root;
    uint8_t state;
    uint8_t scan_ch;
    uint8_t dsn;
    /* autonomous RX cell (RFC 9033 section 3) */
    uint16_t auto_slot, auto_ch;

    /* timeline, ms; SIM_NEVER = not yet */
    uint64_t t_first_eb, t_sync, t_join_req, t_joined, t_parent;
    uint64_t t_collect_end, t_restart;
    uint16_t hops;            /* shortest radio path to the root (links
                                 with PDR > 0); 0: the root or unreachable */

    sim_cand_t cand[SIM_MAX_CAND];
    uint8_t ncand;

    cj_pledge_t *pl;
    cj_mem_platform_t pf;
    cj_proxy_t *jp;

    /* RPL */
    uint16_t rank;
    int32_t parent;
    uint32_t parent_fail;     /* consecutive MAC failures to the parent */
    uint8_t dao_seq;          /* DAOSequence of the last DAO sent */
    uint8_t dao_out_seq;      /* DAOSequence of the DAO awaiting its ACK */
    uint8_t path_seq;         /* Path Sequence of our own target */
    bool dao_wait;            /* a DAO awaits its DAO-ACK */
    uint8_t dao_tries;        /* retransmissions of that DAO */
    uint8_t ndao_out;
    uint32_t dao_out[SIM_DAO_TARGETS]; /* its targets */
    uint32_t *adv;            /* targets still to advertise to the parent */
    uint32_t nadv, cadv;
    uint64_t dao_timer;       /* next DAO (re)transmission, ms */
    uint64_t dao_refresh;     /* next periodic DAO of our own target */
    uint32_t dao_sent, dao_retx, dao_acked;
    uint64_t next_eb, next_dis;
    uint64_t tr_i, tr_t, tr_end; /* Trickle: interval, fire, end (ms) */
    uint32_t tr_c;
    bool tr_fired;

    /* MAC: queue and TSCH CSMA-CA state */
    sim_pkt_t *q[SIM_QUEUE_MAX];
    uint8_t qh, qn;
    uint8_t be, backoff;
    uint64_t tx_asn;
    uint16_t frag_tag;        /* last datagram tag used by this sender */
    uint32_t dup_src[SIM_DUP_HIST];
    uint8_t dup_dsn[SIM_DUP_HIST];
    uint8_t dup_pos;
    sim_reass_t *reass[SIM_REASS_SLOTS];

    /* scheduler */
    uint64_t wake;
    uint32_t gen;
    uint64_t stamp;           /* slot of rx bookkeeping */
    uint32_t rx_hits, rx_who;

    /* statistics */
    uint32_t tx_frames, tx_bytes, rx_frames, tx_acks;
    uint32_t mac_retx, mac_drops, queue_drops, collisions, mac_dups;
    uint32_t join_attempts, join_retx, join_msgs;
    uint32_t k2_rejected_unjoined; /* K2 frames a non-joined mote dropped */
    uint32_t k2_accepted_unjoined; /* must stay 0 */
    /* RFC 9031 section 5.1: the frame whose datagram completed the Join
     * Response, while the pledge engine takes it (verified at JOINED) */
    struct sim_tx *jr_tx;
    uint32_t asn_rejected;    /* Join Response frames that did not verify */
    uint64_t asn_skew;        /* slots this mote's ASN lags the network's,
                                 as after a replayed EB (tests only) */
    uint32_t bl_dropped;      /* frames dropped as JP: blacklisted source */
    uint32_t updates;         /* parameter updates applied */
    uint32_t keys_switched;
    uint32_t parent_changes;
} sim_mote_t;

typedef struct sim_cfg {
    uint32_t nodes;
    int topology;             /* 0 grid, 1 line, 2 random */
    uint64_t seed;
    uint32_t duration_s;
    uint32_t eb_period_ms;
    uint32_t slotframe;
    bool autonomous;
    double r1, r2;            /* PDR 1 within r1, linear to 0 at r2 */
    double min_pdr;           /* parent candidates need at least this */
    uint8_t max_retries;      /* macMaxFrameRetries */
    uint8_t min_be, max_be;
    uint32_t join_wait_ms;
    int64_t rekey_at_ms;      /* -1: no rekey */
    /* motes (indices) whose EUI-64 is on the JRC's blacklist, at most
     * CJ_COJP_MAX_BLACKLIST; the JRC never admits them and the motes'
     * JPs drop their frames (RFC 9031 section 8.4.2) */
    const uint32_t *blacklist;
    uint32_t nblacklist;
    const char *pcap, *plot, *trace;
    bool pcap_tap;            /* LINKTYPE_IEEE802_15_4_TAP (with the ASN)
                               * instead of LINKTYPE_IEEE802_15_4_WITHFCS */
    bool json, timeline, bench, progress;
} sim_cfg_t;

typedef struct sim_verify {   /* one MIC check shared by receivers */
    uint8_t key[16];
    int result;               /* plaintext length (no MIC) or error */
    uint8_t plain[SIM_FRAME_MAX];
} sim_verify_t;

typedef struct sim_tx {       /* one transmission in the current slot */
    uint32_t mote;
    sim_pkt_t *pkt;
    uint8_t ch;
    bool acked;
    uint16_t len;             /* PSDU bytes on the air, FCS included */
    uint16_t next_off;        /* pkt->frag_off once this frame is acked;
                                 0: the datagram is complete */
    uint8_t frame[SIM_FRAME_MAX]; /* MPDU followed by its FCS */
    uint8_t nverify;
    sim_verify_t verify[3];
} sim_tx_t;

typedef struct sim_heap_ent {
    uint64_t asn;
    uint32_t mote, gen;
} sim_heap_ent_t;

typedef struct sim_route {    /* (mote, destination) -> next hop */
    uint64_t key;             /* 0: empty */
    uint32_t next;
    uint8_t seq;              /* Path Sequence of the DAO that set it */
    uint64_t expires;         /* ms; a route is live while now < expires */
} sim_route_t;

typedef struct sim {
    sim_cfg_t cfg;
    sim_mote_t *m;
    uint32_t n;
    sim_nb_t *nb;
    size_t nb_total;
    uint64_t rng;
    uint64_t asn, now;        /* current slot and its time in ms */
    uint64_t end_asn;

    /* JRC on the root */
    cj_jrc_t *jrc;
    cj_jrc_memstore_t ms;
    cj_jrc_mementry_t *entries;
    cj_jrc_slot_t *slots;
    cj_jrc_cfg_t jcfg;
    uint8_t bl[CJ_COJP_MAX_BLACKLIST][8]; /* cfg.blacklist as EUI-64s */
    const uint8_t *bl_ids[CJ_COJP_MAX_BLACKLIST];
    size_t bl_lens[CJ_COJP_MAX_BLACKLIST];
    cj_mem_platform_t jrc_pf;
    uint8_t netid[2];
    bool rekeyed;
    int rekey_campaign;
    bool campaign_done;
    uint32_t upd_acked, upd_failed;
    uint8_t new_k2_id;
    cj_jrc_key_t keys_seen[4];  /* every link-layer key used (pcap keys) */
    uint8_t nkeys_seen;

    /* scheduler */
    sim_heap_ent_t *heap;
    size_t hn, hcap;
    uint32_t *due;            /* motes woken in this slot */
    sim_tx_t *txs;            /* transmissions of this slot */
    uint32_t *touched;

    sim_route_t *routes;
    size_t rcap, rcount;

    /* totals */
    uint64_t slots_processed;
    uint64_t frames, bytes, acks, collisions, mac_drops, no_route;
    uint64_t eb_tx, dio_tx, dis_tx, dao_tx, dao_ack_tx, join_tx, udp_tx;
    uint64_t queue_drops, mac_dups;
    uint64_t bl_drops;        /* frames JPs dropped: blacklisted source */
    uint64_t frag_dgrams, frag_frames, reassembled, reass_timeouts, reass_nobuf,
        reass_orphans, reass_bad;
    uint64_t dao_sent, dao_retx, dao_acked, nopath_sent, routes_removed;
    uint64_t mic_checks, mic_shared, mic_fail;
    uint64_t asn_verified, asn_rejected; /* Join Response frames, section 5.1 */
    uint32_t max_frame;

    FILE *pcap;
    char *pcap_path;
    bool pcap_tap;
    FILE *trace;              /* --trace: one line per frame sent */
} sim_t;

/* ---- sim_frame.c ------------------------------------------------------- */

/* Hopping sequence: the 802.15.4 default for 16 channels. */
uint8_t sim_channel(uint64_t asn, uint16_t ch_offset);
/* RFC 9033 Appendix A SAX hash of an EUI-64 into [0, t). */
uint16_t sim_sax(const uint8_t eui[8], uint16_t t);

/* Build the frame for pkt sent by mote `from` in slot asn into out
 * (secured with key/key_id/level when key != NULL), FCS appended: a
 * PSDU of at most SIM_PHY_MAX bytes.  A datagram that does not fit one
 * frame is sent in RFC 4944 fragments: the one starting at pkt->frag_off
 * is built and *next_off says where the next starts (0: none).  Returns
 * the PSDU length or a negative error. */
int sim_frame_build(const sim_t *s, uint32_t from, const sim_pkt_t *pkt,
                    uint64_t asn, const uint8_t *key, uint8_t key_id,
                    uint8_t level, uint8_t *out, size_t cap, uint16_t *next_off);
/* Enhanced ACK from `from` to `to` for a frame with sequence number seq,
 * secured like the data frame when key != NULL; FCS appended. */
int sim_ack_build(const sim_t *s, uint32_t from, uint32_t to, uint8_t seq,
                  uint64_t asn, const uint8_t *key, uint8_t key_id,
                  uint8_t level, uint8_t *out, size_t cap);

/* What the network layer found in a received (plaintext) datagram. */
typedef struct sim_rx {
    uint8_t kind;             /* PK_* */
    bool link_local;
    int32_t src, dst;         /* motes (from addresses), -1 unknown */
    uint8_t hop_limit;
    uint16_t rank;            /* DIO */
    const uint8_t *data;      /* UDP payload */
    size_t len;
    uint16_t sport, dport;
    /* DAO / DAO-ACK */
    uint8_t dao_seq, dao_status;
    bool dao_k;
    uint8_t ntargets;
    int32_t target[SIM_DAO_TARGETS];
    uint8_t target_seq[SIM_DAO_TARGETS], target_life[SIM_DAO_TARGETS];
} sim_rx_t;

/* Parse a 6LoWPAN datagram (RFC 6282 IPHC + UDP NHC, or ICMPv6 RPL) from
 * mote `from` to link destination `to` (-1 broadcast).  A FRAG1 content
 * parses too (its headers are complete; the payload is cut short). */
int sim_lowpan_parse(const sim_t *s, const uint8_t *p, size_t len,
                     int32_t from, int32_t to, sim_rx_t *rx);
/* Bytes of the compressed IPv6 + UDP headers at the start of a datagram
 * (*hdr_c) and of the same headers uncompressed (*hdr_u).  0 or -1. */
int sim_lowpan_hdr(const uint8_t *p, size_t len, uint16_t *hdr_c, uint16_t *hdr_u);
/* RFC 4944 fragmentation header dispatches. */
#define SIM_FRAG1 0xc0
#define SIM_FRAGN 0xe0
/* Mote index of an EUI-64, or -1. */
int32_t sim_mote_of(const sim_t *s, const uint8_t eui[8]);

/* ---- sim_out.c --------------------------------------------------------- */

int sim_pcap_open(sim_t *s, const char *path);
void sim_pcap_frame(sim_t *s, uint64_t asn, unsigned sub, uint8_t ch,
                    const uint8_t *f, size_t len);
/* Record a link-layer key for the keys file written next to the pcap. */
void sim_key_seen(sim_t *s, uint8_t key_id, const uint8_t key[16]);
void sim_pcap_close(sim_t *s);
void sim_print_timeline(const sim_t *s, FILE *f);
void sim_print_json(const sim_t *s, FILE *f);
void sim_print_summary(const sim_t *s, FILE *f);
int sim_write_svg(const sim_t *s, const char *path);
/* Join times (ms) of joined non-root motes, sorted; returns the count. */
size_t sim_join_times(const sim_t *s, uint64_t *out);

/* Join time per hop count, and the analytic lower bound beside it
 * (docs/simulator.md, "Lower bound").  hops = shortest radio path to the
 * root; nb_max = most radio neighbours of a pledge in the group. */
typedef struct sim_hopstat {
    uint32_t hops, pledges, joined, nb_max;
    double median_s;          /* of joined pledges; < 0 when none */
    double bound_s;
} sim_hopstat_t;
/* Fill out[0..cap) by increasing hop count; returns the count. */
size_t sim_hop_stats(const sim_t *s, sim_hopstat_t *out, size_t cap);
/* Lower bound (s) on the median join time of pledges `hops` radio hops
 * from the root with at most nb radio neighbours. */
double sim_bound_s(const sim_cfg_t *c, unsigned hops, unsigned nb);
/* Median over the pledges of their own bounds (hop count, neighbours). */
double sim_bound_overall_s(const sim_t *s);
/* The median number of EBs a pledge scanning one channel must wait for
 * (first EB on its channel), with the minimal cell's channel hopping. */
unsigned sim_bound_ebs(const sim_cfg_t *c);

/* ---- sim.c ------------------------------------------------------------- */

int sim_init(sim_t *s, const sim_cfg_t *cfg);
void sim_run(sim_t *s);
void sim_free(sim_t *s);

/* Name of a packet kind as --trace writes it ("eb", "dio", ...). */
const char *sim_kind_name(uint8_t kind);

/* Model pieces, exposed for tests/unit/test_sim.c. */
/* PDR of a link of length d under the configured loss model. */
double sim_pdr(const sim_cfg_t *c, double d);
/* Rebuild the neighbour lists (and hop counts) from the motes'
 * positions, e.g. after a test moved them. */
int sim_relink(sim_t *s);
/* TSCH CSMA-CA: the backoff exponent after a transmission in a shared
 * cell succeeded (or was given up) or failed, and the number of cell
 * occurrences to skip for exponent be, uniform in [0, 2^be - 1]. */
uint8_t sim_csma_be(const sim_cfg_t *c, uint8_t be, bool success);
unsigned sim_csma_backoff(sim_t *s, uint8_t be);
sim_pkt_t *sim_pkt_new(uint8_t kind, int32_t nexthop, int32_t src, int32_t dst,
                       const uint8_t *data, size_t len);
/* Build tx->frame for tx->pkt sent by tx->mote in slot s->asn, secured
 * as the mote's keys say (EB: K1, join traffic: none, else K2); sets
 * tx->ch.  false when the mote has no key for the frame. */
bool sim_build_tx(sim_t *s, sim_tx_t *tx);
/* The radio and MAC of one slot: the ntx transmissions in s->txs reach
 * the listening neighbours (PDR draw, collisions, half duplex), are
 * acknowledged, and the senders' queues advance. */
void sim_resolve_slot(sim_t *s, size_t ntx);
/* Mote r got tx's frame intact: the MAC/security acceptance rules.
 * true when accepted (a unicast frame is then acknowledged). */
bool sim_rx_frame(sim_t *s, uint32_t r, sim_tx_t *tx);

#endif
