#include "app/cli.hpp"

#include <iostream>

namespace certmate::app {
int run_cli(int, char**) {
    std::cout << "certmate " << CERTMATE_VERSION << "\n";
    return 0;
}
} // namespace certmate::app
