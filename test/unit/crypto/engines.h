// The engine configurations the crypto tests run on: every IPsec-MB arch path
// this CPU supports, each with both AES-GCM drivers.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "dataplane/crypto/aead.h"

namespace nimbus::crypto::test {

struct EngineConfig {
    Arch arch;
    GcmPath path;
    std::string label() const {
        return std::string(name(arch)) + (path == GcmPath::Direct ? "/gcm-direct" : "/gcm-job");
    }
};

inline std::vector<EngineConfig> engine_configs() {
    std::vector<EngineConfig> v;
    for (Arch a : {Arch::Sse, Arch::Avx, Arch::Avx2, Arch::Avx512})
        if (Engine::arch_supported(a))
            for (GcmPath p : {GcmPath::Direct, GcmPath::Job}) v.push_back({a, p});
    return v;
}

inline std::unique_ptr<Engine> make_engine(const EngineConfig& c) {
    auto e = std::make_unique<Engine>();
    std::string err;
    if (!e->init(c.arch, &err)) FAIL(c.label() << ": " << err);
    REQUIRE(e->arch() == c.arch);
    e->set_gcm_path_for_test(c.path);
    return e;
}

}  // namespace nimbus::crypto::test
