#include "platform_mem.h"

#include <string.h>

static uint64_t mem_now(void *ctx)
{
    return ((cj_mem_platform_t *)ctx)->now;
}

static int mem_store(void *ctx, uint32_t id, uint64_t value)
{
    cj_mem_platform_t *m = ctx;
    int free_slot = -1;
    if (m->fail_stores) {
        m->fail_stores--;
        return CJ_ERR_STORAGE;
    }
    for (int i = 0; i < CJ_MEM_COUNTERS; i++) {
        if (m->used[i] && m->ids[i] == id) {
            m->values[i] = value;
            m->stores++;
            return CJ_OK;
        }
        if (!m->used[i] && free_slot < 0)
            free_slot = i;
    }
    if (free_slot < 0)
        return CJ_ERR_STORAGE;
    m->used[free_slot] = true;
    m->ids[free_slot] = id;
    m->values[free_slot] = value;
    m->stores++;
    return CJ_OK;
}

static int mem_load(void *ctx, uint32_t id, uint64_t *value)
{
    cj_mem_platform_t *m = ctx;
    if (m->fail_loads) {
        m->fail_loads--;
        return CJ_ERR_STORAGE;
    }
    for (int i = 0; i < CJ_MEM_COUNTERS; i++) {
        if (m->used[i] && m->ids[i] == id) {
            *value = m->values[i];
            return CJ_OK;
        }
    }
    return CJ_ERR_NOTFOUND;
}

void cj_mem_platform_init(cj_mem_platform_t *m)
{
    memset(m, 0, sizeof *m);
    m->port.ctx = m;
    m->port.now_ms = mem_now;
    m->port.counter_store = mem_store;
    m->port.counter_load = mem_load;
    m->port.log = NULL;
}
