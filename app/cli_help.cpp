// Help, dispatch and usage errors for the command table (app/cli_commands.hpp, docs/cli.md).
#include "app/cli_commands.hpp"
#include "app/client_common.hpp"

#include <boost/program_options/parsers.hpp>
#include <boost/program_options/value_semantic.hpp>

#include <algorithm>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

namespace certmate::app {

namespace po = boost::program_options;

namespace {

constexpr const char* exit_codes_text =
    "exit codes: 0 ok, 1 failure (the server refused, a check found a revoked certificate, a file could not be\n"
    "read), 2 usage or configuration error (a bad option or config key, a start-up check of the server)\n";

// Levenshtein distance, for "did you mean".
std::size_t edit_distance(const std::string& a, const std::string& b) {
    std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        cur[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j)
            cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
        std::swap(prev, cur);
    }
    return prev[b.size()];
}

// The command's full option description: its own options, then --help.
po::options_description describe(const cli_command& c) {
    po::options_description d("options");
    if (c.options) c.options(d);
    po::options_description h("help");
    h.add_options()("help,h", "print this help and exit");
    d.add(h);
    return d;
}

std::vector<std::string> long_names(const po::options_description& d) {
    std::vector<std::string> out;
    for (const auto& o : d.options()) out.push_back(o->long_name());
    return out;
}

void print_command_help(const cli_command& c, std::ostream& os) {
    os << "usage: certmate " << c.name << (c.args.empty() ? "" : " " + c.args) << " [options]\n\n" << c.summary << "\n";
    if (!c.details.empty()) os << "\n" << c.details << (c.details.back() == '\n' ? "" : "\n");
    os << "\n" << describe(c);
    if (c.config_overrides)
        os << "  --SECTION.KEY VALUE                   any config key (certmate.conf.example); overrides the file\n";
    if (!c.example.empty()) os << "\nexample:\n" << c.example << (c.example.back() == '\n' ? "" : "\n");
    os << "\n" << exit_codes_text;
}

void print_overview(const std::vector<cli_command>& all, std::ostream& os) {
    os << "usage: certmate COMMAND [options]\n"
          "       certmate help [COMMAND]      certmate COMMAND --help\n\n"
          "A private certificate authority: the server, and a client for its API.\n\ncommands:\n";
    std::size_t width = 0;
    for (const auto& c : all) width = std::max(width, c.name.size() + (c.args.empty() ? 0 : c.args.size() + 1));
    for (const auto& c : all) {
        std::string head = c.name + (c.args.empty() ? "" : " " + c.args);
        os << "  " << head << std::string(width + 2 - head.size(), ' ') << c.summary << "\n";
    }
    os << "\nWith no command, or an option first, certmate runs `serve`.\n"
          "API commands talk to --url (default $CERTMATE_URL, else http://127.0.0.1:8080) with the token in\n"
          "--token-file (default $CERTMATE_TOKEN_FILE) or a client certificate (--cert/--key, on https).\n"
          "Server commands take every config key as --section.key VALUE (see certmate.conf.example).\n"
          "Add --json to get JSON on stdout. Details: docs/cli.md.\n\n"
       << exit_codes_text;
}

// The command `args` names (longest match of its leading words), and how many words it took.
const cli_command* find_command(const std::vector<cli_command>& all, const std::vector<std::string>& args,
                                std::size_t& words) {
    const cli_command* best = nullptr;
    words = 0;
    for (const auto& c : all) {
        std::istringstream in(c.name);
        std::vector<std::string> parts;
        for (std::string w; in >> w;) parts.push_back(w);
        if (parts.size() > args.size() || parts.size() <= words) continue;
        if (std::equal(parts.begin(), parts.end(), args.begin())) {
            best = &c;
            words = parts.size();
        }
    }
    return best;
}

// The commands of a group ("cert"), one line each; false when `group` is none.
bool print_group(const std::vector<cli_command>& all, const std::string& group, std::ostream& os) {
    std::vector<const cli_command*> members;
    for (const auto& c : all)
        if (c.name.rfind(group + " ", 0) == 0) members.push_back(&c);
    if (members.empty()) return false;
    os << "usage: certmate " << group << " COMMAND [options]\n\ncommands:\n";
    std::size_t width = 0;
    for (const auto* c : members) width = std::max(width, c->name.size() + (c->args.empty() ? 0 : c->args.size() + 1));
    for (const auto* c : members) {
        const std::string head = c->name + (c->args.empty() ? "" : " " + c->args);
        os << "  " << head << std::string(width + 2 - head.size(), ' ') << c->summary << "\n";
    }
    os << "\n`certmate " << group << " COMMAND --help` prints a command's options.\n";
    return true;
}

// "unknown command" with the closest command name, or the group's subcommands.
[[noreturn]] void unknown_command(const std::vector<cli_command>& all, const std::vector<std::string>& args) {
    std::vector<std::string> group_subs;
    for (const auto& c : all)
        if (c.name.rfind(args[0] + " ", 0) == 0) group_subs.push_back(c.name.substr(args[0].size() + 1));
    if (!group_subs.empty()) {
        std::string msg = args.size() > 1 ? "unknown command '" + args[0] + " " + args[1] + "'"
                                          : "'" + args[0] + "' needs a subcommand";
        if (args.size() > 1) {
            auto near = closest_match(args[1], group_subs);
            if (!near.empty()) msg += " (did you mean '" + args[0] + " " + near + "'?)";
        }
        msg += "; one of:";
        for (const auto& s : group_subs) msg += " " + s;
        throw cli_usage_error(msg);
    }
    std::vector<std::string> names;
    for (const auto& c : all) names.push_back(c.name.substr(0, c.name.find(' ')));
    auto near = closest_match(args[0], names);
    throw cli_usage_error("unknown command '" + args[0] + "'" +
                          (near.empty() ? "" : " (did you mean '" + near + "'?)") +
                          "; `certmate help` lists the commands");
}

[[noreturn]] void unknown_option(const cli_command& c, const po::options_description& d, const std::string& token) {
    std::string name = token.substr(0, token.find('='));
    std::string bare = name;
    bare.erase(0, bare.find_first_not_of('-'));
    auto near = closest_match(bare, long_names(d));
    throw cli_usage_error("unknown option " + name + " for `certmate " + c.name + "`" +
                          (near.empty() ? "" : " (did you mean --" + near + "?)"));
}

cli_invocation parse_command(const cli_command& c, const std::vector<std::string>& args) {
    auto d = describe(c);
    cli_invocation inv;
    po::parsed_options parsed = po::command_line_parser(args).options(d).allow_unregistered().run();
    po::store(parsed, inv.vm);
    po::notify(inv.vm);
    auto rest = po::collect_unrecognized(parsed.options, po::include_positional);
    for (std::size_t i = 0; i < rest.size(); ++i) {
        const auto& a = rest[i];
        if (a.size() > 1 && a[0] == '-') {
            if (!c.config_overrides || a.rfind("--", 0) != 0 || a.find('.') == std::string::npos)
                unknown_option(c, d, a);
            auto eq = a.find('=');
            if (eq != std::string::npos) {
                inv.overrides.push_back(a.substr(0, eq));
                inv.overrides.push_back(a.substr(eq + 1));
            } else {
                if (i + 1 >= rest.size()) throw cli_usage_error(a + " needs a value");
                inv.overrides.push_back(a);
                inv.overrides.push_back(rest[++i]);
            }
        } else {
            inv.positional.push_back(a);
        }
    }
    if (inv.positional.size() < c.min_positional)
        throw cli_usage_error("`certmate " + c.name + "` needs " + (c.args.empty() ? "more arguments" : c.args));
    if (inv.positional.size() > c.max_positional)
        throw cli_usage_error("unexpected argument '" + inv.positional[c.max_positional] + "' for `certmate " + c.name +
                              "`");
    return inv;
}

} // namespace

