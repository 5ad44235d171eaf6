// ESP AEAD through Intel IPsec-MB, called directly from each worker (no DPDK
// cryptodev): AES-GCM-128/256 (RFC 4106) and ChaCha20-Poly1305 (RFC 7634),
// 8-byte explicit IV, 16-byte ICV, encryption and decryption in place.
//
// - SaKey: one per SA, expanded once when the SA is installed (AES round keys
//   and GHASH key powers for GCM, the raw key for ChaCha20), plus the 4-byte
//   salt. Wiped on destruction. Exactly 1024 bytes.
// - Engine: one per lcore, owning one IMB_MGR. Burst functions take an array
//   of Op and report per-op success. No allocation, no exceptions, no logging
//   on the per-packet path.
// - self_test(): known answers on the code path the engine actually selected;
//   the daemon refuses to start when it fails.
//
// IV (nonce) uniqueness is the CALLER's job: the explicit IV must never repeat
// under one key (RFC 4106 §3.1, RFC 7634 §2). nimbus uses the SA's 64-bit
// sequence number (ESN, or zero-extended 32-bit) as IV, which the ESP layer
// never reuses because it rekeys before the counter wraps (RFC 4303 §3.3.3).
// The 12-byte nonce handed to the cipher is salt || IV (RFC 4106 §4,
// RFC 7634 §2).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

struct IMB_MGR;  // intel-ipsec-mb.h stays out of this header (it defines many macros)

namespace nimbus::crypto {

enum class Aead : uint8_t { AesGcm128, AesGcm256, Chacha20Poly1305 };

inline constexpr size_t kSaltLen = 4;    // RFC 4106 §8.1, RFC 7634 §2
inline constexpr size_t kIvLen = 8;      // explicit IV carried in each ESP packet
inline constexpr size_t kNonceLen = 12;  // salt || IV
inline constexpr size_t kTagLen = 16;    // full 128-bit ICV only
inline constexpr size_t kAadLen = 8;     // SPI || seq            (RFC 4106 §5, RFC 7634 §2.1)
inline constexpr size_t kAadLenEsn = 12; // SPI || seq-hi || seq-lo (ESN)

// Cipher key length in bytes, without the salt.
constexpr size_t key_len(Aead a) { return a == Aead::AesGcm128 ? 16 : 32; }
// Keying material taken from the KEYMAT stream per SA: key || salt
// (RFC 4106 §8.1: 20 or 36 bytes; RFC 7634 §2: 36 bytes).
constexpr size_t keymat_len(Aead a) { return key_len(a) + kSaltLen; }
std::string_view name(Aead a);

// IPsec-MB architecture paths. Auto picks the best for this CPU
// (init_mb_mgr_auto); the others force one, for tests and benchmarks.
enum class Arch : uint8_t { Auto, Sse, Avx, Avx2, Avx512 };
std::string_view name(Arch a);

// How AES-GCM is driven. Direct (the single-call IMB_AES*_GCM_ENC/DEC) is the
// default: measured faster than the job API on IPsec-MB 1.3 for every packet
// size we care about (see test/unit/crypto/bench_test.cpp). The job path is
// kept so the benchmark can compare and the known answers cover both.
enum class GcmPath : uint8_t { Direct, Job };

// Per-SA key. Layout (1024 bytes, 64-byte aligned): the first 1008 bytes are
// IPsec-MB 1.3's struct gcm_key_data (expanded AES keys + GHASH key powers),
// or the raw 32-byte ChaCha20 key; the last 16 hold the salt and parameters.
// Non-copyable; a move copies and wipes the source.
class alignas(64) SaKey {
public:
    SaKey() noexcept;
    ~SaKey();
    SaKey(const SaKey&) = delete;
    SaKey& operator=(const SaKey&) = delete;
    SaKey(SaKey&& o) noexcept;
    SaKey& operator=(SaKey&& o) noexcept;

    bool valid() const { return valid_ != 0; }
    Aead aead() const { return aead_; }
    Arch arch() const { return Arch(arch_); }  // the engine arch it was expanded for
    std::span<const uint8_t, kSaltLen> salt() const { return std::span<const uint8_t, kSaltLen>(salt_, kSaltLen); }
    void clear() noexcept;  // wipe; valid() becomes false
    // Prefetches the whole key: AES-GCM reads round keys, GHASH powers (the
    // VAES path up to 48 of them) and the last line with salt and
    // parameters; ChaCha20-Poly1305 only the first and the last line, but
    // telling them apart would cost a read of the cold key. With 100,000
    // tunnels the key is the largest cold read of a packet; prefetched for a
    // whole burst before the first operation, the misses overlap
    // (dataplane/esp).
    void prefetch() const noexcept {
        const char* p = reinterpret_cast<const char*>(this);
        for (size_t o = 0; o < sizeof(*this); o += 64) __builtin_prefetch(p + o);
    }

