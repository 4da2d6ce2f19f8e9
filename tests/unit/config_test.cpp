// config_test.cpp - load_config, overrides, interpolation, validation, dotenv, durations.
#include "genesis/launch/config.hpp"
#include "genesis/launch/job_launcher.hpp"

#include <boost/asio/io_context.hpp>

#include <boost/json/serialize.hpp>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <sys/stat.h>
#include <unistd.h>

namespace gl = genesis::launch;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::StartsWith;

namespace {

// A config folder in a fresh temporary directory, which is also the working dir.
class ConfigTest : public ::testing::Test {
protected:
    void SetUp() override {
        static std::atomic<int> counter{0};
        root_ = fs::temp_directory_path() /
                ("genesis_config_test_" + std::to_string(::getpid()) + "_" +
                 std::to_string(counter++) + "_" + std::to_string(std::random_device{}()));
        fs::create_directories(root_);

        write("configs/config.yaml", R"(defaults:
  - _self_
  - cluster@_global_: local
  - variant@_global_: demo

verbose: false
results_dir: results
exp_name: demo_exp
job_config:
  eval_program_path: evaluate.py
  extra_cmd_args: {}
evo_config:
  job_type: local
  max_parallel_jobs: 2
  init_program_path: initial.py
  num_generations: 10
task:
  marker: defaults
  from_defaults: yes_defaults
)");
        write("configs/cluster/local.yaml", R"(job_config:
  _target_: genesis.launch.LocalJobConfig
  time: "00:10:00"
  conda_env: null
evo_config:
  job_type: local
task:
  marker: cluster_local
  from_cluster: local
)");
        write("configs/cluster/e2b.yaml", R"(job_config:
  _target_: genesis.launch.E2BJobConfig
  template: base
  timeout: 300
  dependencies: [numpy]
evo_config:
  job_type: e2b
  max_parallel_jobs: 10
task:
  marker: cluster_e2b
  from_cluster: e2b
)");
        write("configs/variant/demo.yaml", R"(task:
  marker: variant_demo
evo_config:
  num_generations: 5
)");
        write("configs/variant/circle_packing_example.yaml", "task:\n  marker: circle\n");
        write("configs/variant/e2b_variant.yaml", R"(defaults:
  - override /cluster@_global_: e2b
task:
  marker: variant_e2b
)");
    }

    void TearDown() override {
        std::error_code ec;
        fs::remove_all(root_, ec);
    }

    void write(const std::string& relative, const std::string& text) {
        const fs::path path = root_ / relative;
        fs::create_directories(path.parent_path());
        std::ofstream(path, std::ios::binary) << text;
    }

    gl::load_options options(std::vector<std::string> overrides = {}) {
        gl::load_options opts;
        opts.config_dir = root_ / "configs";
        opts.working_dir = root_;
        opts.overrides = std::move(overrides);
        opts.getenv = [this](const std::string& name) -> std::optional<std::string> {
            auto it = env_.find(name);
            if (it == env_.end()) return std::nullopt;
            return it->second;
        };
        return opts;
    }

    gl::loaded_config load(std::vector<std::string> overrides = {}) {
        boost::system::error_code ec;
        gl::diagnostics diag;
        gl::loaded_config config = gl::load_config(options(std::move(overrides)), ec, diag);
        EXPECT_FALSE(ec) << diag.client_message;
        return config;
    }

    // validate() on a configuration built in code, expecting it refused; returns the message.
    static std::string validate_error(const gl::launcher_config& cfg) {
        boost::system::error_code ec;
        gl::diagnostics diag;
        gl::validate(cfg, ec, diag);
        EXPECT_EQ(ec, gl::errc::config_error);
        return diag.client_message;
    }

    // Loads expecting failure; returns the message after checking its form.
    std::string load_error(std::vector<std::string> overrides = {}) {
        boost::system::error_code ec;
        gl::diagnostics diag;
        gl::load_config(options(std::move(overrides)), ec, diag);
        EXPECT_EQ(ec, gl::errc::config_error);
        EXPECT_EQ(&ec.category(), &gl::launch_category());
        const std::string& message = diag.client_message;
        EXPECT_FALSE(message.empty());
        EXPECT_EQ(message.find('\n'), std::string::npos) << message;
        return message;
    }

    static std::string at(const gl::loaded_config& config, const std::string& object,
                          const std::string& key) {
        const auto* o = config.tree.if_contains(object);
        if (!o || !o->is_object()) return "<no " + object + ">";
        const auto* v = o->as_object().if_contains(key);
        if (!v) return "<absent>";
        return v->is_string() ? std::string(v->as_string()) : boost::json::serialize(*v);
    }

