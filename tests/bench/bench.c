/*
 * make bench - throughput of the hot paths, printed as figures.
 *
 * Each figure is the median of BENCH_RUNS runs measured in this process,
 * so ratios between lines are comparable even on a noisy machine; the
 * absolute numbers are not.  Nothing here passes or fails.
 *
 *   oscore      protect + unprotect of a CoJP-sized request
 *   cojp        decode of the RFC 9031 Appendix A Configuration
 *   proxy       Join Proxy: forward a request and relay its response
 *   jrc/mem     JRC admissions, in-memory store
 *   jrc/sqlite  JRC admissions on a SQLite file (synchronous=FULL), one
 *               transaction per admission versus group commit of 64
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cojp/cojp.h"
#include "cojp/jrc.h"
#include "cojp/jrc_memstore.h"
#include "cojp/oscore.h"
#include "cojp/pledge.h"
#include "cojp/proxy.h"
#include "port/platform_mem.h"
#include "store/sqlite.h"

#define BENCH_RUNS 5

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of BENCH_RUNS rates (operations per second). */
static double median(double *v)
{
    qsort(v, BENCH_RUNS, sizeof *v, cmp_double);
    return v[BENCH_RUNS / 2];
}

static const uint8_t NETID[2] = {0xca, 0xfe};

/* The PSK of pledge v (ids 02 00 00 00 v): a fixed pattern ending in v,
 * one of its own per pledge, as the registries require (RFC 9031
 * section 3). */
static void bench_psk(uint32_t v, uint8_t psk[16])
{
    for (int k = 0; k < 12; k++)
        psk[k] = (uint8_t)(k + 1);
    psk[12] = (uint8_t)(v >> 24);
    psk[13] = (uint8_t)(v >> 16);
    psk[14] = (uint8_t)(v >> 8);
    psk[15] = (uint8_t)v;
}

static void derive(cj_oscore_ctx_t *c, const uint8_t *id, bool pledge_side)
{
    uint8_t psk[16];
    bench_psk(1, psk);
    cj_oscore_params_t p = {
        .master_secret = psk, .master_secret_len = 16,
        .sender_id = pledge_side ? (const uint8_t *)"" : (const uint8_t *)"JRC",
        .sender_id_len = pledge_side ? 0 : 3,
        .recipient_id = pledge_side ? (const uint8_t *)"JRC" : (const uint8_t *)"",
        .recipient_id_len = pledge_side ? 3 : 0,
        .id_context = id, .id_context_len = 8, .has_id_context = true};
    if (cj_oscore_ctx_derive(c, &p) != CJ_OK) {
        fprintf(stderr, "bench: derive failed\n");
        exit(1);
    }
    c->send_kid_context = pledge_side;
}

static double bench_oscore(void)
{
    static const uint8_t id[8] = {2, 0, 0, 0, 0, 0, 0, 1};
    cj_oscore_ctx_t cli, srv;
    uint8_t plain[64], prot[128], work[128], out[128];
    cj_coap_builder_t b;
    cj_oscore_req_t req;
    int plen, n = 20000;
    derive(&cli, id, true);
    derive(&srv, id, false);
    cj_coap_build_init(&b, plain, sizeof plain, CJ_COAP_CON, CJ_COAP_POST, 1,
                       (const uint8_t *)"\x01\x02\x03\x04", 4);
    cj_coap_build_opt_str(&b, CJ_COAP_OPT_URI_HOST, "6tisch.arpa");
    cj_coap_build_opt_str(&b, CJ_COAP_OPT_URI_PATH, "j");
    cj_coap_build_payload(&b, (const uint8_t *)"\xa1\x05\x42\xca\xfe", 5);
    plen = cj_coap_build_finish(&b);
    double t = now_s();
    for (int i = 0; i < n; i++) {
        int l = cj_oscore_protect_request(&cli, plain, (size_t)plen, prot, sizeof prot, &req);
        memcpy(work, prot, (size_t)l);
        if (l < 0 || cj_oscore_unprotect_request(&srv, work, (size_t)l, out, sizeof out, &req) < 0) {
            fprintf(stderr, "bench: oscore round trip failed\n");
            exit(1);
        }
    }
    return n / (now_s() - t);
}

static double bench_cojp(void)
{
    static const uint8_t cfg[] = {0xa2, 0x02, 0x82, 0x01, 0x50, 0xe6, 0xbf, 0x42, 0x87, 0xc2, 0xd7,
                                  0x61, 0x8d, 0x6a, 0x96, 0x87, 0x44, 0x5f, 0xfd, 0x33, 0xe6,
                                  0x03, 0x81, 0x42, 0xaf, 0x93};
    cj_cojp_config_t c;
    int n = 500000;
    double t = now_s();
    for (int i = 0; i < n; i++)
        if (cj_cojp_config_decode(cfg, sizeof cfg, &c, NULL) != CJ_OK) {
            fprintf(stderr, "bench: config decode failed\n");
            exit(1);
        }
    return n / (now_s() - t);
}

