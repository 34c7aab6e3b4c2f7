#include "node.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cojp/crypto.h"
#include "util.h"

bool cj_node_arg(cj_node_args_t *a, int c, const char *arg, const char *cmd,
                 int *rc)
{
    *rc = 0;
    switch (c) {
    case 'i':
        if ((a->id_len = cj_hex_parse(arg, a->id, sizeof a->id, 0)) < 0)
            *rc = cj_fail(CJ_EXIT_USAGE, cmd, "--id must be 1 to 8 bytes of hex");
        return true;
    case 'k':
        a->psk_len = cj_secret_arg(cmd, arg, a->psk, sizeof a->psk, 16,
                                   "--psk must be 16 bytes (32 hex digits, or @FILE)", rc);
        return true;
    case 'o': {
        char bad[96];
        snprintf(bad, sizeof bad, "--okm must be %d bytes (%d hex digits, or @FILE: cojp jrc derive)",
                 CJ_OSCORE_OKM_LEN, 2 * CJ_OSCORE_OKM_LEN);
        a->okm_len = cj_secret_arg(cmd, arg, a->okm, sizeof a->okm, sizeof a->okm, bad, rc);
        return true;
    }
    case 'n':
        if ((a->netid_len = cj_hex_parse(arg, a->netid, sizeof a->netid, 0)) < 0)
            *rc = cj_fail(CJ_EXIT_USAGE, cmd, "--network-id must be 1 to %d bytes of hex",
                          CJ_PLEDGE_MAX_NETID);
        return true;
    case 's':
        a->state = arg;
        return true;
    default:
        return false;
    }
}

int cj_node_secret(const cj_node_args_t *a, const char *cmd,
                   const uint8_t **okm)
{
    if ((a->psk_len > 0) == (a->okm_len > 0))
        return cj_fail(CJ_EXIT_USAGE, cmd, "give the pledge's --psk or its --okm, not both");
    *okm = a->okm_len ? a->okm : NULL;
    return 0;
}

int cj_node_init(cj_node_t *n, const uint8_t *id, size_t id_len,
                 const uint8_t psk[16], const uint8_t *okm, uint8_t role,
                 const char *state_path,
                 const uint8_t *network_id, size_t network_id_len,
                 const cj_addr_t *jp, int fd)
{
    cj_pledge_cfg_t cfg;
    int rc;

    memset(n, 0, sizeof *n);
    if (id_len == 0 || id_len > sizeof n->id)
        return CJ_ERR_INVALID;
    memcpy(n->id, id, id_len);
    n->id_len = id_len;
    n->fd = fd;
    if (!state_path) {
        cj_hlog_begin("warn", "no_state_file");
        cj_hlog_str("reason", "OSCORE counters in memory only: do not restart with this PSK");
        cj_hlog_end();
    }
    rc = cj_posix_platform_init(&n->pf, state_path);
    if (rc != CJ_OK)
        return rc;
    n->pf.port.log = cj_hlog_platform;
    memset(&cfg, 0, sizeof cfg);
    cfg.pledge_id = n->id;
    cfg.pledge_id_len = id_len;
    if (okm == NULL)
        memcpy(cfg.psk, psk, 16);
    cfg.okm = okm;
    cfg.role = role;
    cfg.network_id = network_id_len ? network_id : NULL;
    cfg.network_id_len = network_id_len;
    rc = cj_pledge_init(&n->eng, &cfg, &n->pf.port);
    cj_crypto_wipe(cfg.psk, sizeof cfg.psk);
    if (rc != CJ_OK)
        return rc;
    return cj_pledge_add_jp(&n->eng, jp, network_id, network_id_len);
}

int cj_node_start(cj_node_t *n, uint64_t now)
{
    cj_hlog_begin("info", "join_start");
    cj_hlog_hex("pledge", n->id, n->id_len);
    cj_hlog_addr("jp", &n->eng.jps[0].addr);
    cj_hlog_end();
    return cj_pledge_start(&n->eng, now);
}

