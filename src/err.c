#include "cojp/err.h"

const char *cj_strerror(int err)
{
    switch (err) {
    case CJ_OK: return "ok";
    case CJ_ERR_TRUNCATED: return "input truncated";
    case CJ_ERR_MALFORMED: return "malformed input";
    case CJ_ERR_NOSPACE: return "no space";
    case CJ_ERR_TYPE: return "wrong type";
    case CJ_ERR_NONCANONICAL: return "non-canonical encoding";
    case CJ_ERR_UNSUPPORTED: return "unsupported";
    case CJ_ERR_DEPTH: return "nesting too deep";
    case CJ_ERR_TRAILING: return "trailing bytes";
    case CJ_ERR_RANGE: return "value out of range";
    case CJ_ERR_INVALID: return "invalid argument";
    case CJ_ERR_COAP_VERSION: return "bad CoAP version";
    case CJ_ERR_COAP_TOKEN: return "bad CoAP token length";
    case CJ_ERR_COAP_OPTION: return "bad CoAP option";
    case CJ_ERR_COAP_PAYLOAD: return "empty CoAP payload after marker";
    case CJ_ERR_COAP_EMPTY: return "CoAP Empty message with content";
    case CJ_ERR_COAP_CRITICAL: return "unrecognised critical CoAP option";
    case CJ_ERR_AUTH: return "authentication failed";
    case CJ_ERR_REPLAY: return "replayed message";
    case CJ_ERR_UNKNOWN_CONTEXT: return "unknown security context";
    case CJ_ERR_OSCORE_DECODE: return "OSCORE decode error";
    case CJ_ERR_SEQ_EXHAUSTED: return "sequence numbers exhausted";
    case CJ_ERR_CRYPTO: return "crypto backend failure";
    case CJ_ERR_PSK_REUSED: return "PSK already held by another pledge";
    case CJ_ERR_STORAGE: return "persistent storage failure";
    case CJ_ERR_STATE: return "not allowed in this state";
    case CJ_ERR_NOTFOUND: return "not found";
    case CJ_ERR_BUSY: return "busy";
    }
    return "unknown error";
}