/* A Join Request of pledge i as its engine sends it. */
static size_t pledge_request(uint32_t i, uint8_t *out, size_t cap, cj_addr_t *from)
{
    static cj_pledge_t p;
    static cj_mem_platform_t pf;
    uint8_t id[8] = {2, 0, 0, 0, (uint8_t)(i >> 24), (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i};
    cj_pledge_cfg_t cfg;
    cj_addr_t jp = {.len = 2, .b = {0, 1}};
    cj_out_t o = {.buf = out, .cap = cap};
    memset(&cfg, 0, sizeof cfg);
    cfg.pledge_id = id;
    cfg.pledge_id_len = 8;
    bench_psk(i, cfg.psk);
    cj_mem_platform_init(&pf);
    if (cj_pledge_init(&p, &cfg, &pf.port) || cj_pledge_add_jp(&p, &jp, NETID, 2) ||
        cj_pledge_start(&p, 0)) {
        fprintf(stderr, "bench: pledge init failed\n");
        exit(1);
    }
    cj_out_reset(&o);
    if (cj_pledge_poll(&p, 0, &o) != 1 || !o.len) {
        fprintf(stderr, "bench: no join request\n");
        exit(1);
    }
    from->len = 4;
    memcpy(from->b, &i, 4);
    return o.len;
}

static double bench_proxy(void)
{
    cj_proxy_t jp;
    cj_proxy_cfg_t cfg;
    cj_addr_t jrc = {.len = 1, .b = {9}}, from;
    uint8_t req[256], fw[256], resp[256], back[256];
    size_t rl = pledge_request(1, req, sizeof req, &from);
    int n = 200000;
    memset(&cfg, 0, sizeof cfg);
    cfg.jrc = jrc;
    cfg.join_rate = CJ_PROXY_RATE_UNLIMITED;
    memset(cfg.token_key, 7, 16);
    if (cj_proxy_init(&jp, &cfg, NULL) != CJ_OK)
        exit(1);
    double t = now_s();
    for (int i = 0; i < n; i++) {
        cj_out_t o = {.buf = fw, .cap = sizeof fw}, r = {.buf = back, .cap = sizeof back};
        cj_coap_builder_t b;
        cj_coap_msg_t m;
        cj_out_reset(&o);
        cj_out_reset(&r);
        if (cj_proxy_input_pledge(&jp, (uint64_t)i, &from, req, rl, &o) != 1 ||
            cj_coap_parse(&m, fw, o.len) != CJ_OK)
            exit(1);
        /* the JRC's answer: NON 2.04 echoing the token */
        cj_coap_build_init(&b, resp, sizeof resp, CJ_COAP_NON, CJ_COAP_CHANGED, (uint16_t)i,
                           m.token, m.token_len);
        cj_coap_build_opt(&b, CJ_COAP_OPT_OSCORE, NULL, 0);
        cj_coap_build_payload(&b, (const uint8_t *)"0123456789abcdef", 16);
        int l = cj_coap_build_finish(&b);
        if (cj_proxy_input_jrc(&jp, (uint64_t)i, &jrc, resp, (size_t)l, &r, NULL) != 1)
            exit(1);
    }
    return n / (now_s() - t);
}

/* Admit n fresh pledges through a JRC over store; with a SQLite handle,
 * commit every `batch` requests (1: one transaction per admission). */
static double admit(const cj_jrc_store_t *store, cj_sqlite_t *db, uint32_t base, int n,
                    int batch, cj_jrc_slot_t *slots, size_t nslots)
{
    static cj_jrc_t jrc;
    static uint8_t reqs[64][256];
    static size_t lens[64];
    cj_jrc_cfg_t cfg;
    cj_addr_t jp = {.len = 2, .b = {0, 1}};
    uint8_t out[512];
    memset(&cfg, 0, sizeof cfg);
    cfg.network_id = NETID;
    cfg.network_id_len = 2;
    cfg.keys[0] = (cj_jrc_key_t){.key_id = 1, .key_usage = CJ_COJP_KEY_USAGE_K1_MIC32};
    cfg.keys[1] = (cj_jrc_key_t){.key_id = 2, .key_usage = CJ_COJP_KEY_USAGE_K2_ENC_MIC32};
    cfg.key_count = 2;
    cfg.join_rate = UINT32_MAX;
    cfg.slots = slots;
    cfg.slot_count = nslots;
    if (cj_jrc_init(&jrc, &cfg, store, NULL) != CJ_OK) {
        fprintf(stderr, "bench: jrc init failed\n");
        exit(1);
    }
    double busy = 0;
    for (int i = 0; i < n; i += batch) {
        int k = batch < n - i ? batch : n - i;
        cj_addr_t from;
        for (int j = 0; j < k; j++)
            lens[j] = pledge_request(base + (uint32_t)(i + j), reqs[j], sizeof reqs[j], &from);
        double t = now_s();
        if (db && cj_sqlite_begin(db) != CJ_OK)
            exit(1);
        for (int j = 0; j < k; j++) {
            cj_out_t o = {.buf = out, .cap = sizeof out};
            cj_out_reset(&o);
            if (cj_jrc_input(&jrc, 0, &jp, reqs[j], lens[j], &o) != 1 || !o.len) {
                fprintf(stderr, "bench: admission failed\n");
                exit(1);
            }
        }
        if (db && cj_sqlite_commit(db) != CJ_OK)
            exit(1);
        busy += now_s() - t;
    }
    return n / busy;
}

static void provision_mem(cj_jrc_memstore_t *ms, uint32_t base, int n)
{
    for (int i = 0; i < n; i++) {
        uint32_t v = base + (uint32_t)i;
        uint8_t id[8] = {2, 0, 0, 0, (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
        uint8_t psk[16];
        bench_psk(v, psk);
        if (cj_jrc_memstore_add(ms, id, 8, psk, CJ_JRC_ALLOW_NODE) != CJ_OK) {
            fprintf(stderr, "bench: provisioning failed\n");
            exit(1);
        }
    }
}

static void provision_sql(cj_sqlite_t *db, uint32_t base, int n)
{
    cj_sqlite_begin(db);
    for (int i = 0; i < n; i++) {
        uint32_t v = base + (uint32_t)i;
        uint8_t id[8] = {2, 0, 0, 0, (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
        uint8_t psk[16];
        bench_psk(v, psk);
        if (cj_sqlite_add(db, id, 8, psk, CJ_JRC_ALLOW_NODE) != CJ_OK) {
            fprintf(stderr, "bench: provisioning failed\n");
            exit(1);
        }
    }
    if (cj_sqlite_commit(db) != CJ_OK) {
        fprintf(stderr, "bench: provisioning failed\n");
        exit(1);
    }
}

int main(void)
{
    double r[BENCH_RUNS], single[BENCH_RUNS], group[BENCH_RUNS];
    enum { N_MEM = 2000, N_SQL = 256 };
    static cj_jrc_slot_t slots[N_MEM];
    static cj_jrc_mementry_t entries[N_MEM];
    char dir[] = "/tmp/cojp-bench.XXXXXX", path[64];

    for (int i = 0; i < BENCH_RUNS; i++)
        r[i] = bench_oscore();
    printf("bench oscore: %.0f request round trips/s (protect + unprotect)\n", median(r));
    for (int i = 0; i < BENCH_RUNS; i++)
        r[i] = bench_cojp();
    printf("bench cojp: %.0f Configuration decodes/s (RFC 9031 Appendix A)\n", median(r));
    for (int i = 0; i < BENCH_RUNS; i++)
        r[i] = bench_proxy();
    printf("bench proxy: %.0f request+response relays/s\n", median(r));
    for (int i = 0; i < BENCH_RUNS; i++) {
        static cj_jrc_memstore_t ms;
        cj_jrc_memstore_init(&ms, entries, N_MEM);
        provision_mem(&ms, 1000000u * (uint32_t)i, N_MEM);
        r[i] = admit(&ms.store, NULL, 1000000u * (uint32_t)i, N_MEM, 64, slots, N_MEM);
    }
    printf("bench jrc/mem: %.0f admissions/s (in-memory store)\n", median(r));

    if (!mkdtemp(dir)) {
        perror("bench: mkdtemp");
        return 1;
    }
    snprintf(path, sizeof path, "%s/jrc.db", dir);
    cj_sqlite_t *db;
    if (cj_sqlite_open(&db, path) != CJ_OK) {
        fprintf(stderr, "bench: cannot open %s\n", path);
        return 1;
    }
    for (int i = 0; i < BENCH_RUNS; i++) {
        uint32_t b1 = 2000000u + 2000u * (uint32_t)i, b2 = b1 + 1000u;
        provision_sql(db, b1, N_SQL);
        provision_sql(db, b2, N_SQL);
        single[i] = admit(cj_sqlite_store(db), db, b1, N_SQL, 1, slots, N_MEM);
        group[i] = admit(cj_sqlite_store(db), db, b2, N_SQL, 64, slots, N_MEM);
    }
    double s = median(single), g = median(group);
    printf("bench jrc/sqlite: %.0f admissions/s with a commit per admission, "
           "%.0f with group commit of 64 (x%.1f; synchronous=FULL)\n", s, g, g / s);
    cj_sqlite_close(db);
    char f[96];
    static const char *const files[] = {"jrc.db", "jrc.db-wal", "jrc.db-shm"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(f, sizeof f, "%s/%s", dir, files[i]);
        unlink(f);
    }
    rmdir(dir);
    return 0;
}
