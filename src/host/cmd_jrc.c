/*
 * cojp jrc - the Join Registrar/Coordinator: provisioning commands over
 * the registry (registry.h) and the daemon (`jrc serve`).
 *
 * The daemon feeds the JRC engine wall-clock milliseconds: short-id
 * leases are stored as times in the database and must keep their meaning
 * across reboots (cj_wall_clock_t: never backwards, and timers keep
 * running when the wall clock is stepped back).  Datagrams that are ready together are handled as one
 * batch inside one transaction; the batch's responses are sent only
 * after it is durable (group commit: one fsync per batch, and nothing the
 * JRC said can be forgotten by a crash).  With SQLite the commit is
 * pipelined (store/sqlite.h): while a helper thread syncs batch N, batch
 * N+1 is processed and committed; each batch's responses wait in a small
 * queue until its sync completed, and batches leave in commit order.  Parameter updates produced by
 * timers run without an open transaction, so each store write the
 * engine makes for them is durable when it returns, before the datagram
 * leaves.
 *
 * `jrc rekey`, `jrc evict` and `jrc readmit` are separate processes:
 * they queue an operation in the database; the serving JRC looks for
 * queued operations every CJ_JRC_OP_POLL_MS while no campaign runs,
 * persists the network's new state (key set, blacklist, next campaign
 * number) in the same transaction that takes the operation, and only
 * then starts the campaign.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "cojp/crypto.h"
#include "cojp/jrc.h"
#include "cojp/pledge.h"
#include "cojp/proxy.h"
#include "loop.h"
#include "net.h"
#include "port/platform_posix.h"
#include "registry.h"
#include "store/common.h"
#include "util.h"

#define CMD "cojp jrc"
#define CJ_JRC_OP_POLL_MS 500u
/* The campaign lock of a shared registry (run_op): an owner that has not
 * said it is alive for this long (by the registry's clock, cj_reg_clock)
 * is taken to be gone. */
#define CAMP_STALE_MS 10000u
/* Most datagrams handled in one transaction (one commit, one WAL sync).
 * The commit, the sync and the checkpoints cost the same whatever the
 * batch holds, so a larger one spends less CPU per join (cojp bench: 512
 * takes about 5% less than 256); 512 admissions are still a few
 * milliseconds of work, far below CoAP's ACK_TIMEOUT. */
#define BATCH_MAX 512
/* Committed batches whose responses wait for their sync; when all are
 * taken, the next batch waits for the oldest sync. */
#define PIPE_DEPTH 4
#define DEFAULT_SLOTS 1024
/* jrc recover: short ids the search for free ones moves on */
#define DEFAULT_SKIP_SHORT 4096
/* jrc recover: key ids the fresh key set moves on */
#define DEFAULT_SKIP_KEY 16
#define SKIP_SHORT_MAX 65533 /* every assignable id: 1..0xfffd */
/* jrc serve --node-port: CoAP's default port (RFC 7252 section 6.1) */
#define NODE_PORT_DEFAULT 5683

static void usage(FILE *f)
{
    fprintf(f,
            "usage: cojp jrc COMMAND --db DB [OPTIONS]\n"
            "\n"
            "DB is an SQLite file path (created when missing) or a postgresql:// URI.\n"
            "\n"
            "  add    --db DB --pledge ID --psk HEX [--role node|6lbr] [--address ADDR]\n"
            "         provision a pledge; ADDR is where it answers parameter updates\n"
            "  address --db DB --pledge ID --address ADDR|none\n"
            "         set or clear a provisioned pledge's update address\n"
            "  import --db DB FILE.csv    lines id,psk[,role] (FILE '-' = stdin)\n"
            "  list   --db DB [--json]    pledges, short ids, leases, last campaign\n"
            "  serve  --db DB --listen ADDR [--k2 HEX|generated] [--key-id N]\n"
            "         [--network-id HEX] [--jrc-address IPV6] [--join-rate N]\n"
            "         [--lease-hours N] [--ack-timeout MS] [--slots N] [--log json|text]\n"
            "         [--log-level error|warn|info|debug]\n"
            "  psk    --db DB --pledge ID --psk HEX\n"
            "         give a pledge a new PSK (recommissioning); it joins afresh\n"
            "  remove --db DB --pledge ID decommission a pledge (evict it first\n"
            "         if it joined: removal does not take it out of the network)\n"
            "  rekey  --db DB [--k2 HEX|generated]\n"
            "         queue a network-wide K2 rotation\n"
            "  evict  --db DB --pledge ID queue an eviction\n"
            "  readmit --db DB --pledge ID\n"
            "         queue lifting an eviction: the pledge may join again\n"
            "  recover --db DB [--skip-short-ids N]\n"
            "         after restoring the registry from a backup: every pledge\n"
            "         re-establishes its OSCORE context at its next join\n"
            "  derive --pledge ID (--psk HEX | --db DB) [--json]\n"
            "         the pledge's OSCORE context, to provision instead of its PSK\n"
            "  prune  --db DB [--keep N|all]\n"
            "         campaign outcomes kept per pledge (default 16); apply now\n"
            "\n"
            "Keys (--psk, --k2) are hex, or @FILE to read the hex from FILE so that\n"
            "it does not show in the process list.\n"
            "\n"
            "Run 'cojp jrc COMMAND --help' for details.\n");
}

/* ---- shared option handling -------------------------------------------- */

/* Open --db (0, else the exit code after the one-line error: 2 when
 * --db was not given).  must_exist: an SQLite file is not created;
 * reader: the command only reads (implies must_exist), so it works beside
 * a busy JRC and on a full disk. */
static int open_reg_as(cj_reg_t **r, const char *db, bool must_exist, bool reader,
                       const char *cmd)
{
    char err[256];
    int rc;
    if (db == NULL)
        return cj_fail(2, cmd, "--db is required");
    if ((must_exist || reader) && strncmp(db, "postgres", 8) && access(db, F_OK) != 0)
        return cj_fail(1, cmd, "no registry at '%s'", db);
    rc = cj_reg_open_as(r, db, reader, err, sizeof err);
    if (rc != CJ_OK)
        return cj_fail(1, cmd, "%s", err);
    return 0;
}

static int open_reg(cj_reg_t **r, const char *db, bool must_exist, const char *cmd)
{
    return open_reg_as(r, db, must_exist, false, cmd);
}

/* Close r after the work of cmd ended with rc: a registry error (rc < 0)
 * gives the one-line error "cannot WHAT: <the registry's message>" and
 * exit code 1; an exit code (rc >= 0, CJ_OK being 0) is returned as is. */
static int close_reg(cj_reg_t *r, const char *cmd, int rc, const char *what)
{
    if (rc < 0)
        rc = cj_fail(1, cmd, "cannot %s: %s", what, cj_reg_errmsg(r));
    cj_reg_close(r);
    return rc;
}

/* Commit the open transaction when every step succeeded (rc CJ_OK), else
 * roll it back; the outcome. */
static int reg_end(cj_reg_t *r, int rc)
{
    if (rc == CJ_OK)
        return cj_reg_commit(r);
    cj_reg_rollback(r);
    return rc;
}

/* The options of all jrc subcommands, taken by one parser.  A
 * subcommand's getopt_long table lists the ones it accepts (getopt_long
 * returns no others), with the values jrc_opts() switches on; the shared
 * entries are spelt once here. */
#define OPT_DB {"db", required_argument, NULL, 'd'}
#define OPT_PLEDGE {"pledge", required_argument, NULL, 'p'}
#define OPT_ADDRESS {"address", required_argument, NULL, 'a'}
#define OPT_K2 {"k2", required_argument, NULL, '2'}
#define OPT_HELP {"help", no_argument, NULL, 'h'}
#define OPT_END {NULL, 0, NULL, 0}

typedef struct jrc_args {
    const char *db, *addr_s, *listen_s; /* NULL: not given */
    uint8_t id[CJ_JRC_MAX_ID];
    int id_len; /* 0: --pledge not given */
    uint8_t psk[16];
    int psk_len; /* 0: --psk not given */
    int roles;
    bool json;
    uint8_t k2[16];
    bool has_k2; /* --k2 HEX (not 'generated') */
    /* serve */
    uint8_t netid[16], jaddr[16];
    int netid_len; /* -1: not given */
    bool has_jaddr, has_rate, has_lease, has_keyid;
    uint32_t key_id, rate, lease, ack_ms, slots;
    /* recover */
    uint32_t skip_short, skip_key;
    /* prune: outcomes kept per pledge (0: all) */
    bool has_keep;
    uint32_t keep;
    /* serve: the /64 prefix joined nodes' addresses are derived in, and
     * the port of their CoAP server */
    bool has_node_prefix, has_node_port;
    uint8_t node_prefix[8];
    uint32_t node_port;
} jrc_args_t;

/* --node-prefix: an IPv6 /64 prefix (ADDR/64, nothing set past the 64th
 * bit) into its 8 bytes; 0, or 2 after the one-line error. */
static int prefix64_arg(const char *cmd, const char *s, uint8_t out[8])
{
    char buf[INET6_ADDRSTRLEN + 4];
    uint8_t a[16];
    const char *slash = strchr(s, '/');
    size_t n = slash ? (size_t)(slash - s) : 0;
    static const uint8_t zero[8];

    if (n > 0 && n < sizeof buf && strcmp(slash, "/64") == 0) {
        memcpy(buf, s, n);
        buf[n] = '\0';
        if (inet_pton(AF_INET6, buf, a) == 1 && memcmp(a + 8, zero, 8) == 0) {
            memcpy(out, a, 8);
            return 0;
        }
    }
    return cj_fail(2, cmd, "--node-prefix must be an IPv6 /64 prefix (e.g. 2001:db8:0:1::/64)");
}

/* Parse the options of subcommand cmd into a (defaults first), then,
 * unless operands are wanted (left to the caller from optind), reject any
 * argument left over.  -1 when the command is to run, else its exit code:
 * 0 after help was printed, 2 after the one-line error for a bad option. */
