/*
 * sim_cmd.c - `cojp sim`: command line of the 6TiSCH network simulator.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "host/cli.h"
#include "port/random_posix.h"
#include "sim/sim.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: cojp sim [--nodes N] [--topology grid|line|random] [--seed S]\n"
            "                [--duration SECONDS] [--pcap FILE] [--json] [--plot FILE.svg]\n"
            "                [--eb-period SECONDS] [--slotframe SLOTS] [--minimal-only]\n"
            "                [--loss-model R1,R2] [--min-pdr P] [--max-retries N]\n"
            "                [--join-wait SECONDS] [--rekey-at SECONDS] [--timeline]\n"
            "                [--trace FILE] [--bench] [--no-progress]\n"
            "\n"
            "Discrete-event simulation of a 6TiSCH network in which every mote runs\n"
            "the cojp engines (pledge, Join Proxy; the root also hosts the JRC) over\n"
            "a TSCH MAC with real 802.15.4 frames and CCM* link-layer security.\n"
            "\n"
            "With no options: 50 motes on a grid for one simulated hour with the\n"
            "RFC 8180 minimal cell and RFC 9033 autonomous cells (slotframe 101),\n"
            "EBs every 16 s; a summary with join times per hop count beside their\n"
            "analytic lower bound (docs/simulator.md).\n"
            "\n"
            "  --nodes N           motes including the root (default 50, 2..1000000)\n"
            "  --topology T        grid (unit spacing, root in the middle), line (root\n"
            "                      at one end) or random (geometric) (default grid)\n"
            "  --seed S            everything is a function of the seed (default 1)\n"
            "  --duration S        simulated seconds (default 3600)\n"
            "  --pcap FILE         every frame on the air, and FILE.keys: the link-layer\n"
            "                      keys as Wireshark ieee802154_keys records\n"
            "  --pcap-format F     fcs: LINKTYPE_IEEE802_15_4_WITHFCS (default); tap:\n"
            "                      LINKTYPE_IEEE802_15_4_TAP with each slot's ASN, so that\n"
            "                      tshark -o 'uat:ieee802154_keys:LINE' decrypts K1/K2\n"
            "  --json              JSON summary on stdout instead of the text report\n"
            "  --plot FILE         SVG: join-time CDF and topology map\n"
            "  --eb-period S       mean Enhanced Beacon period, +-25 %% jitter (default 16)\n"
            "  --slotframe L       slotframe length in 10 ms slots (default 101, RFC 9033\n"
            "                      SLOTFRAME_LENGTH)\n"
            "  --minimal-only      everything in the RFC 8180 minimal cell, no RFC 9033\n"
            "                      autonomous cells for unicast (--autonomous: the default)\n"
            "  --loss-model R1,R2  PDR 1 up to distance R1, falling linearly to 0 at R2\n"
            "                      (grid spacing 1; default 1.0,2.0)\n"
            "  --min-pdr P         least PDR of a link to a preferred parent (default 0.5)\n"
            "  --max-retries N     macMaxFrameRetries (default 3)\n"
            "  --join-wait S       EB collection time after synchronising (default 3)\n"
            "  --rekey-at S        start a network-wide K1/K2 rekey from the JRC at S\n"
            "  --timeline          per-mote timeline after the summary\n"
            "  --trace FILE        every frame sent, one CSV line: asn,mote,kind,next hop\n"
            "                      (-1 broadcast),channel,bytes\n"
            "  --bench             print wall time, simulated slots/s and peak RSS\n"
            "  --no-progress       no progress bar on a terminal stderr\n");
}

__attribute__((format(printf, 1, 2))) static int bad(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "cojp sim: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (try 'cojp sim --help')\n");
    return 2;
}

static int num(const char *s, double lo, double hi, double *v)
{
    char *end;
    errno = 0;
    double d = strtod(s, &end);
    if (errno || end == s || *end || d < lo || d > hi)
        return -1;
    *v = d;
    return 0;
}

int cj_cmd_sim(int argc, char **argv)
{
    sim_cfg_t c;
    memset(&c, 0, sizeof c);
    c.nodes = 50;
    c.topology = 0;
    c.seed = 1;
    c.duration_s = 3600;
    c.eb_period_ms = 16000;
    c.slotframe = 101;
    c.r1 = 1.0;
    c.r2 = 2.0;
    c.min_pdr = 0.5;
    c.max_retries = 3;
    c.min_be = 1;
    c.max_be = 5;
    c.join_wait_ms = 3000;
    c.rekey_at_ms = -1;
    c.autonomous = true;
    bool no_progress = false;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = NULL;
        char opt[32];
        const char *eq = strchr(a, '=');
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        }
        if (strncmp(a, "--", 2) != 0)
            return bad("unexpected argument '%s'", a);
        if (eq) {
            size_t l = (size_t)(eq - a);
            if (l >= sizeof opt)
                return bad("unknown option '%s'", a);
            memcpy(opt, a, l);
            opt[l] = 0;
            v = eq + 1;
        } else {
            snprintf(opt, sizeof opt, "%s", a);
        }
        /* flags */
        if (!strcmp(opt, "--json") || !strcmp(opt, "--autonomous") || !strcmp(opt, "--timeline") ||
            !strcmp(opt, "--bench") || !strcmp(opt, "--no-progress") ||
            !strcmp(opt, "--minimal-only")) {
            if (v)
                return bad("option '%s' takes no value", opt);
            if (!strcmp(opt, "--json"))
                c.json = true;
            else if (!strcmp(opt, "--autonomous"))
                c.autonomous = true;
            else if (!strcmp(opt, "--minimal-only"))
                c.autonomous = false;
            else if (!strcmp(opt, "--timeline"))
                c.timeline = true;
            else if (!strcmp(opt, "--bench"))
                c.bench = true;
            else
                no_progress = true;
            continue;
        }
        static const char *const with_value[] = {
            "--nodes", "--topology", "--seed", "--duration", "--pcap", "--pcap-format", "--plot",
            "--eb-period",
            "--slotframe", "--loss-model", "--min-pdr", "--max-retries", "--join-wait", "--rekey-at",
            "--trace"};
        bool known = false;
        for (size_t k = 0; k < sizeof with_value / sizeof with_value[0]; k++)
            known |= !strcmp(opt, with_value[k]);
        if (!known)
            return bad("unknown option '%s'", opt);
        if (!v) {
            if (i + 1 >= argc)
                return bad("option '%s' needs a value", opt);
            v = argv[++i];
        }
        double d;
        if (!strcmp(opt, "--nodes")) {
            if (num(v, 2, 1000000, &d) || d != (double)(uint32_t)d)
                return bad("--nodes: '%s' is not an integer in 2..1000000", v);
            c.nodes = (uint32_t)d;
        } else if (!strcmp(opt, "--topology")) {
            if (!strcmp(v, "grid"))
                c.topology = 0;
            else if (!strcmp(v, "line"))
                c.topology = 1;
            else if (!strcmp(v, "random"))
                c.topology = 2;
            else
                return bad("--topology: '%s' is not grid, line or random", v);
        } else if (!strcmp(opt, "--seed")) {
            char *end;
            errno = 0;
            unsigned long long x = strtoull(v, &end, 0);
            if (errno || end == v || *end || *v == '-')
                return bad("--seed: '%s' is not an unsigned integer", v);
            c.seed = x;
        } else if (!strcmp(opt, "--duration")) {
            if (num(v, 1, 30 * 86400, &d) || d != (double)(uint32_t)d)
                return bad("--duration: '%s' is not a whole number of seconds in 1..2592000", v);
            c.duration_s = (uint32_t)d;
        } else if (!strcmp(opt, "--pcap")) {
            c.pcap = v;
        } else if (!strcmp(opt, "--pcap-format")) {
            if (!strcmp(v, "fcs"))
                c.pcap_tap = false;
            else if (!strcmp(v, "tap"))
                c.pcap_tap = true;
            else
                return bad("--pcap-format: '%s' is not fcs or tap", v);
        } else if (!strcmp(opt, "--plot")) {
            c.plot = v;
        } else if (!strcmp(opt, "--trace")) {
            c.trace = v;
        } else if (!strcmp(opt, "--eb-period")) {
            if (num(v, 0.1, 3600, &d))
                return bad("--eb-period: '%s' is not a number of seconds in 0.1..3600", v);
            c.eb_period_ms = (uint32_t)(d * 1000 + 0.5);
        } else if (!strcmp(opt, "--slotframe")) {
            if (num(v, 2, 65535, &d) || d != (double)(uint32_t)d)
                return bad("--slotframe: '%s' is not an integer in 2..65535", v);
            c.slotframe = (uint32_t)d;
        } else if (!strcmp(opt, "--loss-model")) {
            char *end;
            errno = 0;
            double r1 = strtod(v, &end);
            if (errno || end == v || *end != ',')
                return bad("--loss-model: '%s' is not R1,R2", v);
            const char *p2 = end + 1;
            double r2 = strtod(p2, &end);
            if (errno || end == p2 || *end || r1 < 0 || r2 <= r1 || r2 > 1000)
                return bad("--loss-model: '%s' is not R1,R2 with 0 <= R1 < R2 <= 1000", v);
            c.r1 = r1;
            c.r2 = r2;
        } else if (!strcmp(opt, "--min-pdr")) {
            if (num(v, 0.01, 1, &d))
                return bad("--min-pdr: '%s' is not a number in 0.01..1", v);
            c.min_pdr = d;
        } else if (!strcmp(opt, "--max-retries")) {
            if (num(v, 0, 7, &d) || d != (double)(uint32_t)d)
                return bad("--max-retries: '%s' is not an integer in 0..7", v);
            c.max_retries = (uint8_t)d;
        } else if (!strcmp(opt, "--join-wait")) {
            if (num(v, 0, 600, &d))
                return bad("--join-wait: '%s' is not a number of seconds in 0..600", v);
            c.join_wait_ms = (uint32_t)(d * 1000 + 0.5);
        } else if (!strcmp(opt, "--rekey-at")) {
            if (num(v, 0, 30 * 86400, &d))
                return bad("--rekey-at: '%s' is not a number of seconds", v);
            c.rekey_at_ms = (int64_t)(d * 1000 + 0.5);
        }
    }
    c.progress = !no_progress && !c.bench && isatty(2);

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (cj_random_posix_seed(c.seed) != 0) {
        fprintf(stderr, "cojp sim: cannot seed the random generator\n");
        return 1;
    }
    sim_t *s = calloc(1, sizeof *s);
    if (!s || sim_init(s, &c) != 0) {
        fprintf(stderr, "cojp sim: set-up failed\n");
        free(s);
        return 1;
    }
    s->pcap_tap = c.pcap_tap;
    if (c.pcap && sim_pcap_open(s, c.pcap) != 0) {
        fprintf(stderr, "cojp sim: cannot write '%s': %s\n", c.pcap, strerror(errno));
        sim_free(s);
        free(s);
        return 1;
    }
    if (c.trace) {
        s->trace = fopen(c.trace, "w");
        if (!s->trace) {
            fprintf(stderr, "cojp sim: cannot write '%s': %s\n", c.trace, strerror(errno));
            sim_free(s);
            free(s);
            return 1;
        }
        setvbuf(s->trace, NULL, _IOFBF, 1 << 20);
        fprintf(s->trace, "asn,mote,kind,nexthop,channel,bytes\n");
    }
    sim_run(s);
    sim_pcap_close(s);
    if (s->trace && fclose(s->trace) != 0) {
        fprintf(stderr, "cojp sim: cannot write '%s': %s\n", c.trace, strerror(errno));
        s->trace = NULL;
        sim_free(s);
        free(s);
        return 1;
    }
    s->trace = NULL;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    int rc = 0;
    if (c.plot && sim_write_svg(s, c.plot) != 0) {
        fprintf(stderr, "cojp sim: cannot write '%s': %s\n", c.plot, strerror(errno));
        rc = 1;
    }
    if (c.json) {
        sim_print_json(s, stdout);
    } else {
        sim_print_summary(s, stdout);
        if (c.timeline)
            sim_print_timeline(s, stdout);
    }
    if (c.bench) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        double wall = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
        double slots = (double)c.duration_s * 1000 / SIM_SLOT_MS;
        fprintf(stderr,
                "bench: %u motes, %u s simulated in %.3f s wall: %.0f simulated slots/s "
                "(%llu slots processed), %.2f mote-hours/s, peak RSS %.1f MB\n",
                c.nodes, c.duration_s, wall, slots / wall, (unsigned long long)s->slots_processed,
                (double)c.nodes * c.duration_s / 3600 / wall, (double)ru.ru_maxrss / 1024);
    }
    sim_free(s);
    free(s);
    return rc;
}
