// "Did you mean ...?" for mistyped commands, options and config keys (docs/cli.md "Help").
#pragma once

#include <string>
#include <vector>

namespace certmate::app {

// The closest of `candidates` to `word` (edit distance; a prefix of 3+ characters counts as close)
// when it is close enough to be a typo, else "".
std::string closest_match(const std::string& word, const std::vector<std::string>& candidates);

} // namespace certmate::app
