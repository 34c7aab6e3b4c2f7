/*
 * What both JRC registries share (store/common.h).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cojp/crypto.h"
#include "cojp/oscore.h"
#include "store/common.h"

int64_t cj_store_i64(uint64_t v)
{
    return v > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)v;
}

uint64_t cj_store_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

bool cj_store_id_ok(const uint8_t *id, size_t id_len)
{
    return id != NULL && id_len >= 1 && id_len <= CJ_JRC_MAX_ID;
}

bool cj_store_ctx_ok(const uint8_t *ctx_id, size_t ctx_len)
{
    return ctx_len <= CJ_OSCORE_MAX_ID_CONTEXT &&
           (ctx_len == 0 || ctx_id != NULL);
}

int64_t cj_store_add_ms(int64_t t, int64_t ms)
{
    if (ms >= 0)
        return t > INT64_MAX - ms ? INT64_MAX : t + ms;
    return t + ms < 0 ? 0 : t + ms; /* t >= 0: no overflow */
}

int64_t cj_store_lease_end(int64_t now, uint32_t lease_hours)
{
    if (lease_hours == 0)
        return CJ_STORE_NO_EXPIRY;
    return cj_store_add_ms(now, (int64_t)lease_hours * CJ_STORE_HOUR_MS);
}

int cj_store_role_mask(const char *name)
{
    if (name != NULL && strcmp(name, "node") == 0)
        return CJ_JRC_ALLOW_NODE;
    if (name != NULL && strcmp(name, "6lbr") == 0)
        return CJ_JRC_ALLOW_NODE | CJ_JRC_ALLOW_6LBR;
    return CJ_ERR_INVALID;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int cj_store_hex_decode(const char *p, const char *e, uint8_t *out,
                        size_t cap)
{
    size_t n = (size_t)(e - p);
    if (n == 0 || n % 2 != 0 || n / 2 > cap)
        return -1;
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hexval(p[2 * i]), lo = hexval(p[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return (int)(n / 2);
}

char *cj_store_hex_encode(char *out, const uint8_t *p, size_t n)
{
    static const char digit[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        *out++ = digit[p[i] >> 4];
        *out++ = digit[p[i] & 15];
    }
    return out;
}

bool cj_store_row_fill(cj_jrc_pledge_t *r, const cj_store_row_t *v)
{
    if (v->ssn_reserved < 0 || v->replay_highest < 0 ||
        v->replay_bitmap < 0 || v->replay_bitmap > UINT32_MAX ||
        v->allowed_roles < 0 || v->allowed_roles > 255 || v->role < 0 ||
        v->role > 255 || v->short_id < 0 || v->short_id > 65535)
        return false;
    r->allowed_roles = (uint8_t)v->allowed_roles;
    r->ssn_reserved = (uint64_t)v->ssn_reserved;
    r->replay.highest = (uint64_t)v->replay_highest;
    r->replay.bitmap = (uint32_t)v->replay_bitmap;
    r->replay.valid = v->replay_valid;
    r->joined = v->joined;
    r->role = (uint8_t)v->role;
    r->short_id = (uint16_t)v->short_id;
    return true;
}

/* ---- CSV ------------------------------------------------------------------ */

/* Strip blanks (and the CR of a CRLF line end) around [*p, *e). */
static void trim(const char **p, const char **e)
{
    while (*p < *e && (**p == ' ' || **p == '\t'))
        (*p)++;
    while (*e > *p && ((*e)[-1] == ' ' || (*e)[-1] == '\t' || (*e)[-1] == '\r'))
        (*e)--;
}

/* One line [p, e): CJ_OK and the fields, 1 (nothing on it) or
 * CJ_ERR_MALFORMED. */
static int csv_line(const char *p, const char *e, uint8_t id[CJ_JRC_MAX_ID],
                    size_t *id_len, uint8_t psk[16], uint8_t *roles)
{
    const char *f[3] = {0}, *fe[3] = {0};
    int nf = 0, idn, mask = CJ_JRC_ALLOW_NODE;

    trim(&p, &e);
    if (p == e || *p == '#')
        return 1;
    f[0] = p;
    for (const char *c = p; c <= e; c++) {
        if (c == e || *c == ',') {
            if (nf == 3)
                return CJ_ERR_MALFORMED; /* more than three fields */
            fe[nf++] = c;
            if (c < e && nf < 3)
                f[nf] = c + 1;
            else if (c < e)
                return CJ_ERR_MALFORMED;
        }
    }
    for (int i = 0; i < nf; i++)
        trim(&f[i], &fe[i]);
    if (nf < 2)
        return CJ_ERR_MALFORMED;
    idn = cj_store_hex_decode(f[0], fe[0], id, CJ_JRC_MAX_ID);
    if (idn < 1 || cj_store_hex_decode(f[1], fe[1], psk, 16) != 16)
        return CJ_ERR_MALFORMED;
    if (nf == 3) {
        char role[8];
        size_t rl = (size_t)(fe[2] - f[2]);
        if (rl == 0 || rl >= sizeof role)
            return CJ_ERR_MALFORMED;
        memcpy(role, f[2], rl);
        role[rl] = '\0';
        mask = cj_store_role_mask(role);
        if (mask < 0)
            return CJ_ERR_MALFORMED;
    }
    *id_len = (size_t)idn;
    *roles = (uint8_t)mask;
    return CJ_OK;
}

int cj_store_csv_each(const char *text, size_t len, cj_store_csv_fn fn,
                      void *arg, size_t *line, size_t *added)
{
    const char *p = text, *end = len ? text + len : text;
    uint8_t id[CJ_JRC_MAX_ID], psk[16];
    size_t id_len = 0, n = 0, no = 0;
    uint8_t roles = 0;
    int r = CJ_OK;

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *e = nl ? nl : end;
        no++;
        r = csv_line(p, e, id, &id_len, psk, &roles);
        if (r == CJ_OK) {
            r = fn(arg, id, id_len, psk, roles);
            if (r != CJ_OK)
                break;
            n++;
        } else if (r != 1) {
            break;
        }
        r = CJ_OK;
        p = nl ? nl + 1 : end;
    }
    cj_crypto_wipe(psk, sizeof psk);
    *line = r == CJ_OK ? 0 : no;
    if (added)
        *added = n;
    return r;
}

/* ---- network row and pending operations ---------------------------------- */

bool cj_store_network_ok(const cj_sqlite_network_t *n)
{
    return n != NULL && n->key_count != 0 &&
           n->key_count <= CJ_COJP_MAX_KEYS &&
           n->network_id_len <= sizeof n->network_id && n->next_campaign != 0;
}

size_t cj_store_keys_pack(const cj_sqlite_network_t *n,
                          uint8_t out[CJ_STORE_KEYS_MAX])
{
    for (uint8_t i = 0; i < n->key_count; i++) {
        out[i * CJ_STORE_KEY_REC] = n->keys[i].key_id;
        out[i * CJ_STORE_KEY_REC + 1] = n->keys[i].key_usage;
        memcpy(out + i * CJ_STORE_KEY_REC + 2, n->keys[i].key, 16);
    }
    return (size_t)n->key_count * CJ_STORE_KEY_REC;
}

bool cj_store_network_fill(cj_sqlite_network_t *out, const uint8_t *keys,
                           size_t klen, size_t alen, int64_t rate,
                           int64_t lease, int64_t next)
{
    if (klen < CJ_STORE_KEY_REC || klen > CJ_STORE_KEYS_MAX ||
        klen % CJ_STORE_KEY_REC != 0 || (alen != 0 && alen != 16) ||
        rate > (int64_t)UINT32_MAX - 1 || lease < 0 ||
        lease > (int64_t)UINT32_MAX || next < 1 || next > (int64_t)UINT32_MAX)
        return false;
    out->key_count = (uint8_t)(klen / CJ_STORE_KEY_REC);
    for (uint8_t i = 0; i < out->key_count; i++) {
        out->keys[i].key_id = keys[i * CJ_STORE_KEY_REC];
        out->keys[i].key_usage = keys[i * CJ_STORE_KEY_REC + 1];
        memcpy(out->keys[i].key, keys + i * CJ_STORE_KEY_REC + 2, 16);
    }
    out->has_jrc_address = alen == 16;
    out->join_rate = rate < 0 ? UINT32_MAX : (uint32_t)rate;
    out->lease_hours = (uint32_t)lease;
    out->next_campaign = (uint32_t)next;
    return true;
}

/* Append n bytes of p to out (cap, *len so far), cutting at cap - 1. */
static void put_n(char *out, size_t cap, size_t *len, const char *p, size_t n)
{
    if (n > cap - 1 - *len)
        n = cap - 1 - *len;
    memcpy(out + *len, p, n);
    *len += n;
    out[*len] = '\0';
}

char *cj_store_uri_redact(const char *db, char *out, size_t cap)
{
    static const char *const schemes[] = {"postgresql://", "postgres://"};
    const char *p = db, *query, *at = NULL;
    size_t len = 0, sl = 0;

    out[0] = '\0';
    for (size_t i = 0; i < 2 && !sl; i++)
        if (!strncmp(db, schemes[i], strlen(schemes[i])))
            sl = strlen(schemes[i]);
    if (!sl) {
        put_n(out, cap, &len, db, strlen(db));
        return out;
    }
    put_n(out, cap, &len, db, sl);
    p = db + sl;
    /* user information ends at the last '@' before the query, so that a
     * password holding an unescaped '@' or '/' is still covered */
    query = strchr(p, '?');
    if (!query)
        query = p + strlen(p);
    for (const char *c = p; c < query; c++)
        if (*c == '@')
            at = c;
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (colon) {
            put_n(out, cap, &len, p, (size_t)(colon - p));
            put_n(out, cap, &len, ":***", 4);
            p = at;
        }
    }
    put_n(out, cap, &len, p, (size_t)(query - p));
    /* parameters: key=value separated by '&' */
    p = query;
    while (*p) {
        const char *end = strchr(p + 1, '&'), *eq;
        if (!end)
            end = p + strlen(p);
        eq = memchr(p + 1, '=', (size_t)(end - p - 1));
        if (eq && eq - (p + 1) == 8 && !strncmp(p + 1, "password", 8)) {
            put_n(out, cap, &len, p, (size_t)(eq + 1 - p));
            put_n(out, cap, &len, "***", 3);
        } else {
            put_n(out, cap, &len, p, (size_t)(end - p));
        }
        p = end;
    }
    return out;
}

bool cj_store_op_ok(const cj_sqlite_op_t *op)
{
    return op != NULL &&
           (op->kind == CJ_SQLITE_OP_REKEY || op->kind == CJ_SQLITE_OP_EVICT ||
            op->kind == CJ_SQLITE_OP_READMIT) &&
           (op->kind == CJ_SQLITE_OP_REKEY || cj_store_id_ok(op->id, op->id_len)) &&
           op->id_len <= CJ_JRC_MAX_ID;
}

/* ---- retired PSKs -------------------------------------------------------- */

int cj_store_psk_fp(const uint8_t psk[16], uint8_t fp[CJ_STORE_RETIRED_FP])
{
    static const char salt[] = "cojp retired PSK";

    if (cj_crypto_hkdf_sha256((const uint8_t *)salt, sizeof salt - 1, psk, 16,
                              NULL, 0, fp, CJ_STORE_RETIRED_FP) != CJ_OK)
        return CJ_ERR_CRYPTO;
    return CJ_OK;
}

/* ---- pledges sharing a PSK ---------------------------------------------- */

/* Room kept at the end of the line for "... (N pledges in all)". */
#define SHARED_TAIL 40

void cj_store_shared_init(cj_store_shared_t *l, char *out, size_t cap)
{
    memset(l, 0, sizeof *l);
    l->out = out;
    l->cap = cap;
    out[0] = '\0';
}

void cj_store_shared_add(cj_store_shared_t *l, int64_t group,
                         const uint8_t *id, size_t id_len)
{
    char piece[32 + 2 * CJ_JRC_MAX_ID];
    const char *sep = l->n == 0 ? "pledges sharing a PSK: {"
                      : group != l->group ? "}, {"
                                          : ", ";
    size_t k = strlen(sep);

    if (id_len > CJ_JRC_MAX_ID)
        id_len = CJ_JRC_MAX_ID;
    memcpy(piece, sep, k);
    *cj_store_hex_encode(piece + k, id, id_len) = '\0';
    k += 2 * id_len;
    l->n++;
    l->group = group;
    /* whole ids only, and room for the tail */
    if (l->cut || l->len + k + SHARED_TAIL >= l->cap) {
        l->cut = true;
        return;
    }
    memcpy(l->out + l->len, piece, k + 1);
    l->len += k;
}

size_t cj_store_shared_end(cj_store_shared_t *l)
{
    if (l->n == 0)
        return 0;
    if (!l->cut)
        snprintf(l->out + l->len, l->cap - l->len, "}");
    else if (l->len > 0)
        snprintf(l->out + l->len, l->cap - l->len, ", ... (%zu pledges in all)", l->n);
    else
        snprintf(l->out, l->cap, "%zu pledges share PSKs", l->n);
    return l->n;
}

/* ---- repeat cache -------------------------------------------------------- */

size_t cj_store_repeat_pack(const cj_jrc_repeat_t *r,
                            uint8_t out[CJ_STORE_REPEAT_MAX])
{
    size_t n = 6;

    if (r == NULL || r->req_len == 0 || r->resp_len == 0 ||
        r->req_len > sizeof r->req || r->req_opt_len > r->req_len ||
        r->resp_len > sizeof r->resp || r->from.len > CJ_ADDR_MAX)
        return 0;
    out[0] = r->req_opt_len;
    out[1] = (uint8_t)(r->req_len >> 8);
    out[2] = (uint8_t)r->req_len;
    out[3] = (uint8_t)(r->resp_len >> 8);
    out[4] = (uint8_t)r->resp_len;
    out[5] = r->from.len;
    memcpy(out + n, r->req, r->req_len);
    n += r->req_len;
    memcpy(out + n, r->resp, r->resp_len);
    n += r->resp_len;
    memcpy(out + n, r->from.b, r->from.len);
    return n + r->from.len;
}

bool cj_store_repeat_unpack(const uint8_t *b, size_t len, cj_jrc_repeat_t *r)
{
    size_t req, resp, from;

    memset(r, 0, sizeof *r);
    if (b == NULL || len < 6)
        return false;
    req = (size_t)b[1] << 8 | b[2];
    resp = (size_t)b[3] << 8 | b[4];
    from = b[5];
    if (req == 0 || req > sizeof r->req || b[0] > req || resp == 0 ||
        resp > sizeof r->resp || from > CJ_ADDR_MAX ||
        len != 6 + req + resp + from)
        return false;
    r->req_opt_len = b[0];
    r->req_len = (uint16_t)req;
    r->resp_len = (uint16_t)resp;
    r->from.len = (uint8_t)from;
    memcpy(r->req, b + 6, req);
    memcpy(r->resp, b + 6 + req, resp);
    memcpy(r->from.b, b + 6 + req + resp, from);
    return true;
}

void cj_store_from_max(cj_store_from_t *from, const uint8_t *p, size_t len)
{
    int c;

    if (p == NULL || len == 0 || len > sizeof from->b)
        return;
    c = memcmp(p, from->b, len < from->len ? len : from->len);
    if (c > 0 || (c == 0 && len > from->len)) {
        memcpy(from->b, p, len);
        from->len = len;
    }
}