std::string closest_match(const std::string& word, const std::vector<std::string>& candidates) {
    std::string best;
    std::size_t best_d = std::string::npos;
    for (const auto& c : candidates) {
        auto d = edit_distance(word, c);
        // a prefix counts as close ("--out" for "--out-dir")
        if (c.rfind(word, 0) == 0 && word.size() >= 3) d = std::min<std::size_t>(d, 1);
        if (d < best_d) {
            best_d = d;
            best = c;
        }
    }
    const std::size_t limit = std::max<std::size_t>(2, word.size() / 3);
    return best_d <= limit ? best : std::string();
}

void add_json_option(po::options_description& d) {
    po::options_description o("output");
    o.add_options()("json", po::bool_switch(), "print JSON on stdout instead of text for people");
    d.add(o);
}

namespace {

std::vector<std::string> words_of(const std::string& s) {
    std::istringstream in(s);
    std::vector<std::string> out;
    for (std::string w; in >> w;) out.push_back(w);
    return out;
}

// A bash completion function: command words, then each command's options (files for other words).
void print_bash_completion(const std::vector<cli_command>& all, std::ostream& os) {
    std::vector<std::string> top{"help"};
    std::map<std::string, std::vector<std::string>> groups;
    for (const auto& c : all) {
        auto w = words_of(c.name);
        if (std::find(top.begin(), top.end(), w[0]) == top.end()) top.push_back(w[0]);
        if (w.size() > 1) groups[w[0]].push_back(w[1]);
    }
    auto join = [](const std::vector<std::string>& v) {
        std::string s;
        for (const auto& x : v) s += (s.empty() ? "" : " ") + x;
        return s;
    };
    os << "# bash completion for certmate, generated by `certmate completion bash` from its command table\n"
          "_certmate() {\n"
          "    local cur=\"${COMP_WORDS[COMP_CWORD]}\" words=\" ${COMP_WORDS[*]:1:COMP_CWORD-1} \" list=\"\" cmd=\"\"\n"
          "    case \"$words\" in\n"
          "        \"  \" | \" help \") list=\""
       << join(top) << "\" ;;\n";
    for (const auto& [g, subs] : groups)
        os << "        \" " << g << " \" | \" help " << g << " \") list=\"" << join(subs) << "\" ;;\n";
    for (const auto& c : all) {
        std::vector<std::string> opts;
        const auto d = describe(c);
        for (const auto& o : d.options()) opts.push_back("--" + o->long_name());
        os << "        \" " << c.name << " \"*) cmd=1; list=\"" << join(opts) << "\" ;;\n";
    }
    os << "    esac\n"
          "    if [[ -n $cmd && $cur != -* ]]; then\n"
          "        COMPREPLY=( $(compgen -f -- \"$cur\") )\n"
          "    else\n"
          "        COMPREPLY=( $(compgen -W \"$list\" -- \"$cur\") )\n"
          "    fi\n"
          "}\n"
          "complete -o filenames -F _certmate certmate\n";
}

// Text for roff: backslashes and hyphens escaped, no line starting with a control character.
std::string roff(const std::string& s) {
    std::string out;
    bool line_start = true;
    for (char c : s) {
        if (line_start && (c == '.' || c == '\'')) out += "\\&";
        if (c == '\\')
            out += "\\e";
        else if (c == '-')
            out += "\\-";
        else
            out += c;
        line_start = c == '\n';
    }
    return out;
}

// The certmate(1) manual page, in man(7) roff.
void print_man_page(const std::vector<cli_command>& all, std::ostream& os) {
    os << ".TH CERTMATE 1 \"\" \"certmate " << CERTMATE_VERSION << "\" \"User Commands\"\n"
       << ".SH NAME\ncertmate \\- private certificate authority: the server, and a client for its API\n"
       << ".SH SYNOPSIS\n.B certmate\n.I COMMAND\n.RI [ options ]\n.br\n.B certmate help\n.RI [ COMMAND ]\n"
       << ".SH DESCRIPTION\n"
       << roff("certmate runs a private certificate authority (serve), sets it up (init, ca, token), checks its "
               "audit log, and talks to a running server's API (cert, batch). inspect, ocsp check and crl check "
               "need no server. Every command prints its options with `certmate COMMAND --help`; this page is "
               "generated from the same descriptions.")
       << "\n.SH COMMANDS\n";
    for (const auto& c : all) {
        os << ".SS \"" << roff("certmate " + c.name + (c.args.empty() ? "" : " " + c.args)) << "\"\n"
           << roff(c.summary) << "\n";
        if (!c.details.empty()) os << ".PP\n" << roff(c.details) << (c.details.back() == '\n' ? "" : "\n");
        const auto d = describe(c);
        for (const auto& o : d.options()) {
            os << ".TP\n.B " << roff(o->format_name());
            const auto param = o->format_parameter();
            if (!param.empty()) os << " " << roff(param);
            os << "\n" << roff(o->description()) << "\n";
        }
        if (c.config_overrides) os << ".TP\n.B \\-\\-SECTION.KEY VALUE\nany config key; overrides the file\n";
        if (!c.example.empty()) os << ".PP\nExample:\n.nf\n" << roff(c.example) << "\n.fi\n";
    }
    os << ".SH ENVIRONMENT\n"
          ".TP\n.B CERTMATE_URL\nthe server for API commands (default http://127.0.0.1:8080)\n"
          ".TP\n.B CERTMATE_TOKEN_FILE\nthe file holding the bearer token for API commands\n"
          ".TP\n.B CERTMATE_CA_PASSPHRASE\nthe CA key's passphrase (server commands)\n"
          ".TP\n.B NO_COLOR\nno colour even on a terminal\n"
          ".SH EXIT STATUS\n"
          ".TP\n.B 0\nok (ocsp check, crl check: the certificate is good)\n"
          ".TP\n.B 1\nfailure: the server refused, a check found the certificate revoked or could not decide, a "
          "file could not be read\n"
          ".TP\n.B 2\nusage or configuration error: an unknown option (with the closest one suggested), a bad "
          "value, a config or start\\-up check\n"
          ".SH SEE ALSO\n.BR openssl (1)\n";
}

} // namespace

