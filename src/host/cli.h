/* Subcommands of the cojp binary and helpers they share. */
#ifndef COJP_HOST_CLI_H
#define COJP_HOST_CLI_H

#include <stddef.h>
#include <stdint.h>

int cj_cmd_demo(int argc, char **argv);
int cj_cmd_pledge(int argc, char **argv);
int cj_cmd_proxy(int argc, char **argv);
int cj_cmd_jrc(int argc, char **argv);
int cj_cmd_sim(int argc, char **argv);
int cj_cmd_bench(int argc, char **argv);


#endif
