/*
 * Board support for the freestanding Cortex-M3 build on the ARM MPS2
 * AN385 image (QEMU machine mps2-an385): reset, semihosted console and
 * exit, stack measurement.  Port-internal: nothing in the library calls
 * these; the test and reference programs do.
 *
 * Output goes through ARM semihosting (SYS_WRITE0 / SYS_WRITEC), which
 * QEMU forwards to its stdout with -semihosting-config enable=on.  On a
 * board without a debugger attached a semihosting call traps, so this
 * console is for emulation and debugging only.
 */
#ifndef CJ_CORTEX_M_BOARD_H
#define CJ_CORTEX_M_BOARD_H

#include <stddef.h>
#include <stdint.h>

/* Word the reset handler fills the stack with before main runs. */
#define CJ_FW_STACK_PAINT 0xc5c5c5c5u

/* Console: a NUL-terminated string, one character, a decimal and a hex
 * number (at least `digits` digits), and a byte string as hex. */
void cj_fw_puts(const char *s);
void cj_fw_putc(char c);
void cj_fw_put_dec(uint32_t v);
void cj_fw_put_hex(uint32_t v, unsigned digits);
void cj_fw_put_bytes(const uint8_t *p, size_t n);

/* Stop the emulator with exit status code (0..255).  QEMU 7.2 returns it
 * as its own exit status (SYS_EXIT_EXTENDED, see semihost.c). */
void cj_fw_exit(int code) __attribute__((noreturn));

/* Stack: size of the stack region, and the deepest use since reset (bytes
 * from the top down to the lowest word that no longer holds the paint). */
size_t cj_fw_stack_size(void);
size_t cj_fw_stack_high_water(void);
/* Paint the free part of the stack again (below the caller's frame), so
 * the next high-water reading measures what runs after this call. */
void cj_fw_stack_repaint(void);
/* Bytes of stack in use at the call (from the top down to the caller's
 * stack pointer): subtracted from a high-water reading after a call made
 * at the same depth, it gives the stack that call needed by itself. */
size_t cj_fw_stack_depth(void);

/* mbedTLS context pool (mbedtls_pool.c): most slots in use at once. */
unsigned cj_port_mbedtls_pool_peak(void);

#endif
