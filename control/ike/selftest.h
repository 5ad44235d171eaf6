// Known-answer self-test of every IKE crypto path (WireGuard style: run at
// start-up, refuse to start on a mismatch). Published vectors only:
//   SK / ChaCha20-Poly1305   RFC 7634 Appendix B (whole message, byte-exact)
//   SK / AES-GCM-16 128, 256 McGrew-Viega test cases 4 and 16 in RFC 4106
//                            key|salt form (as used by RFC 5282)
//   PRF, prf+, rekey         NIST CAVS IKEv2 (SP 800-135), HMAC-SHA-256
//   X25519                   RFC 7748 §6.1
//   ECP-256                  RFC 5114 §A.6
//   ECDSA P-256/SHA-256      RFC 4754 §8.1 (AUTH method 9)
#pragma once

#include <string>

namespace nimbus::ike {

// True if every vector matches; otherwise false with the failing check's
// name in *failed.
bool self_test(std::string* failed);

}  // namespace nimbus::ike
