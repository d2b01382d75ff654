// The `certmate` subcommands (DESIGN.md 1).
#pragma once

namespace certmate::app {
int run_cli(int argc, char** argv);
}
