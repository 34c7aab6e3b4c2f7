/*
 * cojp/config.h - every compile-time limit in one place.
 *
 * Each value may be overridden on the compiler command line
 * (-DCJ_CBOR_MAX_DEPTH=8) or by a header named in CJ_CONFIG_FILE.
 * Sizes are in bytes unless the comment says otherwise.
 */
#ifndef COJP_CONFIG_H
#define COJP_CONFIG_H

#ifdef CJ_CONFIG_FILE
#include CJ_CONFIG_FILE
#endif

/* CBOR: deepest array/map nesting the decoder follows when skipping or
 * validating.  CoJP objects nest three deep; COSE structures four. */
#ifndef CJ_CBOR_MAX_DEPTH
#define CJ_CBOR_MAX_DEPTH 8
#endif

/* CoAP: most options one message may carry for the operations that need
 * a table of them (OSCORE option split and merge).  CoJP requests carry
 * five. */
#ifndef CJ_COAP_MAX_OPTIONS
#define CJ_COAP_MAX_OPTIONS 16
#endif

/* CoAP: longest token accepted, in bytes.  RFC 7252 allows 8; RFC 8974
 * extends it to 65804.  A Join Proxy needs room for its sealed state. */
#ifndef CJ_COAP_MAX_TOKEN
#define CJ_COAP_MAX_TOKEN 64
#endif

/* OSCORE: longest Sender/Recipient ID.  RFC 8613 section 3.3 bounds it by
 * nonce length minus 6, i.e. 7 for AES-CCM-16-64-128. */
#ifndef CJ_OSCORE_MAX_ID
#define CJ_OSCORE_MAX_ID 7
#endif

/* OSCORE: longest ID Context.  CoJP uses the 8-byte pledge identifier;
 * Appendix B.2 re-derivation concatenates two nonces onto it. */
#ifndef CJ_OSCORE_MAX_ID_CONTEXT
#define CJ_OSCORE_MAX_ID_CONTEXT 24
#endif

/* OSCORE: how many sender sequence numbers are reserved by one persistent
 * write (RFC 8613 Appendix B.1.1).  After a reboot at most this many
 * numbers are skipped; between writes this many messages may be sent. */
#ifndef CJ_OSCORE_SSN_PERSIST_STEP
#define CJ_OSCORE_SSN_PERSIST_STEP 32
#endif

/* ---- CoJP objects (RFC 9031 section 8.4) --------------------------------
 * Appended for the CoJP object codec (cojp/cojp.h, src/codec/cojp_obj.c).
 * Each table below is a fixed array inside a caller-allocated struct; a
 * received object with more entries fails with CJ_ERR_NOSPACE. */

/* CoJP: most Link_Layer_Key entries one link-layer key set may carry, in
 * keys.  A 6TiSCH network uses K1 and K2 (section 8.4.3, Table 6); during
 * rekeying (section 8.4.3.2) the old and the new set may both be sent. */
#ifndef CJ_COJP_MAX_KEYS
#define CJ_COJP_MAX_KEYS 4
#endif

/* CoJP: most pledge identifiers one blacklist parameter may carry, in
 * entries (section 8.4.2).  Each entry is a view of a few bytes. */
#ifndef CJ_COJP_MAX_BLACKLIST
#define CJ_COJP_MAX_BLACKLIST 8
#endif

/* CoJP: most Unsupported_Parameter entries one Unsupported_Configuration
 * may carry, in entries (section 8.4.5).  A decoder names one parameter
 * per failed object; a few leave room for a pledge that reports more. */
#ifndef CJ_COJP_MAX_UNSUPPORTED
#define CJ_COJP_MAX_UNSUPPORTED 4
#endif

/* CoJP: COJP_MAX_JOIN_ATTEMPTS of section 8.5 (Table 8), in attempts:
 * how often a pledge retries a join whose Join Response it cannot act on
 * (section 8.3.1). */
#ifndef CJ_COJP_MAX_JOIN_ATTEMPTS
#define CJ_COJP_MAX_JOIN_ATTEMPTS 4
#endif

/* CoJP: COJP_REKEYING_GUARD_TIME of section 8.5 (Table 8), in seconds:
 * how long old link-layer keys stay installed after switching to a new
 * key set (sections 8.4.3.1 and 8.4.3.2). */
#ifndef CJ_COJP_REKEYING_GUARD_TIME
#define CJ_COJP_REKEYING_GUARD_TIME 12
#endif

/* ---- optional features --------------------------------------------------
 * Compile-time switches for pieces a firmware may drop to save code.  The
 * defaults build everything; every test of the project runs with them.
 * Set one to 0 only when the deployment never needs the feature. */

/* Pledge: the recovery exchange of RFC 9031 section 8.3.3 / RFC 8613
 * Appendix B.2 (a JRC that lost its mutable OSCORE state answers with a
 * 4.01 naming nonce R2; the pledge draws R3 and continues with ID Context
 * R2 || R3).  0: such a response is dropped like any other that does not
 * verify in the current context (section 7.3.2), the R2/R3 counters are
 * neither read nor written, and the pledge keeps the pledge-identifier
 * context; a JRC that lost its state must then be re-provisioned. */
#ifndef CJ_PLEDGE_RECOVERY
#define CJ_PLEDGE_RECOVERY 1
#endif

/* OSCORE: key derivation (RFC 8613 section 3.2, HKDF-SHA256 in the
 * crypto port).  0: RFC 9031 Appendix B, the lightweight option for a
 * pledge: a provisioning tool derives the pledge's context beforehand
 * (cj_pledge_okm()) and the pledge is given the result
 * (cj_pledge_cfg_t.okm), never its PSK, so the firmware needs neither
 * HKDF nor SHA-256; contexts are then only set up from given material
 * (cj_oscore_params_t.okm).  Recovery derives new contexts: set
 * CJ_PLEDGE_RECOVERY to 0 as well.  A JRC always derives. */
#ifndef CJ_OSCORE_DERIVE
#define CJ_OSCORE_DERIVE 1
#endif
#if !CJ_OSCORE_DERIVE && CJ_PLEDGE_RECOVERY
#error "CJ_OSCORE_DERIVE=0 needs CJ_PLEDGE_RECOVERY=0: recovery derives contexts"
#endif

/* OSCORE: the Observe option (RFC 8613 section 4.1.3.5; RFC 7641).  1:
 * protect sends a request carrying Observe as FETCH and a notification as
 * 2.05 with the outer Observe value, and unprotect gives a notification
 * the low bytes of its Partial IV as inner Observe value.  0: Observe is
 * handled like any other Class E option (encrypted, never outside) and
 * the outer codes are always POST / 2.04; CoJP itself never observes. */
#ifndef CJ_OSCORE_OBSERVE
#define CJ_OSCORE_OBSERVE 1
#endif

/* Code placement for small targets: CJ_NOINLINE keeps a helper called
 * from several places as one copy, CJ_ALWAYS_INLINE folds a helper with
 * constant arguments into its callers.  Plain C elsewhere. */
#if defined(__GNUC__)
#define CJ_NOINLINE __attribute__((noinline))
#define CJ_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define CJ_NOINLINE
#define CJ_ALWAYS_INLINE inline
#endif

#endif
