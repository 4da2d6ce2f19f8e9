// hydra_tree_test.cpp - engine config trees loaded unchanged: the Genesis- and
// ShinkaEvolve-shaped trees of tests/data/hydra_trees, one test per Hydra feature the
// loader supports, one per error class, the key reference in docs/configuration.md,
// and the .env search.
#include "genesis/launch/config.hpp"
#include "genesis/launch/job_launcher.hpp"
#include "test_support.hpp"

#include <boost/json/serialize.hpp>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <regex>
#include <string>
#include <vector>

namespace gl = genesis::launch;
namespace fs = std::filesystem;
namespace json = boost::json;
using namespace std::chrono_literals;
using genesis_test::read_file;
using genesis_test::temp_dir;
using genesis_test::write_file;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

namespace {

fs::path tree(const std::string& name) { return genesis_test::data_dir() / "hydra_trees" / name; }

struct loader {
    fs::path root;  // working folder; configs/ below it
    std::map<std::string, std::string> env;

    gl::load_options options(std::vector<std::string> overrides) const {
        gl::load_options o;
        o.config_dir = root / "configs";
        o.working_dir = root;
        o.overrides = std::move(overrides);
        o.getenv = [env = env](const std::string& name) -> std::optional<std::string> {
            auto it = env.find(name);
            if (it == env.end()) return std::nullopt;
            return it->second;
        };
        return o;
    }

    gl::loaded_config load(std::vector<std::string> overrides = {}) const {
        boost::system::error_code ec;
        gl::diagnostics diag;
        auto cfg = gl::load_config(options(std::move(overrides)), ec, diag);
        EXPECT_FALSE(ec) << diag.client_message;
        return cfg;
    }