static int jrc_opts(jrc_args_t *a, int argc, char **argv, const char *cmd,
                    const struct option *opts, const char *help, bool operands)
{
    int c, rc;
    memset(a, 0, sizeof *a);
    a->roles = CJ_JRC_ALLOW_NODE;
    a->netid_len = -1;
    a->key_id = 1;
    a->rate = UINT32_MAX;
    a->slots = DEFAULT_SLOTS;
    a->skip_short = DEFAULT_SKIP_SHORT;
    a->skip_key = DEFAULT_SKIP_KEY;
    a->node_port = NODE_PORT_DEFAULT;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': a->db = optarg; break;
        case 'a': a->addr_s = optarg; break;
        case 'L': a->listen_s = optarg; break;
        case 'j': a->json = true; break;
        case 'p':
            if ((a->id_len = cj_hex_parse(optarg, a->id, CJ_JRC_MAX_ID, 0)) < 0)
                return cj_fail(2, cmd, "--pledge must be 1 to 8 bytes of hex");
            break;
        case 'k':
            if ((a->psk_len = cj_secret_arg(cmd, optarg, a->psk, 16, 16,
                                            "--psk must be 16 bytes (32 hex digits, or @FILE)",
                                            &rc)) < 0)
                return rc;
            break;
        case 'r':
            if ((a->roles = cj_reg_role_mask(optarg)) <= 0)
                return cj_fail(2, cmd, "--role must be node or 6lbr");
            break;
        case '2':
            if (strcmp(optarg, "generated")) {
                if (cj_secret_arg(cmd, optarg, a->k2, 16, 16,
                                  "--k2 must be 16 bytes (32 hex digits, or @FILE) or 'generated'",
                                  &rc) < 0)
                    return rc;
                a->has_k2 = true;
            }
            break;
        case 'K':
            if (cj_parse_u32(optarg, 1, CJ_COJP_MAX_KEY_ID - 1, &a->key_id))
                return cj_fail(2, cmd, "--key-id must be 1..%d", CJ_COJP_MAX_KEY_ID - 1);
            a->has_keyid = true;
            break;
        case 'n':
            if ((a->netid_len = cj_hex_parse(optarg, a->netid, sizeof a->netid, 0)) < 0)
                return cj_fail(2, cmd, "--network-id must be 1 to 16 bytes of hex");
            break;
        case 'A':
            if (inet_pton(AF_INET6, optarg, a->jaddr) != 1)
                return cj_fail(2, cmd, "--jrc-address must be an IPv6 address");
            a->has_jaddr = true;
            break;
        case 'P':
            if ((rc = prefix64_arg(cmd, optarg, a->node_prefix)) != 0)
                return rc;
            a->has_node_prefix = true;
            break;
        case 'N':
            if (cj_parse_u32(optarg, 1, 65535, &a->node_port))
                return cj_fail(2, cmd, "--node-port must be 1..65535");
            a->has_node_port = true;
            break;
        case 'J':
            if (cj_parse_u32(optarg, 0, UINT32_MAX - 1, &a->rate))
                return cj_fail(2, cmd, "--join-rate must be 0..%u bytes/s", UINT32_MAX - 1);
            a->has_rate = true;
            break;
        case 'H':
            if (cj_parse_u32(optarg, 1, 1000000, &a->lease))
                return cj_fail(2, cmd, "--lease-hours must be 1..1000000");
            a->has_lease = true;
            break;
        case 'T':
            if (cj_parse_u32(optarg, 10, 600000, &a->ack_ms))
                return cj_fail(2, cmd, "--ack-timeout must be 10..600000 ms");
            break;
        case 'S':
            if (cj_parse_u32(optarg, 1, 1000000, &a->slots))
                return cj_fail(2, cmd, "--slots must be 1..1000000");
            break;
        case 'I':
            if (cj_parse_u32(optarg, 1, CJ_COJP_MAX_KEY_ID - 1, &a->skip_key))
                return cj_fail(2, cmd, "--skip-key-ids must be 1..%d",
                               CJ_COJP_MAX_KEY_ID - 1);
            break;
        case 'O':
            a->has_keep = true;
            if (!strcmp(optarg, "all"))
                a->keep = 0;
            else if (cj_parse_u32(optarg, 1, CJ_STORE_KEEP_MAX, &a->keep))
                return cj_fail(2, cmd, "--keep must be 1..%u or 'all'",
                               CJ_STORE_KEEP_MAX);
            break;
        case 'R':
            if (cj_parse_u32(optarg, 0, SKIP_SHORT_MAX, &a->skip_short))
                return cj_fail(2, cmd, "--skip-short-ids must be 0..%u",
                               SKIP_SHORT_MAX);
            break;
        case 'l':
        case 'V':
        case 'Y':
            if ((rc = cj_hlog_option(cmd, c, optarg)) != 0)
                return rc;
            break;
        case 'h':
            fputs(help, stdout);
            return 0;
        default: return cj_opt_unknown(cmd, argv);
        }
    }
    if (!operands && (rc = cj_opt_extra(cmd, argc, argv)) != 0)
        return rc;
    return -1;
}

/* Address argument s of cmd as the engines' cj_addr_t: 0 or exit code 2. */
static int addr_opt(const char *cmd, const char *s, cj_addr_t *addr)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    int rc = cj_addr_arg(cmd, s, &ss, &sl);
    if (rc == 0)
        cj_net_to_addr((struct sockaddr *)&ss, addr);
    return rc;
}

/* ---- add / address / import -------------------------------------------- */

static int jrc_add(int argc, char **argv)
{
    static const char *cmd = "cojp jrc add";
    static const struct option opts[] = {
        OPT_DB, OPT_PLEDGE, {"psk", required_argument, NULL, 'k'},
        {"role", required_argument, NULL, 'r'}, OPT_ADDRESS, OPT_HELP, OPT_END};
    jrc_args_t a;
    cj_addr_t addr;
    cj_reg_t *r;
    int rc = jrc_opts(&a, argc, argv, cmd, opts,
                      "usage: cojp jrc add --db DB --pledge ID --psk HEX [--role node|6lbr]\n"
                      "                    [--address ADDR]\n"
                      "Provision a pledge: identifier (hex, 1-8 bytes), 16-byte PSK, allowed\n"
                      "role (6lbr also allows node) and the address ([IPv6]:port or\n"
                      "IPv4:port) where the joined node answers parameter updates.\n"
                      "The PSK must be the pledge's own: one another pledge holds, or\n"
                      "one the registry retired ('jrc psk', 'jrc remove'), is refused\n"
                      "(RFC 9031 section 3).\n",
                      false);

    if (rc >= 0)
        return rc;
    if (!a.db || !a.id_len || !a.psk_len)
        return cj_fail(2, cmd, "--db, --pledge and --psk are required");
    if (a.addr_s && (rc = addr_opt(cmd, a.addr_s, &addr)) != 0)
        return rc;
    if ((rc = open_reg(&r, a.db, false, cmd)))
        return rc;
    rc = cj_reg_begin(r);
    if (rc == CJ_OK)
        rc = cj_reg_add(r, a.id, (size_t)a.id_len, a.psk, (uint8_t)a.roles);
    if (rc == CJ_OK && a.addr_s)
        rc = cj_reg_set_address(r, a.id, (size_t)a.id_len, &addr);
    rc = reg_end(r, rc);
    cj_crypto_wipe(a.psk, sizeof a.psk);
    if (rc == CJ_ERR_STATE || rc == CJ_ERR_PSK_REUSED) {
        char h[2 * CJ_JRC_MAX_ID + 1];
        cj_hex_fmt(h, a.id, (size_t)a.id_len);
        rc = rc == CJ_ERR_STATE
                 ? cj_fail(1, cmd, "pledge %s is already provisioned", h)
                 : cj_fail(1, cmd, "pledge %s not provisioned: its PSK is held by"
                           " another pledge or was retired (each pledge needs a"
                           " PSK of its own, never used before)", h);
    }
    return close_reg(r, cmd, rc, "provision");
}

/* RFC 9031 Appendix B: the derivation done on the pledge's behalf. */
static int jrc_derive(int argc, char **argv)
{
    static const char *cmd = "cojp jrc derive";
    static const struct option opts[] = {
        OPT_PLEDGE, {"psk", required_argument, NULL, 'k'}, OPT_DB,
        {"json", no_argument, NULL, 'j'}, OPT_HELP, OPT_END};
    uint8_t okm[CJ_OSCORE_OKM_LEN];
    char h[2 * CJ_OSCORE_OKM_LEN + 1], hid[2 * CJ_JRC_MAX_ID + 1];
    jrc_args_t a;
    int rc = jrc_opts(&a, argc, argv, cmd, opts,
                      "usage: cojp jrc derive --pledge ID (--psk HEX | --db DB) [--json]\n"
                      "The OSCORE context the pledge of this identifier and PSK derives\n"
                      "(RFC 9031 section 7.3): Sender Key, Recipient Key and Common IV,\n"
                      "90 hex digits.  Provisioned into the pledge instead of its PSK\n"
                      "('cojp pledge --okm', cj_pledge_cfg_t.okm; RFC 9031 Appendix B),\n"
                      "the device needs no key derivation.  The JRC keeps the PSK: with\n"
                      "--db it is read from the registry.\n",
                      false);

    if (rc >= 0)
        return rc;
    if (!a.id_len || !a.psk_len == !a.db)
        return cj_fail(2, cmd, "--pledge and one of --psk or --db are required");
    if (a.db) {
        cj_jrc_pledge_t rec;
        const cj_jrc_store_t *st;
        cj_reg_t *r;
        if ((rc = open_reg_as(&r, a.db, true, true, cmd)))
            return rc;
        st = cj_reg_store(r);
        rc = st->lookup(st->ctx, a.id, (size_t)a.id_len, &rec);
        if (rc == CJ_OK)
            memcpy(a.psk, rec.psk, sizeof a.psk);
        cj_crypto_wipe(&rec, sizeof rec);
        if (rc == CJ_ERR_NOTFOUND) {
            cj_reg_close(r);
            return cj_fail(1, cmd, "pledge %s is not provisioned",
                           cj_hex_fmt(hid, a.id, (size_t)a.id_len));
        }
        if ((rc = close_reg(r, cmd, rc, "read the registry")) != 0)
            return rc;
    }
    rc = cj_pledge_okm(a.id, (size_t)a.id_len, a.psk, okm);
    cj_crypto_wipe(a.psk, sizeof a.psk);
    if (rc != CJ_OK)
        return cj_fail(1, cmd, "cannot derive: %s", cj_strerror(rc));
    cj_hex_fmt(hid, a.id, (size_t)a.id_len);
    if (a.json) {
        char sk[33], rk[33], iv[27];
        printf("{\"pledge\":\"%s\",\"sender_key\":\"%s\",\"recipient_key\":\"%s\","
               "\"common_iv\":\"%s\",\"okm\":\"%s\"}\n",
               hid, cj_hex_fmt(sk, okm, 16), cj_hex_fmt(rk, okm + 16, 16),
               cj_hex_fmt(iv, okm + 32, 13), cj_hex_fmt(h, okm, sizeof okm));
    } else {
        printf("%s\n", cj_hex_fmt(h, okm, sizeof okm));
    }
    cj_crypto_wipe(okm, sizeof okm);
    cj_crypto_wipe(h, sizeof h);
    return 0;
}

static int jrc_address(int argc, char **argv)
{
    static const char *cmd = "cojp jrc address";
    static const struct option opts[] = {OPT_DB, OPT_PLEDGE, OPT_ADDRESS, OPT_HELP, OPT_END};
    jrc_args_t a;
    cj_addr_t addr;
    cj_reg_t *r;
    char hid[2 * CJ_JRC_MAX_ID + 1];
    int rc = jrc_opts(&a, argc, argv, cmd, opts,
                      "usage: cojp jrc address --db DB --pledge ID --address ADDR|none\n", false);

    if (rc >= 0)
        return rc;
    if (!a.db || !a.id_len || !a.addr_s)
        return cj_fail(2, cmd, "--db, --pledge and --address are required");
    memset(&addr, 0, sizeof addr);
    if (strcmp(a.addr_s, "none") && (rc = addr_opt(cmd, a.addr_s, &addr)) != 0)
        return rc;
    if ((rc = open_reg(&r, a.db, true, cmd)))
        return rc;
    rc = cj_reg_set_address(r, a.id, (size_t)a.id_len, &addr);
    if (rc == CJ_ERR_NOTFOUND)
        rc = cj_fail(1, cmd, "pledge %s is not provisioned",
                     cj_hex_fmt(hid, a.id, (size_t)a.id_len));
    return close_reg(r, cmd, rc, "set the address");
}

