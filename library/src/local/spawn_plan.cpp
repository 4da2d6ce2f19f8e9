#include "local/spawn_plan.hpp"

#include <utility>

namespace genesis::launch::detail {

std::string plan_command(const local_params& lp, std::vector<std::string> evaluator_args,
                         const executable_finder& find, spawn_command& out) {
    out = {};
    if (lp.activate_script) {
        // ShinkaEvolve's activation: the script runs in a login bash, then the
        // interpreter found on the PATH it leaves replaces the shell. The script and
        // the argv go in as bash's positional parameters: no quoting involved.
        out.exe = find("bash");
        if (out.exe.empty()) return "job_config.activate_script is set but 'bash' was not found on PATH";
        out.args = {"-lc", "set -e; source \"$0\"; exec \"$@\"", *lp.activate_script, lp.python};
    } else if (lp.conda_env) {
        out.exe = find("conda");
        if (out.exe.empty()) return "job_config.conda_env is set but 'conda' was not found on PATH";
        out.args = {"run", "-n", *lp.conda_env, "--no-capture-output", lp.python};
    } else {
        out.exe = find(lp.python);
        if (out.exe.empty())
            return "python interpreter '" + lp.python + "' not found" +
                   (lp.python.find('/') == std::string::npos ? " on PATH" : "");
    }
    out.args.insert(out.args.end(), std::make_move_iterator(evaluator_args.begin()),
                    std::make_move_iterator(evaluator_args.end()));
    return {};
}

spawn_command wrap_in_bwrap(spawn_command cmd, bwrap_layout layout, const std::string& bwrap_path) {
    layout.readable.push_back(cmd.exe.parent_path().string());
    spawn_command wrapped;
    wrapped.exe = bwrap_path;
    wrapped.args = bwrap_arguments(layout);
    wrapped.args.push_back(cmd.exe.string());
    wrapped.args.insert(wrapped.args.end(), std::make_move_iterator(cmd.args.begin()),
                        std::make_move_iterator(cmd.args.end()));
    return wrapped;
}

}  // namespace genesis::launch::detail
