#include "app/cli.hpp"

int main(int argc, char** argv) { return certmate::app::run_cli(argc, argv); }