static void log_keys(const char *key, const cj_pledge_keyset_t *ks)
{
    char buf[CJ_COJP_MAX_KEYS * 8 + 2], *p = buf;
    /* key ids only: the key material goes to the pledge's own output */
    *p++ = '[';
    for (uint8_t i = 0; i < ks->n; i++)
        p += sprintf(p, "%s%u", i ? "," : "", ks->k[i].key_id);
    *p++ = ']';
    *p = 0;
    cj_hlog_str(key, buf);
}

static void log_short(const cj_node_t *n, uint64_t now)
{
    uint8_t sid[2];
    uint64_t exp;
    if (cj_pledge_short_id(&n->eng, sid, &exp) != CJ_OK) {
        cj_hlog_str("short_id", NULL);
        return;
    }
    cj_hlog_hex("short_id", sid, 2);
    if (exp != CJ_TIME_NEVER)
        cj_hlog_uint("lease_s", exp > now ? (exp - now) / 1000u : 0);
}

/* Start the log record of an event of this node. */
static void log_begin(const cj_node_t *n, const char *level, const char *event)
{
    cj_hlog_begin(level, event);
    cj_hlog_hex("pledge", n->id, n->id_len);
}

/* A log record naming the node and nothing else. */
static void log_line(const cj_node_t *n, const char *level, const char *event)
{
    log_begin(n, level, event);
    cj_hlog_end();
}

/* Log one event and act on it (see the key switch note in node.h). */
static void on_event(cj_node_t *n, int ev, uint64_t now)
{
    cj_out_t out = {.buf = n->obuf, .cap = sizeof n->obuf};

    switch (ev) {
    case CJ_PLEDGE_EV_JOINED:
        n->joined_at = now;
        log_begin(n, "info", "joined");
        log_short(n, now);
        log_keys("key_ids", &n->eng.keys);
        cj_hlog_addr("jp", cj_pledge_joined_jp(&n->eng));
        cj_hlog_end();
        break;
    case CJ_PLEDGE_EV_UPDATED: {
        cj_pledge_keyset_t fresh = n->eng.new_keys;
        n->updates++;
        log_begin(n, "info", "update_applied");
        log_short(n, now);
        log_keys("key_ids", &n->eng.keys);
        log_keys("new_key_ids", &fresh);
        cj_hlog_uint("blacklist", cj_pledge_blacklist_count(&n->eng));
        cj_hlog_end();
        if (n->on_event)
            n->on_event(n->arg, n, ev, now);
        for (uint8_t i = 0; i < fresh.n; i++) {
            cj_out_reset(&out);
            if (cj_pledge_rx_used(&n->eng, now, fresh.k[i].key_id, &out) == 1) {
                on_event(n, out.event, now);
                break;
            }
        }
        cj_crypto_wipe(&fresh, sizeof fresh);
        return;
    }
    case CJ_PLEDGE_EV_KEYS_SWITCHED: {
        const cj_pledge_key_t *k;
        size_t cnt = cj_pledge_keys(&n->eng, &k);
        log_begin(n, "info", "keys_switched");
        log_keys("key_ids", &n->eng.keys);
        /* Which keys, not the keys: a log is read by more people than a
         * key may be (a JP's K2 is the network's).  Each key's
         * fingerprint is the first 8 bytes of HKDF-SHA256 with salt
         * "cojp key fingerprint", the key as input keying material and
         * no info: one-way, and comparable with the registry's key. */
        for (size_t i = 0; i < cnt; i++) {
            static const char salt[] = "cojp key fingerprint";
            char name[24];
            uint8_t fp[8];
            snprintf(name, sizeof name, "key_%u_fp", k[i].key_id);
            if (cj_crypto_hkdf_sha256((const uint8_t *)salt, sizeof salt - 1, k[i].key, 16,
                                      NULL, 0, fp, sizeof fp) == CJ_OK)
                cj_hlog_hex(name, fp, sizeof fp);
        }
        cj_hlog_end();
        break;
    }
    case CJ_PLEDGE_EV_LEASE_EXPIRED:
        log_line(n, "warn", "lease_expired");
        break;
    case CJ_PLEDGE_EV_REJECTED:
        n->rejected++;
        log_line(n, "warn", "join_rejected");
        break;
    case CJ_PLEDGE_EV_TIMEOUT:
        n->timeouts++;
        log_line(n, "warn", "join_timeout");
        break;
    case CJ_PLEDGE_EV_RECOVERY:
        log_line(n, "warn", "join_recovery");
        break;
    case CJ_PLEDGE_EV_FAILED:
        log_line(n, "error", "join_failed");
        break;
    default:
        return;
    }
    if (n->on_event)
        n->on_event(n->arg, n, ev, now);
}