static int jrc_import(int argc, char **argv)
{
    static const char *cmd = "cojp jrc import";
    static const struct option opts[] = {OPT_DB, OPT_HELP, OPT_END};
    jrc_args_t a;
    const char *path;
    char *text = NULL;
    size_t len = 0, cap = 0, bad = 0, count = 0;
    FILE *f;
    cj_reg_t *r;
    int rc = jrc_opts(&a, argc, argv, cmd, opts,
                      "usage: cojp jrc import --db DB FILE.csv\n"
                      "Lines 'id,psk[,role]' (hex id, 32 hex digits of PSK, node|6lbr);\n"
                      "blank lines and lines starting with '#' are skipped.  Every\n"
                      "pledge needs a PSK of its own.  All or nothing: a bad line (an\n"
                      "id or a PSK already in the registry or earlier in the file too)\n"
                      "imports none.  FILE '-' reads stdin.\n",
                      true);

    if (rc >= 0)
        return rc;
    if (!a.db || optind + 1 != argc)
        return cj_fail(2, cmd, "want --db DB and one FILE.csv");
    path = argv[optind];
    f = strcmp(path, "-") ? fopen(path, "r") : stdin;
    if (!f)
        return cj_fail(1, cmd, "cannot read '%s': %s", path, strerror(errno));
    for (;;) {
        if (len + 4096 > cap) {
            char *t = realloc(text, cap = cap * 2 + 8192);
            if (!t) {
                free(text);
                return cj_fail(1, cmd, "out of memory");
            }
            text = t;
        }
        size_t n = fread(text + len, 1, cap - len, f);
        len += n;
        if (n == 0)
            break;
    }
    if (ferror(f)) {
        /* a folder opens but does not read (EISDIR): not an empty file */
        int e = errno;
        if (f != stdin)
            fclose(f);
        cj_crypto_wipe(text, len);
        free(text);
        return cj_fail(1, cmd, "cannot read '%s': %s", path, strerror(e));
    }
    if (f != stdin)
        fclose(f);
    if ((rc = open_reg(&r, a.db, false, cmd))) {
        free(text);
        return rc;
    }
    rc = cj_reg_import_csv(r, text, len, &bad, &count);
    cj_crypto_wipe(text, len);
    free(text);
    if (rc == CJ_OK)
        printf("imported %zu pledges\n", count);
    else if (rc == CJ_ERR_STATE)
        rc = cj_fail(1, cmd, "%s line %zu: pledge already provisioned", path, bad);
    else if (rc == CJ_ERR_PSK_REUSED)
        rc = cj_fail(1, cmd, "%s line %zu: PSK already held by another pledge"
                     " or retired (each pledge needs a PSK of its own, never"
                     " used before)", path, bad);
    else if (rc == CJ_ERR_MALFORMED)
        rc = cj_fail(1, cmd, "%s line %zu: want id,psk[,role]", path, bad);
    return close_reg(r, cmd, rc, "import");
}
/* ---- list ---------------------------------------------------------------- */

typedef struct list_ctx {
    bool json;
    int n;
    uint64_t wall;
} list_ctx_t;

static const char *iso(uint64_t ms, char *buf, size_t cap)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

static int list_one(void *arg, const cj_sqlite_info_t *in)
{
    list_ctx_t *l = arg;
    const cj_jrc_pledge_t *p = &in->rec;
    char id[2 * CJ_JRC_MAX_ID + 1], sid[5] = "", lease[40] = "", addr[96] = "";
    const char *outcome = NULL, *role;
    bool live = in->has_lease && in->lease_until > l->wall;

    cj_hex_fmt(id, p->id, p->id_len);
    if (p->joined || in->has_lease)
        snprintf(sid, sizeof sid, "%04x", p->short_id);
    if (in->has_lease) {
        if (in->lease_until == UINT64_MAX)
            snprintf(lease, sizeof lease, "unlimited");
        else
            iso(in->lease_until, lease, sizeof lease);
    }
    if (in->addr.len)
        cj_net_fmt_addr(&in->addr, addr, sizeof addr);
    if (in->has_update)
        outcome = in->update_acked ? "acknowledged" : "not reached";
    role = p->role == CJ_COJP_ROLE_6LBR ? "6lbr" : "node";
    if (l->json) {
        printf("%s{\"pledge\":\"%s\",\"allowed\":\"%s\",\"joined\":%s,\"role\":",
               l->n ? "," : "", id, p->allowed_roles & CJ_JRC_ALLOW_6LBR ? "6lbr" : "node",
               p->joined ? "true" : "false");
        if (p->joined)
            printf("\"%s\"", role);
        else
            printf("null");
        printf(sid[0] ? ",\"short_id\":\"%s\"" : ",\"short_id\":null%s", sid);
        printf(lease[0] ? ",\"lease_until\":\"%s\"" : ",\"lease_until\":null%s", lease);
        printf(",\"lease_live\":%s,\"evicted\":%s,\"must_recover\":%s",
               live ? "true" : "false", in->evicted ? "true" : "false",
               p->must_recover ? "true" : "false");
        printf(addr[0] ? ",\"address\":\"%s\"" : ",\"address\":null%s", addr);
        if (outcome)
            printf(",\"last_campaign\":%" PRIu32 ",\"last_outcome\":\"%s\"}",
                   in->update_campaign, outcome);
        else
            printf(",\"last_campaign\":null,\"last_outcome\":null}");
    } else {
        char camp[40] = "-";
        if (outcome)
            snprintf(camp, sizeof camp, "#%" PRIu32 " %s", in->update_campaign, outcome);
        printf("%-16s %-6s %-4s %-5s %-20s %-22s %s%s%s\n", id,
               p->joined ? "yes" : (in->evicted ? "evict" : "no"), p->joined ? role : "-",
               sid[0] ? sid : "-", lease[0] ? lease : "-", addr[0] ? addr : "-", camp,
               live || !in->has_lease ? "" : " (lease expired)",
               p->must_recover ? " (must recover)" : "");
    }
    l->n++;
    return 0;
}

static void print_network_json(const cj_sqlite_network_t *n)
{
    char h[2 * 16 + 1];
    printf("\"network\":{\"network_id\":");
    if (n->network_id_len)
        printf("\"%s\"", cj_hex_fmt(h, n->network_id, n->network_id_len));
    else
        printf("null");
    printf(",\"key_ids\":[");
    for (uint8_t i = 0; i < n->key_count; i++)
        printf("%s%u", i ? "," : "", n->keys[i].key_id);
    printf("],\"join_rate\":");
    if (n->join_rate == UINT32_MAX)
        printf("null");
    else
        printf("%" PRIu32, n->join_rate);
    printf(",\"lease_hours\":");
    if (n->lease_hours)
        printf("%" PRIu32, n->lease_hours);
    else
        printf("null");
    printf(",\"next_campaign\":%" PRIu32 "}", n->next_campaign);
}

static int jrc_list(int argc, char **argv)
{
    static const char *cmd = "cojp jrc list";
    static const struct option opts[] = {
        OPT_DB, {"json", no_argument, NULL, 'j'}, OPT_HELP, OPT_END};
    jrc_args_t a;
    list_ctx_t l = {0};
    cj_sqlite_network_t net;
    uint32_t keep = 0;
    int nrc, krc;
    cj_reg_t *r;
    int rc = jrc_opts(&a, argc, argv, cmd, opts,
                      "usage: cojp jrc list --db DB [--json]\n"
                      "Every provisioned pledge: joined, role, short id, lease end, update\n"
                      "address, outcome of the last campaign that reached out to it\n"
                      "(acknowledged / not reached).  Never prints PSKs or keys.\n",
                      false);

    if (rc >= 0)
        return rc;
    if ((rc = open_reg_as(&r, a.db, true, true, cmd)))
        return rc;
    l.json = a.json;
    l.wall = cj_host_wall();
    nrc = cj_reg_network_load(r, &net);
    krc = cj_reg_keep_outcomes(r, &keep);
    if (l.json) {
        printf("{");
        if (nrc == CJ_OK)
            print_network_json(&net);
        else
            printf("\"network\":null");
        /* null: every outcome is kept (as join_rate, lease_hours) */
        if (krc == CJ_OK && keep)
            printf(",\"keep_outcomes\":%" PRIu32, keep);
        else if (krc == CJ_OK)
            printf(",\"keep_outcomes\":null");
        printf(",\"pledges\":[");
    } else {
        if (nrc == CJ_OK) {
            printf("network: key ids");
            for (uint8_t i = 0; i < net.key_count; i++)
                printf(" %u", net.keys[i].key_id);
            printf(", next campaign %" PRIu32 "\n", net.next_campaign);
        }
        if (krc == CJ_OK && keep)
            printf("campaign outcomes kept per pledge: the latest %" PRIu32 "\n", keep);
        else if (krc == CJ_OK)
            printf("campaign outcomes kept per pledge: all\n");
        printf("%-16s %-6s %-4s %-5s %-20s %-22s %s\n", "pledge", "joined", "role", "short",
               "lease until", "address", "last campaign");
    }
    rc = cj_reg_list(r, list_one, &l);
    if (l.json)
        printf("]}\n");
    cj_crypto_wipe(&net, sizeof net);
    return close_reg(r, cmd, rc, "read the registry");
}

/* ---- psk / remove: change a provisioned pledge -------------------------- */

/* One pledge as a walk of the registry (cj_reg_list, cj_reg_blacklist)
 * meets it: found, and what it reports, secrets wiped. */
typedef struct find_ctx {
    const uint8_t *id;
    size_t id_len;
    bool found;
    cj_sqlite_info_t info;
} find_ctx_t;

static int find_one(void *arg, const cj_sqlite_info_t *in)
{
    find_ctx_t *f = arg;
    if (in->rec.id_len != f->id_len || memcmp(in->rec.id, f->id, f->id_len))
        return 0;
    f->found = true;
    f->info = *in;
    cj_crypto_wipe(f->info.rec.psk, sizeof f->info.rec.psk);
    cj_crypto_wipe(f->info.rec.okm, sizeof f->info.rec.okm);
    return 1; /* stop there */
}

/* The one-line error of `jrc remove` refused for a live lease. */
static int lease_refusal(cj_reg_t *r, const char *cmd, const char *hid,
                         const uint8_t *id, size_t id_len)
{
    find_ctx_t l = {.id = id, .id_len = id_len};
    char until[40] = "", t[24];

    if (r != NULL)
        (void)cj_reg_list(r, find_one, &l);
    if (l.found && l.info.has_lease) {
        if (l.info.lease_until == UINT64_MAX)
            snprintf(until, sizeof until, " without expiry");
        else
            snprintf(until, sizeof until, " until %s",
                     iso(l.info.lease_until, t, sizeof t));
        return cj_fail(1, cmd, "pledge %s holds short id %04x%s and may still"
                       " use it: evict it first ('cojp jrc evict'), which ends"
                       " the lease, or wait for the lease to end", hid,
                       l.info.rec.short_id, until);
    }
    return cj_fail(1, cmd, "pledge %s holds a live short-id lease and may still"
                   " use its id: evict it first ('cojp jrc evict'), which ends"
                   " the lease, or wait for the lease to end", hid);
}

/* `jrc psk` (psk set) and `jrc remove` (psk NULL) on pledge id: one
 * transaction.  A registry that cannot be opened because older cojp
 * versions let its pledges share PSKs is repaired instead: the change is
 * made inside its migration (cj_reg_repair). */
static int change_pledge(const char *cmd, const char *db, const uint8_t *id,
                         size_t id_len, const uint8_t *psk)
{
    char err[256], why[200], hid[2 * CJ_JRC_MAX_ID + 1];
    uint64_t now = cj_host_wall();
    bool repaired = false, upgraded = false;
    cj_reg_t *r = NULL;
    int rc;

    cj_hex_fmt(hid, id, id_len);
    if (strncmp(db, "postgres", 8) && access(db, F_OK) != 0)
        return cj_fail(1, cmd, "no registry at '%s'", db);
    rc = cj_reg_open(&r, db, err, sizeof err);
    if (rc == CJ_ERR_PSK_REUSED) {
        rc = cj_reg_repair(db, id, id_len, psk, now, &upgraded, why, sizeof why);
        repaired = true;
    } else if (rc != CJ_OK) {
        return cj_fail(1, cmd, "%s", err);
    } else {
        rc = psk ? cj_reg_set_psk(r, id, id_len, psk)
                 : cj_reg_remove(r, id, id_len, now);
    }
    switch (rc) {
    case CJ_OK:
        if (repaired && upgraded)
            printf("'%s' upgraded: no pledges share a PSK any more\n", db);
        else if (repaired)
            printf("'%s' still cannot be upgraded: %s\n", db, why);
        break;
    case CJ_ERR_NOTFOUND:
        rc = cj_fail(1, cmd, "pledge %s is not provisioned", hid);
        break;
    case CJ_ERR_PSK_REUSED:
        rc = cj_fail(1, cmd, "pledge %s keeps its PSK: the new one is its own,"
                     " another pledge's or one used before (each pledge needs"
                     " a PSK of its own, never used before)", hid);
        break;
    case CJ_ERR_STATE:
        rc = lease_refusal(r, cmd, hid, id, id_len);
        break;
    case CJ_ERR_BUSY:
        rc = cj_fail(1, cmd, "the registry is locked by another process");
        break;
    default:
        if (r == NULL)
            rc = cj_fail(1, cmd, "cannot %s pledge %s (registry error)",
                         psk ? "change the PSK of" : "remove", hid);
        break;
    }
    if (r == NULL)
        return rc;
    return close_reg(r, cmd, rc, psk ? "change the PSK" : "remove the pledge");
}

