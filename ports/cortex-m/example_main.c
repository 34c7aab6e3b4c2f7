/*
 * A minimal firmware main loop around the pledge engine and the Join
 * Proxy engine: the example docs/porting.md walks through.
 *
 * `make firmware` compiles and links it (build/cortex-m/example.elf) so
 * that it keeps building against the real API.  It is never run: the
 * functions in the "board" section at the end stand for the drivers of a
 * real device (UDP over 6LoWPAN, TSCH MAC, timer, flash, TRNG) and do
 * nothing useful here.  Each says what the real one must do.  Everything
 * above that section is what a port keeps.
 *
 * Threading: one main loop owns both engines and calls them one at a
 * time.  Interrupt handlers (radio, timer, MAC slot handler) never call
 * into cojp; they queue work for the loop, and the MAC reads link-layer
 * keys from its own table, which the loop refreshes (mac_keys_refresh).
 * The one exception is cj_proxy_blacklisted(), which only reads the
 * Join Proxy's blacklist: the MAC's receive path calls it on every frame
 * (mac_rx_accept), and the loop changes the blacklist only with
 * interrupts masked (jp_configure).
 *
 * Addresses (cj_addr_t, opaque to the engines) are encoded here as
 *   link-local peer  IID (8 bytes) | UDP port (2, big-endian)    len 10
 *   routable peer    IPv6 address (16) | UDP port (2)           len 18
 * The lengths tell the two apart; the same peer always gets the same
 * bytes, which is all the engines need (they compare by length and bytes
 * and the Join Proxy carries the pledge's address inside its token).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cojp/coap.h"
#include "cojp/crypto.h"
#include "cojp/pledge.h"
#include "cojp/proxy.h"

int main(void);

#define COAP_PORT 5683u
/* Counter ids NV_PLEDGE_BASE .. + CJ_PLEDGE_COUNTERS - 1 (0..4) belong to
 * the pledge: sequence number, replay window, R2, R3 and the pair marker
 * (cojp/pledge.h); the application's own start after them. */
#define NV_PLEDGE_BASE 0u
#define NV_APP_BASE (NV_PLEDGE_BASE + CJ_PLEDGE_COUNTERS)
#define MAC_KEYS 8         /* MAC-side key table entries */
/* Largest datagram handled, in bytes.  The biggest by our count is a Join
 * Response with a full Configuration (4 keys, 8 blacklist entries) on the
 * JRC side, carrying the Join Proxy's 64-byte token: about 330 bytes. */
#define DGRAM_MAX 384u
/* Wait after FAILED before joining again (section 8.1.1 leaves it to the
 * device; the failure itself should be signalled out of band). */
#define REJOIN_BACKOFF_MS (10u * 60u * 1000u)

/* ---- board: supplied by the device (placeholders at the end) ----------- */

/* The placeholders are kept opaque to the optimiser, so that the image
 * links what a real firmware links (a stub returning 0 would otherwise
 * let the compiler drop the receive path). */
#define BOARD __attribute__((noipa))

static BOARD uint64_t board_now_ms(void);
static BOARD void board_sleep_until(uint64_t deadline);
static BOARD void board_irq_disable(void);
static BOARD void board_irq_enable(void);
/* The device's EUI-64 and its secret: the PSK, or, in a build without
 * key derivation (CJ_OSCORE_DERIVE 0, RFC 9031 Appendix B), the OSCORE
 * context derived from it at provisioning (`cojp jrc derive`). */
#define BOARD_SECRET_LEN (CJ_OSCORE_DERIVE ? 16 : CJ_OSCORE_OKM_LEN)
static BOARD void board_identity(uint8_t eui64[8],
                                 uint8_t secret[BOARD_SECRET_LEN]);
static BOARD const uint8_t *board_dodag_root(void);
static BOARD size_t net_receive(cj_addr_t *from, uint8_t *buf, size_t cap);
static BOARD void net_send(const cj_addr_t *to, const uint8_t *buf,
                           size_t len);
static BOARD bool mac_next_beacon(uint8_t jp_iid[8], uint8_t *proxy_prio,
                                  uint8_t *netid, size_t *netid_len);
static BOARD bool mac_next_verified_key_id(uint8_t *key_id);
static BOARD bool mac_verify_join_frame(void);
static BOARD void mac_resync(void);
static BOARD void mac_set_short_address(const uint8_t *sid);
static BOARD void mac_set_rx_filter(bool (*accept)(const uint8_t *src,
                                                   size_t src_len));
static BOARD int nv_write(uint32_t id, uint64_t value);
static BOARD int nv_read(uint32_t id, uint64_t *value);