void cj_node_input(cj_node_t *n, uint64_t now, const cj_addr_t *from,
                   uint8_t *buf, size_t len)
{
    cj_out_t out = {.buf = n->obuf, .cap = sizeof n->obuf};
    int ev;

    if (cj_pledge_input(&n->eng, now, from, buf, len, &out) != 1)
        return;
    cj_send_out(n->fd, &out);
    ev = out.event;
    if (ev)
        on_event(n, ev, now);
    (void)cj_node_poll(n, now); /* queued events */
}

uint64_t cj_node_poll(cj_node_t *n, uint64_t now)
{
    cj_out_t out = {.buf = n->obuf, .cap = sizeof n->obuf};
    for (int guard = 0; guard < 64 && cj_pledge_next_timer(&n->eng) <= now; guard++) {
        cj_out_reset(&out);
        if (cj_pledge_poll(&n->eng, now, &out) != 1)
            break;
        cj_send_out(n->fd, &out);
        if (out.event)
            on_event(n, out.event, now);
    }
    return cj_pledge_next_timer(&n->eng);
}

void cj_node_print_json(const cj_node_t *n, FILE *f, uint64_t now)
{
    const cj_pledge_key_t *k;
    size_t cnt = cj_pledge_keys(&n->eng, &k);
    const uint8_t *jrc = cj_pledge_jrc_address(&n->eng);
    uint64_t rate = cj_pledge_join_rate(&n->eng);
    uint8_t sid[2];
    uint64_t exp;
    char h[2 * 16 + 1];

    fprintf(f, "{\"joined\":%s", cj_pledge_get_state(&n->eng) == CJ_PLEDGE_JOINED
                                     ? "true" : "false");
    if (cj_pledge_short_id(&n->eng, sid, &exp) == CJ_OK) {
        fprintf(f, ",\"short_id\":\"%s\"", cj_hex_fmt(h, sid, 2));
        if (exp == CJ_TIME_NEVER)
            fprintf(f, ",\"lease_hours\":null");
        else /* the lease ran from reception; round to whole hours */
            fprintf(f, ",\"lease_hours\":%" PRIu64,
                    exp > now ? (exp - now + 1800000u) / 3600000u : 0);
    } else {
        fprintf(f, ",\"short_id\":null,\"lease_hours\":null");
    }
    fprintf(f, ",\"keys\":[");
    for (size_t i = 0; i < cnt; i++)
        fprintf(f, "%s{\"key_id\":%u,\"key_usage\":%u,\"key\":\"%s\"}", i ? "," : "",
                k[i].key_id, k[i].key_usage, cj_hex_fmt(h, k[i].key, 16));
    fprintf(f, "],\"jrc_address\":");
    if (jrc)
        fprintf(f, "\"%s\"", cj_hex_fmt(h, jrc, 16));
    else
        fprintf(f, "null");
    fprintf(f, ",\"join_rate\":");
    if (rate == CJ_PLEDGE_JOIN_RATE_INFINITE)
        fprintf(f, "null");
    else
        fprintf(f, "%" PRIu64, rate);
    fprintf(f, ",\"blacklist\":[");
    for (uint8_t i = 0; i < n->eng.blacklist_count; i++)
        fprintf(f, "%s\"%s\"", i ? "," : "",
                cj_hex_fmt(h, n->eng.blacklist[i], n->eng.blacklist_len[i]));
    fprintf(f, "]}\n");
    fflush(f);
}