static int jrc_psk(int argc, char **argv)
{
    static const char *cmd = "cojp jrc psk";
    static const struct option opts[] = {
        OPT_DB, OPT_PLEDGE, {"psk", required_argument, NULL, 'k'}, OPT_HELP,
        OPT_END};
    jrc_args_t a;
    int rc = jrc_opts(
        &a, argc, argv, cmd, opts,
        "usage: cojp jrc psk --db DB --pledge ID --psk HEX|@FILE\n"
        "Give a provisioned pledge a new PSK, as when the device is\n"
        "recommissioned to a new owner (RFC 9031 section 3).  Its old OSCORE\n"
        "context ends: sequence numbers, replay window and cached answer start\n"
        "afresh as for a pledge just added, and a serving JRC refuses the old\n"
        "PSK from then on.  The pledge is no longer joined: it joins again under\n"
        "the new PSK.  Its short-id lease stays, so that id goes to no other node\n"
        "while the device may still use it.  The new PSK must be one that no\n"
        "pledge of the registry holds or held; the old one is retired for good.\n"
        "This does not evict: a device that joined under the old PSK keeps the\n"
        "network keys until 'jrc evict' rekeys the other nodes; nor does it lift\n"
        "an eviction ('jrc readmit' does).  On a registry an older cojp left\n"
        "with pledges sharing a PSK, the change also repairs it\n"
        "(docs/operator.md).\n",
        false);

    if (rc >= 0)
        return rc;
    if (!a.db || !a.id_len || !a.psk_len)
        return cj_fail(2, cmd, "--db, --pledge and --psk are required");
    rc = change_pledge(cmd, a.db, a.id, (size_t)a.id_len, a.psk);
    cj_crypto_wipe(a.psk, sizeof a.psk);
    return rc;
}

static int jrc_remove(int argc, char **argv)
{
    static const char *cmd = "cojp jrc remove";
    static const struct option opts[] = {OPT_DB, OPT_PLEDGE, OPT_HELP, OPT_END};
    jrc_args_t a;
    int rc = jrc_opts(
        &a, argc, argv, cmd, opts,
        "usage: cojp jrc remove --db DB --pledge ID\n"
        "Decommission a pledge: its registry entry (PSK, OSCORE state, address,\n"
        "campaign outcomes) is deleted and its PSK retired for good; the id may\n"
        "be provisioned again, with a new PSK.  Refused while the pledge holds a\n"
        "live short-id lease, since the device may still use that id: 'jrc evict'\n"
        "ends the lease.  Removing does not take a joined device out of the\n"
        "network (it keeps the link-layer keys): evict it for that, which also\n"
        "rekeys the other nodes.  On a registry an older cojp left with pledges\n"
        "sharing a PSK, the removal also repairs it (docs/operator.md).\n",
        false);

    if (rc >= 0)
        return rc;
    if (!a.db || !a.id_len)
        return cj_fail(2, cmd, "--db and --pledge are required");
    return change_pledge(cmd, a.db, a.id, (size_t)a.id_len, NULL);
}

/* ---- rekey / evict / readmit: queue an operation ------------------------- */

static int jrc_rekey(int argc, char **argv)
{
    static const char *cmd = "cojp jrc rekey";
    static const struct option opts[] = {OPT_DB, OPT_K2, OPT_HELP, OPT_END};
    jrc_args_t a;
    cj_sqlite_op_t op;
    cj_reg_t *r;
    int rc = jrc_opts(&a, argc, argv, cmd, opts,
                      "usage: cojp jrc rekey --db DB [--k2 HEX|generated]\n"
                      "Queue a network-wide K2 rotation: the serving JRC gives K2 a new\n"
                      "key id and key (random unless --k2) and sends it to every joined\n"
                      "node (6LNs first, 6LBRs last).  Watch the outcome with 'jrc list'.\n",
                      false);

    if (rc >= 0)
        return rc;
    memset(&op, 0, sizeof op);
    op.kind = CJ_SQLITE_OP_REKEY;
    memcpy(op.key, a.k2, sizeof a.k2);
    op.has_key = a.has_k2;
    cj_crypto_wipe(a.k2, sizeof a.k2);
    if ((rc = open_reg(&r, a.db, true, cmd)))
        return rc;
    rc = cj_reg_op_push(r, &op);
    cj_crypto_wipe(&op, sizeof op);
    if (rc == CJ_OK)
        printf("rekey queued\n");
    return close_reg(r, cmd, rc, "queue the rekey");
}

/* jrc evict and jrc readmit: queue an operation of this kind on one
 * provisioned pledge, a readmission only for a pledge whose eviction is
 * recorded.  queued and what name the operation in the messages. */
static int queue_pledge_op(int argc, char **argv, const char *cmd, int kind,
                           const char *usage, const char *queued,
                           const char *what)
{
    static const struct option opts[] = {OPT_DB, OPT_PLEDGE, OPT_HELP, OPT_END};
    jrc_args_t a;
    cj_sqlite_op_t op;
    cj_jrc_pledge_t rec;
    find_ctx_t e;
    cj_reg_t *r;
    char hid[2 * CJ_JRC_MAX_ID + 1];
    int rc = jrc_opts(&a, argc, argv, cmd, opts, usage, false);

    if (rc >= 0)
        return rc;
    if (!a.db || !a.id_len)
        return cj_fail(2, cmd, "--db and --pledge are required");
    memset(&op, 0, sizeof op);
    op.kind = kind;
    memcpy(op.id, a.id, (size_t)a.id_len);
    op.id_len = (uint8_t)a.id_len;
    /* an eviction needs no record of one; a readmission does */
    e = (find_ctx_t){.id = op.id, .id_len = op.id_len,
                     .found = kind != CJ_SQLITE_OP_READMIT};
    if ((rc = open_reg(&r, a.db, true, cmd)))
        return rc;
    const cj_jrc_store_t *st = cj_reg_store(r);
    rc = st->lookup(st->ctx, op.id, op.id_len, &rec);
    cj_crypto_wipe(&rec, sizeof rec);
    if (rc == CJ_OK && !e.found &&
        (rc = cj_reg_blacklist(r, find_one, &e)) > 0)
        rc = CJ_OK; /* stopped at the pledge */
    if (rc == CJ_ERR_NOTFOUND)
        rc = cj_fail(1, cmd, "pledge %s is not provisioned", cj_hex_fmt(hid, op.id, op.id_len));
    else if (rc == CJ_OK && !e.found)
        rc = cj_fail(1, cmd, "pledge %s is not evicted", cj_hex_fmt(hid, op.id, op.id_len));
    else if (rc == CJ_OK && (rc = cj_reg_op_push(r, &op)) == CJ_OK)
        printf("%s queued\n", queued);
    return close_reg(r, cmd, rc, what);
}

static int jrc_evict(int argc, char **argv)
{
    return queue_pledge_op(
        argc, argv, "cojp jrc evict", CJ_SQLITE_OP_EVICT,
        "usage: cojp jrc evict --db DB --pledge ID\n"
        "Queue an eviction: the serving JRC ends the node's admission and\n"
        "lease (update with lease 0), blacklists it and rekeys every other\n"
        "joined node with fresh keys.\n",
        "eviction", "queue the eviction");
}

static int jrc_readmit(int argc, char **argv)
{
    return queue_pledge_op(
        argc, argv, "cojp jrc readmit", CJ_SQLITE_OP_READMIT,
        "usage: cojp jrc readmit --db DB --pledge ID\n"
        "Queue lifting the eviction of a pledge: the serving JRC takes it\n"
        "off the blacklist and sends every joined node the new blacklist\n"
        "(no rekey).  The pledge may then join again with its PSK.\n",
        "readmission", "queue the readmission");
}

/* ---- recover: after a restore -------------------------------------------- */

/* jrc recover: a fresh key set for the restored network, each key id
 * moved skip ids on (1..CJ_COJP_MAX_KEY_ID, wrapping), so that no node
 * holds one of its ids with another key. */
static int fresh_keys(cj_sqlite_network_t *n, uint32_t skip)
{
    for (uint8_t i = 0; i < n->key_count; i++) {
        cj_jrc_key_t *k = &n->keys[i];
        k->key_id = (uint8_t)((k->key_id + CJ_COJP_MAX_KEY_ID - 1u + skip) %
                                  CJ_COJP_MAX_KEY_ID +
                              1u);
        if (cj_crypto_random(k->key, sizeof k->key) != CJ_OK)
            return CJ_ERR_CRYPTO;
    }
    return CJ_OK;
}

static int jrc_recover(int argc, char **argv)
{
    static const char *cmd = "cojp jrc recover";
    static const struct option opts[] = {
        OPT_DB, {"skip-short-ids", required_argument, NULL, 'R'},
        {"skip-key-ids", required_argument, NULL, 'I'}, OPT_HELP, OPT_END};
    jrc_args_t a;
    cj_sqlite_network_t net;
    uint64_t marked = 0;
    bool has_net = false;
    cj_reg_t *r;
    int rc = jrc_opts(
        &a, argc, argv, cmd, opts,
        "usage: cojp jrc recover --db DB [--skip-short-ids N] [--skip-key-ids K]\n"
        "Run once on a registry restored from a backup, before any JRC serves\n"
        "it.  The restored OSCORE state (sequence numbers, replay windows) may\n"
        "be older than what the pledges and the network saw, and answering\n"
        "under it could reuse a nonce.  Every pledge is marked: its next Join\n"
        "Request gets a recovery 4.01 (RFC 9031 section 8.3.3, RFC 8613\n"
        "Appendix B.2) and it joins under a fresh context; until then campaigns\n"
        "skip it.  A device given its OSCORE context instead of its PSK\n"
        "('cojp pledge --okm') cannot recover: give it a new PSK ('jrc psk').\n"
        "The network gets fresh keys (K1 and K2) whose key ids move K ids on\n"
        "(default 16), past ids the nodes may hold from rekeys after the\n"
        "backup; the search for free short ids moves N ids on (default 4096),\n"
        "past ids assigned after the backup.  Make the nodes rejoin (RFC 9031\n"
        "section 8.3.3).  Changes made after the backup (pledges added or\n"
        "removed, PSKs changed, evictions) are not in the file: make them again.\n",
        false);

    if (rc >= 0)
        return rc;
    if ((rc = open_reg(&r, a.db, true, cmd)))
        return rc;
    /* one transaction: keys, marks and the short-id search */
    rc = cj_reg_begin(r);
    if (rc == CJ_OK) {
        rc = cj_reg_network_load(r, &net);
        has_net = rc == CJ_OK;
        if (has_net && (rc = fresh_keys(&net, a.skip_key)) == CJ_OK)
            rc = cj_reg_network_save(r, &net);
        if (rc == CJ_ERR_NOTFOUND)
            rc = CJ_OK; /* never served: no keys yet */
        if (rc == CJ_OK)
            rc = cj_reg_mark_recover(r, a.skip_short, &marked);
        rc = reg_end(r, rc);
    }
    if (rc == CJ_OK) {
        printf("%llu pledge%s marked: each re-establishes its OSCORE context"
               " at its next join; ",
               (unsigned long long)marked, marked == 1 ? "" : "s");
        if (has_net) {
            printf("fresh network keys, key ids");
            for (uint8_t i = 0; i < net.key_count; i++)
                printf("%s %u", i ? "," : "", net.keys[i].key_id);
            printf("; ");
        }
        printf("the search for free short ids moved %u ids on\n",
               a.skip_short);
    }
    cj_crypto_wipe(&net, sizeof net);
    return close_reg(r, cmd, rc, "prepare the restored registry");
}

