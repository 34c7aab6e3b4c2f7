/*
 * Fuzz what the registries read from files and rows they did not write
 * themselves (store/common.h): the CSV provisioning walker, the repeat
 * cache blob, the network row's key set and hex fields.  Every input goes
 * through all four.
 *  - CSV: each pledge handed on has a 1..8 byte id and a known role
 *    mask; the counts and the failing line number agree with the text.
 *  - repeat cache: a blob that unpacks packs back to the same bytes;
 *    one that does not leaves the cache empty.
 *  - key set: accepted records pack back to the same bytes.
 *  - hex: decoded bytes encode back to the input, up to letter case.
 *  - URI redaction (the registry name in logs): the output fits its
 *    buffer, a name that is no PostgreSQL URI comes out as it went in,
 *    and redacting twice changes nothing more.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
    size_t calls;
} walk_t;

static int on_pledge(void *arg, const uint8_t *id, size_t id_len,
                     const uint8_t psk[16], uint8_t roles)
{
    walk_t *w = arg;
    (void)id;
    (void)psk;
    if (id_len < 1 || id_len > CJ_JRC_MAX_ID || roles == 0 ||
        (roles & ~(CJ_JRC_ALLOW_NODE | CJ_JRC_ALLOW_6LBR)) != 0)
        abort();
    w->calls++;
    /* stop at the fifth pledge as a failing insert would */
    return w->calls == 5 ? CJ_ERR_STATE : CJ_OK;
}

static void csv(const uint8_t *data, size_t size)
{
    walk_t w = {0};
    size_t line = 99, added = 99, lines = 1;
    int rc = cj_store_csv_each((const char *)data, size, on_pledge, &w, &line,
                               &added);

    for (size_t i = 0; i + 1 < size; i++)
        lines += data[i] == '\n';
    if (added > w.calls || (rc == CJ_OK) != (line == 0) || line > lines)
        abort();
    if (rc == CJ_ERR_STATE ? w.calls != 5 || added != 4
                           : added != w.calls || w.calls >= 5)
        abort();
    if (rc != CJ_OK && rc != CJ_ERR_STATE && rc != CJ_ERR_MALFORMED)
        abort();
}

static void repeat(const uint8_t *data, size_t size)
{
    static cj_jrc_repeat_t r;
    static uint8_t out[CJ_STORE_REPEAT_MAX];

    if (!cj_store_repeat_unpack(data, size, &r)) {
        if (r.req_len != 0 || r.resp_len != 0 || r.from.len != 0)
            abort();
        return;
    }
    if (cj_store_repeat_pack(&r, out) != size || memcmp(out, data, size) != 0)
        abort();
}

static void keys(const uint8_t *data, size_t size)
{
    static cj_sqlite_network_t n;
    static uint8_t out[CJ_STORE_KEYS_MAX];
    int64_t rate = size > 0 ? (int64_t)data[0] - 1 : 0;

    memset(&n, 0, sizeof n);
    n.next_campaign = 1;
    if (!cj_store_network_fill(&n, data, size, size % 17 == 0 ? 16 : 0, rate,
                               (int64_t)size, 1))
        return;
    if (!cj_store_network_ok(&n) || cj_store_keys_pack(&n, out) != size ||
        memcmp(out, data, size) != 0)
        abort();
}

static void hex(const uint8_t *data, size_t size)
{
    static uint8_t bytes[64];
    static char back[2 * sizeof bytes];
    const char *p = (const char *)data;
    int n = cj_store_hex_decode(p, p + size, bytes, sizeof bytes);

    if (n < 0)
        return;
    if ((size_t)n * 2 != size)
        abort();
    cj_store_hex_encode(back, bytes, (size_t)n);
    for (size_t i = 0; i < size; i++)
        if (tolower((unsigned char)p[i]) != back[i])
            abort();
}

static void uri(const uint8_t *data, size_t size)
{
    static char in[512], once[1024], twice[1024], small[16];
    size_t n = size < sizeof in - 1 ? size : sizeof in - 1;
    size_t k;

    memcpy(in, data, n);
    in[n] = '\0';
    /* room for every "***" the input can gain: nothing is cut */
    cj_store_uri_redact(in, once, sizeof once);
    if (strlen(once) >= sizeof once)
        abort();
    if (strncmp(in, "postgresql://", 13) && strncmp(in, "postgres://", 11) &&
        strcmp(once, in))
        abort();
    cj_store_uri_redact(once, twice, sizeof twice);
    if (strcmp(once, twice))
        abort();
    /* a short buffer holds a prefix of the full answer */
    k = size ? data[0] % sizeof small + 1 : 1;
    cj_store_uri_redact(in, small, k);
    if (strlen(small) >= k || strncmp(small, once, strlen(small)))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    csv(data, size);
    repeat(data, size);
    keys(data, size);
    hex(data, size);
    uri(data, size);
    return 0;
}
