#include "control/ike/messages.h"

namespace nimbus::ike {

const char* exchange_name(uint8_t v) {
    switch (v) {
    case IKE_SA_INIT: return "IKE_SA_INIT";
    case IKE_AUTH: return "IKE_AUTH";
    case CREATE_CHILD_SA: return "CREATE_CHILD_SA";
    case INFORMATIONAL: return "INFORMATIONAL";
    case IKE_SESSION_RESUME: return "IKE_SESSION_RESUME";
    case IKE_INTERMEDIATE: return "IKE_INTERMEDIATE";
    }
    return "exchange-?";
}

const char* payload_name(uint8_t v) {
    switch (v) {
    case PT_NONE: return "none";
    case PT_SA: return "SA";
    case PT_KE: return "KE";
    case PT_IDI: return "IDi";
    case PT_IDR: return "IDr";
    case PT_CERT: return "CERT";
    case PT_CERTREQ: return "CERTREQ";
    case PT_AUTH: return "AUTH";
    case PT_NONCE: return "Nonce";
    case PT_NOTIFY: return "Notify";
    case PT_DELETE: return "Delete";
    case PT_VENDOR: return "VendorID";
    case PT_TSI: return "TSi";
    case PT_TSR: return "TSr";
    case PT_SK: return "SK";
    case PT_CP: return "CP";
    case PT_EAP: return "EAP";
    case PT_GSPM: return "GSPM";
    case PT_SKF: return "SKF";
    }
    return "payload-?";
}

const char* notify_name(uint16_t v) {
    switch (v) {
    case N_UNSUPPORTED_CRITICAL_PAYLOAD: return "UNSUPPORTED_CRITICAL_PAYLOAD";
    case N_INVALID_IKE_SPI: return "INVALID_IKE_SPI";
    case N_INVALID_MAJOR_VERSION: return "INVALID_MAJOR_VERSION";
    case N_INVALID_SYNTAX: return "INVALID_SYNTAX";
    case N_INVALID_MESSAGE_ID: return "INVALID_MESSAGE_ID";
    case N_INVALID_SPI: return "INVALID_SPI";
    case N_NO_PROPOSAL_CHOSEN: return "NO_PROPOSAL_CHOSEN";
    case N_INVALID_KE_PAYLOAD: return "INVALID_KE_PAYLOAD";
    case N_AUTHENTICATION_FAILED: return "AUTHENTICATION_FAILED";
    case N_SINGLE_PAIR_REQUIRED: return "SINGLE_PAIR_REQUIRED";
    case N_NO_ADDITIONAL_SAS: return "NO_ADDITIONAL_SAS";
    case N_INTERNAL_ADDRESS_FAILURE: return "INTERNAL_ADDRESS_FAILURE";
    case N_FAILED_CP_REQUIRED: return "FAILED_CP_REQUIRED";
    case N_TS_UNACCEPTABLE: return "TS_UNACCEPTABLE";
    case N_INVALID_SELECTORS: return "INVALID_SELECTORS";
    case N_UNACCEPTABLE_ADDRESSES: return "UNACCEPTABLE_ADDRESSES";
    case N_UNEXPECTED_NAT_DETECTED: return "UNEXPECTED_NAT_DETECTED";
    case N_USE_ASSIGNED_HOA: return "USE_ASSIGNED_HoA";
    case N_TEMPORARY_FAILURE: return "TEMPORARY_FAILURE";
    case N_CHILD_SA_NOT_FOUND: return "CHILD_SA_NOT_FOUND";
    case N_INITIAL_CONTACT: return "INITIAL_CONTACT";
    case N_SET_WINDOW_SIZE: return "SET_WINDOW_SIZE";
    case N_ADDITIONAL_TS_POSSIBLE: return "ADDITIONAL_TS_POSSIBLE";
    case N_IPCOMP_SUPPORTED: return "IPCOMP_SUPPORTED";
    case N_NAT_DETECTION_SOURCE_IP: return "NAT_DETECTION_SOURCE_IP";
    case N_NAT_DETECTION_DESTINATION_IP: return "NAT_DETECTION_DESTINATION_IP";
    case N_COOKIE: return "COOKIE";
    case N_USE_TRANSPORT_MODE: return "USE_TRANSPORT_MODE";
    case N_HTTP_CERT_LOOKUP_SUPPORTED: return "HTTP_CERT_LOOKUP_SUPPORTED";
    case N_REKEY_SA: return "REKEY_SA";
    case N_ESP_TFC_PADDING_NOT_SUPPORTED: return "ESP_TFC_PADDING_NOT_SUPPORTED";
    case N_NON_FIRST_FRAGMENTS_ALSO: return "NON_FIRST_FRAGMENTS_ALSO";
    case N_MOBIKE_SUPPORTED: return "MOBIKE_SUPPORTED";
    case N_ADDITIONAL_IP4_ADDRESS: return "ADDITIONAL_IP4_ADDRESS";
    case N_ADDITIONAL_IP6_ADDRESS: return "ADDITIONAL_IP6_ADDRESS";
    case N_NO_ADDITIONAL_ADDRESSES: return "NO_ADDITIONAL_ADDRESSES";
    case N_UPDATE_SA_ADDRESSES: return "UPDATE_SA_ADDRESSES";
    case N_COOKIE2: return "COOKIE2";
    case N_NO_NATS_ALLOWED: return "NO_NATS_ALLOWED";
    case N_AUTH_LIFETIME: return "AUTH_LIFETIME";
    case N_MULTIPLE_AUTH_SUPPORTED: return "MULTIPLE_AUTH_SUPPORTED";
    case N_ANOTHER_AUTH_FOLLOWS: return "ANOTHER_AUTH_FOLLOWS";
    case N_REDIRECT_SUPPORTED: return "REDIRECT_SUPPORTED";
    case N_REDIRECT: return "REDIRECT";
    case N_REDIRECTED_FROM: return "REDIRECTED_FROM";
    case N_EAP_ONLY_AUTHENTICATION: return "EAP_ONLY_AUTHENTICATION";
    case N_CHILDLESS_IKEV2_SUPPORTED: return "CHILDLESS_IKEV2_SUPPORTED";
    case N_QUICK_CRASH_DETECTION: return "QUICK_CRASH_DETECTION";
    case N_IKEV2_MESSAGE_ID_SYNC_SUPPORTED: return "IKEV2_MESSAGE_ID_SYNC_SUPPORTED";
    case N_IPSEC_REPLAY_COUNTER_SYNC_SUPPORTED: return "IPSEC_REPLAY_COUNTER_SYNC_SUPPORTED";
    case N_IKEV2_MESSAGE_ID_SYNC: return "IKEV2_MESSAGE_ID_SYNC";
    case N_IPSEC_REPLAY_COUNTER_SYNC: return "IPSEC_REPLAY_COUNTER_SYNC";
    case N_IKEV2_FRAGMENTATION_SUPPORTED: return "IKEV2_FRAGMENTATION_SUPPORTED";
    case N_SIGNATURE_HASH_ALGORITHMS: return "SIGNATURE_HASH_ALGORITHMS";
    case N_PUZZLE: return "PUZZLE";
    case N_USE_PPK: return "USE_PPK";
    case N_INTERMEDIATE_EXCHANGE_SUPPORTED: return "INTERMEDIATE_EXCHANGE_SUPPORTED";
    }
    return notify_is_error(v) ? "error-?" : "status-?";
}

const char* transform_type_name(uint8_t v) {
    switch (v) {
    case TT_ENCR: return "ENCR";
    case TT_PRF: return "PRF";
    case TT_INTEG: return "INTEG";
    case TT_DH: return "KE";
    case TT_ESN: return "ESN";
    }
    return "transform-?";
}

const char* auth_method_name(uint8_t v) {
    switch (v) {
    case AUTH_RSA_SIG: return "rsa-sig";
    case AUTH_PSK: return "psk";
    case AUTH_DSS_SIG: return "dss-sig";
    case AUTH_ECDSA_SHA256_P256: return "ecdsa-sha256-p256";
    case AUTH_ECDSA_SHA384_P384: return "ecdsa-sha384-p384";
    case AUTH_ECDSA_SHA512_P521: return "ecdsa-sha512-p521";
    case AUTH_GSPM: return "gspm";
    case AUTH_NULL: return "null";
    case AUTH_DIGITAL_SIGNATURE: return "digital-signature";
    }
    return "auth-?";
}

}  // namespace nimbus::ike