/* ---- prune: outcome retention --------------------------------------------- */

static int jrc_prune(int argc, char **argv)
{
    static const char *cmd = "cojp jrc prune";
    static const struct option opts[] = {
        OPT_DB, {"keep", required_argument, NULL, 'O'}, OPT_HELP, OPT_END};
    jrc_args_t a;
    uint64_t removed = 0;
    uint32_t keep = 0;
    cj_reg_t *r;
    int rc = jrc_opts(
        &a, argc, argv, cmd, opts,
        "usage: cojp jrc prune --db DB [--keep N|all]\n"
        "Each rekey, eviction and readmission campaign records one outcome per\n"
        "node it tried (acknowledged or not reached).  The registry keeps the\n"
        "latest N outcomes of each pledge (N is a setting of the registry,\n"
        "16 unless changed): recording one removes that pledge's older ones.\n"
        "--keep sets N (1..1000000, or 'all': keep every outcome).  The command\n"
        "then applies N to every pledge at once, in transactions short enough\n"
        "for a JRC serving the registry to go on, and prints how many outcomes\n"
        "it removed.  The latest outcome, the one 'jrc list' shows, is always\n"
        "kept.\n",
        false);

    if (rc >= 0)
        return rc;
    if ((rc = open_reg(&r, a.db, true, cmd)))
        return rc;
    if (a.has_keep)
        rc = cj_reg_set_keep_outcomes(r, a.keep);
    if (rc == CJ_OK)
        rc = cj_reg_keep_outcomes(r, &keep);
    if (rc == CJ_OK)
        rc = cj_reg_prune(r, &removed);
    if (rc == CJ_OK && keep)
        printf("each pledge keeps its %u latest campaign outcome%s: %llu older"
               " one%s removed\n",
               keep, keep == 1 ? "" : "s", (unsigned long long)removed,
               removed == 1 ? "" : "s");
    else if (rc == CJ_OK)
        printf("each pledge keeps every campaign outcome: none removed\n");
    return close_reg(r, cmd, rc, "prune campaign outcomes");
}

/* ---- serve --------------------------------------------------------------- */

typedef struct pending {
    cj_addr_t to;
    size_t len;
    int event;
    uint8_t ev_id[CJ_JRC_MAX_ID];
    uint8_t ev_id_len;
    uint16_t ev_short;
    uint32_t ev_campaign;
    uint8_t buf[1280];
} pending_t;

/* One committed batch: its responses leave once ticket is durable. */
typedef struct group {
    uint64_t ticket;
    size_t n;
    pending_t item[BATCH_MAX];
} group_t;

typedef struct jrc_run {
    cj_jrc_t jrc; /* must not move after cj_jrc_init */
    cj_jrc_cfg_t cfg;
    cj_reg_t *reg;
    cj_sqlite_network_t net;
    cj_jrc_slot_t *slots;
    size_t nslots;
    uint8_t bl[CJ_COJP_MAX_BLACKLIST][CJ_JRC_MAX_ID];
    const uint8_t *bl_ptr[CJ_COJP_MAX_BLACKLIST];
    size_t bl_len[CJ_COJP_MAX_BLACKLIST];
    cj_coap_timing_t timing;
    cj_loop_t loop;
    int fd;
    cj_wall_clock_t clock;
    uint64_t next_op_poll;
    uint64_t started; /* monotonic ms */
    bool op_backoff_logged;
    int64_t skew_logged; /* the registry clock's skew last logged */
    bool camp_owned;             /* the registry's campaign lock is ours */
    group_t grp[PIPE_DEPTH];     /* ring: grp[g_head] is the oldest */
    size_t g_head, g_count;
    uint64_t last_ticket;
    cj_net_dgram_t rx[BATCH_MAX];
    uint8_t rxbuf[BATCH_MAX][1280];
    uint8_t obuf[1280];
    unsigned long joins, rejected, acked, not_reached, campaigns, commits, commit_failures,
        send_errors;
    cj_jrc_stats_t past; /* engine counters of the engines before a reload */
} jrc_run_t;

/* Engine time: wall clock (see the top of this file). */
static uint64_t engine_now(jrc_run_t *r)
{
    return cj_wall_clock_now(&r->clock, cj_host_wall(), cj_host_now());
}

/* A log record for a failed registry call, with the registry's message. */
static void log_reg_error(jrc_run_t *r, const char *level, const char *event)
{
    cj_hlog_begin(level, event);
    cj_hlog_str("error", cj_reg_errmsg(r->reg));
    cj_hlog_end();
}

/* A datagram for to that the socket refused (errno says why). */
static void log_send_failed(jrc_run_t *r, const cj_addr_t *to)
{
    r->send_errors++;
    cj_hlog_begin("warn", "send_failed");
    cj_hlog_addr("to", to);
    cj_hlog_str("error", strerror(errno));
    cj_hlog_end();
}

static void log_event(jrc_run_t *r, int ev, const uint8_t *id, size_t id_len,
                      uint16_t short_id, uint32_t campaign, const cj_addr_t *to)
{
    switch (ev) {
    case CJ_JRC_EV_JOINED:
        r->joins++;
        cj_hlog_begin("info", "joined");
        cj_hlog_hex("pledge", id, id_len);
        {
            uint8_t s[2] = {(uint8_t)(short_id >> 8), (uint8_t)short_id};
            cj_hlog_hex("short_id", s, 2);
        }
        if (to)
            cj_hlog_addr("via", to);
        cj_hlog_end();
        break;
    case CJ_JRC_EV_REJECTED:
        r->rejected++;
        cj_hlog_begin("warn", "join_rejected");
        cj_hlog_hex("pledge", id, id_len);
        cj_hlog_end();
        break;
    case CJ_JRC_EV_RECOVERY:
        cj_hlog_begin("warn", "recovery");
        cj_hlog_hex("pledge", id, id_len);
        cj_hlog_end();
        break;
    case CJ_JRC_EV_UPDATE_ACKED:
    case CJ_JRC_EV_UPDATE_FAILED:
        if (ev == CJ_JRC_EV_UPDATE_ACKED)
            r->acked++;
        else
            r->not_reached++;
        cj_hlog_begin(ev == CJ_JRC_EV_UPDATE_ACKED ? "info" : "warn", "update_outcome");
        cj_hlog_hex("pledge", id, id_len);
        cj_hlog_uint("campaign", campaign);
        cj_hlog_str("outcome", ev == CJ_JRC_EV_UPDATE_ACKED ? "acknowledged" : "not reached");
        cj_hlog_end();
        break;
    case CJ_JRC_EV_CAMPAIGN_DONE:
        cj_hlog_begin("info", "campaign_done");
        cj_hlog_uint("campaign", campaign);
        cj_hlog_end();
        break;
    default:
        break;
    }
}

static void send_logged(jrc_run_t *r, const cj_out_t *out)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    if (cj_net_from_addr(&out->to, &ss, &sl) != 0) {
        /* a node provisioned without --address: its id is all the store
         * knows, which is no IP address */
        r->send_errors++;
        cj_hlog_begin("warn", "send_failed");
        cj_hlog_hex("to", out->to.b, out->to.len);
        cj_hlog_str("error", "no IP address known for the node (cojp jrc address)");
        cj_hlog_end();
        return;
    }
    if (cj_send_out(r->fd, out) != 0)
        log_send_failed(r, &out->to);
}

/* The registry answers node_address() with the pledge id when no
 * address was provisioned (as jrc_memstore does for the simulator).
 * With --node-prefix the daemon makes of it the node's address as RFC
 * 9031 section 8.2.1 has the JRC do, from "the pledge identifier that the
 * joined node used when it acted as a pledge and the IPv6 network
 * prefix": the prefix, then the interface identifier of the EUI-64 (RFC
 * 4944 section 6, RFC 4291 Appendix A: its U/L bit inverted), port
 * --node-port.  Otherwise (or for an id that is no EUI-64) it is no
 * address, so the daemon reports it as unknown and the engine records
 * the node as not reached at once instead of retransmitting into the
 * void.  One JRC per process: the inner function and the prefix live in
 * statics. */
static int (*inner_node_address)(void *, const uint8_t *, size_t, cj_addr_t *);
static bool node_prefix_set;
static uint8_t node_prefix[8];
static uint16_t node_port;

static int node_address_ip(void *ctx, const uint8_t *id, size_t id_len, cj_addr_t *addr)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    int rc = inner_node_address(ctx, id, id_len, addr);
    if (rc != CJ_OK || cj_net_from_addr(addr, &ss, &sl) == 0)
        return rc;
    if (node_prefix_set && id_len == 8) {
        struct sockaddr_in6 a6;
        memset(&a6, 0, sizeof a6);
        a6.sin6_family = AF_INET6;
        a6.sin6_port = htons(node_port);
        cj_proxy_ipv6_from_eui64(node_prefix, id, a6.sin6_addr.s6_addr);
        cj_net_to_addr((const struct sockaddr *)&a6, addr);
        return CJ_OK;
    }
    cj_hlog_begin("warn", "no_node_address");
    cj_hlog_hex("pledge", id, id_len);
    cj_hlog_str("hint", node_prefix_set
                            ? "not an EUI-64: cojp jrc address --pledge ID --address ADDR"
                            : "cojp jrc address --pledge ID --address ADDR, or jrc serve --node-prefix");
    cj_hlog_end();
    return CJ_ERR_NOTFOUND;
}

static int engine_init(jrc_run_t *r)
{
    cj_jrc_store_t st = *cj_reg_store(r->reg);
    inner_node_address = st.node_address;
    st.node_address = node_address_ip;
    r->cfg.network_id = r->net.network_id_len ? r->net.network_id : NULL;
    r->cfg.network_id_len = r->net.network_id_len;
    memcpy(r->cfg.keys, r->net.keys, sizeof r->cfg.keys);
    r->cfg.key_count = r->net.key_count;
    r->cfg.jrc_address = r->net.has_jrc_address ? r->net.jrc_address : NULL;
    r->cfg.join_rate = r->net.join_rate;
    r->cfg.lease_hours = r->net.lease_hours;
    r->cfg.timing = r->timing;
    r->cfg.slots = r->slots;
    r->cfg.slot_count = r->nslots;
    r->cfg.first_campaign = r->net.next_campaign;
    /* another JRC may share the registry: one number per reservation
     * keeps Partial IVs in order for the pledges (cojp/jrc.h) */
    r->cfg.ssn_block = 1;
    return cj_jrc_init(&r->jrc, &r->cfg, &st, NULL);
}

typedef struct bl_ctx {
    jrc_run_t *r;
    size_t n, skipped;
} bl_ctx_t;

static int bl_one(void *arg, const cj_sqlite_info_t *in)
{
    bl_ctx_t *b = arg;
    if (b->n == CJ_COJP_MAX_BLACKLIST) {
        b->skipped++;
        return 0;
    }
    memcpy(b->r->bl[b->n], in->rec.id, in->rec.id_len);
    b->r->bl_ptr[b->n] = b->r->bl[b->n];
    b->r->bl_len[b->n] = in->rec.id_len;
    b->n++;
    return 0;
}

