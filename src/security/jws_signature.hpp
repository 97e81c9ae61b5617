// verify_jws_signature — checks a JWS signature over "header.payload" with one key, for the
// key's own algorithm only. HMAC results are compared in constant time; ES256 signatures arrive
// as JWS wants them (raw r||s, 64 bytes, RFC 7518 section 3.4) and are converted to the DER form
// OpenSSL verifies.
//
//   bool ok = verify_jws_signature(key, "eyJ...header.eyJ...payload", signature_bytes);
#pragma once

#include <string>
#include <string_view>

#include "security/jwk_set.hpp"

namespace sluice::security {

bool verify_jws_signature(const Jwk& key, std::string_view signing_input,
                          std::string_view signature);

// For tests and tools: the raw r||s form of a DER ECDSA signature (P-256), empty on error.
std::string ecdsa_der_to_raw(std::string_view der);
// The DER form of a raw r||s P-256 signature, empty when it is not 64 bytes.
std::string ecdsa_raw_to_der(std::string_view raw);

}  // namespace sluice::security
