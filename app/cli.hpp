// The `certmate` subcommands (README.md "Commands").
#pragma once

namespace certmate::app {
int run_cli(int argc, char** argv);
}