/* ---- state --------------------------------------------------------------- */

static cj_pledge_t g_pledge;
static cj_proxy_t g_jp;
static volatile bool g_jp_ready;  /* read by the MAC's receive path */
static volatile uint32_t g_mac_blacklisted; /* frames it dropped */
static uint64_t g_rejoin_at = CJ_TIME_NEVER; /* after FAILED */
static uint8_t g_eui64[8];
/* Received datagrams are decrypted in place; the output buffer must hold
 * the largest datagram an engine emits (the pledge decrypts into it). */
static uint8_t g_rx[DGRAM_MAX];
static uint8_t g_tx[DGRAM_MAX];

/* The MAC's copy of the link-layer keys, read by the slot handler. */
typedef struct mac_key {
    uint8_t key_id;
    uint8_t key_usage;
    uint8_t key[16];
} mac_key_t;
static struct {
    mac_key_t rx[MAC_KEYS];
    uint8_t rx_n;
    mac_key_t tx_k1, tx_k2; /* key_usage 0xff: none, send unsecured */
} g_mac;

/* ---- platform port ------------------------------------------------------- */

static uint64_t plat_now(void *ctx)
{
    (void)ctx;
    return board_now_ms();
}

static int plat_store(void *ctx, uint32_t id, uint64_t value)
{
    (void)ctx;
    return nv_write(id, value); /* returns only once the value is durable */
}

static int plat_load(void *ctx, uint32_t id, uint64_t *value)
{
    (void)ctx;
    return nv_read(id, value);
}

static const cj_platform_t g_platform = {NULL, plat_now, plat_store,
                                         plat_load, NULL};

/* ---- addresses ----------------------------------------------------------- */

static void addr_make(cj_addr_t *a, const uint8_t *ip, size_t ip_len,
                      uint16_t port)
{
    memset(a, 0, sizeof *a);
    memcpy(a->b, ip, ip_len);
    a->b[ip_len] = (uint8_t)(port >> 8);
    a->b[ip_len + 1] = (uint8_t)port;
    a->len = (uint8_t)(ip_len + 2);
}

/* ---- link-layer keys for the MAC ---------------------------------------- */

static void key_copy(mac_key_t *d, const cj_pledge_key_t *k)
{
    if (k == NULL) {
        memset(d, 0, sizeof *d);
        d->key_usage = 0xff;
        return;
    }
    d->key_id = k->key_id;
    d->key_usage = k->key_usage;
    memcpy(d->key, k->key, sizeof d->key);
}

/* Copy what the engine holds now into the MAC's table, atomically for the
 * slot handler.  Run after every pass that called the pledge engine:
 * updates, switches and the guard-time removal of old keys all change
 * the set, and the removal has no event of its own. */
static void mac_keys_refresh(void)
{
    mac_key_t rx[MAC_KEYS];
    uint8_t n = 0;

    for (unsigned id = 0; id <= 0xff && n < MAC_KEYS; id++) {
        const cj_pledge_key_t *k = cj_pledge_rx_key(&g_pledge, (uint8_t)id);
        if (k != NULL)
            key_copy(&rx[n++], k);
    }
    board_irq_disable();
    memcpy(g_mac.rx, rx, n * sizeof rx[0]);
    g_mac.rx_n = n;
    key_copy(&g_mac.tx_k1, cj_pledge_tx_key(&g_pledge, CJ_PLEDGE_K1));
    key_copy(&g_mac.tx_k2, cj_pledge_tx_key(&g_pledge, CJ_PLEDGE_K2));
    board_irq_enable();
    cj_crypto_wipe(rx, sizeof rx);
}

/* ---- Join Proxy configuration from our own Configuration ---------------- */

