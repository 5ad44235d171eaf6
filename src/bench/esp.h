// nimbus-bench esp: ESP encrypt/decrypt through the worker's own functions
// (src/bench/esp.cpp); nimbus-bench aead: the AEAD alone on the same engine
// (src/bench/aead.cpp). main.cpp dispatches `nimbus-bench esp|aead ...` here.
#pragma once

namespace nimbus::bench {

// argv[0] is "esp"; returns the process exit code.
int esp_main(int argc, char** argv);
// argv[0] is "aead"; returns the process exit code.
int aead_main(int argc, char** argv);

}  // namespace nimbus::bench
