// sweep_command.hpp - `genesis_launch sweep`: kill E2B sandboxes left behind by
// an earlier run (see docs/cli.md, "Sweeping leftover sandboxes").
#pragma once

namespace genesis::cli {

// argv[0] is "sweep". Returns the process exit code.
int sweep_main(int argc, char** argv);

}  // namespace genesis::cli