static void jp_configure(void)
{
    const uint8_t *ja = cj_pledge_jrc_address(&g_pledge);
    uint64_t rate = cj_pledge_join_rate(&g_pledge);
    const uint8_t *ids[CJ_COJP_MAX_BLACKLIST];
    size_t lens[CJ_COJP_MAX_BLACKLIST];
    cj_addr_t jrc;

    /* Section 8.4.2: no JRC address means the JRC shares the 6LBR's. */
    addr_make(&jrc, ja != NULL ? ja : board_dodag_root(), 16, COAP_PORT);
    if (!g_jp_ready) {
        cj_proxy_cfg_t cfg;
        memset(&cfg, 0, sizeof cfg); /* random token key, default windows */
        cfg.jrc = jrc;
        cfg.join_rate = CJ_PROXY_RATE_UNLIMITED;
        if (cj_proxy_init(&g_jp, &cfg, &g_platform) != CJ_OK)
            return; /* no random bytes: stay a plain node */
        board_irq_disable(); /* g_jp complete before the MAC may read it */
        g_jp_ready = true;
        board_irq_enable();
    }
    cj_proxy_set_jrc(&g_jp, &jrc);
    /* Absent join rate: positive infinity (section 8.4.2). */
    cj_proxy_set_join_rate(&g_jp, rate == CJ_PLEDGE_JOIN_RATE_INFINITE
                                      ? CJ_PROXY_RATE_UNLIMITED
                                  : rate >= CJ_PROXY_RATE_UNLIMITED
                                      ? CJ_PROXY_RATE_UNLIMITED - 1
                                      : (uint32_t)rate);
    /* No accessor lists the entries; the fields are read-only here. */
    for (uint8_t i = 0; i < g_pledge.blacklist_count; i++) {
        ids[i] = g_pledge.blacklist[i];
        lens[i] = g_pledge.blacklist_len[i];
    }
    board_irq_disable(); /* mac_rx_accept reads it in the slot handler */
    (void)cj_proxy_set_blacklist(&g_jp, ids, lens, g_pledge.blacklist_count);
    board_irq_enable();
}

/* ---- link-layer blacklist (RFC 9031 section 8.4.2) ---------------------- */

/* "The joined node MUST silently drop any link-layer frames originating
 * from the pledge identifiers enclosed in the blacklist parameter."  The
 * MAC calls this from its receive path for every frame whose header it
 * parsed, before anything else (security, ACK, IEs, 6LoWPAN); false:
 * drop it silently, without an ACK.  src is the 802.15.4 source address
 * in the byte order of the pledge identifier (an extended address is
 * sent least significant byte first: reverse it).  A pledge always sends
 * with its extended address; a MAC that keeps a neighbour table may map
 * a short source address to its EUI-64 before calling. */
static bool mac_rx_accept(const uint8_t *src, size_t src_len)
{
    if (!g_jp_ready || !cj_proxy_blacklisted(&g_jp, src, src_len))
        return true;
    g_mac_blacklisted = g_mac_blacklisted + 1u;
    return false;
}

/* ---- events ------------------------------------------------------------- */

static void on_pledge_event(int ev, uint64_t now)
{
    uint8_t sid[CJ_COJP_SHORT_ID_LEN];

    switch (ev) {
    case CJ_PLEDGE_EV_JOINED:
        /* RFC 9031 section 5.1: the JP's frame that carried the Join
         * Response was read before the pledge had keys; verify it under
         * the keys just installed.  Only then is the ASN this node took
         * from an unauthenticated beacon valid; if not, the time may be
         * a replayed one: synchronise again and start over. */
        mac_keys_refresh();
        if (!mac_verify_join_frame()) {
            mac_resync();
            g_rejoin_at = now;
            break;
        }
        /* fall through */
    case CJ_PLEDGE_EV_UPDATED:
        /* Keys: mac_keys_refresh() runs after this pass.  Short address,
         * JRC address, join rate and blacklist: read them again. */
        mac_set_short_address(cj_pledge_short_id(&g_pledge, sid, NULL) == CJ_OK
                                  ? sid
                                  : NULL);
        jp_configure();
        break;
    case CJ_PLEDGE_EV_LEASE_EXPIRED:
        mac_set_short_address(NULL); /* the engine is joining again */
        break;
    case CJ_PLEDGE_EV_FAILED:
        /* Section 8.1.1: signal it out of band (LED, ...), then try
         * again later with a fresh attempt count. */
        g_rejoin_at = now + REJOIN_BACKOFF_MS;
        break;
    default: /* KEYS_SWITCHED, REJECTED, TIMEOUT, RECOVERY: log only */
        break;
    }
}

/* Carry out one engine output: the datagram first, then the event. */
static void handle_out(const cj_out_t *out, uint64_t now)
{
    if (out->len > 0)
        net_send(&out->to, out->buf, out->len);
    if (out->event != CJ_PLEDGE_EV_NONE)
        on_pledge_event(out->event, now);
}

