/*
 * cojp - command-line entry point: dispatches git-style subcommands.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

#ifndef COJP_VERSION
#define COJP_VERSION "0.1.0"
#endif

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} commands[] = {
    {"demo", cj_cmd_demo, "JRC + Join Proxy + N pledges joining over loopback UDP"},
    {"jrc", cj_cmd_jrc, "Join Registrar/Coordinator: provisioning and the daemon"},
    {"proxy", cj_cmd_proxy, "Join Proxy daemon"},
    {"pledge", cj_cmd_pledge, "join a network through a Join Proxy"},
    {"sim", cj_cmd_sim, "discrete-event 6TiSCH network simulator"},
    {"bench", cj_cmd_bench, "JRC joins/s over loopback against a UDP echo server"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: cojp [--version] [--help] COMMAND [ARGS]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nRun 'cojp COMMAND --help' for a command's options.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "cojp: missing command (try 'cojp --help')\n");
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("cojp %s\n", COJP_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "cojp: unknown command '%s' (try 'cojp --help')\n", argv[1]);
    return 2;
}
