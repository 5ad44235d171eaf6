// nimbus-bench esp: ESP encrypt/decrypt through the worker's own functions
// (src/bench/esp.cpp). main.cpp dispatches `nimbus-bench esp ...` here.
#pragma once

namespace nimbus::bench {

// argv[0] is "esp"; returns the process exit code.
int esp_main(int argc, char** argv);

}  // namespace nimbus::bench
