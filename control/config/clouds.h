// Readers for the IKE sections of the config: `clouds:` (per cloud PKI or
// PSK, proposals, advertised prefixes, DPD, rekey times and sites), `ike:`
// (sockets and DoS tunables) and `initiate:` (the edge role's outgoing
// tunnels). Called from parse() in config.cpp.
#pragma once

#include "control/config/schema.h"

namespace nimbus::config {

void read_clouds(MapReader& top, Config& c);
void read_ike(MapReader& top, Config& c);
void read_initiate(MapReader& top, Config& c);

// DSCP by name (ef, af11..af43, cs0..cs7, be, va) or number 0..63; -1 if
// neither.
int dscp_value(const std::string& s);

}  // namespace nimbus::config