std::vector<cli_command> meta_commands(const std::vector<cli_command>& all) {
    std::vector<cli_command> out;
    out.push_back({"completion bash",
                   "",
                   "print the bash completion script",
                   "`cmake --install` puts it in share/bash-completion/completions/certmate.",
                   "  certmate completion bash > ~/.local/share/bash-completion/completions/certmate",
                   0,
                   0,
                   false,
                   {},
                   [&all](const cli_invocation&) {
                       print_bash_completion(all, std::cout);
                       return 0;
                   }});
    out.push_back({"man",
                   "",
                   "print the certmate(1) manual page (roff)",
                   "`cmake --install` puts it in share/man/man1/certmate.1.",
                   "  certmate man | man -l -",
                   0,
                   0,
                   false,
                   {},
                   [&all](const cli_invocation&) {
                       print_man_page(all, std::cout);
                       return 0;
                   }});
    return out;
}

int run_commands(const std::vector<cli_command>& all, std::vector<std::string> args) {
    const cli_command* cmd = nullptr;
    try {
        if (!args.empty() && (args[0] == "help" || args[0] == "--help" || args[0] == "-h")) {
            std::vector<std::string> topic(args.begin() + 1, args.end());
            if (topic.empty()) {
                print_overview(all, std::cout);
                return 0;
            }
            if (topic.size() == 1 && print_group(all, topic[0], std::cout)) return 0;
            std::size_t words = 0;
            const auto* c = find_command(all, topic, words);
            if (!c || words != topic.size()) unknown_command(all, topic);
            print_command_help(*c, std::cout);
            return 0;
        }
        if (!args.empty() && args[0] == "--version") args[0] = "version";
        if (args.empty() || args[0].rfind("-", 0) == 0) args.insert(args.begin(), "serve");
        std::size_t words = 0;
        cmd = find_command(all, args, words);
        // `certmate cert --help`: the group's commands
        if (!cmd && args.size() == 2 && (args[1] == "--help" || args[1] == "-h") &&
            print_group(all, args[0], std::cout))
            return 0;
        if (!cmd) unknown_command(all, args);
        std::vector<std::string> rest(args.begin() + static_cast<std::ptrdiff_t>(words), args.end());
        if (std::find_if(rest.begin(), rest.end(), [](const std::string& a) { return a == "--help" || a == "-h"; }) !=
            rest.end()) {
            print_command_help(*cmd, std::cout);
            return 0;
        }
        return cmd->run(parse_command(*cmd, rest));
    } catch (const cli_usage_error& e) {
        std::cerr << "certmate: " << e.what() << "\n";
        std::cerr << (cmd ? "see `certmate " + cmd->name + " --help`\n" : std::string());
        return 2;
    } catch (const po::error& e) {
        std::cerr << "certmate: " << e.what() << "\n";
        std::cerr << (cmd ? "see `certmate " + cmd->name + " --help`\n" : std::string());
        return 2;
    } catch (const cli_failure& e) {
        std::cerr << "certmate: " << terminal_safe(e.what()) << "\n";
        return 1;
    }
}

} // namespace certmate::app
