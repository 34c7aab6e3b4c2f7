/*
 * ARM semihosting (ARM "Semihosting for AArch32 and AArch64", v2.0) for
 * Cortex-M: the operation number in r0, a parameter in r1, then
 * BKPT 0xAB; the debugger or emulator performs the call and resumes.
 *
 * Exit status: the AArch32 SYS_EXIT (0x18) carries only a reason code;
 * QEMU 7.2 maps ADP_Stopped_ApplicationExit to status 0 and every other
 * reason to 1 (semihosting/arm-compat-semi.c).  SYS_EXIT_EXTENDED (0x20)
 * takes a two-word block {reason, subcode} and QEMU exits with subcode
 * when the reason is ADP_Stopped_ApplicationExit, so the test's own
 * status becomes QEMU's.  If a host does not implement the extended call
 * and returns, SYS_EXIT still tells success from failure.
 */
#include <stddef.h>
#include <stdint.h>

#include "board.h"

enum {
    SYS_WRITEC = 0x03,
    SYS_WRITE0 = 0x04,
    SYS_EXIT = 0x18,
    SYS_EXIT_EXTENDED = 0x20
};

#define ADP_STOPPED_APPLICATION_EXIT 0x20026u
#define ADP_STOPPED_RUNTIME_ERROR_UNKNOWN 0x20023u

static uint32_t semihost_call(uint32_t op, const void *arg)
{
    register uint32_t r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

void cj_fw_puts(const char *s)
{
    (void)semihost_call(SYS_WRITE0, s);
}

void cj_fw_putc(char c)
{
    (void)semihost_call(SYS_WRITEC, &c);
}

void cj_fw_put_dec(uint32_t v)
{
    char buf[11];
    size_t i = sizeof buf - 1;

    buf[i] = '\0';
    do {
        buf[--i] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v != 0 && i > 0);
    cj_fw_puts(&buf[i]);
}

void cj_fw_put_hex(uint32_t v, unsigned digits)
{
    static const char hex[] = "0123456789abcdef";
    char buf[9];
    size_t i = sizeof buf - 1;

    if (digits > 8)
        digits = 8;
    buf[i] = '\0';
    do {
        buf[--i] = hex[v & 0xfu];
        v >>= 4;
    } while ((v != 0 || sizeof buf - 1 - i < digits) && i > 0);
    cj_fw_puts(&buf[i]);
}

void cj_fw_put_bytes(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        cj_fw_put_hex(p[i], 2);
}

void cj_fw_exit(int code)
{
    uint32_t block[2] = {ADP_STOPPED_APPLICATION_EXIT, (uint32_t)code & 0xffu};

    (void)semihost_call(SYS_EXIT_EXTENDED, block);
    /* Only reached when the host lacks the extended call; the argument of
     * the AArch32 SYS_EXIT is the reason itself, not a block. */
    (void)semihost_call(SYS_EXIT, (const void *)(uintptr_t)(
                            code == 0 ? ADP_STOPPED_APPLICATION_EXIT
                                      : ADP_STOPPED_RUNTIME_ERROR_UNKNOWN));
    for (;;)
        __asm__ volatile("wfi");
}
