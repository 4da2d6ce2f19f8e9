// What the local backend executes (library/src/local/spawn_plan.*), without
// starting anything: the interpreter choices and the bubblewrap wrapper.
#include "local/spawn_plan.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>

namespace {

namespace gl = genesis::launch;
namespace detail = genesis::launch::detail;
using strings = std::vector<std::string>;

// A PATH holding only the names given.
detail::executable_finder path_with(std::map<std::string, std::string> found) {
    return [found = std::move(found)](const std::string& name) -> std::filesystem::path {
        auto it = found.find(name);
        return it == found.end() ? std::filesystem::path() : std::filesystem::path(it->second);
    };
}

const strings evaluator_args{"/w/evaluate.py", "--program_path", "/w/p.py", "--results_dir", "/w/r"};

TEST(SpawnPlan, PythonByDefault) {
    gl::local_params lp;
    lp.python = "python3";
    detail::spawn_command c;
    EXPECT_EQ(detail::plan_command(lp, evaluator_args, path_with({{"python3", "/usr/bin/python3"}}), c), "");
    EXPECT_EQ(c.exe, "/usr/bin/python3");
    EXPECT_EQ(c.args, evaluator_args);
}

TEST(SpawnPlan, MissingInterpreterSaysWhere) {
    gl::local_params lp;
    lp.python = "python9";
    detail::spawn_command c;
    EXPECT_EQ(detail::plan_command(lp, evaluator_args, path_with({}), c), "python interpreter 'python9' not found on PATH");
    lp.python = "/opt/py/bin/python";
    EXPECT_EQ(detail::plan_command(lp, evaluator_args, path_with({}), c),
              "python interpreter '/opt/py/bin/python' not found");
}

TEST(SpawnPlan, CondaRunsThePythonOfTheEnvironment) {
    gl::local_params lp;
    lp.python = "python";
    lp.conda_env = "genesis";
    detail::spawn_command c;
    EXPECT_EQ(detail::plan_command(lp, evaluator_args, path_with({{"conda", "/opt/conda/bin/conda"}}), c), "");
    EXPECT_EQ(c.exe, "/opt/conda/bin/conda");
    strings expected{"run", "-n", "genesis", "--no-capture-output", "python"};
    expected.insert(expected.end(), evaluator_args.begin(), evaluator_args.end());
    EXPECT_EQ(c.args, expected);
    EXPECT_EQ(detail::plan_command(lp, evaluator_args, path_with({}), c),
              "job_config.conda_env is set but 'conda' was not found on PATH");
}

TEST(SpawnPlan, AnActivationScriptIsSourcedByBashWithoutQuoting) {
    gl::local_params lp;
    lp.python = "python";
    lp.activate_script = "/home/u/my env/bin/activate";  // a space: passed as a parameter, never parsed
    lp.conda_env = "ignored";                             // the script wins
    detail::spawn_command c;
    EXPECT_EQ(detail::plan_command(lp, evaluator_args, path_with({{"bash", "/bin/bash"}}), c), "");
    EXPECT_EQ(c.exe, "/bin/bash");
    strings expected{"-lc", "set -e; source \"$0\"; exec \"$@\"", "/home/u/my env/bin/activate", "python"};
    expected.insert(expected.end(), evaluator_args.begin(), evaluator_args.end());
    EXPECT_EQ(c.args, expected);
    EXPECT_EQ(detail::plan_command(lp, evaluator_args, path_with({}), c),
              "job_config.activate_script is set but 'bash' was not found on PATH");
}

TEST(SpawnPlan, BubblewrapRunsTheCommandAfterItsOptions) {
    detail::spawn_command c{"/usr/bin/python3", evaluator_args};
    detail::bwrap_layout layout;
    layout.private_tmp = "/tmp/genesis-job-x";
    layout.results_dir = "/w/r";
    layout.cwd = "/w";
    layout.readable = {"/w"};
    auto wrapped = detail::wrap_in_bwrap(c, layout, "/usr/bin/bwrap");
    EXPECT_EQ(wrapped.exe, "/usr/bin/bwrap");
    const auto dashes = std::find(wrapped.args.begin(), wrapped.args.end(), "--");
    ASSERT_NE(dashes, wrapped.args.end());
    strings after(dashes + 1, wrapped.args.end());
    strings expected{"/usr/bin/python3"};
    expected.insert(expected.end(), evaluator_args.begin(), evaluator_args.end());
    EXPECT_EQ(after, expected);
    // The interpreter's folder is readable inside.
    layout.readable.push_back("/usr/bin");
    const auto options = detail::bwrap_arguments(layout);
    EXPECT_EQ(strings(wrapped.args.begin(), dashes + 1), options);
}

}  // namespace
