// The command table of the `certmate` binary (docs/cli.md): every command's options are one
// Program_options description that both parses its arguments and prints its --help, so the two
// cannot drift. Exit codes: 0 ok, 1 failure, 2 usage error (cli_usage_error).
#pragma once

#include "app/http_client.hpp"
#include "app/suggest.hpp"

#include <boost/program_options/options_description.hpp>
#include <boost/program_options/variables_map.hpp>

#include <functional>
#include <string>
#include <vector>

namespace certmate::app {

struct cli_invocation {
    boost::program_options::variables_map vm;
    std::vector<std::string> positional;
    std::vector<std::string> overrides; // --section.key VALUE pairs (config_overrides commands only)
};

struct cli_command {
    std::string name;    // "cert create"
    std::string args;    // positional synopsis, "NAME"
    std::string summary; // one line
    std::string details; // paragraphs after the usage line (may be empty)
    std::string example; // one or more example lines
    std::size_t min_positional = 0;
    std::size_t max_positional = 0;
    // Takes --section.key VALUE config overrides (the server's commands).
    bool config_overrides = false;
    std::function<void(boost::program_options::options_description&)> options;
    std::function<int(const cli_invocation&)> run;
};

// The server-side commands (serve, init, ca, token, audit, version), app/cli.cpp.
std::vector<cli_command> server_commands();
// The API client (cert ..., batch ...), app/client_cmds.cpp.
std::vector<cli_command> client_commands();
// inspect, ocsp check, crl check: no API, app/client_pki.cpp.
std::vector<cli_command> pki_commands();

// `completion bash` and `man`: the bash completion script and the certmate(1) page, generated from
// `all` (which must outlive them), app/cli_help.cpp.
std::vector<cli_command> meta_commands(const std::vector<cli_command>& all);

// Runs the command line: help, dispatch, usage errors with suggestions (app/cli_help.cpp).
int run_commands(const std::vector<cli_command>& all, std::vector<std::string> args);

// --json, shared by every command that prints something a script may read.
void add_json_option(boost::program_options::options_description& d);

} // namespace certmate::app