    fs::path root_;
    std::map<std::string, std::string> env_;
};

// ---- merging and group selection --------------------------------------------------

TEST_F(ConfigTest, MergeOrderIsDefaultsClusterVariantOverrides) {
    auto config = load();
    EXPECT_EQ(config.cluster, "local");
    EXPECT_EQ(config.variant, "demo");
    EXPECT_EQ(at(config, "task", "marker"), "variant_demo");
    EXPECT_EQ(at(config, "task", "from_cluster"), "local");
    EXPECT_EQ(at(config, "task", "from_defaults"), "yes_defaults");
    EXPECT_EQ(at(config, "evo_config", "num_generations"), "5");
    ASSERT_EQ(config.sources.size(), 3u);
    EXPECT_EQ(config.sources[0].filename(), "config.yaml");
    EXPECT_EQ(config.sources[1], fs::path(root_ / "configs/cluster/local.yaml"));
    EXPECT_EQ(config.sources[2], fs::path(root_ / "configs/variant/demo.yaml"));
    EXPECT_EQ(config.launcher.type, gl::job_type::local);
    EXPECT_EQ(config.launcher.local.time, std::chrono::milliseconds(600'000));
    EXPECT_FALSE(config.launcher.local.conda_env);

    auto overridden = load({"task.marker=from_cli"});
    EXPECT_EQ(at(overridden, "task", "marker"), "from_cli");
}

TEST_F(ConfigTest, ClusterChosenOnTheCommandLine) {
    auto config = load({"cluster=e2b"});
    EXPECT_EQ(config.cluster, "e2b");
    EXPECT_EQ(config.launcher.type, gl::job_type::e2b);
    EXPECT_EQ(config.launcher.max_parallel_jobs, 10);
    EXPECT_EQ(config.launcher.e2b.template_id, "base");
    EXPECT_EQ(config.launcher.e2b.timeout, 300s);
    EXPECT_EQ(config.launcher.e2b.dependencies, std::vector<std::string>{"numpy"});
    EXPECT_EQ(at(config, "task", "from_cluster"), "e2b");
    EXPECT_EQ(at(config, "task", "marker"), "variant_demo");  // variant still beats cluster
    EXPECT_EQ(config.sources.at(1), fs::path(root_ / "configs/cluster/e2b.yaml"));
}

TEST_F(ConfigTest, VariantDefaultsListOverridesTheCluster) {
    auto config = load({"variant=e2b_variant"});
    EXPECT_EQ(config.variant, "e2b_variant");
    EXPECT_EQ(config.cluster, "e2b");
    EXPECT_EQ(config.launcher.type, gl::job_type::e2b);
    EXPECT_EQ(at(config, "task", "marker"), "variant_e2b");
    EXPECT_EQ(config.tree.if_contains("defaults"), nullptr);

    // The command line wins over a group file's defaults list, in either order.
    for (auto overrides : {std::vector<std::string>{"variant=e2b_variant", "cluster=local"},
                           std::vector<std::string>{"cluster=local", "variant=e2b_variant"}}) {
        auto chosen = load(overrides);
        EXPECT_EQ(chosen.cluster, "local");
        EXPECT_EQ(chosen.launcher.type, gl::job_type::local);
    }
}

TEST_F(ConfigTest, PlainAndOptionalDefaultsEntries) {
    // No _self_: Hydra merges the primary config after its defaults list.
    write("configs/config.yaml", R"(defaults:
  - cluster@_global_: e2b
  - optional extras@_global_: absent
  - optional variant@_global_: demo
task:
  marker: primary
)");
    auto config = load();
    EXPECT_EQ(config.cluster, "e2b");
    EXPECT_EQ(config.variant, "demo");
    EXPECT_EQ(config.launcher.type, gl::job_type::e2b);
    EXPECT_EQ(at(config, "task", "marker"), "primary");
    ASSERT_EQ(config.sources.size(), 3u);
    EXPECT_EQ(config.sources.back().filename(), "config.yaml");

    auto without = load({"~cluster"});
    EXPECT_EQ(without.cluster, "");
    EXPECT_EQ(without.launcher.type, gl::job_type::local);
    EXPECT_EQ(without.sources.size(), 2u);
}

TEST_F(ConfigTest, GroupsMergeInDefaultsListOrder) {
    write("configs/config.yaml", R"(defaults:
  - variant@_global_: demo
  - task@_global_: packing
  - cluster@_global_: local
  - extras@task.extra: one
  - _self_
)");
    write("configs/task/packing.yaml", "task:\n  marker: task_group\n  from_task: yes\n");
    write("configs/extras/one.yaml", "value: 1\n");
    auto config = load();
    EXPECT_EQ(at(config, "task", "marker"), "cluster_local");  // the last of the list to set it
    EXPECT_EQ(at(config, "task", "from_task"), "yes");      // YAML 1.2: `yes` is a string
    // A package other than _global_ places the file's content under that key.
    EXPECT_EQ(config.tree.at("task").at("extra").at("value").as_int64(), 1);
    ASSERT_EQ(config.sources.size(), 5u);
    EXPECT_EQ(config.sources[0].filename(), "demo.yaml");
    EXPECT_EQ(config.sources[1].filename(), "packing.yaml");
    EXPECT_EQ(config.sources[2].filename(), "local.yaml");
    EXPECT_EQ(config.sources[3].filename(), "one.yaml");
    EXPECT_EQ(config.sources[4].filename(), "config.yaml");
}

TEST_F(ConfigTest, TargetKeysAnywhereAreCarriedAndIgnored) {
    write("configs/variant/demo.yaml", R"(_target_: top.level
task:
  nested:
    _target_: some.Class
    value: 1
evo_config:
  _target_: genesis.core.EvolutionConfig
)");
    auto config = load({"cluster=e2b"});
    EXPECT_EQ(config.tree.at("_target_").as_string(), "top.level");
    EXPECT_EQ(config.tree.at("job_config").at("_target_").as_string(), "genesis.launch.E2BJobConfig");
    EXPECT_EQ(config.tree.at("task").at("nested").at("_target_").as_string(), "some.Class");
    EXPECT_EQ(config.tree.at("evo_config").at("_target_").as_string(), "genesis.core.EvolutionConfig");
    EXPECT_EQ(config.launcher.type, gl::job_type::e2b);
}

// ---- overrides ----------------------------------------------------------------------

TEST_F(ConfigTest, ValueOverridesAreYaml) {
    auto config = load({"cluster=e2b", R"(job_config.dependencies=["numpy","scipy"])",
                        "job_config.timeout=600", "+task.flag=true", "task.marker=null",
                        "task.from_cluster='quoted text'", "job_config.dependencies.1=scipy-extra"});
    EXPECT_EQ(config.launcher.e2b.dependencies, (std::vector<std::string>{"numpy", "scipy-extra"}));
    EXPECT_EQ(config.launcher.e2b.timeout, 600s);
    EXPECT_EQ(at(config, "task", "flag"), "true");
    EXPECT_EQ(at(config, "task", "marker"), "null");
    EXPECT_EQ(at(config, "task", "from_cluster"), "quoted text");
    EXPECT_EQ(config.tree.at("job_config").at("timeout").as_int64(), 600);
}

TEST_F(ConfigTest, AddForceAddAndDelete) {
    auto added = load({"+task.new_key=42", "+task.deep.er=x", "++task.marker=forced",
                       "++task.other=new", "~task.from_cluster"});
    EXPECT_EQ(at(added, "task", "new_key"), "42");
    EXPECT_EQ(added.tree.at("task").at("deep").at("er").as_string(), "x");
    EXPECT_EQ(at(added, "task", "marker"), "forced");
    EXPECT_EQ(at(added, "task", "other"), "new");
    EXPECT_EQ(at(added, "task", "from_cluster"), "<absent>");

    EXPECT_EQ(load_error({"+task.marker=x"}),
              "command line override '+task.marker=x': key 'task.marker' is already in the config "
              "(use ++task.marker=... to override it)");
    EXPECT_EQ(load_error({"~task.nothing"}),
              "command line override '~task.nothing': key 'task.nothing' is not in the config");
    EXPECT_THAT(load_error({"~task.marker=wrong"}),
                HasSubstr("key 'task.marker' is \"variant_demo\", not \"wrong\""));
    EXPECT_EQ(at(load({"~task.marker=variant_demo"}), "task", "marker"), "<absent>");

    // A new top-level key added on purpose is the user's own, as in Hydra.
    auto extra = load({"+extra.note=hello"});
    EXPECT_EQ(extra.tree.at("extra").at("note").as_string(), "hello");
}

TEST_F(ConfigTest, AnUnknownOneWordOverrideNamesTheConfigGroups) {
    EXPECT_EQ(load_error({"flavour=spicy"}),
              "command line override 'flavour=spicy': 'flavour' is neither a config group in configs (groups: "
              "cluster, variant) nor a key of the config (use +flavour=... to add a key)");
    EXPECT_THAT(load_error({"variants=demo"}), HasSubstr("; did you mean 'variant'?"));
    // A key of the launcher's schema is not a group mistake.
    EXPECT_EQ(load({"results_dir=out"}).tree.at("results_dir").as_string(), "out");
}

TEST_F(ConfigTest, SettingAMissingKeyIsAnError) {
    EXPECT_EQ(load_error({"task.markr=1"}),
              "command line override 'task.markr=1': key 'task.markr' is not in the config "
              "(use +task.markr=... to add it); did you mean 'task.marker'?");
    EXPECT_THAT(load_error({"job_config.tme=5"}),
                HasSubstr("key 'job_config.tme' is not in the config (use +job_config.tme=... to add "
                          "it); did you mean 'job_config.time'?"));
    EXPECT_THAT(load_error({"nothing.here=5"}), HasSubstr("key 'nothing.here' is not in the config"));
    EXPECT_THAT(load_error({"task.marker.sub=5"}), HasSubstr("'task.marker' is not a map"));

    // Keys of the launcher's schema may be set without '+', like Hydra structured configs.
    auto config = load({"job_config.kill_grace=5", "job_config.env_vars.FOO=bar"});
    EXPECT_EQ(config.launcher.kill_grace, 5000ms);
    EXPECT_EQ(config.launcher.env_vars.at("FOO"), "bar");
}

TEST_F(ConfigTest, BadOverrideSyntax) {
    for (const std::string text : {"no_equals", "=5", "a b=1", "a..b=1", ".a=1", "+=1"}) {
        const std::string message = load_error({text});
        EXPECT_THAT(message, StartsWith("command line override '" + text + "': ")) << message;
    }
    EXPECT_THAT(load_error({"no_equals"}), HasSubstr("expected key=value"));
    EXPECT_THAT(load_error({"a b=1"}), HasSubstr("invalid key 'a b'"));
    EXPECT_THAT(load_error({"job_config.dependencies=[numpy"}),
                StartsWith("command line override 'job_config.dependencies=[numpy': invalid YAML value: "));
    EXPECT_THAT(load_error({"cluster=../etc"}), HasSubstr("invalid cluster name"));
}

TEST_F(ConfigTest, OverrideKeysHaveAtMost32Segments) {
    auto key = [](int segments) {
        std::string k = "+a";
        for (int i = 1; i < segments; ++i) k += ".b";
        return k + "=1";
    };
    EXPECT_THAT(load_error({key(33)}), HasSubstr("key has more than 32 segments"));
    // Thousands of segments once overflowed the stack; now the same one-line error.
    EXPECT_THAT(load_error({key(20000)}), HasSubstr("key has more than 32 segments"));
    // 32 are fine: this one fails later, for the missing key.
    EXPECT_THAT(load_error({key(32).substr(1)}), HasSubstr("is not in the config"));
}

// ---- interpolation ------------------------------------------------------------------

TEST_F(ConfigTest, Interpolation) {
    write("configs/variant/demo.yaml", R"(task:
  name: circle
  jobs: 4
  seconds: 90
  nested: {x: 1, y: [a, b]}
  whole: ${task.nested}
  text: "run-${task.name}-${task.jobs}"
  env: ${oc.env:MY_VAR}
  env_default: ${oc.env:MISSING_VAR,fallback}
  select_missing: ${oc.select:task.nope,7}
  select_present: ${oc.select:task.name,7}
  escaped: '\${literal}'
  chained: ${task.text}
evo_config:
  max_parallel_jobs: ${task.jobs}
job_config:
  time: ${task.seconds}
)");
    env_["MY_VAR"] = "hello";
    auto config = load({"task.name=square"});
    const auto& task = config.tree.at("task").as_object();
    EXPECT_EQ(boost::json::serialize(task.at("whole")), R"({"x":1,"y":["a","b"]})");
    EXPECT_EQ(task.at("text").as_string(), "run-square-4");
    EXPECT_EQ(task.at("chained").as_string(), "run-square-4");
    EXPECT_EQ(task.at("env").as_string(), "hello");
    EXPECT_EQ(task.at("env_default").as_string(), "fallback");
    EXPECT_EQ(task.at("select_missing").as_int64(), 7);
    EXPECT_EQ(task.at("select_present").as_string(), "square");
    EXPECT_EQ(task.at("escaped").as_string(), "${literal}");
    EXPECT_EQ(config.launcher.max_parallel_jobs, 4);
    EXPECT_EQ(config.launcher.local.time, std::chrono::milliseconds(90'000));
    // Other resolvers.
    write("configs/variant/demo.yaml", R"(task:
  cwd: ${hydra:runtime.cwd}
  year: ${now:%Y}
  decoded: ${oc.decode:${oc.env:MY_NUMBER}}
  as_text: ${oc.env:MY_NUMBER}
  nested_default: ${oc.env:UNSET_VAR,${task.year}}
)");
    env_["MY_NUMBER"] = "600";
    auto resolved = load();
    const auto& more = resolved.tree.at("task").as_object();
    EXPECT_EQ(more.at("cwd").as_string(), root_.lexically_normal().string());
    EXPECT_EQ(more.at("year").as_string().size(), 4u);
    EXPECT_EQ(more.at("decoded").as_int64(), 600);
    EXPECT_EQ(more.at("as_text").as_string(), "600");
    EXPECT_EQ(more.at("nested_default").as_string(), more.at("year").as_string());

    // The hydra subtree is Hydra's own and is kept verbatim.
    write("configs/variant/demo.yaml", "hydra:\n  run:\n    dir: ${hydra.job.name}/x\n");
    EXPECT_EQ(load().tree.at("hydra").at("run").at("dir").as_string(), "${hydra.job.name}/x");
}

TEST_F(ConfigTest, UnresolvableInterpolationInALauncherKeyNamesFileLineAndKey) {
    write("configs/variant/demo.yaml", "job_config:\n  python: python3\n  eval_program_path: ${task.missing}\n");
    EXPECT_EQ(load_error(),
              "configs/variant/demo.yaml:3: job_config.eval_program_path: cannot resolve '${task.missing}': key "
              "'task.missing' is not in the config");

    write("configs/variant/demo.yaml", "job_config:\n  conda_env: ${oc.env:NOT_SET_ANYWHERE}\n");
    EXPECT_THAT(load_error(), HasSubstr("configs/variant/demo.yaml:2: job_config.conda_env: cannot resolve "
                                        "'${oc.env:NOT_SET_ANYWHERE}': environment variable"));

    // A cycle, also through an engine key the launcher key refers to.
    write("configs/variant/demo.yaml", "task:\n  a: ${evo_config.results_dir}\nevo_config:\n  results_dir: ${task.a}\n");
    EXPECT_THAT(load_error(), HasSubstr("interpolation refers to itself (cycle)"));
    write("configs/variant/demo.yaml", "evo_config:\n  results_dir: ${evo_config.results_dir}/x\n");
    EXPECT_THAT(load_error(), HasSubstr("configs/variant/demo.yaml:2: evo_config.results_dir: "));

    write("configs/variant/demo.yaml", "job_config:\n  template: ${nosuch:x}\n");
    EXPECT_THAT(load_error({"cluster=e2b"}), HasSubstr("unknown resolver 'nosuch'"));
}

TEST_F(ConfigTest, UnresolvableEngineKeysAreKeptAsWrittenWithANote) {
    // The engine resolves its own keys later (with its own resolvers): never an error here.
    write("configs/variant/demo.yaml", R"(task:
  bad: ${task.missing}
  env: ${oc.env:NOT_SET_ANYWHERE}
  a: ${task.b}
  b: ${task.a}
  custom: ${eval:1+1}
  fine: ${exp_name}-ok
)");
    auto config = load();
    EXPECT_EQ(at(config, "task", "bad"), "${task.missing}");
    EXPECT_EQ(at(config, "task", "env"), "${oc.env:NOT_SET_ANYWHERE}");
    EXPECT_EQ(at(config, "task", "a"), "${task.b}");
    EXPECT_EQ(at(config, "task", "custom"), "${eval:1+1}");
    EXPECT_EQ(at(config, "task", "fine"), "demo_exp-ok");
    const auto& notes = config.notes;
    auto noted = [&](const std::string& text) {
        return std::any_of(notes.begin(), notes.end(), [&](const std::string& n) { return n.find(text) != std::string::npos; });
    };
    EXPECT_TRUE(noted("configs/variant/demo.yaml:2: task.bad: cannot resolve '${task.missing}'"));
    EXPECT_TRUE(noted("unknown resolver 'eval'"));
    EXPECT_TRUE(noted("cycle"));
}

// ---- error messages -----------------------------------------------------------------

TEST_F(ConfigTest, MissingFilesAndGroups) {
    EXPECT_EQ(load_error({"variant=circle_pakcing"}),
              "command line override 'variant=circle_pakcing': variant 'circle_pakcing' not found "
              "in configs/variant (available: circle_packing_example, demo, e2b_variant); did you "
              "mean 'circle_packing_example'?");

    write("configs/config.yaml", "defaults:\n  - _self_\n  - cluster@_global_: nowhere\n");
    EXPECT_EQ(load_error(),
              "configs/config.yaml:3: defaults: cluster 'nowhere' not found in configs/cluster "
              "(available: e2b, local)");

    write("configs/config.yaml", "defaults:\n  - databse@_global_: small\n");
    fs::create_directories(root_ / "configs/database");
    EXPECT_THAT(load_error(), HasSubstr("config group 'databse' not found in configs (available "
                                        "groups: cluster, database, variant); did you mean 'database'?"));

    fs::remove(root_ / "configs/config.yaml");
    EXPECT_EQ(load_error(), "configs/config.yaml: file not found");

    fs::remove_all(root_ / "configs");
    EXPECT_EQ(load_error(), "configs: config folder not found");
}

TEST_F(ConfigTest, YamlSyntaxErrorsAndNonMapFiles) {
    write("configs/cluster/broken.yaml", "job_config:\n  time: 5\n  dependencies: [numpy\nfoo: 1\n");
    EXPECT_THAT(load_error({"cluster=broken"}),
                testing::MatchesRegex("configs/cluster/broken\\.yaml:[34]: YAML syntax error: .+"));

    write("configs/cluster/list.yaml", "- a\n- b\n");
    EXPECT_EQ(load_error({"cluster=list"}),
              "configs/cluster/list.yaml:1: the top level must be a map, got a list");

    write("configs/cluster/dup.yaml", "job_config:\n  time: 1\n  time: 2\n");
    EXPECT_EQ(load_error({"cluster=dup"}), "configs/cluster/dup.yaml:3: job_config.time: duplicate key");
}

TEST_F(ConfigTest, WrongTypesNameFileLineAndKey) {
    write("configs/cluster/bad.yaml", R"(# comment line
job_config:
  conda_env: null
  python: python3
  time: abc
)");
    EXPECT_EQ(load_error({"cluster=bad"}),
              "configs/cluster/bad.yaml:5: job_config.time: expected hh:mm:ss or a number of "
              "seconds, got \"abc\"");

    EXPECT_EQ(load_error({"job_config.time=-5"}),
              "command line override 'job_config.time=-5': job_config.time: expected hh:mm:ss or "
              "a number of seconds, got -5");
    EXPECT_THAT(load_error({"cluster=e2b", "job_config.timeout=0"}),
                HasSubstr("job_config.timeout: expected a positive number of seconds, got 0"));
    EXPECT_THAT(load_error({"evo_config.max_parallel_jobs=0"}),
                HasSubstr("evo_config.max_parallel_jobs: expected an integer >= 1, got 0"));
    EXPECT_THAT(load_error({"evo_config.max_parallel_jobs=many"}),
                HasSubstr("evo_config.max_parallel_jobs: expected an integer, got \"many\""));
    EXPECT_THAT(load_error({"job_config.dependencies=numpy"}),
                HasSubstr("job_config.dependencies: expected a list of strings, got \"numpy\""));
    EXPECT_THAT(load_error({"job_config.env_vars=[a]"}),
                HasSubstr("job_config.env_vars: expected a map, got a list"));
    EXPECT_THAT(load_error({"job_config.cpus=two"}), HasSubstr("job_config.cpus: expected an integer"));
    EXPECT_EQ(load_error({"evo_config.job_type=slurm"}),
              "command line override 'evo_config.job_type=slurm': evo_config.job_type: expected "
              "'local' or 'e2b', got \"slurm\"");
    EXPECT_THAT(load_error({"evo_config.job_type=e2"}), HasSubstr("(did you mean 'e2b'?)"));
}

TEST_F(ConfigTest, UnknownKeys) {
    write("configs/cluster/typo.yaml", R"(job_config:
  conda_env: null

  tme: "00:01:00"
)");
    EXPECT_EQ(load_error({"cluster=typo"}),
              "configs/cluster/typo.yaml:4: job_config.tme: unknown key (did you mean 'time'?)");

    write("configs/variant/demo.yaml", "evo_config:\n  max_paralel_jobs: 3\n");
    EXPECT_EQ(load_error(),
              "configs/variant/demo.yaml:2: evo_config.max_paralel_jobs: unknown key (did you mean "
              "'max_parallel_jobs'?)");

    write("configs/variant/demo.yaml", "evo_config:\n  job_typ: e2b\n");
    EXPECT_THAT(load_error(), HasSubstr("evo_config.job_typ: unknown key (did you mean 'job_type'?)"));

    // Genesis engine settings pass, including new ones far from the launcher's keys.
    write("configs/variant/demo.yaml",
          "evo_config:\n  llm_models: [a]\n  language: python\n  brand_new_engine_setting: 1\n");
    EXPECT_EQ(load().launcher.max_parallel_jobs, 2);

    // Engine keys at the top level are carried, whatever they are; a near-miss of one
    // of the launcher's top-level keys is not.
    write("configs/variant/demo.yaml", "verbos: true\ncompletely_unrelated: 1\nmax_db_workers: 2\n");
    EXPECT_EQ(load().tree.at("completely_unrelated").as_int64(), 1);
    write("configs/variant/demo.yaml", "job_confg:\n  time: 5\n");
    EXPECT_EQ(load_error(), "configs/variant/demo.yaml:1: job_confg: unknown key (did you mean 'job_config'?)");
    write("configs/variant/demo.yaml", "results_dri: out\n");
    EXPECT_EQ(load_error(), "configs/variant/demo.yaml:1: results_dri: unknown key (did you mean 'results_dir'?)");

    // Subtrees other than job_config / evo_config are not validated.
    write("configs/variant/demo.yaml", "db_config:\n  anything: 1\nlauncher:\n  x: y\n");
    EXPECT_EQ(load().cluster, "local");
}

TEST_F(ConfigTest, ThrowingOverload) {
    try {
        gl::load_config(options({"variant=nope"}));
        FAIL() << "expected launch_error";
    } catch (const gl::launch_error& e) {
        EXPECT_EQ(e.code(), gl::errc::config_error);
        EXPECT_THAT(e.diag().client_message, HasSubstr("variant 'nope' not found"));
    }
    EXPECT_NO_THROW(gl::load_config(options()));
}

// ---- schema values ------------------------------------------------------------------

TEST_F(ConfigTest, JobConfigValuesAndRelativePaths) {
    write("configs/variant/demo.yaml", R"(job_config:
  eval_program_path: tasks/evaluate.py
  extra_cmd_args: {seed: 3, verbose: true, mode: fast}
  env_vars: {A: x, B: 2, C: true}
  python: /usr/bin/python3
  conda_env: genesis
  additional_files: {/home/user/data.csv: data/data.csv, /home/user/abs.txt: /tmp/abs.txt}
  cpus: 2
  memory_mb: 1024
  kill_grace: "00:00:05"
  output_capture_bytes: 1000
  api_url: https://api.example
  eval_command: ignored
evo_config:
  init_program_path: tasks/initial.py
  results_dir: out/run1
)");
    auto config = load();
    const auto& l = config.launcher;
    EXPECT_EQ(l.eval_program_path, root_ / "tasks/evaluate.py");
    EXPECT_EQ(l.init_program_path, root_ / "tasks/initial.py");
    EXPECT_EQ(l.results_dir, root_ / "out/run1");
    EXPECT_EQ(boost::json::serialize(l.extra_cmd_args), R"({"seed":3,"verbose":true,"mode":"fast"})");
    EXPECT_EQ(l.env_vars, (std::map<std::string, std::string>{{"A", "x"}, {"B", "2"}, {"C", "true"}}));
    EXPECT_EQ(l.local.python, "/usr/bin/python3");
    EXPECT_EQ(l.local.conda_env, "genesis");
    EXPECT_EQ(l.e2b.additional_files.at("/home/user/data.csv"), (root_ / "data/data.csv").string());
    EXPECT_EQ(l.e2b.additional_files.at("/home/user/abs.txt"), "/tmp/abs.txt");
    EXPECT_EQ(l.e2b.cpus, 2);
    // job_type local: memory_mb is the evaluator's limit, not the sandbox size.
    EXPECT_EQ(l.local.memory_mb, 1024u);
    EXPECT_FALSE(l.e2b.memory_mb);
    EXPECT_EQ(l.kill_grace, 5000ms);
    EXPECT_EQ(l.output_capture_bytes, 1000u);
    EXPECT_EQ(l.e2b.api_url, "https://api.example");

    // Top-level results_dir is the fallback; defaults are resolved too.
    write("configs/variant/demo.yaml", "task: {}\n");
    auto plain = load({"job_config.time=null"});
    EXPECT_EQ(plain.launcher.results_dir, root_ / "results");
    EXPECT_EQ(plain.launcher.eval_program_path, root_ / "evaluate.py");
    EXPECT_FALSE(plain.launcher.local.time);
    EXPECT_EQ(load({"job_config.time=1.5"}).launcher.local.time, std::chrono::milliseconds(1500));
}

TEST_F(ConfigTest, ProgramsFromAListAFolderOrAFile) {
    write("cands/b.py", "");
    write("cands/a.py", "");
    write("cands/.hidden.py", "");
    write("cands/notes.txt", "");
    fs::create_directories(root_ / "cands/sub.py");

    auto folder = load({"programs=cands"});
    EXPECT_EQ(folder.programs, (std::vector<fs::path>{root_ / "cands/a.py", root_ / "cands/b.py"}));

    auto list = load({"programs=[cands/b.py, cands/a.py]"});
    EXPECT_EQ(list.programs, (std::vector<fs::path>{root_ / "cands/b.py", root_ / "cands/a.py"}));

    auto single = load({"programs=cands/a.py"});
    EXPECT_EQ(single.programs, std::vector<fs::path>{root_ / "cands/a.py"});
    EXPECT_TRUE(load().programs.empty());

    EXPECT_EQ(load_error({"programs=nope"}),
              "command line override 'programs=nope': programs: 'nope' does not exist");
    EXPECT_THAT(load_error({"programs=[cands/a.py, cands/zz.py]"}),
                HasSubstr("programs.1: 'cands/zz.py' does not exist"));
}

// ---- credentials --------------------------------------------------------------------

TEST_F(ConfigTest, E2bCredentialsFromEnvironmentThenDotenv) {
    write(".env", "E2B_API_KEY=from-dotenv-secret\nE2B_DOMAIN=dotenv.example\n");
    auto from_file = load({"cluster=e2b"});
    EXPECT_EQ(from_file.launcher.e2b.api_key, "from-dotenv-secret");
    EXPECT_EQ(from_file.launcher.e2b.domain, "dotenv.example");
    EXPECT_EQ(boost::json::serialize(from_file.tree).find("from-dotenv-secret"), std::string::npos);

    env_["E2B_API_KEY"] = "from-env-secret";
    env_["E2B_API_URL"] = "https://env.example";
    auto from_env = load({"cluster=e2b"});
    EXPECT_EQ(from_env.launcher.e2b.api_key, "from-env-secret");
    EXPECT_EQ(from_env.launcher.e2b.api_url, "https://env.example");
    EXPECT_EQ(from_env.launcher.e2b.domain, "dotenv.example");

    // A value written in the config wins over the environment.
    auto configured = load({"cluster=e2b", "job_config.api_url=https://config.example"});
    EXPECT_EQ(configured.launcher.e2b.api_url, "https://config.example");

    // The key never appears in error messages.
    EXPECT_EQ(load_error({"evo_config.job_type=x"}).find("secret"), std::string::npos);

    fs::remove(root_ / ".env");
    env_.clear();
    auto none = load();
    EXPECT_EQ(none.launcher.e2b.api_key, "");
    EXPECT_EQ(none.launcher.e2b.domain, "e2b.app");
}

// ---- E2B backend keys -----------------------------------------------------------------

TEST_F(ConfigTest, E2bBackendKeysHaveDefaults) {
    const auto l = load({"cluster=e2b"}).launcher;
    EXPECT_EQ(l.e2b.timeout, 300s);
    EXPECT_EQ(l.e2b.install_timeout, 600s);
    EXPECT_DOUBLE_EQ(l.e2b.create_rate, 1.0);
    EXPECT_EQ(l.e2b.ca_file, "");
    EXPECT_TRUE(l.e2b.tls_verify);
    EXPECT_TRUE(l.e2b.retry_vanished);
    EXPECT_EQ(l.e2b.max_retries, 5);
    EXPECT_DOUBLE_EQ(l.e2b.cost_per_cpu_second, 0.000014);
    EXPECT_DOUBLE_EQ(l.e2b.cost_per_gib_second, 0.0000045);
    EXPECT_EQ(l.e2b.run_tag, "");
    EXPECT_FALSE(l.e2b.sweep_on_start);
    EXPECT_FALSE(l.e2b.cpus);
    EXPECT_FALSE(l.e2b.memory_mb);
}

TEST_F(ConfigTest, E2bBackendKeysFromFilesAndOverrides) {
    write("configs/variant/demo.yaml", R"(job_config:
  install_timeout: "00:15:00"
  create_rate: 5
  ca_file: certs/ca.pem
  tls_verify: false
  retry_vanished: false
  max_retries: 3
  cost_per_cpu_second: 0.00002
  cost_per_gib_second: 0
  run_tag: nightly-42
  sweep_on_start: true
)");
    auto l = load({"cluster=e2b"}).launcher;
    EXPECT_EQ(l.e2b.install_timeout, 900s);
    EXPECT_DOUBLE_EQ(l.e2b.create_rate, 5.0);
    EXPECT_EQ(l.e2b.ca_file, (root_ / "certs/ca.pem").string());  // relative to the working folder
    EXPECT_FALSE(l.e2b.tls_verify);
    EXPECT_FALSE(l.e2b.retry_vanished);
    EXPECT_EQ(l.e2b.max_retries, 3);
    EXPECT_DOUBLE_EQ(l.e2b.cost_per_cpu_second, 0.00002);
    EXPECT_DOUBLE_EQ(l.e2b.cost_per_gib_second, 0.0);
    EXPECT_EQ(l.e2b.run_tag, "nightly-42");
    EXPECT_TRUE(l.e2b.sweep_on_start);

    // Overrides: decimals, seconds, booleans written as strings, null.
    l = load({"cluster=e2b", "job_config.create_rate=0.5", "job_config.install_timeout=90",
              "job_config.tls_verify='true'", "job_config.ca_file=null", "job_config.sweep_on_start=false",
              "job_config.run_tag=null"})
            .launcher;
    EXPECT_DOUBLE_EQ(l.e2b.create_rate, 0.5);
    EXPECT_EQ(l.e2b.install_timeout, 90s);
    EXPECT_TRUE(l.e2b.tls_verify);
    EXPECT_EQ(l.e2b.ca_file, "");
    EXPECT_EQ(l.e2b.run_tag, "");
    EXPECT_FALSE(l.e2b.sweep_on_start);
    EXPECT_EQ(load({"cluster=e2b", "job_config.install_timeout=1.2"}).launcher.e2b.install_timeout, 2s);
}

TEST_F(ConfigTest, E2bBackendKeysAreValidated) {
    EXPECT_THAT(load_error({"cluster=e2b", "job_config.create_rate=0"}),
                HasSubstr("job_config.create_rate: expected a number > 0, got 0"));
    EXPECT_THAT(load_error({"cluster=e2b", "job_config.create_rate=fast"}),
                HasSubstr("job_config.create_rate: expected a number, got \"fast\""));
    EXPECT_THAT(load_error({"cluster=e2b", "job_config.install_timeout=0"}),
                HasSubstr("job_config.install_timeout: expected a positive duration, got 0"));
    EXPECT_THAT(load_error({"cluster=e2b", "job_config.install_timeout=soon"}),
                HasSubstr("job_config.install_timeout: expected hh:mm:ss or a number of seconds"));
    EXPECT_THAT(load_error({"cluster=e2b", "job_config.tls_verify=maybe"}),
                HasSubstr("job_config.tls_verify: expected true or false, got \"maybe\""));
    EXPECT_THAT(load_error({"cluster=e2b", "job_config.retry_vanished=1"}),
                HasSubstr("job_config.retry_vanished: expected true or false, got 1"));
    EXPECT_THAT(load_error({"cluster=e2b", "job_config.max_retries=0"}),
                HasSubstr("job_config.max_retries: expected an integer >= 1, got 0"));
    EXPECT_THAT(load_error({"cluster=e2b", "job_config.max_retries=1000"}),
                HasSubstr("job_config.max_retries: expected at most 100, got 1000"));
    EXPECT_THAT(load_error({"cluster=e2b", "job_config.cost_per_cpu_second=-1"}),
                HasSubstr("job_config.cost_per_cpu_second: expected a number >= 0, got -1"));
    EXPECT_THAT(load_error({"cluster=e2b", "job_config.cost_per_gib_second=[1]"}),
                HasSubstr("job_config.cost_per_gib_second: expected a number, got a list"));
    EXPECT_THAT(load_error({"cluster=e2b", "job_config.run_tag='a b'"}),
                HasSubstr("job_config.run_tag: expected letters, digits, '-', '_' or '.'"));
    EXPECT_THAT(load_error({"cluster=e2b", "job_config.sweep_on_start=true"}),
                HasSubstr("job_config.sweep_on_start: needs job_config.run_tag"));
    // A misspelt key: in a file, and on the command line.
    write("configs/variant/demo.yaml", "job_config:\n  create_rat: 2\n");
    EXPECT_EQ(load_error({"cluster=e2b"}),
              "configs/variant/demo.yaml:2: job_config.create_rat: unknown key (did you mean 'create_rate'?)");
    EXPECT_THAT(load_error({"cluster=e2b", "job_config.install_timout=2"}),
                HasSubstr("did you mean 'job_config.install_timeout'?"));
}

// ---- free functions -----------------------------------------------------------------

TEST(ParseDuration, AcceptedForms) {
    EXPECT_EQ(gl::parse_duration("01:02:03"), std::chrono::milliseconds((3600 + 120 + 3) * 1000));
    EXPECT_EQ(gl::parse_duration("00:10:00"), std::chrono::milliseconds(600'000));
    EXPECT_EQ(gl::parse_duration("48:00:00"), std::chrono::milliseconds(48LL * 3600 * 1000));
    EXPECT_EQ(gl::parse_duration("02:30"), std::chrono::milliseconds(150'000));
    EXPECT_EQ(gl::parse_duration("90"), std::chrono::milliseconds(90'000));
    EXPECT_EQ(gl::parse_duration("1.5"), std::chrono::milliseconds(1'500));
    EXPECT_EQ(gl::parse_duration(".25"), std::chrono::milliseconds(250));
    EXPECT_EQ(gl::parse_duration("0"), std::chrono::milliseconds(0));
    EXPECT_EQ(gl::parse_duration(" 7 "), std::chrono::milliseconds(7'000));
    EXPECT_EQ(gl::parse_duration("00:00:01.5"), std::chrono::milliseconds(1'500));
}

TEST(ParseDuration, RejectedForms) {
    for (const char* text : {"", "abc", "-1", "-00:01:00", "1:2:3:4", "00:60:00", "01:75", "1e3",
                             "1.2.3", "::", "1:", ":30", "10 s", "+5", "."}) {
        EXPECT_EQ(gl::parse_duration(text), std::nullopt) << text;
    }
}

TEST(ParseDotenv, Format) {
    const auto values = gl::parse_dotenv(
        "# a comment\n"
        "\n"
        "PLAIN=value\n"
        "export EXPORTED=yes\n"
        "  SPACED = padded value   \n"
        "SINGLE='single # not a comment $HOME'\n"
        "DOUBLE=\"line1\\nline2 \\\"q\\\"\"\n"
        "MULTI=\"first\nsecond\"\n"
        "INLINE=abc # trailing comment\n"
        "HASH=a#b\n"
        "EMPTY=\n"
        "CRLF=windows\r\n"
        "not a valid line\n"
        "PLAIN=overridden\n");
    EXPECT_EQ(values.at("PLAIN"), "overridden");
    EXPECT_EQ(values.at("EXPORTED"), "yes");
    EXPECT_EQ(values.at("SPACED"), "padded value");
    EXPECT_EQ(values.at("SINGLE"), "single # not a comment $HOME");
    EXPECT_EQ(values.at("DOUBLE"), "line1\nline2 \"q\"");
    EXPECT_EQ(values.at("MULTI"), "first\nsecond");
    EXPECT_EQ(values.at("INLINE"), "abc");
    EXPECT_EQ(values.at("HASH"), "a#b");
    EXPECT_EQ(values.at("EMPTY"), "");
    EXPECT_EQ(values.at("CRLF"), "windows");
    EXPECT_EQ(values.size(), 10u);
}

TEST_F(ConfigTest, ListConfigGroups) {
    write("configs/cluster/notes.txt", "");
    fs::create_directories(root_ / "configs/.hidden");
    const auto groups = gl::list_config_groups(root_ / "configs");
    ASSERT_EQ(groups.size(), 2u);
    EXPECT_EQ(groups.at("cluster"), (std::vector<std::string>{"e2b", "local"}));
    EXPECT_EQ(groups.at("variant"),
              (std::vector<std::string>{"circle_packing_example", "demo", "e2b_variant"}));
    EXPECT_TRUE(gl::list_config_groups(root_ / "missing").empty());
}

// ---- the repository's own configs ---------------------------------------------------

TEST(RepositoryConfigs, LoadWithE2bCluster) {
    const fs::path source_dir = GENESIS_SOURCE_DIR;
    if (!fs::exists(source_dir / "configs/config.yaml")) GTEST_SKIP() << "configs/config.yaml not present";
    gl::load_options options;
    options.config_dir = source_dir / "configs";
    options.working_dir = source_dir;
    options.getenv = [](const std::string&) { return std::optional<std::string>{}; };
    options.overrides = {"cluster=e2b"};
    boost::system::error_code ec;
    gl::diagnostics diag;
    auto config = gl::load_config(options, ec, diag);
    ASSERT_FALSE(ec) << diag.client_message;
    EXPECT_EQ(config.cluster, "e2b");
    EXPECT_EQ(config.launcher.type, gl::job_type::e2b);
    EXPECT_EQ(config.launcher.max_parallel_jobs, 10);

    options.overrides.clear();
    gl::load_config(options, ec, diag);
    EXPECT_FALSE(ec) << diag.client_message;
}

}  // namespace

// ---- bad inputs: batches, contract flags, environment names, E2B limits, sandbox paths ----

namespace {

// A YAML double-quoted string for `text` (control characters escaped).
std::string quoted(const std::string& text) {
    std::string out = "\"";
    for (char c : text) {
        if (c == '"' || c == '\\') out += std::string("\\") + c;
        else if (static_cast<unsigned char>(c) < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned char>(c));
            out += buf;
        } else out += c;
    }
    return out + "\"";
}

}  // namespace

TEST_F(ConfigTest, AnEmptyProgramsListIsRefusedLikeAnEmptyFolder) {
    EXPECT_EQ(load_error({"programs=[]"}),
              "command line override 'programs=[]': programs: the list is empty (a pattern that matched no file?): "
              "nothing to evaluate; give at least one program, or leave programs unset to evaluate "
              "evo_config.init_program_path");
    write("configs/variant/demo.yaml", "programs: []\n");
    EXPECT_THAT(load_error(), StartsWith("configs/variant/demo.yaml:1: programs: the list is empty"));
    // null still means "not a batch".
    EXPECT_TRUE(load({"programs=null"}).programs.empty());
}

TEST_F(ConfigTest, ProgramsThatAreNotReadableRegularFilesAreNamedWithWhatTheyAre) {
    write("cands/a.py", "");
    ASSERT_EQ(::mkfifo((root_ / "pipe.py").c_str(), 0644), 0);
    fs::create_symlink(root_ / "gone.py", root_ / "dangling.py");
    EXPECT_THAT(load_error({"programs=[pipe.py]"}), HasSubstr("programs.0: 'pipe.py' is not a regular file (a named pipe)"));
    EXPECT_THAT(load_error({"programs=pipe.py"}), HasSubstr("programs: 'pipe.py' is not a regular file (a named pipe)"));
    EXPECT_THAT(load_error({"programs=[cands/a.py, dangling.py]"}),
                HasSubstr("programs.1: 'dangling.py' is a broken symbolic link"));
    EXPECT_THAT(load_error({"programs=[/dev/null]"}), HasSubstr("programs.0: '/dev/null' is not a regular file (a device)"));
    EXPECT_THAT(load_error({"programs=[nowhere.py]"}), HasSubstr("programs.0: 'nowhere.py' does not exist"));

    // Inside a folder: named, never opened (a pipe would block the load).
    ASSERT_EQ(::mkfifo((root_ / "cands/b.py").c_str(), 0644), 0);
    EXPECT_THAT(load_error({"programs=cands"}),
                HasSubstr("programs: 'cands/b.py' in folder 'cands' is not a regular file (a named pipe)"));
    fs::remove(root_ / "cands/b.py");
    fs::create_symlink(root_ / "gone.py", root_ / "cands/c.py");
    EXPECT_THAT(load_error({"programs=cands"}), HasSubstr("'cands/c.py' in folder 'cands' is a broken symbolic link"));
    fs::remove(root_ / "cands/c.py");
    fs::create_directories(root_ / "cands/sub.py");  // a folder named *.py is skipped, as before
    EXPECT_EQ(load({"programs=cands"}).programs, std::vector<fs::path>{root_ / "cands/a.py"});

    if (::geteuid() != 0) {
        write("locked.py", "");
        fs::permissions(root_ / "locked.py", fs::perms::none);
        EXPECT_THAT(load_error({"programs=[locked.py]"}), HasSubstr("programs.0: 'locked.py' cannot be read: Permission denied"));
        fs::permissions(root_ / "locked.py", fs::perms::owner_all);
    }
}

TEST_F(ConfigTest, ExtraCmdArgsCannotPassTheContractsOwnFlags) {
    EXPECT_EQ(load_error({"job_config.extra_cmd_args.program_path=other.py"}),
              "command line override 'job_config.extra_cmd_args.program_path=other.py': "
              "job_config.extra_cmd_args.program_path: --program_path is passed by the launcher itself (the evaluation "
              "contract); a second one would win and make the evaluator evaluate another program than the job's; "
              "remove this entry");
    EXPECT_THAT(load_error({"job_config.extra_cmd_args.results_dir=elsewhere"}),
                HasSubstr("job_config.extra_cmd_args.results_dir: --results_dir is passed by the launcher itself"));
    // argparse abbreviations (allow_abbrev) and --flag=value.
    for (const char* key : {"program_p", "prog", "p", "results", "r", "results_di"})
        EXPECT_THAT(load_error({std::string("job_config.extra_cmd_args.") + key + "=x"}),
                    HasSubstr(std::string("'--") + key + "' is an abbreviation that Python's argparse expands to --"))
            << key;
    write("configs/variant/demo.yaml", "job_config:\n  extra_cmd_args:\n    \"program_path=x.py\": true\n");
    EXPECT_THAT(load_error(), HasSubstr("configs/variant/demo.yaml:3: job_config.extra_cmd_args.program_path=x.py: "
                                        "--program_path is passed by the launcher itself"));
    write("configs/variant/demo.yaml", "job_config:\n  extra_cmd_args:\n    \"\": 1\n");
    EXPECT_THAT(load_error(), HasSubstr("job_config.extra_cmd_args.: an empty flag name would pass '--'"));
    // A value argparse would read as one of those flags (after a flag that takes no value).
    write("configs/variant/demo.yaml", "task:\n  marker: variant_demo\n");
    EXPECT_THAT(load_error({"job_config.extra_cmd_args.verbose='--program_path=other.py'"}),
                HasSubstr("job_config.extra_cmd_args.verbose: the value '--program_path=other.py' would be read by "
                          "Python's argparse as --program_path"));
    EXPECT_THAT(load_error({"job_config.extra_cmd_args.mode='--results'"}), HasSubstr("as --results_dir"));
    EXPECT_EQ(load({"job_config.extra_cmd_args.mode='--fast'", "++job_config.extra_cmd_args.n='-5'"})
                  .launcher.extra_cmd_args.size(), 2u);
    // Other names, including ones argparse does not map to the contract's flags, stay allowed.
    write("configs/variant/demo.yaml",
          "job_config:\n  extra_cmd_args:\n    program-path: a\n    problem: b\n    results_dir_extra: c\n    seed: 1\n");
    EXPECT_EQ(load().launcher.extra_cmd_args.size(), 4u);

    // validate(): the same rule for configurations built in code.
    gl::launcher_config cfg;
    cfg.extra_cmd_args["results"] = "x";
    EXPECT_THAT(validate_error(cfg), StartsWith("job_config.extra_cmd_args.results: '--results' is an abbreviation"));
}

TEST_F(ConfigTest, EnvVarsNamesMustBeEnvironmentVariableNames) {
    write("configs/variant/demo.yaml", "job_config:\n  env_vars:\n    \"PATH=/evil:/usr/bin\": x\n");
    EXPECT_EQ(load_error(),
              "configs/variant/demo.yaml:3: job_config.env_vars.PATH=/evil:/usr/bin: not a valid environment variable "
              "name: it contains '=' (the evaluator would get 'PATH' instead)");
    write("configs/variant/demo.yaml", "job_config:\n  env_vars:\n    \"\": x\n");
    EXPECT_THAT(load_error(), HasSubstr("job_config.env_vars.: not a valid environment variable name: the name is empty"));
    write("configs/variant/demo.yaml", "job_config:\n  env_vars:\n    \"A\\0B\": x\n");
    EXPECT_THAT(load_error(), HasSubstr("job_config.env_vars.A\\x00B: not a valid environment variable name: it contains a NUL byte"));
    write("configs/variant/demo.yaml", "job_config:\n  env_vars:\n    \"A\\nB\": x\n");
    EXPECT_THAT(load_error(), HasSubstr("job_config.env_vars.A\\x0aB: not a valid environment variable name: it contains a control character"));
    write("configs/variant/demo.yaml", "job_config:\n  env_vars:\n    A: \"x\\0y\"\n");
    EXPECT_THAT(load_error(), HasSubstr("job_config.env_vars.A: the value contains a NUL byte"));
    write("configs/variant/demo.yaml", "job_config:\n  env_vars:\n    MY_VAR: 1\n    lower.case-name: ok\n");
    EXPECT_EQ(load().launcher.env_vars.at("lower.case-name"), "ok");

    gl::launcher_config cfg;
    cfg.env_vars["A=B"] = "1";
    EXPECT_THAT(validate_error(cfg), StartsWith("job_config.env_vars.A=B: not a valid environment variable name"));
}

TEST_F(ConfigTest, E2bTimeoutsCannotMakeASandboxLiveLongerThanADay) {
    const std::string limits = "the longest an E2B sandbox lives (1 h on the Hobby plan, 24 h on Pro)";
    EXPECT_EQ(load_error({"cluster=e2b", "job_config.timeout=90000"}),
              "command line override 'job_config.timeout=90000': job_config.timeout: 90000 s is above 24 h (86400 s), " +
                  limits);
    // With dependencies: install_timeout + timeout + 120 s.
    EXPECT_EQ(load_error({"cluster=e2b", "job_config.timeout=86000"}),
              "command line override 'job_config.timeout=86000': job_config.timeout: the sandbox would live 86720 s "
              "(job_config.install_timeout 600 s + job_config.timeout 86000 s + 120 s margin), above 24 h (86400 s), " +
                  limits + "; lower job_config.timeout or job_config.install_timeout");
    EXPECT_THAT(load_error({"cluster=e2b", "job_config.timeout=86300", "job_config.dependencies=[]"}),
                HasSubstr("the sandbox would live 86420 s (job_config.timeout 86300 s + 120 s margin)"));
    EXPECT_EQ(load({"cluster=e2b", "job_config.timeout=86280", "job_config.dependencies=[]"}).launcher.e2b.timeout, 86280s);
    EXPECT_EQ(load({"cluster=e2b", "job_config.timeout=85680"}).launcher.e2b.timeout, 85680s);
    EXPECT_THAT(load_error({"cluster=e2b", "job_config.install_timeout=25:00:00"}),
                HasSubstr("job_config.install_timeout: 90000 s is above 24 h (86400 s), " + limits));
    // The local backend does not read it.
    EXPECT_EQ(load({"job_config.timeout=100000"}).launcher.e2b.timeout, 100000s);

    // A job_spec's own timeout, against the same lifetime.
    gl::launcher_config cfg = load({"cluster=e2b"}).launcher;
    gl::job_spec job;
    job.program_path = "p.py";
    job.timeout = std::chrono::hours(24);
    boost::system::error_code ec;
    gl::diagnostics diag;
    gl::check_inputs(cfg, job, ec, diag);
    EXPECT_EQ(ec, gl::errc::invalid_job);
    EXPECT_THAT(diag.client_message, StartsWith("job_spec.timeout: the sandbox would live 87120 s"));
    job.timeout = std::chrono::hours(1);
    gl::check_inputs(cfg, job, ec, diag);
    EXPECT_FALSE(ec) << diag.client_message;
}

TEST_F(ConfigTest, AdditionalFilesGoWhereTheSandboxCanWriteAndTheLauncherDoesNot) {
    write("data.txt", "x");
    auto error = [&](const std::string& sandbox_path) {
        return load_error({"cluster=e2b", "job_config.additional_files={" + quoted(sandbox_path) + ": data.txt}"});
    };
    EXPECT_THAT(error("/etc/data.txt"),
                HasSubstr("job_config.additional_files./etc/data.txt: /etc/data.txt is outside /home/user and /tmp, the "
                          "folders a sandbox's files can be written to (a relative path is under /home/user)"));
    EXPECT_THAT(error("/data.txt"), HasSubstr("is outside /home/user and /tmp"));
    EXPECT_THAT(error("/home/username/x"), HasSubstr("is outside /home/user and /tmp"));
    for (const char* path : {"../etc/passwd", "/home/user/../etc/passwd", "a/../../b", "/tmp/.."})
        EXPECT_THAT(error(path), HasSubstr("'..' is not allowed in a sandbox path")) << path;
    EXPECT_THAT(error("evaluate.py"),
                HasSubstr("job_config.additional_files.evaluate.py: /home/user/evaluate.py is where the launcher uploads the evaluator"));
    EXPECT_THAT(error("./evaluate.py"), HasSubstr("is where the launcher uploads the evaluator"));
    EXPECT_THAT(error("/home/user/results/metrics.json"),
                HasSubstr("/home/user/results/metrics.json is in /home/user/results, the evaluator's results folder"));
    EXPECT_THAT(error("results"), HasSubstr("/home/user/results is in /home/user/results"));
    EXPECT_THAT(error("data/"), HasSubstr("names a folder"));
    EXPECT_THAT(error("/tmp"), HasSubstr("names a folder"));
    EXPECT_THAT(error("a\tb"), HasSubstr("job_config.additional_files.a\\x09b: a sandbox path cannot contain control characters"));
    EXPECT_THAT(load_error({"cluster=e2b", "job_config.additional_files={data.txt: data.txt, /home/user/data.txt: data.txt}"}),
                HasSubstr("job_config.additional_files./home/user/data.txt: the same sandbox file (/home/user/data.txt) "
                          "as job_config.additional_files.data.txt"));

    const auto ok = load({"cluster=e2b", "job_config.additional_files={data.txt: data.txt, /tmp/x/y.bin: data.txt, "
                          "/home/user/results_old/z: data.txt, ./sub/./w: data.txt}"})
                        .launcher.e2b.additional_files;
    EXPECT_EQ(ok.size(), 4u);
    // The local backend does not upload anything: not checked there.
    EXPECT_EQ(load({"job_config.additional_files={/etc/x: data.txt}"}).launcher.e2b.additional_files.size(), 1u);

    // validate() for configurations built in code; check_inputs() for a collision with a candidate.
    gl::launcher_config cfg = load({"cluster=e2b"}).launcher;
    cfg.e2b.additional_files["/opt/x"] = (root_ / "data.txt").string();
    EXPECT_THAT(validate_error(cfg), StartsWith("job_config.additional_files./opt/x: /opt/x is outside /home/user and /tmp"));
    cfg.e2b.additional_files = {{"cand.py", (root_ / "data.txt").string()}};
    write("evaluate.py", "");
    write("cand.py", "");
    cfg.eval_program_path = root_ / "evaluate.py";
    EXPECT_EQ(gl::check_inputs(cfg, {root_ / "cand.py"}, "programs"),
              "job_config.additional_files.cand.py: /home/user/cand.py is where the candidate program " +
                  (root_ / "cand.py").string() + " goes in the sandbox; upload the file elsewhere");
}

TEST_F(ConfigTest, JobSpecExtraArgsAndEnvAreCheckedAndRejectedAtSubmit) {
    gl::launcher_config cfg = load().launcher;
    boost::system::error_code ec;
    gl::diagnostics diag;
    gl::job_spec job;
    job.program_path = "p.py";
    job.extra_args["program_path"] = "other.py";
    gl::check_inputs(cfg, job, ec, diag);
    EXPECT_EQ(ec, gl::errc::invalid_job);
    EXPECT_THAT(diag.client_message, StartsWith("job_spec.extra_args.program_path: --program_path is passed by the launcher itself"));
    job.extra_args = {{"results", "x"}};
    gl::check_inputs(cfg, job, ec, diag);
    EXPECT_THAT(diag.client_message, StartsWith("job_spec.extra_args.results: '--results' is an abbreviation"));
    job.extra_args = {{"flag", "--program_path"}};
    gl::check_inputs(cfg, job, ec, diag);
    EXPECT_THAT(diag.client_message, StartsWith("job_spec.extra_args.flag: the value '--program_path' would be read"));
    job.extra_args = {{"seed", 3}};
    job.env = {{"A=B", "1"}};
    gl::check_inputs(cfg, job, ec, diag);
    EXPECT_EQ(ec, gl::errc::invalid_job);
    EXPECT_THAT(diag.client_message, StartsWith("job_spec.env.A=B: not a valid environment variable name: it contains '='"));
    job.env = {{"A", std::string("x\0y", 3)}};
    gl::check_inputs(cfg, job, ec, diag);
    EXPECT_THAT(diag.client_message, StartsWith("job_spec.env.A: the value contains a NUL byte"));
    job.env = {{"", "1"}};
    gl::check_inputs(cfg, job, ec, diag);
    EXPECT_THAT(diag.client_message, StartsWith("job_spec.env.: not a valid environment variable name: the name is empty"));
    job.env = {{"GOOD", "1"}};
    gl::check_inputs(cfg, job, ec, diag);
    EXPECT_FALSE(ec);
    EXPECT_TRUE(diag.client_message.empty());

    // submit() makes the same check: the job is rejected, nothing runs.
    boost::asio::io_context io;
    auto launcher = gl::make_launcher(cfg, io.get_executor());
    job.extra_args = {{"results_dir", "/tmp/elsewhere"}};
    boost::system::error_code submit_ec;
    gl::job_result result;
    bool done = false;
    launcher->async_submit(job, [&](boost::system::error_code e, gl::job_result r) {
        submit_ec = e;
        result = std::move(r);
        done = true;
    });
    while (!done && io.run_one() > 0) {
    }
    EXPECT_EQ(submit_ec, gl::errc::invalid_job);
    EXPECT_THAT(result.diagnostic, StartsWith("job_spec.extra_args.results_dir: --results_dir is passed by the launcher itself"));
}

TEST_F(ConfigTest, E2bApiKeyWhiteSpaceIsTrimmedAndInnerWhiteSpaceRefusedWithoutShowingTheKey) {
    env_["E2B_API_KEY"] = " e2b_secretkey\r\n";
    EXPECT_EQ(load({"cluster=e2b"}).launcher.e2b.api_key, "e2b_secretkey");
    env_.clear();
    write(".env", "E2B_API_KEY=e2b_secretkey\r\nE2B_DOMAIN=dotenv.example\r\n");
    auto crlf = load({"cluster=e2b"});
    EXPECT_EQ(crlf.launcher.e2b.api_key, "e2b_secretkey");
    EXPECT_EQ(crlf.launcher.e2b.domain, "dotenv.example");
    write(".env", "E2B_API_KEY=\"e2b_secretkey \"\r\n");
    EXPECT_EQ(load({"cluster=e2b"}).launcher.e2b.api_key, "e2b_secretkey");
    write(".env", "E2B_API_KEY='e2b_secretkey\t'\r\n");
    EXPECT_EQ(load({"cluster=e2b"}).launcher.e2b.api_key, "e2b_secretkey");

    write(".env", "E2B_API_KEY=\"e2b_secret key\"\n");
    std::string message = load_error({"cluster=e2b"});
    EXPECT_EQ(message, "E2B_API_KEY (from .env) contains white space, a control character or a non-ASCII byte inside "
                       "the key (the key is not shown); copy it again from the E2B dashboard");
    EXPECT_EQ(message.find("secret"), std::string::npos);
    fs::remove(root_ / ".env");
    for (const std::string& key : std::vector<std::string>{"e2b_secret\tkey", std::string("e2b_secret\0key", 14),
                                                           "e2b_secret\x7fkey", "e2b_secr\xc3\xa9tkey"}) {
        env_["E2B_API_KEY"] = key;
        message = load_error({"cluster=e2b"});
        EXPECT_THAT(message, StartsWith("E2B_API_KEY (from the environment) contains white space"));
        EXPECT_EQ(message.find("secret"), std::string::npos);
    }
    // Only white space: not set (make_launcher then says E2B_API_KEY is not set).
    env_["E2B_API_KEY"] = " \r\n";
    EXPECT_EQ(load({"cluster=e2b"}).launcher.e2b.api_key, "");
}

TEST(ParseDotenv, CrlfAndCrLineEndsForEveryKindOfValue) {
    const auto values = gl::parse_dotenv(
        "# comment\r\n"
        "PLAIN=value\r\n"
        "export EXPORTED=yes\r\n"
        "DOUBLE=\"quoted\"\r\n"
        "SINGLE='single'\r\n"
        "MULTI=\"first\r\nsecond\"\r\n"
        "COMMENTED=abc # note\r\n"
        "EMPTY=\r\n"
        "OLD_MAC=cr\rAFTER=1\r");
    EXPECT_EQ(values.at("PLAIN"), "value");
    EXPECT_EQ(values.at("EXPORTED"), "yes");
    EXPECT_EQ(values.at("DOUBLE"), "quoted");
    EXPECT_EQ(values.at("SINGLE"), "single");
    EXPECT_EQ(values.at("MULTI"), "first\nsecond");
    EXPECT_EQ(values.at("COMMENTED"), "abc");
    EXPECT_EQ(values.at("EMPTY"), "");
    EXPECT_EQ(values.at("OLD_MAC"), "cr");
    EXPECT_EQ(values.at("AFTER"), "1");
}

TEST_F(ConfigTest, AliasAndInterpolationExpansionIsBounded) {
    // "Billion laughs": nine levels of nine aliases (9^9 values once copied).
    std::string laughs = "a: &a [x, x, x, x, x, x, x, x, x]\n";
    std::string previous = "a";
    for (const char* name : {"b", "c", "d", "e", "f", "g", "h", "i"}) {
        laughs += std::string(name) + ": &" + name + " [";
        for (int i = 0; i < 9; ++i) laughs += (i ? ", *" : "*") + previous;
        laughs += "]\n";
        previous = name;
    }
    write("configs/variant/demo.yaml", laughs);
    EXPECT_EQ(load_error(), "configs/variant/demo.yaml:6: f: the document expands to more than 100000 values (YAML "
                            "aliases nested in aliases?); refusing to expand it");
    // The same in a command-line value.
    EXPECT_THAT(load_error({"+bomb={a: &a [x, x, x, x, x, x, x, x, x, x], b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a], "
                            "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b], d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c], "
                            "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d], f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e], "
                            "g: [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]}"}),
                HasSubstr("the document expands to more than 100000 values"));
    // Aliases that stay small are fine.
    write("configs/variant/demo.yaml", "base: &base {x: 1, y: [1, 2]}\ntask:\n  one: *base\n  two: *base\n");
    EXPECT_EQ(at(load(), "task", "two"), R"({"x":1,"y":[1,2]})");

    // Interpolation: strings repeated in strings, in an engine key (fatal all the same).
    std::string strings = "task:\n  a: \"" + std::string(1024, 'x') + "\"\n";
    previous = "a";
    for (const char* name : {"b", "c", "d", "e", "f", "g"}) {
        strings += std::string("  ") + name + ": \"";
        for (int i = 0; i < 16; ++i) strings += "${task." + previous + "}";
        strings += "\"\n";
        previous = name;
    }
    write("configs/variant/demo.yaml", strings);
    EXPECT_THAT(load_error(), HasSubstr("task.e: interpolation expands to more than 100000 values or 16 MiB of text"));
    // Whole-node references repeated in lists.
    std::string nodes = "task:\n  a: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n";
    previous = "a";
    for (const char* name : {"b", "c", "d", "e", "f", "g", "h"}) {
        nodes += std::string("  ") + name + ": [";
        for (int i = 0; i < 10; ++i) nodes += (i ? ", \"${task." : "\"${task.") + previous + "}\"";
        nodes += "]\n";
        previous = name;
    }
    write("configs/variant/demo.yaml", nodes);
    EXPECT_THAT(load_error(), HasSubstr("interpolation expands to more than 100000 values"));
}