static int load_blacklist(jrc_run_t *r)
{
    bl_ctx_t b = {r, 0, 0};
    int rc = cj_reg_blacklist(r->reg, bl_one, &b);
    if (rc != CJ_OK)
        return rc;
    if (b.skipped) {
        cj_hlog_begin("warn", "blacklist_truncated");
        cj_hlog_uint("kept", b.n);
        cj_hlog_uint("skipped", b.skipped);
        cj_hlog_end();
    }
    r->cfg.blacklist = b.n ? r->bl_ptr : NULL;
    r->cfg.blacklist_lens = b.n ? r->bl_len : NULL;
    r->cfg.blacklist_count = b.n;
    return CJ_OK;
}

/* Rebuild the engine from the registry: network record, blacklist, and
 * an engine that caches nothing; its counters carry over.  CJ_OK or the
 * registry's error. */
static int engine_rebuild(jrc_run_t *r)
{
    int rc;
    const cj_jrc_stats_t *st = &r->jrc.stats;
    r->past.lookups += st->lookups;
    r->past.joins += st->joins;
    r->past.repeats += st->repeats;
    r->past.diagnostics += st->diagnostics;
    r->past.refused += st->refused;
    r->past.recoveries += st->recoveries;
    r->past.dropped += st->dropped;
    r->past.store_errors += st->store_errors;
    r->past.updates_sent += st->updates_sent;
    rc = cj_reg_network_load(r->reg, &r->net);
    if (rc == CJ_OK)
        rc = load_blacklist(r);
    if (rc == CJ_OK)
        rc = engine_init(r);
    return rc;
}

/* After a failed commit the engine may remember what the file forgot:
 * rebuild it from the registry (store/sqlite.h). */
static void engine_reload(jrc_run_t *r)
{
    int rc = engine_rebuild(r);

    cj_hlog_begin(rc == CJ_OK ? "warn" : "error", "engine_reloaded");
    cj_hlog_bool("ok", rc == CJ_OK);
    cj_hlog_end();
}

/* A commit or its sync failed (event): the dropped responses never leave
 * and the engine forgets what the file does not hold. */
static void batch_lost(jrc_run_t *r, const char *event, size_t dropped)
{
    r->commit_failures++;
    cj_hlog_begin("error", event);
    cj_hlog_str("error", cj_reg_errmsg(r->reg));
    cj_hlog_uint("dropped_responses", dropped);
    cj_hlog_end();
    engine_reload(r);
}

/* Send the batch's responses with as few system calls as the kernel
 * allows (sendmmsg), logging each datagram that cannot leave as
 * send_logged() does. */
static void send_batch(jrc_run_t *r, group_t *g)
{
    cj_net_dgram_t d[BATCH_MAX];
    int cnt = 0, i = 0;
    size_t n = g->n;
    for (size_t k = 0; k < n; k++) {
        pending_t *p = &g->item[k];
        if (!p->len)
            continue;
        if (cj_net_from_addr(&p->to, &d[cnt].peer, &d[cnt].peer_len) != 0) {
            cj_out_t out = {.buf = p->buf, .cap = sizeof p->buf, .len = p->len, .to = p->to};
            send_logged(r, &out); /* logs why it cannot be sent */
            continue;
        }
        d[cnt].buf = p->buf;
        d[cnt].len = p->len;
        cnt++;
    }
    while (i < cnt) {
        int s = cj_net_send_batch(r->fd, d + i, cnt - i);
        if (s > 0) {
            i += s;
            continue;
        }
        /* d[i] failed: a full buffer drops it silently as sendto() would
         * (the pledge retransmits); anything else is logged */
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            cj_addr_t to;
            cj_net_to_addr((struct sockaddr *)&d[i].peer, &to);
            log_send_failed(r, &to);
        }
        i++;
    }
}

/* Send the batches whose ticket is durable, oldest first, with their
 * log records.  wait: block until every committed batch is durable (the
 * queue is full, or shutdown).  After a failed sync every batch still
 * queued is lost: its responses are dropped and the engine reloaded, as
 * after a failed commit. */
static void release(jrc_run_t *r, bool wait)
{
    uint64_t upto = 0;
    int rc = cj_reg_durable(r->reg, wait, &upto);

    cj_hlog_hold(); /* one write(2) for the log records */
    while (r->g_count && r->grp[r->g_head].ticket <= upto) {
        group_t *g = &r->grp[r->g_head];
        send_batch(r, g);
        for (size_t i = 0; i < g->n; i++) {
            pending_t *p = &g->item[i];
            if (p->event)
                log_event(r, p->event, p->ev_id, p->ev_id_len, p->ev_short, p->ev_campaign,
                          &p->to);
        }
        r->g_head = (r->g_head + 1) % PIPE_DEPTH;
        r->g_count--;
    }
    cj_hlog_flush();
    if (rc != CJ_OK) {
        size_t dropped = 0;
        for (; r->g_count; r->g_count--, r->g_head = (r->g_head + 1) % PIPE_DEPTH)
            dropped += r->grp[r->g_head].n;
        batch_lost(r, "sync_failed", dropped);
    }
}

static void on_synced(void *arg, int fd, uint64_t mono)
{
    (void)fd;
    (void)mono;
    release(arg, false);
}

/* The pledge ids named in the OSCORE 'kid context' of the received
 * datagrams (Join Requests name the pledge, RFC 9031 section 8.1.1),
 * for the registry to read those rows at once. */
static void prefetch(jrc_run_t *r, int got)
{
    const uint8_t *ids[CJ_NET_BATCH];
    uint8_t lens[CJ_NET_BATCH];
    size_t n = 0;

    for (int k = 0; k < got; k++) {
        const cj_net_dgram_t *d = &r->rx[k];
        cj_coap_msg_t m;
        cj_coap_opt_t o;
        cj_oscore_option_t ov;
        if (d->truncated || cj_coap_parse(&m, d->buf, d->len) != CJ_OK ||
            cj_coap_opt_find(&m, CJ_COAP_OPT_OSCORE, &o) != 1 ||
            cj_oscore_option_decode(o.val, o.len, &ov) != CJ_OK ||
            !ov.has_kid_context || ov.kid_context_len == 0 ||
            ov.kid_context_len > CJ_JRC_MAX_ID)
            continue;
        ids[n] = ov.kid_context;
        lens[n++] = (uint8_t)ov.kid_context_len;
    }
    /* a failure loses the batch: its commit fails below */
    (void)cj_reg_prefetch(r->reg, ids, lens, n);
}

static void on_readable(void *arg, int fd, uint64_t mono)
{
    jrc_run_t *r = arg;
    size_t n = 0, rounds = 0;
    bool tx, more = true;
    group_t *g;
    uint64_t ticket = 0;
    (void)mono;

    release(r, false);
    if (r->g_count == PIPE_DEPTH)
        release(r, true);
    g = &r->grp[(r->g_head + r->g_count) % PIPE_DEPTH];

    /* Group commit: everything ready now is one transaction.  If the
     * write lock cannot be had, each store call commits on its own.
     * Datagrams come in with recvmmsg (one call per up to BATCH_MAX). */
    tx = cj_reg_batch_begin(r->reg) == CJ_OK;
    while (more && n < BATCH_MAX && rounds++ < BATCH_MAX / CJ_NET_BATCH) {
        int want = (int)(BATCH_MAX - n < CJ_NET_BATCH ? BATCH_MAX - n : CJ_NET_BATCH), got;
        uint64_t now;
        for (int k = 0; k < want; k++) {
            r->rx[k].buf = r->rxbuf[k];
            r->rx[k].cap = sizeof r->rxbuf[k];
        }
        got = cj_net_recv_batch(fd, r->rx, want);
        more = got == want;
        now = engine_now(r); /* one reading for the datagrams read together */
        if (tx && got > 0)
            prefetch(r, got);
        for (int k = 0; k < got; k++) {
            cj_net_dgram_t *d = &r->rx[k];
            pending_t *p = &g->item[n];
            cj_out_t out = {.buf = p->buf, .cap = sizeof p->buf};
            cj_addr_t from;
            if (d->truncated)
                continue; /* oversize: dropped whole, never processed cut */
            cj_net_to_addr((struct sockaddr *)&d->peer, &from);
            if (cj_jrc_input(&r->jrc, now, &from, d->buf, d->len, &out) != 1)
                continue;
            p->to = out.to;
            p->len = out.len;
            p->event = out.event;
            memcpy(p->ev_id, r->jrc.ev_id, r->jrc.ev_id_len);
            p->ev_id_len = r->jrc.ev_id_len;
            p->ev_short = r->jrc.ev_short_id;
            p->ev_campaign = r->jrc.ev_campaign;
            n++;
        }
    }
    if (tx) {
        if (cj_reg_batch_commit(r->reg, &ticket) != CJ_OK) {
            batch_lost(r, "commit_failed", n);
            return; /* never send what the file does not hold */
        }
        r->commits++;
        r->last_ticket = ticket;
    } else {
        /* Each store write was durable when it returned; a response
         * with none (a repeat from the engine's cache) may still rest on
         * a queued batch, so this one leaves after every queued batch. */
        ticket = r->last_ticket;
    }
    if (n == 0)
        return;
    g->ticket = ticket;
    g->n = n;
    r->g_count++;
    release(r, false);
}

/* A new K2 for a rekey: next free key id, the given or a random key. */
static int rekey_keys(const cj_sqlite_network_t *net, const cj_sqlite_op_t *op,
                      cj_jrc_key_t *keys)
{
    uint8_t id = 0;
    size_t k2 = net->key_count - 1;
    memcpy(keys, net->keys, sizeof net->keys);
    for (size_t i = 0; i < net->key_count; i++)
        if (net->keys[i].key_usage >= CJ_COJP_KEY_USAGE_K2_MIC32)
            k2 = i;
    for (size_t i = 0; i < net->key_count; i++)
        if (net->keys[i].key_id > id)
            id = net->keys[i].key_id;
    /* Section 8.4.3.2: the new key needs a key id the set in use lacks. */
    for (;;) {
        bool used = false;
        id = (uint8_t)(id % CJ_COJP_MAX_KEY_ID + 1u);
        for (size_t i = 0; i < net->key_count; i++)
            used |= net->keys[i].key_id == id;
        if (!used)
            break;
    }
    keys[k2].key_id = id;
    if (op->has_key)
        memcpy(keys[k2].key, op->key, 16);
    else if (cj_crypto_random(keys[k2].key, 16) != CJ_OK)
        return CJ_ERR_CRYPTO;
    return CJ_OK;
}

static void log_campaign_start(jrc_run_t *r, const char *kind, int camp,
                               const cj_sqlite_op_t *op)
{
    char ids[64], *q = ids;
    r->campaigns++;
    for (uint8_t i = 0; i < r->net.key_count; i++)
        q += sprintf(q, "%s%u", i ? "," : "", r->net.keys[i].key_id);
    cj_hlog_begin("info", "campaign_start");
    cj_hlog_str("kind", kind);
    cj_hlog_uint("campaign", (unsigned)camp);
    if (op->id_len)
        cj_hlog_hex("pledge", op->id, op->id_len);
    cj_hlog_str("key_ids", ids);
    cj_hlog_end();
}

/* End the transaction that took queued operation seq: when the steps
 * before went well (rc CJ_OK) mark it done and commit, else roll back. */
static int take_op(jrc_run_t *r, int rc, int64_t seq)
{
    if (rc == CJ_OK)
        rc = cj_reg_op_done(r->reg, seq);
    return reg_end(r->reg, rc);
}

/* Take one queued operation and start its campaign (see the top). */
/* An eviction or readmission campaign camp has started in the engine:
 * in the transaction that takes op, persist the network record next
 * (keys, next campaign number) and the pledge's eviction mark (mark sets
 * or clears it) before any datagram of the campaign leaves.  On failure
 * the engine goes back to what the registry holds. */
