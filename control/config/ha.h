// The `ha:` section (control/ha): read and validated here, called from
// config.cpp's parse() once the ports are known.
#pragma once

#include "control/config/schema.h"

namespace nimbus::config {

void read_ha(MapReader& top, Config& c);

}  // namespace nimbus::config