    std::string error(std::vector<std::string> overrides = {}) const {
        boost::system::error_code ec;
        gl::diagnostics diag;
        gl::load_config(options(std::move(overrides)), ec, diag);
        EXPECT_EQ(ec, gl::errc::config_error);
        EXPECT_EQ(diag.client_message.find('\n'), std::string::npos);
        return diag.client_message;
    }
};

std::string str(const json::value& v) { return v.is_string() ? std::string(v.as_string()) : json::serialize(v); }

const json::value& at(const gl::loaded_config& cfg, const std::string& dotted) {
    const json::value* v = nullptr;
    json::object const* o = &cfg.tree;
    std::string rest = dotted;
    while (true) {
        const auto dot = rest.find('.');
        const std::string part = rest.substr(0, dot);
        v = &o->at(part);
        if (dot == std::string::npos) return *v;
        o = &v->as_object();
        rest = rest.substr(dot + 1);
    }
}

bool noted(const gl::loaded_config& cfg, const std::string& text) {
    return std::any_of(cfg.notes.begin(), cfg.notes.end(),
                       [&](const std::string& n) { return n.find(text) != std::string::npos; });
}

std::vector<std::string> source_names(const gl::loaded_config& cfg, const fs::path& configs) {
    std::vector<std::string> out;
    for (const auto& s : cfg.sources) out.push_back(s.lexically_relative(configs).generic_string());
    return out;
}

// ---- the Genesis-shaped tree ------------------------------------------------------

TEST(GenesisTree, DefaultVariantComposesInDefaultsListOrder) {
    const loader l{tree("genesis")};
    const auto cfg = l.load();
    EXPECT_THAT(source_names(cfg, l.root / "configs"),
                ElementsAre("config.yaml", "database/island_large.yaml", "evolution/large_budget.yaml",
                            "task/toy_packing.yaml", "cluster/local.yaml", "variant/toy_example.yaml"));
    EXPECT_EQ(cfg.choices.at("database"), "island_large");  // the variant's override
    EXPECT_EQ(cfg.choices.at("task"), "toy_packing");
    EXPECT_EQ(cfg.cluster, "local");
    EXPECT_EQ(cfg.variant, "toy_example");

    const auto& launcher = cfg.launcher;
    EXPECT_EQ(launcher.type, gl::job_type::local);  // the cluster's job_type beats the task's slurm_conda
    EXPECT_EQ(launcher.max_parallel_jobs, 6);
    // job_config.eval_program_path: ${distributed_job_config.eval_program_path}
    EXPECT_EQ(launcher.eval_program_path, l.root / "genesis/eval_hydra.py");
    EXPECT_EQ(launcher.init_program_path, l.root / "examples/toy/initial.py");
    // evo_config.results_dir: ${output_dir} = ${results_dir}/${exp_name}/${run_name}${variant_suffix},
    // run_name = ${now:%Y.%m.%d}${now:%H%M%S}
    const std::string results = launcher.results_dir.lexically_relative(l.root).generic_string();
    EXPECT_TRUE(std::regex_match(results, std::regex(R"(results/genesis_toy/\d{4}\.\d{2}\.\d{8}_example)"))) << results;
    EXPECT_EQ(str(at(cfg, "output_dir")), results);

    // Engine keys are carried as they are.
    EXPECT_EQ(str(at(cfg, "evaluate_function.program_path")), "???");
    EXPECT_EQ(str(at(cfg, "evaluate_function._target_")), "examples.toy.evaluate.main");
    EXPECT_EQ(str(at(cfg, "db_config.num_islands")), "5");
    EXPECT_EQ(str(at(cfg, "evo_config.llm_models")), R"(["model-a","model-b"])");
    EXPECT_EQ(str(at(cfg, "hydra.run.dir")), "${output_dir}");
    // The tree Hydra would save: unresolved, without hydra.
    EXPECT_EQ(str(cfg.unresolved_tree.at("output_dir")), "${results_dir}/${exp_name}/${run_name}${variant_suffix}");
    EXPECT_FALSE(cfg.unresolved_tree.contains("hydra"));
}

TEST(GenesisTree, E2bVariantWithPackageHeader) {
    const loader l{tree("genesis"), {{"E2B_API_KEY", "e2b_test"}}};
    const auto cfg = l.load({"variant=toy_e2b"});
    EXPECT_EQ(cfg.cluster, "e2b");
    EXPECT_EQ(cfg.choices.at("database"), "island_small");
    const auto& launcher = cfg.launcher;
    EXPECT_EQ(launcher.type, gl::job_type::e2b);
    EXPECT_EQ(launcher.max_parallel_jobs, 5);
    EXPECT_EQ(launcher.eval_program_path, l.root / "examples/toy/evaluate.py");
    EXPECT_EQ(launcher.e2b.template_id, "base");
    EXPECT_EQ(launcher.e2b.timeout, 120s);
    EXPECT_EQ(launcher.e2b.dependencies, std::vector<std::string>{"numpy"});
    EXPECT_EQ(launcher.e2b.api_key, "e2b_test");
    EXPECT_TRUE(std::regex_search(launcher.results_dir.string(), std::regex(R"(genesis_toy/[0-9.]+_e2b$)")));
}

TEST(GenesisTree, CommandLineChoicesInEitherSpelling) {
    const loader l{tree("genesis")};
    // Genesis's own launcher writes group@_global_=name; plain group=name works too.
    for (const auto& overrides : {std::vector<std::string>{"variant=toy_standalone", "database=island_large"},
                                  std::vector<std::string>{"variant@_global_=toy_standalone",
                                                           "database@_global_=island_large"}}) {
        const auto cfg = l.load(overrides);
        EXPECT_EQ(cfg.choices.at("database"), "island_large");  // the command line beats the variant
        EXPECT_EQ(cfg.choices.at("evolution"), "small_budget");
        EXPECT_EQ(cfg.launcher.eval_program_path, l.root / "examples/toy/evaluate.py");
        EXPECT_EQ(cfg.launcher.max_parallel_jobs, 1);
        EXPECT_FALSE(cfg.tree.contains("variant"));  // merged at the top level
    }
}

TEST(GenesisTree, SlurmClusterIsOneClearError) {
    const loader l{tree("genesis")};
    EXPECT_EQ(l.error({"cluster=gcp"}),
              "configs/task/toy_packing.yaml:24: evo_config.job_type: 'slurm_conda' is a Slurm job type, which "
              "genesis-launch does not run (supported: local, e2b); choose cluster=local or cluster=e2b, or set "
              "evo_config.job_type=local");
    EXPECT_THAT(l.error({"evo_config.job_type=slurm_docker"}), HasSubstr("(supported: local, e2b)"));
}

TEST(GenesisTree, WholeNodeInterpolationAndPlainConfigDefault) {
    // cluster/gcp.yaml lists `- remote` (cluster/remote.yaml: job_config: ${distributed_job_config}).
    const loader l{tree("genesis")};
    const auto cfg = l.load({"cluster=gcp", "evo_config.job_type=local"});
    EXPECT_THAT(source_names(cfg, l.root / "configs"),
                ElementsAre("config.yaml", "database/island_large.yaml", "evolution/large_budget.yaml",
                            "task/toy_packing.yaml", "cluster/remote.yaml", "cluster/gcp.yaml",
                            "variant/toy_example.yaml"));
    EXPECT_EQ(str(at(cfg, "job_config.partition")), "a3,b2");  // gcp's key, seen through the reference
    EXPECT_EQ(str(at(cfg, "job_config._target_")), "genesis.launch.SlurmCondaJobConfig");
    EXPECT_EQ(cfg.launcher.local.conda_env, "genesis");
    EXPECT_EQ(cfg.launcher.local.time, std::chrono::milliseconds(600'000));
    EXPECT_TRUE(noted(cfg, "job_config.gpus: carried, not used here (Slurm setting)"));
    EXPECT_TRUE(noted(cfg, "job_config.partition: carried"));
}

// ---- the ShinkaEvolve-shaped tree -------------------------------------------------

TEST(ShinkaTree, DefaultVariantAndItsConcurrencyKey) {
    const loader l{tree("shinka")};
    const auto cfg = l.load();
    EXPECT_EQ(cfg.variant, "default");
    EXPECT_EQ(cfg.launcher.type, gl::job_type::local);
    EXPECT_EQ(cfg.launcher.eval_program_path, l.root / "shinka/eval_hydra.py");
    // No evo_config.max_parallel_jobs: ShinkaEvolve's top-level max_evaluation_jobs.
    EXPECT_EQ(cfg.launcher.max_parallel_jobs, 3);
    EXPECT_EQ(l.load({"+evo_config.max_parallel_jobs=7"}).launcher.max_parallel_jobs, 7);
    EXPECT_EQ(str(at(cfg, "max_proposal_jobs")), "6");
    EXPECT_EQ(str(at(cfg, "evo_config.enable_controlled_oversubscription")), "false");
}

TEST(ShinkaTree, ItsJobKeysAreMapped) {
    const loader l{tree("shinka")};
    const auto cfg = l.load({"variant=toy_tuned"});
    EXPECT_EQ(cfg.launcher.local.python, "python3");  // python_executable
    EXPECT_EQ(cfg.launcher.numeric_threads_per_job, 2);
    EXPECT_EQ(cfg.launcher.eval_verbose, false);
    EXPECT_FALSE(cfg.launcher.local.activate_script);

    const auto activated = l.load({"variant=toy_tuned", "+job_config.activate_script=env/bin/activate"});
    EXPECT_EQ(activated.launcher.local.activate_script, (l.root / "env/bin/activate").string());
    EXPECT_THAT(l.error({"variant=toy_tuned", "+job_config.activate_script=a", "+job_config.conda_env=b"}),
                HasSubstr("job_config.activate_script: cannot be combined with job_config.conda_env"));

    const auto env = gl::numeric_thread_variables(2);
    EXPECT_EQ(env.at("OMP_NUM_THREADS"), "2");
    EXPECT_EQ(env.at("OPENBLAS_NUM_THREADS"), "2");
    EXPECT_EQ(env.at("MKL_NUM_THREADS"), "2");
    EXPECT_EQ(env.at("OMP_DYNAMIC"), "FALSE");
    EXPECT_EQ(env.size(), 12u);
}

TEST(ShinkaTree, InitProgramBuiltByTheEngineIsCarried) {
    const loader l{tree("shinka")};
    const auto cfg = l.load({"variant=toy_markers_example"});
    EXPECT_TRUE(cfg.launcher.init_program_path.empty());
    EXPECT_TRUE(noted(cfg, "evo_config.init_program_path is a _target_ node the engine builds"));
    // Its nested interpolation (save_dir: ${output_dir}) is resolved like any other.
    EXPECT_EQ(str(at(cfg, "evo_config.init_program_path.save_dir")), str(at(cfg, "output_dir")));
    EXPECT_EQ(str(at(cfg, "evaluate_function.samples")), "4");
}

// ---- one test per Hydra feature -----------------------------------------------------

class HydraFeature : public ::testing::Test {
protected:
    void write(const std::string& relative, const std::string& text) { write_file(dir_ / "configs" / relative, text); }
    loader l() const { return loader{dir_.path()}; }
    temp_dir dir_;
};

TEST_F(HydraFeature, PackageHeaderAndTheGroupsOwnPackage) {
    write("config.yaml", "defaults:\n  - _self_\n  - task: a\n  - cluster: b\n  - extra: c\n");
    write("task/a.yaml", "marker: in_task_package\n");                                 // no header: under task
    write("cluster/b.yaml", "# a comment first\n# @package _global_\njob_config:\n  time: 7\n");  // at the root
    write("extra/c.yaml", "# @package settings.deep\nvalue: 1\n");                        // absolute package
    const auto cfg = l().load();
    EXPECT_EQ(str(at(cfg, "task.marker")), "in_task_package");
    EXPECT_EQ(cfg.launcher.local.time, 7s);
    EXPECT_EQ(str(at(cfg, "settings.deep.value")), "1");
    // An entry's @package beats the header.
    write("config.yaml", "defaults:\n  - extra@_global_: c\n");
    EXPECT_EQ(str(at(l().load(), "value")), "1");
}

TEST_F(HydraFeature, GlobalPackageAndOverrideEntries) {
    write("config.yaml", "defaults:\n  - _self_\n  - cluster@_global_: one\n  - variant@_global_: v\n");
    write("cluster/one.yaml", "job_config:\n  time: 1\n");
    write("cluster/two.yaml", "job_config:\n  time: 2\n");
    write("variant/v.yaml", "defaults:\n  - override /cluster@_global_: two\n  - _self_\nexp_name: v\n");
    EXPECT_EQ(l().load().launcher.local.time, 2s);
    EXPECT_EQ(l().load({"cluster=one"}).launcher.local.time, 1s);  // the command line wins

    // An override of a group that no list chooses is an error, as in Hydra.
    write("variant/v.yaml", "defaults:\n  - override /database@_global_: big\n");
    EXPECT_EQ(l().error(),
              "configs/variant/v.yaml:2: defaults: override /database: no defaults list chooses a 'database' config "
              "to override (write 'database@_global_: big' without 'override')");
}

TEST_F(HydraFeature, AGroupChoiceLeftMissingIsChosenElsewhere) {
    write("config.yaml", "defaults:\n  - cluster@_global_: ???\n  - variant@_global_: v\n");
    write("cluster/a.yaml", "exp_name: a\n");
    write("cluster/b.yaml", "exp_name: b\n");
    write("variant/v.yaml", "task: {}\n");
    EXPECT_EQ(l().error(), "configs/config.yaml:2: defaults: cluster: no option chosen (\?\?\?); choose one on the "
                           "command line: cluster=NAME");
    EXPECT_EQ(str(at(l().load({"cluster=a"}), "exp_name")), "a");
    write("variant/v.yaml", "defaults:\n  - override /cluster@_global_: b\n");
    EXPECT_EQ(str(at(l().load(), "exp_name")), "b");
}

TEST_F(HydraFeature, SelfPlacement) {
    write("cluster/c.yaml", "exp_name: from_cluster\n");
    write("config.yaml", "defaults:\n  - _self_\n  - cluster@_global_: c\nexp_name: from_primary\n");
    EXPECT_EQ(str(at(l().load(), "exp_name")), "from_cluster");
    write("config.yaml", "defaults:\n  - cluster@_global_: c\n  - _self_\nexp_name: from_primary\n");
    EXPECT_EQ(str(at(l().load(), "exp_name")), "from_primary");
    // Absent: last (Hydra 1.1 and later).
    write("config.yaml", "defaults:\n  - cluster@_global_: c\nexp_name: from_primary\n");
    EXPECT_EQ(str(at(l().load(), "exp_name")), "from_primary");
}

TEST_F(HydraFeature, MissingValuesAreErrorsOnlyWhereTheLauncherReads) {
    write("config.yaml", "evaluate_function:\n  program_path: ???\nevo_config:\n  init_program_path: a.py\n");
    EXPECT_EQ(str(at(l().load(), "evaluate_function.program_path")), "???");
    write("config.yaml", "evo_config:\n  init_program_path: ???\n");
    EXPECT_EQ(l().error(),
              "configs/config.yaml:2: evo_config.init_program_path: mandatory value ??? is not set (set it with "
              "evo_config.init_program_path=FILE, or give programs=...)");
    EXPECT_EQ(l().load({"evo_config.init_program_path=b.py"}).launcher.init_program_path, dir_ / "b.py");
    write("config.yaml", "job_config:\n  template: ???\n");
    EXPECT_THAT(l().error(), HasSubstr("configs/config.yaml:2: job_config.template: mandatory value ??? is not set"));
    // Through an interpolation.
    write("config.yaml", "task:\n  dir: ???\nevo_config:\n  results_dir: ${task.dir}/out\n");
    EXPECT_EQ(l().error(), "configs/config.yaml:4: evo_config.results_dir: cannot resolve '${task.dir}': 'task.dir' is "
                           "??? (a mandatory value that is not set)");
}

TEST_F(HydraFeature, ResolversAndNestedAndRelativeInterpolation) {
    write("config.yaml", R"(run_name: ${now:%Y.%m.%d}${now:%H%M%S}
stamp: ${now:%Y}
pick: results
names:
  results: chosen
  here: ${.results}-x
evo_config:
  results_dir: ${names.${pick}}/${run_name}
job_config:
  env_vars:
    SIBLING: ${..python}
  python: /usr/bin/python3
)");
    const auto cfg = l().load();
    const std::string run_name = str(at(cfg, "run_name"));
    EXPECT_TRUE(std::regex_match(run_name, std::regex(R"(\d{4}\.\d{2}\.\d{8})"))) << run_name;
    EXPECT_EQ(run_name.substr(0, 4), str(at(cfg, "stamp")));
    EXPECT_EQ(cfg.launcher.results_dir, dir_ / ("chosen/" + run_name));
    EXPECT_EQ(str(at(cfg, "names.here")), "chosen-x");
    EXPECT_EQ(cfg.launcher.env_vars.at("SIBLING"), "/usr/bin/python3");
}

TEST_F(HydraFeature, HydraKeyIsKeptAndReferable) {
    write("config.yaml", R"(out: runs/x
hydra:
  run:
    dir: ${out}
  job:
    chdir: false
evo_config:
  results_dir: ${hydra:runtime.output_dir}/results
)");
    const auto cfg = l().load();
    EXPECT_EQ(cfg.launcher.results_dir, dir_ / "runs/x/results");
    EXPECT_EQ(str(at(cfg, "hydra.run.dir")), "${out}");
    write("config.yaml", "evo_config:\n  results_dir: ${hydra:job.num}\n");
    EXPECT_THAT(l().error(), HasSubstr("'hydra.job.num' is set by Hydra at run time"));
}

TEST_F(HydraFeature, AFileWhoseJobConfigLandsUnderItsGroupIsAnErrorWithTheFix) {
    write("config.yaml", "defaults:\n  - cluster: local\n");
    write("cluster/local.yaml", "job_config:\n  time: 5\n");
    EXPECT_EQ(l().error(),
              "configs/cluster/local.yaml:1: job_config is merged under 'cluster.job_config', not at the top level: "
              "this file's package is 'cluster' (Hydra's default for its group); add '# @package _global_' as its "
              "first line, or choose it with 'cluster@_global_: ...' in the defaults list");
}

// ---- error classes --------------------------------------------------------------------

TEST_F(HydraFeature, LauncherKeyTyposAreErrorsEngineKeysNever) {
    write("config.yaml", "job_config:\n  dependncies: [numpy]\n");
    EXPECT_EQ(l().error(), "configs/config.yaml:2: job_config.dependncies: unknown key (did you mean 'dependencies'?)");
    write("config.yaml", "evo_config:\n  max_paralel_jobs: 2\n");
    EXPECT_THAT(l().error(), HasSubstr("(did you mean 'max_parallel_jobs'?)"));
    write("config.yaml", "evo_config:\n  job_type: e2b\n");
    EXPECT_THAT(l().error({"+job_config.instal_timeout=5"}), HasSubstr("did you mean 'install_timeout'"));
    // Engine keys anywhere, new ones included; Slurm fields in job_config.
    write("config.yaml", "evaluate_function:\n  anything: 1\nevo_config:\n  brand_new_llm_setting: 1\n"
                         "job_config:\n  gpus: 1\n  mem: 8G\n  totally_new_engine_field: 1\nverbos: true\n");
    const auto cfg = l().load();
    EXPECT_TRUE(noted(cfg, "job_config.totally_new_engine_field: not a genesis-launch key; carried, not used"));
    EXPECT_EQ(str(at(cfg, "job_config.gpus")), "1");
}

TEST_F(HydraFeature, ValidateIsTheSameForLoaderAndLauncher) {
    write("config.yaml", "evo_config:\n  max_parallel_jobs: 0\n");
    EXPECT_EQ(l().error(), "configs/config.yaml:2: evo_config.max_parallel_jobs: expected an integer >= 1, got 0");
    gl::launcher_config cfg;
    cfg.max_parallel_jobs = 0;
    boost::system::error_code ec;
    gl::diagnostics diag;
    gl::validate(cfg, ec, diag);
    EXPECT_EQ(ec, gl::errc::config_error);
    EXPECT_EQ(diag.client_message, "evo_config.max_parallel_jobs: expected an integer >= 1, got 0");
    cfg.max_parallel_jobs = 1;
    cfg.e2b.max_retries = 0;
    gl::validate(cfg, ec, diag);
    EXPECT_EQ(diag.client_message, "job_config.max_retries: expected an integer >= 1, got 0");
    cfg.e2b.max_retries = 5;
    gl::validate(cfg, ec, diag);
    EXPECT_FALSE(ec);
}

// ---- .env ------------------------------------------------------------------------------

TEST_F(HydraFeature, DotenvIsTheNearestInTheWorkingFolderOrAParent) {
    write("config.yaml", "evo_config:\n  job_type: e2b\n");
    write_file(dir_ / ".env", "E2B_API_KEY=e2b_parent_key\n");
    const fs::path work = dir_ / "work" / "deeper";
    fs::create_directories(work);
    loader deep{dir_.path()};
    auto options = deep.options({});
    options.working_dir = work;
    boost::system::error_code ec;
    gl::diagnostics diag;
    auto cfg = gl::load_config(options, ec, diag);
    ASSERT_FALSE(ec) << diag.client_message;
    EXPECT_EQ(cfg.launcher.e2b.api_key, "e2b_parent_key");
    EXPECT_EQ(cfg.dotenv_file, dir_ / ".env");
    EXPECT_TRUE(noted(cfg, "E2B_API_KEY read from " + (dir_ / ".env").string()));
    for (const auto& note : cfg.notes) EXPECT_EQ(note.find("e2b_parent_key"), std::string::npos) << note;

    // A nearer one wins; the environment beats both.
    write_file(dir_ / "work" / ".env", "E2B_API_KEY=e2b_near_key\n");
    EXPECT_EQ(gl::load_config(options, ec, diag).launcher.e2b.api_key, "e2b_near_key");
    options.getenv = [](const std::string& name) -> std::optional<std::string> {
        if (name == "E2B_API_KEY") return std::string("e2b_env_key");
        return std::nullopt;
    };
    cfg = gl::load_config(options, ec, diag);
    EXPECT_EQ(cfg.launcher.e2b.api_key, "e2b_env_key");
    EXPECT_FALSE(noted(cfg, "E2B_API_KEY read from"));
}

// ---- the key reference ---------------------------------------------------------------------

TEST(KeyReference, DocsHoldTheGeneratedTables) {
    const std::string doc = read_file(fs::path(GENESIS_SOURCE_DIR) / "docs" / "configuration.md");
    const std::string begin = "<!-- BEGIN KEY REFERENCE: generated by `genesis_launch --key-reference` -->\n";
    const std::string end = "<!-- END KEY REFERENCE -->";
    const auto b = doc.find(begin);
    const auto e = doc.find(end);
    ASSERT_NE(b, std::string::npos) << "docs/configuration.md lacks the key reference markers";
    ASSERT_NE(e, std::string::npos);
    EXPECT_EQ(doc.substr(b + begin.size(), e - b - begin.size()), "\n" + gl::config_key_reference() + "\n")
        << "docs/configuration.md is out of date: regenerate the section between the markers with "
           "`build/cli/genesis_launch --key-reference`";
}

TEST(KeyReference, EveryKeyTheLoaderReadsIsListed) {
    const std::string reference = gl::config_key_reference();
    for (const char* key : {"job_config.time", "job_config.dependencies", "job_config.activate_script",
                            "job_config.numeric_threads_per_job", "evo_config.job_type", "max_evaluation_jobs",
                            "programs", "job_config.sweep_on_start"})
        EXPECT_THAT(reference, HasSubstr(std::string("| `") + key + "` |"));
}

}  // namespace
