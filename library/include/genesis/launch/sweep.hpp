// sweep.hpp - finding and killing E2B sandboxes left behind by an earlier
// process (one that was killed with SIGKILL, lost power, ...).
//
// Every sandbox the E2B backend creates is tagged genesis_run=<run tag> and
// genesis_job=<job id>. A sweep lists the sandboxes of the API key's team that
// carry such tags and kills them (or, on a dry run, only lists them).
#pragma once

#include "genesis/launch/config.hpp"
#include "genesis/launch/error.hpp"

#include <cstddef>
#include <map>
#include <string>
#include <vector>

namespace genesis::launch {

struct sweep_options {
    // Only sandboxes tagged genesis_run=<run_tag>. Empty = every sandbox that has a
    // genesis_run tag at all ("all of mine": every sandbox a genesis-launch process
    // started with this API key; sandboxes made by anything else are never touched).
    std::string run_tag;
    // List what would be killed, kill nothing.
    bool dry_run = false;
};

struct swept_sandbox {
    std::string id;
    std::string template_id;
    std::string run_tag;  // its genesis_run tag
    std::string job_id;   // its genesis_job tag ("" if none)
    bool killed = false;  // false on a dry run, when it was already gone, or on error
    std::string error;    // one line when the kill failed ("" otherwise)
};

struct sweep_report {
    std::vector<swept_sandbox> sandboxes;  // every sandbox that matched, sorted by id
    std::size_t killed = 0;
    std::size_t failed = 0;  // kills that failed (the sandbox may still be alive)
};

// Lists, then kills one by one, with the E2B settings of `cfg.e2b` (key, endpoints,
// TLS, retries). Blocks; runs its own io_context. On failure to list: ec set
// (missing_credentials: no key, or the service rejects it; config_error: bad
// settings; io_error: the service could not be asked) and a one-line message in
// diag.client_message; never mentions the API key. Kill failures are reported per
// sandbox, not as ec.
sweep_report sweep_sandboxes(const launcher_config& cfg, const sweep_options& options,
                             boost::system::error_code& ec, diagnostics& diag);

// Asks the service once whether it accepts cfg.e2b.api_key (a sandbox listing that
// matches nothing), so that a bad key stops a run before any job starts. Sets ec to
// missing_credentials when the service rejects the key (401/403), io_error when it
// could not be asked (unreachable, 5xx after the retries), config_error for bad
// settings; diag.client_message says why in one line, never with the key.
void check_e2b_access(const launcher_config& cfg, boost::system::error_code& ec, diagnostics& diag);

}  // namespace genesis::launch