static void campaign_persist(jrc_run_t *r, cj_sqlite_network_t *next,
                             int camp, const cj_sqlite_op_t *op,
                             int (*mark)(cj_reg_t *, const uint8_t *, size_t),
                             const char *kind)
{
    char event[32];
    int rc;

    next->next_campaign = (uint32_t)camp + 1;
    rc = cj_reg_network_save(r->reg, next);
    if (rc == CJ_OK)
        rc = mark(r->reg, op->id, op->id_len);
    if (take_op(r, rc, op->seq) != CJ_OK) {
        snprintf(event, sizeof event, "%s_not_started", kind);
        log_reg_error(r, "error", event);
        engine_reload(r);
        return;
    }
    r->net = *next;
    log_campaign_start(r, kind, camp, op);
}

/* The registry's clock and this host's disagree by a second or more
 * (PostgreSQL on another host): leases go by the registry's; say so
 * when that starts, changes or ends (at start, and with each reading of
 * the registry's clock: registry_clock). */
static void note_skew(jrc_run_t *r)
{
    int64_t d = cj_reg_clock_skew(r->reg);

    if (d == r->skew_logged)
        return;
    r->skew_logged = d;
    cj_hlog_begin(d != 0 ? "warn" : "info", "clock_skew");
    cj_hlog_int("registry_ahead_ms", d);
    cj_hlog_end();
}

static int registry_clock(jrc_run_t *r, uint64_t *now)
{
    int rc = cj_reg_clock(r->reg, now);
    if (rc == CJ_OK)
        note_skew(r);
    return rc;
}

/* The campaign lock this instance holds: while its campaign runs
 * (active), say it is alive; once it ended (or never started: a dropped
 * operation, a transaction rolled back), give the lock up.  A lock
 * another instance took over (this one was silent past CAMP_STALE_MS) is
 * logged. */
static void campaign_lock_tick(jrc_run_t *r, bool active)
{
    uint64_t me = cj_reg_session(r->reg), now = 0;
    int rc;

    if (!r->camp_owned)
        return;
    if (active && registry_clock(r, &now) != CJ_OK)
        return; /* registry unreachable: the next tick tries again */
    rc = cj_reg_campaign_put(r->reg, me, active ? me : 0, now);
    if (rc == CJ_OK && !active)
        r->camp_owned = false;
    if (rc == CJ_ERR_NOTFOUND) {
        r->camp_owned = false;
        if (active) {
            cj_hlog_begin("warn", "campaign_lock_lost");
            cj_hlog_uint("campaign", r->jrc.camp_number);
            cj_hlog_end();
        }
    }
}

static void run_op(jrc_run_t *r)
{
    cj_sqlite_op_t op;
    cj_sqlite_network_t next;
    uint64_t owner = 0, alive = 0, me = cj_reg_session(r->reg), wall = 0;
    int rc, camp;

    campaign_lock_tick(r, r->jrc.camp_active);
    if (r->jrc.camp_active)
        return;
    rc = cj_reg_begin(r->reg);
    if (rc != CJ_OK)
        return; /* busy: next poll */
    /* Another instance sharing the registry started a campaign (each
     * rekey, eviction and readmission moves the campaign number): serve
     * from now on with the key set and blacklist it stored, as it does. */
    if (cj_reg_network_load(r->reg, &next) == CJ_OK &&
        next.next_campaign != r->net.next_campaign) {
        cj_reg_rollback(r->reg);
        cj_crypto_wipe(&next, sizeof next);
        rc = engine_rebuild(r);
        cj_hlog_begin(rc == CJ_OK ? "info" : "error", "network_followed");
        cj_hlog_uint("next_campaign", r->net.next_campaign);
        cj_hlog_bool("ok", rc == CJ_OK);
        cj_hlog_end();
        return;
    }
    /* Another instance runs a campaign: campaigns go one at a time, or
     * two could hand the nodes different key sets.  Its liveness is
     * judged by the registry's clock, which stamped it. */
    rc = registry_clock(r, &wall);
    if (rc == CJ_OK)
        rc = cj_reg_campaign_get(r->reg, &owner, &alive);
    if (rc != CJ_OK ||
        (owner != 0 && owner != me && wall < alive + CAMP_STALE_MS)) {
        cj_reg_rollback(r->reg);
        return;
    }
    rc = cj_reg_op_next(r->reg, &op);
    if (rc != CJ_OK) {
        cj_reg_rollback(r->reg);
        if (rc != CJ_ERR_NOTFOUND && !r->op_backoff_logged) {
            r->op_backoff_logged = true;
            log_reg_error(r, "error", "queue_read_failed");
        }
        return;
    }
    r->op_backoff_logged = false;
    /* The lock, in the transaction that takes the operation; another
     * instance claiming it at the same time finds it taken and backs
     * off.  Given up at the next look when no campaign starts. */
    rc = cj_reg_campaign_put(r->reg, owner, me, wall);
    if (rc != CJ_OK) {
        cj_reg_rollback(r->reg);
        cj_crypto_wipe(&op, sizeof op);
        return;
    }
    r->camp_owned = true;
    next = r->net;
    if (op.kind == CJ_SQLITE_OP_REKEY) {
        cj_jrc_key_t keys[CJ_COJP_MAX_KEYS];
        rc = rekey_keys(&r->net, &op, keys);
        if (rc == CJ_OK) {
            memcpy(next.keys, keys, sizeof keys);
            next.next_campaign = r->net.next_campaign + 1;
            rc = cj_reg_network_save(r->reg, &next);
        }
        if (take_op(r, rc, op.seq) != CJ_OK) {
            log_reg_error(r, "error", "rekey_not_started");
            cj_crypto_wipe(keys, sizeof keys);
            cj_crypto_wipe(&next, sizeof next);
            return;
        }
        camp = cj_jrc_rekey(&r->jrc, engine_now(r), keys, r->net.key_count);
        cj_crypto_wipe(keys, sizeof keys);
        r->net = next;
        if (camp < 0) {
            cj_hlog_begin("error", "rekey_failed");
            cj_hlog_str("error", cj_strerror(camp));
            cj_hlog_end();
        } else {
            log_campaign_start(r, "rekey", camp, &op);
        }
    } else if (op.kind == CJ_SQLITE_OP_EVICT) {
        camp = cj_jrc_evict(&r->jrc, engine_now(r), op.id, op.id_len);
        if (camp == CJ_ERR_NOTFOUND || camp == CJ_ERR_NOSPACE) {
            /* nothing to do (unknown) or impossible (blacklist full):
             * drop the request, say so */
            take_op(r, CJ_OK, op.seq);
            cj_hlog_begin("error", "evict_failed");
            cj_hlog_hex("pledge", op.id, op.id_len);
            cj_hlog_str("error", camp == CJ_ERR_NOTFOUND ? "unknown pledge" : "blacklist full");
            cj_hlog_end();
            return;
        }
        if (camp < 0) {
            cj_reg_rollback(r->reg);
            engine_reload(r);
            return;
        }
        /* The engine drew the new keys: persist them (section 8.4.3),
         * the eviction mark (blacklist at restart) and the campaign
         * number before any datagram of the campaign leaves. */
        memcpy(next.keys, r->jrc.keys, sizeof next.keys);
        next.key_count = r->jrc.key_count;
        campaign_persist(r, &next, camp, &op, cj_reg_evict, "evict");
    } else if (op.kind == CJ_SQLITE_OP_READMIT) {
        camp = cj_jrc_readmit(&r->jrc, engine_now(r), op.id, op.id_len);
        if (camp == CJ_ERR_NOTFOUND || camp == CJ_ERR_INVALID) {
            /* not on the engine's blacklist: nothing to lift */
            take_op(r, CJ_OK, op.seq);
            cj_hlog_begin("error", "readmit_failed");
            cj_hlog_hex("pledge", op.id, op.id_len);
            cj_hlog_str("error", "not blacklisted");
            cj_hlog_end();
            cj_crypto_wipe(&next, sizeof next);
            return;
        }
        if (camp < 0) {
            cj_reg_rollback(r->reg);
            cj_crypto_wipe(&next, sizeof next);
            return;
        }
        /* The mark cleared (no blacklist entry at restart) and the
         * campaign number persisted before any datagram of the campaign
         * leaves; the keys stay. */
        campaign_persist(r, &next, camp, &op, cj_reg_readmit, "readmit");
    } else {
        cj_reg_op_done(r->reg, op.seq);
        cj_reg_commit(r->reg);
    }
    cj_crypto_wipe(&next, sizeof next);
    cj_crypto_wipe(&op, sizeof op);
}

static uint64_t on_tick(void *arg, uint64_t mono)
{
    jrc_run_t *r = arg;
    uint64_t now = engine_now(r), t, next;
    cj_out_t out = {.buf = r->obuf, .cap = sizeof r->obuf};

    if (mono >= r->next_op_poll) {
        run_op(r);
        r->next_op_poll = mono + CJ_JRC_OP_POLL_MS;
    }
    for (int guard = 0; guard < 256 && cj_jrc_next_timer(&r->jrc) <= now; guard++) {
        if (cj_jrc_poll(&r->jrc, now, &out) != 1)
            break;
        /* No transaction is open: the store writes behind this datagram
         * (sequence number reservation, outcome) are already durable. */
        if (out.len)
            send_logged(r, &out);
        /* The last acknowledgement may sit in a batch waiting for its
         * sync, its update_outcome with it: that record comes first. */
        if (out.event == CJ_JRC_EV_CAMPAIGN_DONE) {
            if (r->g_count)
                release(r, true);
            /* the lock goes before the record says the campaign is done:
             * whoever reads that line finds the registry free for the
             * next campaign, not held until the next queue poll */
            campaign_lock_tick(r, false);
        }
        if (out.event)
            log_event(r, out.event, r->jrc.ev_id, r->jrc.ev_id_len, r->jrc.ev_short_id,
                      r->jrc.ev_campaign, NULL);
        now = engine_now(r);
    }
    next = r->next_op_poll;
    t = cj_jrc_next_timer(&r->jrc);
    if (t != CJ_TIME_NEVER) {
        uint64_t m = t <= now ? mono : mono + (t - now);
        if (m < next)
            next = m;
    }
    return next;
}

/* The whole run's counters as a record (the shutdown record, and a
 * stats record on SIGUSR1 and every --stats-interval): the engine's, plus
 * those of the engines replaced after a failed commit; joins are the
 * admissions whose 2.04 left (a lost batch's never did).  signo > 0: the
 * signal that ended the run. */
static void counters(jrc_run_t *r, const char *level, const char *event, int signo)
{
    const cj_jrc_stats_t *st = &r->jrc.stats, *p = &r->past;

    cj_hlog_counters_begin(level, event, "jrc", signo, r->started);
    cj_hlog_uint("joins", r->joins);
    cj_hlog_uint("repeats", p->repeats + st->repeats);
    cj_hlog_uint("diagnostics", p->diagnostics + st->diagnostics);
    cj_hlog_uint("refused", p->refused + st->refused);
    cj_hlog_uint("recoveries", p->recoveries + st->recoveries);
    cj_hlog_uint("dropped", p->dropped + st->dropped);
    cj_hlog_uint("store_errors", p->store_errors + st->store_errors);
    cj_hlog_uint("updates_sent", p->updates_sent + st->updates_sent);
    cj_hlog_uint("updates_acked", r->acked);
    cj_hlog_uint("updates_not_reached", r->not_reached);
    cj_hlog_uint("campaigns", r->campaigns);
    cj_hlog_bool("campaign_running", r->jrc.camp_active);
    cj_hlog_uint("commits", r->commits);
    cj_hlog_uint("commit_failures", r->commit_failures);
    cj_hlog_uint("send_errors", r->send_errors);
    cj_hlog_end();
}

static void report(void *arg)
{
    counters(arg, "info", "stats", 0);
}

/* DEFAULT_SLOTS spelt into the help text */
#define STR_(x) #x
#define STR(x) STR_(x)

