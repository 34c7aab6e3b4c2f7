/*
 * random_posix.h - extras of the POSIX random source (random_posix.c).
 *
 * By default cj_crypto_random() draws from an mbedTLS CTR_DRBG seeded
 * from the platform entropy sources.  A simulator or a reproducible test
 * run can switch the whole process to a DRBG instantiated from a fixed
 * seed instead: every later cj_crypto_random() output is then a function
 * of the seed and of the sequence of calls only.  Never use this for a
 * real device or daemon: the "random" values become predictable.
 */
#ifndef COJP_PORT_RANDOM_POSIX_H
#define COJP_PORT_RANDOM_POSIX_H

#include <stdint.h>

/* Re-instantiate the process DRBG from seed (replacing any earlier
 * state).  Returns CJ_OK or CJ_ERR_CRYPTO. */
int cj_random_posix_seed(uint64_t seed);

#endif
