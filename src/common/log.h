// Structured logging: one line per event, key=value, to stderr (journald
// picks it up under systemd). Each call site is rate-limited on its own so a
// flood of one event cannot drown the others; suppressed lines are counted
// and reported with the next line that passes. Never log secrets.
// Not for the dataplane workers: they count, they do not log.
#pragma once

#include <atomic>
#include <cstdint>
#include <string_view>

#include <fmt/format.h>

namespace nimbus::log {

enum class Level : int { Debug = 0, Info = 1, Warn = 2, Error = 3 };

void set_level(Level l);
Level level();
bool parse_level(std::string_view s, Level* out);
const char* level_name(Level l);

// Per-call-site token bucket: `burst` lines at once, then `per_sec`.
struct Site {
    double tokens = 50;
    uint64_t last_ns = 0;
    uint64_t suppressed = 0;
};
bool admit(Site& s);
void write(Level l, std::string_view sub, std::string_view text, uint64_t suppressed);

}  // namespace nimbus::log

#define NLOG_AT(lvl, sub, ...)                                                    \
    do {                                                                          \
        if (static_cast<int>(lvl) >= static_cast<int>(::nimbus::log::level())) {  \
            static ::nimbus::log::Site nlog_site_;                                \
            if (::nimbus::log::admit(nlog_site_)) {                               \
                uint64_t nlog_sup_ = nlog_site_.suppressed;                       \
                nlog_site_.suppressed = 0;                                        \
                ::nimbus::log::write(lvl, sub, fmt::format(__VA_ARGS__), nlog_sup_); \
            }                                                                     \
        }                                                                         \
    } while (0)

#define LOG_DEBUG(sub, ...) NLOG_AT(::nimbus::log::Level::Debug, sub, __VA_ARGS__)
#define LOG_INFO(sub, ...) NLOG_AT(::nimbus::log::Level::Info, sub, __VA_ARGS__)
#define LOG_WARN(sub, ...) NLOG_AT(::nimbus::log::Level::Warn, sub, __VA_ARGS__)
#define LOG_ERROR(sub, ...) NLOG_AT(::nimbus::log::Level::Error, sub, __VA_ARGS__)
