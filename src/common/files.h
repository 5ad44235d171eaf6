// Small file helpers for the control plane.
#pragma once

#include <string>

namespace nimbus {

bool read_file(const std::string& path, std::string* out);
// Writes to PATH.tmp, fsyncs, renames over PATH: readers see old or new, never half.
bool write_file_atomic(const std::string& path, const std::string& data, std::string* err);
// "2026-11-22T05:12:19.123Z"
std::string iso_time();

}  // namespace nimbus