static void on_datagram(uint64_t now, const cj_addr_t *from, uint8_t *msg,
                        size_t len)
{
    cj_out_t out = {g_tx, sizeof g_tx, 0, {0, {0}}, 0};
    bool joined = cj_pledge_get_state(&g_pledge) == CJ_PLEDGE_JOINED;

    if (g_jp_ready && cj_addr_equal(from, &g_jp.cfg.jrc)) {
        if (!cj_proxy_for_node(msg, len)) {
            /* A separate (CON) response also gets the JP's own empty ACK
             * (or a RST), to the JRC: both datagrams go out. */
            uint8_t ackbuf[CJ_PROXY_ACK_LEN];
            cj_out_t ack = {ackbuf, sizeof ackbuf, 0, {0, {0}}, 0};

            if (cj_proxy_input_jrc(&g_jp, now, from, msg, len, &out, &ack) == 1)
                net_send(&out.to, out.buf, out.len);
            if (ack.len > 0)
                net_send(&ack.to, ack.buf, ack.len);
            return;
        }
    } else if (g_jp_ready && joined && from->len == 10) {
        /* From a pledge on our link: relay its join traffic (1), or
         * reject a CON the JP cannot process with a RST to it (2). */
        if (cj_proxy_input_pledge(&g_jp, now, from, msg, len, &out) > 0)
            net_send(&out.to, out.buf, out.len);
        return;
    }
    if (cj_pledge_input(&g_pledge, now, from, msg, len, &out) == 1)
        handle_out(&out, now);
}

static void run_timers(uint64_t now)
{
    cj_out_t out = {g_tx, sizeof g_tx, 0, {0, {0}}, 0};

    /* One datagram or event per call; queued events come one by one. */
    while (cj_pledge_poll(&g_pledge, now, &out) == 1)
        handle_out(&out, now);
}

int main(void)
{
    cj_pledge_cfg_t cfg;
    cj_addr_t from;
    uint8_t netid[CJ_PLEDGE_MAX_NETID], iid[8], key_id, prio;
    size_t len, netid_len;
    uint64_t wake;

    memset(&cfg, 0, sizeof cfg);
#if CJ_OSCORE_DERIVE
    board_identity(g_eui64, cfg.psk);
#else
    static uint8_t okm[CJ_OSCORE_OKM_LEN];
    board_identity(g_eui64, okm);
    cfg.okm = okm;
#endif
    cfg.pledge_id = g_eui64;
    cfg.pledge_id_len = sizeof g_eui64;
    cfg.role = CJ_COJP_ROLE_6LN;
    cfg.counter_base = NV_PLEDGE_BASE;
    /* Only the key usages this MAC implements (0 would claim all). */
    cfg.key_usages = 1u << CJ_COJP_KEY_USAGE_K1K2_ENC_MIC32 |
                     1u << CJ_COJP_KEY_USAGE_K1K2_ENC_MIC64;
    /* CJ_ERR_STORAGE: the counters cannot be read; never join without
     * them (a restart could reuse OSCORE nonces). */
    if (cj_pledge_init(&g_pledge, &cfg, &g_platform) != CJ_OK)
        for (;;)
            board_sleep_until(CJ_TIME_NEVER);
    cj_crypto_wipe(cfg.psk, sizeof cfg.psk);
#if !CJ_OSCORE_DERIVE
    cj_crypto_wipe(okm, sizeof okm);
#endif
    mac_set_rx_filter(mac_rx_accept);

    for (;;) {
        uint64_t now = board_now_ms();

        /* Enhanced Beacons with a Join Info IE name Join Proxies; proxy
         * priority 0x7f withdraws one (RFC 9032 section 2). */
        while (mac_next_beacon(iid, &prio, netid, &netid_len)) {
            cj_addr_t jp;
            addr_make(&jp, iid, sizeof iid, COAP_PORT);
            if (prio == 0x7f) {
                (void)cj_pledge_remove_jp(&g_pledge, &jp);
                continue;
            }
            (void)cj_pledge_add_jp(&g_pledge, &jp, netid, netid_len);
            if (cj_pledge_get_state(&g_pledge) == CJ_PLEDGE_IDLE)
                (void)cj_pledge_start(&g_pledge, now);
        }
        while ((len = net_receive(&from, g_rx, sizeof g_rx)) > 0)
            on_datagram(now, &from, g_rx, len);
        /* Frames the MAC verified: a key of a new set switches sending. */
        while (mac_next_verified_key_id(&key_id)) {
            cj_out_t out = {g_tx, sizeof g_tx, 0, {0, {0}}, 0};
            if (cj_pledge_rx_used(&g_pledge, now, key_id, &out) == 1)
                handle_out(&out, now);
        }
        if (now >= g_rejoin_at) {
            g_rejoin_at = CJ_TIME_NEVER;
            (void)cj_pledge_start(&g_pledge, now);
        }
        run_timers(now);
        mac_keys_refresh();
        wake = cj_pledge_next_timer(&g_pledge);
        board_sleep_until(wake < g_rejoin_at ? wake : g_rejoin_at);
    }
}

/* ---- board (placeholders: replace with the device's drivers) ------------ */

