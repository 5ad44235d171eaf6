// The `firewall:` section (dataplane/acl, control/firewall): read and
// validated here, called from config.cpp's parse() once VRFs and clouds
// are known.
#pragma once

#include "control/config/schema.h"

namespace nimbus::config {

void read_firewall(MapReader& top, Config& c);

}  // namespace nimbus::config
