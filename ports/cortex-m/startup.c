/*
 * Vector table and reset handler for Cortex-M3 (ARMv7-M) on MPS2 AN385.
 *
 * Not newlib's crt0: its semihosting variant asks the host for the heap
 * and stack limits (SYS_HEAPINFO), and QEMU answers with addresses past
 * the end of this board's RAM.  Here the stack is the linker script's
 * region at the top of RAM (__stack_limit .. __stack_top) and there is no
 * heap at all.
 *
 * Reset: point MSP at the top of the stack (the core already loaded it
 * from vector 0; setting it again keeps a debugger's "jump to entry"
 * correct), paint the whole stack region with CJ_FW_STACK_PAINT, copy
 * .data from its load address, zero .bss, run main and hand its result
 * to the semihosted exit.  The painting runs before anything is pushed,
 * so every word of the region starts out painted.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "board.h"

extern uint32_t __stack_top[], __stack_limit[];
extern uint32_t __data_start[], __data_end[], __data_load[];
extern uint32_t __bss_start[], __bss_end[];

int main(void);
void cj_fw_reset(void);
void cj_fw_start(void);
void cj_fw_fault(const uint32_t *frame, uint32_t exc);

#define STR_(x) #x
#define STR(x) STR_(x)

__attribute__((naked, noreturn)) void cj_fw_reset(void)
{
    __asm__ volatile(
        "ldr r0, =__stack_top\n"
        "msr msp, r0\n"
        "ldr r1, =__stack_limit\n"
        "ldr r2, =" STR(CJ_FW_STACK_PAINT) "\n"
        "1:\n"
        "cmp r1, r0\n"
        "bhs 2f\n"
        "str r2, [r1], #4\n"
        "b 1b\n"
        "2:\n"
        "b cj_fw_start\n"
        ".ltorg\n");
}

__attribute__((noreturn)) void cj_fw_start(void)
{
    size_t data_len = (size_t)((uintptr_t)__data_end - (uintptr_t)__data_start);
    size_t bss_len = (size_t)((uintptr_t)__bss_end - (uintptr_t)__bss_start);

    memcpy(__data_start, __data_load, data_len);
    memset(__bss_start, 0, bss_len);
    cj_fw_exit(main());
}

size_t cj_fw_stack_size(void)
{
    return (size_t)((uintptr_t)__stack_top - (uintptr_t)__stack_limit);
}

size_t cj_fw_stack_high_water(void)
{
    const volatile uint32_t *p = __stack_limit;

    while (p < __stack_top && *p == CJ_FW_STACK_PAINT)
        p++;
    return (size_t)((uintptr_t)__stack_top - (uintptr_t)p);
}

void cj_fw_stack_repaint(void)
{
    uint32_t *sp;
    volatile uint32_t *p = __stack_limit;

    __asm__ volatile("mov %0, sp" : "=r"(sp));
    /* Everything below the current stack pointer is free. */
    while (p < (volatile uint32_t *)sp)
        *p++ = CJ_FW_STACK_PAINT;
}

size_t cj_fw_stack_depth(void)
{
    uintptr_t sp;

    __asm__ volatile("mov %0, sp" : "=r"(sp));
    return (size_t)((uintptr_t)__stack_top - sp);
}

/* Faults: report the exception number and the stacked PC and LR, then
 * stop with status 3 so a crash never passes for a clean run. */
void cj_fw_fault(const uint32_t *frame, uint32_t exc)
{
    cj_fw_puts("firmware: fault, exception ");
    cj_fw_put_dec(exc & 0x1ffu);
    cj_fw_puts(" pc=0x");
    cj_fw_put_hex(frame[6], 8);
    cj_fw_puts(" lr=0x");
    cj_fw_put_hex(frame[5], 8);
    cj_fw_puts("\n");
    cj_fw_exit(3);
}

/* Pick the stack the exception frame was pushed on (EXC_RETURN bit 2),
 * pass it and IPSR to cj_fw_fault. */
__attribute__((naked)) static void fault_entry(void)
{
    __asm__ volatile(
        "tst lr, #4\n"
        "ite eq\n"
        "mrseq r0, msp\n"
        "mrsne r0, psp\n"
        "mrs r1, ipsr\n"
        "b cj_fw_fault\n");
}

typedef void (*cj_fw_vector_t)(void);

/* ARMv7-M system exceptions 0..15 and the AN385's 32 external interrupts
 * (none enabled: any of them firing is a fault here). */
__attribute__((section(".vectors"), used))
static const cj_fw_vector_t vectors[16 + 32] = {
    [0] = (cj_fw_vector_t)(uintptr_t)__stack_top,
    [1] = cj_fw_reset,
    [2 ... 6] = fault_entry,   /* NMI, HardFault, MemManage, BusFault,
                                  UsageFault */
    [11 ... 12] = fault_entry, /* SVCall, DebugMonitor */
    [14 ... 47] = fault_entry, /* PendSV, SysTick, IRQ 0..31 */
};