/* Milliseconds from a monotonic hardware timer, extended to 64 bits;
 * never goes backwards.  Here: a counter that only moves when asked. */
static uint64_t board_now_ms(void)
{
    static uint64_t t;
    return t++;
}

/* Sleep until deadline (CJ_TIME_NEVER: no timer) or any interrupt. */
static void board_sleep_until(uint64_t deadline)
{
    (void)deadline;
    __asm__ volatile("wfi");
}

static void board_irq_disable(void)
{
    __asm__ volatile("cpsid i" ::: "memory");
}

static void board_irq_enable(void)
{
    __asm__ volatile("cpsie i" ::: "memory");
}

/* The EUI-64 and the PSK provisioned for this device, from a protected
 * flash region written at manufacturing; never compiled in. */
static void board_identity(uint8_t eui64[8], uint8_t secret[BOARD_SECRET_LEN])
{
    memset(eui64, 0, 8);
    memset(secret, 0, BOARD_SECRET_LEN);
}

/* IPv6 address of the RPL DODAG root (the 6LBR), from the routing stack. */
static const uint8_t *board_dodag_root(void)
{
    static const uint8_t root[16];
    return root;
}

/* Next UDP datagram for the CoJP port (5683), 0 when none is queued;
 * *from in the encoding described at the top of this file. */
static size_t net_receive(cj_addr_t *from, uint8_t *buf, size_t cap)
{
    (void)from, (void)buf, (void)cap;
    return 0;
}

/* Send a UDP datagram from the CoJP port to `to`. */
static void net_send(const cj_addr_t *to, const uint8_t *buf, size_t len)
{
    (void)to, (void)buf, (void)len;
}

/* Next Enhanced Beacon heard with a 6TiSCH Join Info IE (RFC 9032, e.g.
 * through cj_wpan_eb_decode): the JP's interface ID (from the IE, or from
 * the beacon's source EUI-64 with the U/L bit inverted, RFC 4944 section
 * 6), its proxy priority (0x7f: never a Join Proxy, RFC 9032 section 2)
 * and the network ID it announces; the rank priority plays no part.
 * Best candidates first (lower PAN priority, then proxy priority). */
static bool mac_next_beacon(uint8_t jp_iid[8], uint8_t *proxy_prio,
                            uint8_t *netid, size_t *netid_len)
{
    (void)jp_iid, (void)netid;
    *proxy_prio = 0x7f;
    *netid_len = 0;
    return false;
}

/* Key ids of frames the MAC verified since the last call, queued by the
 * slot handler (a key id not in use for sending is enough to queue). */
static bool mac_next_verified_key_id(uint8_t *key_id)
{
    (void)key_id;
    return false;
}

/* Verify, under the keys of the MAC's table and with the MAC's own ASN in
 * the nonce, the frame that delivered the last datagram the node's
 * pledge took from its JP: while joining, the MAC passes the JP's
 * authenticated (MIC-only) frames up unverified and keeps the last one
 * (RFC 9031 section 5.1). */
static bool mac_verify_join_frame(void)
{
    return false;
}

/* Forget the ASN and the time source and scan for Enhanced Beacons
 * again. */
static void mac_resync(void)
{
}

/* Have the MAC call accept(src, src_len) for every received frame before
 * it processes or acknowledges it, and drop the frame when it returns
 * false (the slot handler may call it: see mac_rx_accept). */
static void mac_set_rx_filter(bool (*accept)(const uint8_t *src,
                                             size_t src_len))
{
    (void)accept;
}

/* Use this 802.15.4 short address (2 bytes), or none (NULL). */
static void mac_set_short_address(const uint8_t *sid)
{
    (void)sid;
}

/* Durable counters: a record per id in two alternating flash pages, or
 * FRAM.  write returns CJ_OK only once the value survives a power cut,
 * and a cut during the write leaves the old value readable; read returns
 * CJ_ERR_NOTFOUND only for an id never written, CJ_ERR_STORAGE for
 * anything unreadable. */
static int nv_write(uint32_t id, uint64_t value)
{
    (void)id, (void)value;
    return CJ_ERR_STORAGE;
}

static int nv_read(uint32_t id, uint64_t *value)
{
    (void)id, (void)value;
    return CJ_ERR_STORAGE;
}

/* The crypto port's random source: the device's TRNG, conditioned (e.g.
 * through a CTR_DRBG).  Fails closed here: no TRNG on this board. */
int cj_crypto_random(uint8_t *buf, size_t len)
{
    if (len > 0)
        cj_crypto_wipe(buf, len);
    return CJ_ERR_CRYPTO;
}
