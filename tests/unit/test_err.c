/*
 * cj_strerror (cojp/err.h): every error code the library returns has a
 * message of its own, which the command line prints in its one-line
 * errors; anything else is "unknown error".
 */
#include <string.h>

#include "cojp/err.h"
#include "../test.h"

TEST(err_every_code_has_its_own_message)
{
    static const int codes[] = {
        CJ_OK,
        CJ_ERR_TRUNCATED, CJ_ERR_MALFORMED, CJ_ERR_NOSPACE, CJ_ERR_TYPE,
        CJ_ERR_NONCANONICAL, CJ_ERR_UNSUPPORTED, CJ_ERR_DEPTH, CJ_ERR_TRAILING,
        CJ_ERR_RANGE, CJ_ERR_INVALID,
        CJ_ERR_COAP_VERSION, CJ_ERR_COAP_TOKEN, CJ_ERR_COAP_OPTION,
        CJ_ERR_COAP_PAYLOAD, CJ_ERR_COAP_EMPTY, CJ_ERR_COAP_CRITICAL,
        CJ_ERR_AUTH, CJ_ERR_REPLAY, CJ_ERR_UNKNOWN_CONTEXT, CJ_ERR_OSCORE_DECODE,
        CJ_ERR_SEQ_EXHAUSTED, CJ_ERR_CRYPTO, CJ_ERR_PSK_REUSED,
        CJ_ERR_STORAGE, CJ_ERR_STATE, CJ_ERR_NOTFOUND, CJ_ERR_BUSY,
    };
    const size_t n = sizeof codes / sizeof codes[0];

    for (size_t i = 0; i < n; i++) {
        const char *m = cj_strerror(codes[i]);
        CHECK(m != NULL && m[0] != '\0');
        CHECK(strcmp(m, "unknown error") != 0);
        CHECK(strchr(m, '\n') == NULL); /* fits a one-line error */
        for (size_t k = 0; k < i; k++)
            CHECK(strcmp(m, cj_strerror(codes[k])) != 0);
    }
    /* gaps between the groups and values outside them */
    CHECK(strcmp(cj_strerror(-11), "unknown error") == 0);
    CHECK(strcmp(cj_strerror(-26), "unknown error") == 0);
    CHECK(strcmp(cj_strerror(-37), "unknown error") == 0);
    CHECK(strcmp(cj_strerror(-44), "unknown error") == 0);
    CHECK(strcmp(cj_strerror(1), "unknown error") == 0);
}