static int jrc_serve(int argc, char **argv)
{
    static const char *cmd = "cojp jrc serve";
    static const struct option opts[] = {
        OPT_DB,
        {"listen", required_argument, NULL, 'L'},
        OPT_K2,
        {"key-id", required_argument, NULL, 'K'},
        {"network-id", required_argument, NULL, 'n'},
        {"jrc-address", required_argument, NULL, 'A'},
        {"node-prefix", required_argument, NULL, 'P'},
        {"node-port", required_argument, NULL, 'N'},
        {"join-rate", required_argument, NULL, 'J'},
        {"lease-hours", required_argument, NULL, 'H'},
        {"ack-timeout", required_argument, NULL, 'T'},
        {"slots", required_argument, NULL, 'S'},
        CJ_HLOG_OPTIONS,
        OPT_HELP,
        OPT_END};
    jrc_args_t a;
    struct sockaddr_storage ss;
    socklen_t sl;
    jrc_run_t *r;
    uint32_t keep = 0;
    bool has_keep;
    int rc = jrc_opts(
        &a, argc, argv, cmd, opts,
        "usage: cojp jrc serve --db DB --listen ADDR [--k2 HEX|generated] [--key-id N]\n"
        "                      [--network-id HEX] [--jrc-address IPV6] [--join-rate N]\n"
        "                      [--lease-hours N] [--ack-timeout MS] [--slots N]\n"
        "                      [--node-prefix PREFIX/64 [--node-port N]]\n"
        "                      [--log json|text] [--log-level LEVEL]\n"
        "\n"
        "Serve Join Requests on ADDR and run rekey/evict/readmit campaigns queued\n"
        "in DB.\n"
        "The network settings are created on the first start and kept in DB, so\n"
        "a restart keeps the keys:\n"
        "  --k2 HEX|generated K2 (DATA/ACK frames); K1 (beacons) is always drawn\n"
        "  --key-id N         key ids: K1 = N, K2 = N+1 (default 1)\n"
        "  --network-id HEX   only admit Join Requests for this network\n"
        "  --jrc-address IPV6 JRC address sent in Configurations\n"
        "  --join-rate N      join rate (bytes/s) sent to joined nodes\n"
        "  --lease-hours N    short-id lease (default: unlimited)\n"
        "Network id, JRC address, join rate and lease hours given on a later start\n"
        "replace the stored ones; the key set changes only by 'jrc rekey'.\n"
        "  --ack-timeout MS   CoAP ACK_TIMEOUT of parameter updates (default 10000)\n"
        "  --node-prefix P/64 send parameter updates to a node provisioned without\n"
        "                     an address at P plus the interface identifier of its\n"
        "                     pledge id (EUI-64, RFC 9031 section 8.2.1), port\n"
        "                     --node-port (default 5683)\n"
        "  --slots N          cached pledge contexts (default " STR(DEFAULT_SLOTS) ")\n"
        "  --log FORMAT       stderr log as json (default) or text\n"
        "  --log-level L      error, warn, info (default; a record per join) or\n"
        "                     debug; start, stats and shutdown records are always\n"
        "                     written\n"
        "  --stats-interval S log the counters (a stats record) every S seconds\n"
        "                     (default 3600; 0: only on SIGUSR1, which logs them\n"
        "                     at any time)\n",
        false);

    if (rc >= 0)
        return rc;
    if (!a.db || !a.listen_s)
        return cj_fail(2, cmd, "--db and --listen are required");
    if ((rc = cj_addr_arg(cmd, a.listen_s, &ss, &sl)) != 0)
        return rc;
    if (a.has_node_port && !a.has_node_prefix)
        return cj_fail(2, cmd, "--node-port needs --node-prefix");
    node_prefix_set = a.has_node_prefix;
    memcpy(node_prefix, a.node_prefix, sizeof node_prefix);
    node_port = (uint16_t)a.node_port;
    r = calloc(1, sizeof *r);
    if (!r)
        return cj_fail(1, cmd, "out of memory");
    r->nslots = a.slots;
    r->slots = calloc(a.slots, sizeof *r->slots);
    r->fd = -1;
    if (!r->slots) {
        free(r);
        return cj_fail(1, cmd, "out of memory for %u slots", (unsigned)a.slots);
    }
    /* The socket first: a start that cannot bind (the address taken by
     * a serving JRC, or not assigned) leaves the registry as it was,
     * settings included. */
    r->fd = cj_net_udp_bind(&ss, sl);
    if (r->fd < 0) {
        rc = cj_fail(1, cmd, "cannot bind %s: %s", a.listen_s, strerror(errno));
        goto out_free;
    }
    if ((rc = open_reg(&r->reg, a.db, false, cmd)))
        goto out_free;
    r->timing = cj_coap_timing_default();
    if (a.ack_ms)
        r->timing.ack_timeout_ms = a.ack_ms;

    /* The network: from the registry, or created now from the options. */
    rc = cj_reg_network_load(r->reg, &r->net);
    if (rc == CJ_ERR_NOTFOUND) {
        cj_sqlite_network_t *n = &r->net;
        memset(n, 0, sizeof *n);
        n->keys[0].key_id = (uint8_t)a.key_id;
        n->keys[0].key_usage = CJ_COJP_KEY_USAGE_K1_MIC32;
        n->keys[1].key_id = (uint8_t)(a.key_id + 1);
        n->keys[1].key_usage = CJ_COJP_KEY_USAGE_K2_ENC_MIC32;
        n->key_count = 2;
        if (a.has_k2)
            memcpy(n->keys[1].key, a.k2, 16);
        if (cj_crypto_random(n->keys[0].key, 16) ||
            (!a.has_k2 && cj_crypto_random(n->keys[1].key, 16))) {
            rc = cj_fail(1, cmd, "no randomness for the keys");
            goto out_close;
        }
        n->join_rate = UINT32_MAX;
        n->next_campaign = 1;
        cj_hlog_begin("info", "network_created");
        cj_hlog_uint("k1_id", n->keys[0].key_id);
        cj_hlog_uint("k2_id", n->keys[1].key_id);
        cj_hlog_end();
    } else if (rc != CJ_OK) {
        rc = cj_fail(1, cmd, "cannot read the network settings: %s", cj_reg_errmsg(r->reg));
        goto out_close;
    } else if (a.has_k2 || a.has_keyid) {
        bool same = a.has_k2 && r->net.key_count >= 2 && !memcmp(r->net.keys[1].key, a.k2, 16);
        if (!same || (a.has_keyid && r->net.keys[0].key_id != a.key_id)) {
            cj_hlog_begin("warn", "key_options_ignored");
            cj_hlog_str("reason", "the key set is kept in the registry; use 'cojp jrc rekey'");
            cj_hlog_end();
        }
    }
    cj_crypto_wipe(a.k2, sizeof a.k2);
    if (a.netid_len >= 0) {
        memcpy(r->net.network_id, a.netid, (size_t)a.netid_len);
        r->net.network_id_len = (uint8_t)a.netid_len;
    }
    if (a.has_jaddr) {
        memcpy(r->net.jrc_address, a.jaddr, 16);
        r->net.has_jrc_address = true;
    }
    if (a.has_rate)
        r->net.join_rate = a.rate;
    if (a.has_lease)
        r->net.lease_hours = a.lease;
    if (r->net.next_campaign == 0)
        r->net.next_campaign = 1;
    if (cj_reg_network_save(r->reg, &r->net) != CJ_OK) {
        rc = cj_fail(1, cmd, "cannot write the network settings: %s", cj_reg_errmsg(r->reg));
        goto out_close;
    }
    if (load_blacklist(r) != CJ_OK) {
        rc = cj_fail(1, cmd, "cannot read the blacklist: %s", cj_reg_errmsg(r->reg));
        goto out_close;
    }
    if ((rc = engine_init(r)) != CJ_OK) {
        rc = cj_fail(1, cmd, "cannot initialise the JRC (%s)", cj_strerror(rc));
        goto out_close;
    }
    cj_net_set_rcvbuf(r->fd, 8 << 20);
    /* RFC 9031 section 6.1.2: Join Responses to the JP are AF42; the
     * JRC's other datagrams (parameter updates) travel the same way */
    cj_net_set_dscp(r->fd, CJ_DSCP_AF42);
    if (cj_loop_init(&r->loop) != 0) {
        rc = cj_fail(1, cmd, "cannot set up the event loop: %s", strerror(errno));
        goto out_close;
    }
    cj_loop_add(&r->loop, r->fd, on_readable, r);
    if (cj_reg_pipeline(r->reg) != CJ_OK)
        log_reg_error(r, "warn", "pipelined_commit_off");
    else if (cj_reg_sync_fd(r->reg) >= 0) {
        cj_loop_add(&r->loop, cj_reg_sync_fd(r->reg), on_synced, r);
    }
    cj_loop_set_tick(&r->loop, on_tick, r);
    r->started = cj_host_now();
    cj_loop_set_report(&r->loop, report, r, cj_hlog_stats_ms());
    has_keep = cj_reg_keep_outcomes(r->reg, &keep) == CJ_OK;

    cj_hlog_begin_always("info", "start");
    cj_hlog_str("role", "jrc");
    cj_hlog_str("listen", a.listen_s);
    {
        char shown[512];
        cj_hlog_str("db", cj_store_uri_redact(a.db, shown, sizeof shown));
    }
    if (r->net.network_id_len)
        cj_hlog_hex("network_id", r->net.network_id, r->net.network_id_len);
    cj_hlog_uint("k1_id", r->net.keys[0].key_id);
    cj_hlog_uint("k2_id", r->net.key_count > 1 ? r->net.keys[1].key_id : 0);
    cj_hlog_uint("blacklist", r->cfg.blacklist_count);
    cj_hlog_uint("next_campaign", r->net.next_campaign);
    if (has_keep)
        cj_hlog_uint("keep_outcomes", keep);
    if (node_prefix_set) {
        uint8_t p16[16] = {0};
        char txt[INET6_ADDRSTRLEN + 3];
        memcpy(p16, node_prefix, sizeof node_prefix);
        inet_ntop(AF_INET6, p16, txt, INET6_ADDRSTRLEN);
        strcat(txt, "/64");
        cj_hlog_str("node_prefix", txt);
        cj_hlog_uint("node_port", node_port);
    }
    cj_hlog_end();
    note_skew(r);

    int res = cj_loop_run(&r->loop, CJ_TIME_NEVER);
    rc = res == -1 ? 1 : 0;
    release(r, true); /* what is queued leaves once durable */
    /* a campaign under way ends with the process: its lock too */
    campaign_lock_tick(r, false);
    counters(r, rc ? "error" : "info", "shutdown", res);
    cj_loop_close(&r->loop);
out_close:
    /* Every batch was durable before its responses left; nothing is
     * left open but a read-only state. */
    cj_reg_close(r->reg);
out_free:
    if (r->fd >= 0)
        close(r->fd);
    cj_crypto_wipe(r->slots, r->nslots * sizeof *r->slots);
    free(r->slots);
    cj_crypto_wipe(r, sizeof *r);
    free(r);
    return rc;
}

int cj_cmd_jrc(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*run)(int, char **);
    } subs[] = {{"add", jrc_add},     {"address", jrc_address}, {"import", jrc_import},
                {"list", jrc_list},   {"serve", jrc_serve},     {"rekey", jrc_rekey},
                {"evict", jrc_evict}, {"readmit", jrc_readmit}, {"recover", jrc_recover},
                {"derive", jrc_derive},
                {"psk", jrc_psk},     {"remove", jrc_remove},   {"prune", jrc_prune}};
    if (argc < 2)
        return cj_fail(2, CMD, "missing command (try 'cojp jrc --help')");
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++)
        if (!strcmp(argv[1], subs[i].name))
            return subs[i].run(argc - 1, argv + 1);
    return cj_fail(2, CMD, "unknown command '%s' (try 'cojp jrc --help')", argv[1]);
}
