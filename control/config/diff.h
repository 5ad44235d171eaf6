// Config texts as an operator sees them: secrets redacted, and the
// difference between two configs as readable lines. Both work on the YAML
// document (tree.h), so they need no knowledge of each section.
#pragma once

#include <string>
#include <vector>

#include "control/config/tree.h"

namespace nimbus::config {

// Keys whose values are secrets wherever they appear (psk, key, password...).
bool is_secret_key(const std::string& key);

// The YAML text with every secret value replaced by "<redacted>". Comments
// are not kept. On unparsable input returns a one-line note, never the text.
std::string redact(const std::string& yaml_text);
std::string redact(const Tree& doc);  // the document parse() kept (Result::tree)

// Structural difference old -> new, one line per change, secrets redacted:
//   "+ routes[10.51.0.0/16]: {prefix: 10.51.0.0/16, via: 10.1.0.9}"
//   "- routes[10.50.0.0/16]: ..."
//   "~ ports[lan0].mtu: 1500 -> 9000"
// Lists of mappings are matched by their name, id or prefix key. A changed
// secret shows as "~ path: <redacted> (changed)".
std::vector<std::string> diff(const std::string& old_yaml, const std::string& new_yaml);
std::vector<std::string> diff(const Tree& old_doc, const Tree& new_doc);

// The top-level sections that differ.
std::vector<std::string> changed_sections(const std::string& old_yaml, const std::string& new_yaml);

// SHA-256 of the text, hex: the config's version.
std::string hash(const std::string& text);

}  // namespace nimbus::config