    static constexpr size_t kExpandedLen = 1008;

private:
    friend class Engine;
    uint8_t expanded_[kExpandedLen];
    uint8_t salt_[kSaltLen];
    Aead aead_ = Aead::AesGcm128;
    uint8_t arch_ = 0;
    uint8_t valid_ = 0;
    uint8_t pad_[9] = {};
};
static_assert(sizeof(SaKey) == 1024, "SaKey must stay one kilobyte");

// One AEAD operation, in place. The pointers must stay valid until the burst
// call returns. `ok` is written by the engine.
struct Op {
    const SaKey* key = nullptr;
    const uint8_t* iv = nullptr;  // kIvLen bytes: the ESP packet's explicit IV
    const uint8_t* aad = nullptr; // kAadLen or kAadLenEsn bytes
    uint8_t* data = nullptr;      // len bytes: plaintext <-> ciphertext, in place
    uint8_t* tag = nullptr;       // kTagLen bytes: written by encrypt, checked by decrypt
    uint32_t len = 0;
    uint8_t aad_len = kAadLen;
    bool ok = false;              // out: encrypted / authenticated
};

class Engine {
public:
    Engine() = default;
    ~Engine();
    Engine(const Engine&) = delete;
    Engine& operator=(const Engine&) = delete;

    // Allocates and initialises the IMB_MGR. Call on (or for) the lcore that
    // will use it. Fails when IPsec-MB cannot run the requested arch here.
    bool init(Arch want = Arch::Auto, std::string* err = nullptr);
    bool ready() const { return mgr_ != nullptr; }
    Arch arch() const { return arch_; }
    // e.g. "AVX512 (VAES, VPCLMULQDQ, GFNI) IPsec-MB 1.3.0"
    std::string describe() const;
    // True if this CPU can run `a` (IPsec-MB's feature detection).
    static bool arch_supported(Arch a);

    // Expand keymat (key || salt, keymat_len(aead) bytes) into `out`.
    // Control plane, once per SA. The key is bound to this engine's arch: use
    // an engine initialised like the workers' (same Arch request, same CPU).
    bool expand_key(SaKey& out, Aead aead, std::span<const uint8_t> keymat,
                    std::string* err = nullptr) const;
    bool can_use(const SaKey& k) const { return k.valid() && k.arch() == arch_; }

    // Bursts. encrypt writes ciphertext and tag; decrypt verifies the tag in
    // constant time and writes plaintext. Both return the number of ops with
    // ok == true. After a failed decrypt the data bytes are unspecified (the
    // buffer has been decrypted in place); the caller drops the packet.
    uint32_t encrypt(std::span<Op> ops) noexcept;
    uint32_t decrypt(std::span<Op> ops) noexcept;

    void set_gcm_path_for_test(GcmPath p) { gcm_path_ = p; }
    GcmPath gcm_path() const { return gcm_path_; }

private:
    template <bool Encrypt>
    uint32_t run(std::span<Op> ops) noexcept;
    template <bool Encrypt>
    bool gcm_direct(const Op& op) noexcept;
    template <bool Encrypt>
    uint32_t submit_job(Op& op) noexcept;
    template <bool Encrypt>
    uint32_t complete(void* job) noexcept;

    IMB_MGR* mgr_ = nullptr;
    Arch arch_ = Arch::Auto;
    GcmPath gcm_path_ = GcmPath::Direct;
    // Scratch per IPsec-MB job slot (IMB_MAX_JOBS = 256): the nonce and, for
    // decryption, the computed tag must outlive submit until completion.
    struct alignas(32) Slot {
        uint8_t nonce[16];
        uint8_t tag[16];
    };
    static constexpr size_t kSlots = 256;
    Slot slots_[kSlots];
};

// Known-answer tests (RFC 7634 Appendix A, draft-mcgrew-gcm-test-01) through
// `engine` as initialised: encrypt, decrypt, and a tampered tag that must be
// rejected, for every cipher, with 8- and 12-byte AAD. On failure, *err says
// which vector and why.
bool self_test(Engine& engine, std::string* err);

// Test-only: flip one bit of the expected ciphertext of self-test vector
// `index` (-1 = off), to prove that self_test() can fail.
void corrupt_self_test_vector_for_test(int index);
size_t self_test_vector_count();

}  // namespace nimbus::crypto
