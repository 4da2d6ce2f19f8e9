// module.cpp - genesis_launch._native: the library for Python (pybind11).
//
// Thin on purpose: the Python side (genesis_launch/__init__.py) turns results into
// JobResult objects and futures. Rules kept here:
//   - the GIL is released whenever C++ waits (shutdown, load) and never held by an I/O
//     thread except while it calls into Python;
//   - Python objects captured by C++ callbacks are released with the GIL held;
//   - a launcher is shut down (every job cancelled, every process or sandbox cleaned
//     up, the I/O threads joined) by shutdown() or, at the latest, by its destructor.
#include <genesis/launch/launch.hpp>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace py = pybind11;
namespace gl = genesis::launch;
namespace fs = std::filesystem;

namespace {

// Raised for configuration errors; the Python side adds file, line and key.
py::object* config_error_type = nullptr;
py::object* launch_error_type = nullptr;

[[noreturn]] void raise_config_error(const std::string& message) {
    PyErr_SetString(config_error_type->ptr(), message.c_str());
    throw py::error_already_set();
}

[[noreturn]] void raise_launch_error(const boost::system::error_code& ec, const gl::diagnostics& diag) {
    const std::string message = diag.empty() ? ec.message() : diag.to_string();
    if (ec == gl::errc::config_error) raise_config_error(message);
    PyErr_SetString(launch_error_type->ptr(), message.c_str());
    throw py::error_already_set();
}

// A Python callable that may be dropped on any thread: the GIL is taken to release it.
struct py_callable {
    explicit py_callable(py::object f) : fn(new py::object(std::move(f))) {}
    py_callable(const py_callable&) = delete;
    py_callable& operator=(const py_callable&) = delete;
    ~py_callable() {
        if (!fn) return;
        if (!Py_IsInitialized()) {
            // The interpreter is gone; so is the object's memory. Never touch it.
            (void)fn;
            return;
        }
        py::gil_scoped_acquire gil;
        delete fn;
    }
    // Calls with the GIL held, with the arguments make_args() builds (under the GIL
    // too). The Python side's wrappers never raise; a failure here must not reach the
    // I/O thread either.
    template <typename MakeArgs>
    void call(MakeArgs make_args) const {
        if (!Py_IsInitialized()) return;
        py::gil_scoped_acquire gil;
        try {
            py::tuple args = make_args();
            (*fn)(*args);
        } catch (py::error_already_set& e) {
            e.discard_as_unraisable("genesis_launch callback");
        }
    }
    py::object* fn;
};

py::object json_to_python(const boost::json::value& v) {
    // Kept for the life of the process (never destroyed after the interpreter).
    static py::object* loads = new py::object(py::module_::import("json").attr("loads"));
    return (*loads)(boost::json::serialize(v));
}

// ---- config ------------------------------------------------------------------------

class native_config {
public:
    explicit native_config(gl::loaded_config cfg) : cfg_(std::move(cfg)) {}

    const gl::loaded_config& loaded() const { return cfg_; }

    py::object tree() const { return json_to_python(cfg_.tree); }
    py::object unresolved_tree() const { return json_to_python(cfg_.unresolved_tree); }
    std::vector<std::string> sources() const {
        std::vector<std::string> out;
        for (const auto& s : cfg_.sources) out.push_back(s.string());
        return out;
    }
    std::vector<std::string> programs() const {
        std::vector<std::string> out;
        for (const auto& p : cfg_.programs) out.push_back(p.string());
        return out;
    }
    std::string job_type() const { return cfg_.launcher.type == gl::job_type::e2b ? "e2b" : "local"; }

private:
    gl::loaded_config cfg_;
};

std::unique_ptr<native_config> load(const std::string& config_dir, const std::vector<std::string>& overrides,
                                    const std::optional<std::string>& working_dir,
                                    const std::optional<std::string>& env_file) {
    gl::load_options options;
    options.config_dir = config_dir;
    options.overrides = overrides;
    if (working_dir) options.working_dir = *working_dir;
    std::optional<std::map<std::string, std::string>> file_values;
    if (env_file) {
        std::ifstream in(*env_file, std::ios::binary);
        if (!in) raise_config_error(*env_file + ": cannot read the env file");
        std::stringstream text;
        text << in.rdbuf();
        file_values = gl::parse_dotenv(text.str());
        // The environment first, then the given file (as python-dotenv without override).
        options.getenv = [values = *file_values](const std::string& name) -> std::optional<std::string> {
            if (const char* v = std::getenv(name.c_str()); v && *v) return std::string(v);
            if (auto it = values.find(name); it != values.end()) return it->second;
            return std::nullopt;
        };
    }
    boost::system::error_code ec;
    gl::diagnostics diag;
    gl::loaded_config cfg;
    {
        py::gil_scoped_release nogil;
        cfg = gl::load_config(options, ec, diag);
    }
    if (ec) raise_launch_error(ec, diag);
    return std::make_unique<native_config>(std::move(cfg));
}

// ---- launcher ----------------------------------------------------------------------

// The C++ side of one launcher: an io_context, its threads, the JobLauncher.
struct launcher_core {
    boost::asio::io_context io;
    boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work = boost::asio::make_work_guard(io);
    std::unique_ptr<gl::JobLauncher> launcher;
    std::vector<std::thread> threads;

    bool on_own_thread() const {
        for (const auto& t : threads)
            if (t.get_id() == std::this_thread::get_id()) return true;
        return false;
    }

    // Without the GIL: the I/O threads may need it to deliver the last results.
    void shutdown() {
        if (launcher) launcher->shutdown();
        work.reset();
        for (auto& t : threads)
            if (t.joinable()) t.join();
        threads.clear();
    }
};

class native_launcher {
public:
    native_launcher(const native_config& config, int threads) : core_(std::make_unique<launcher_core>()) {
        if (threads < 1) throw py::value_error("threads must be at least 1");
        boost::system::error_code ec;
        gl::diagnostics diag;
        core_->launcher = gl::make_launcher(config.loaded().launcher, core_->io.get_executor(), ec, diag);
        if (ec) raise_launch_error(ec, diag);
        for (int i = 0; i < threads; ++i) core_->threads.emplace_back([io = &core_->io] { io->run(); });
    }

    ~native_launcher() { close(); }

    // shutdown(), except on one of its own threads (a callback dropped the last
    // reference): that thread cannot join itself, so another thread finishes the
    // shutdown once the callback has returned.
    void close() {
        if (!core_ || stopped_.exchange(true)) return;
        if (core_->on_own_thread()) {
            // Dropped inside one of its own callbacks: that thread cannot join itself,
            // so another thread finishes the shutdown once the callback has returned.
            std::thread([core = std::move(core_)] { core->shutdown(); }).detach();
            return;
        }
        std::optional<py::gil_scoped_release> nogil;
        if (Py_IsInitialized() && PyGILState_Check()) nogil.emplace();
        core_->shutdown();
    }

    native_launcher(const native_launcher&) = delete;
    native_launcher& operator=(const native_launcher&) = delete;

    // Submits; `done(result_json, stdout, stderr)` is called once, on an I/O thread.
    std::string submit(const std::string& program, const std::string& results_dir, const std::string& evaluator,
                       const std::string& extra_args_json, std::optional<double> timeout_s,
                       std::map<std::string, std::string> env, py::object on_stdout, py::object on_stderr,
                       const std::string& job_id, py::object done) {
        if (stopped_) throw py::value_error("the launcher is shut down");
        gl::job_spec spec;
        spec.job_id = job_id.empty() ? gl::JobLauncher::make_job_id() : job_id;
        spec.program_path = program;
        spec.results_dir = results_dir;
        spec.evaluator_path = evaluator;
        if (!extra_args_json.empty()) {
            boost::system::error_code ec;
            auto v = boost::json::parse(extra_args_json, ec);
            if (ec || !v.is_object()) throw py::value_error("extra_args must be a dict");
            spec.extra_args = std::move(v.as_object());
        }
        if (timeout_s) {
            if (!(*timeout_s > 0)) throw py::value_error("timeout must be positive");
            spec.timeout = std::chrono::milliseconds(static_cast<std::int64_t>(*timeout_s * 1000.0 + 0.5));
        }
        spec.env = std::move(env);
        if (!on_stdout.is_none()) {
            auto cb = std::make_shared<py_callable>(std::move(on_stdout));
            spec.on_stdout = [cb](std::string_view line) {
                cb->call([line] { return py::make_tuple(py::bytes(line.data(), line.size())); });
            };
        }
        if (!on_stderr.is_none()) {
            auto cb = std::make_shared<py_callable>(std::move(on_stderr));
            spec.on_stderr = [cb](std::string_view line) {
                cb->call([line] { return py::make_tuple(py::bytes(line.data(), line.size())); });
            };
        }
        auto finished = std::make_shared<py_callable>(std::move(done));
        const fs::path program_path = spec.program_path;
        const std::string id = spec.job_id;
        {
            py::gil_scoped_release nogil;
            core_->launcher->async_submit(
                std::move(spec), [finished, program_path, id](boost::system::error_code ec, gl::job_result r) mutable {
                    if (ec) {
                        // Rejected before it ran: a result that says so.
                        r.job_id = id;
                        r.result = gl::outcome::setup_failed;
                        if (r.diagnostic.empty()) r.diagnostic = ec.message();
                    }
                    const std::string json = boost::json::serialize(gl::to_json(r, program_path));
                    finished->call([&] {
                        return py::make_tuple(py::str(json), py::bytes(r.stdout_text), py::bytes(r.stderr_text));
                    });
                });
        }
        return id;
    }

    void cancel(const std::string& job_id) {
        if (stopped_) return;
        py::gil_scoped_release nogil;
        core_->launcher->cancel(job_id);
    }

    void cancel_all() {
        if (stopped_) return;
        py::gil_scoped_release nogil;
        core_->launcher->cancel_all();
    }

    py::dict usage() const {
        py::dict d;
        if (stopped_ || !core_->launcher) return d;
        const auto u = core_->launcher->usage();
        d["submitted"] = u.submitted;
        d["queued"] = u.queued;
        d["running"] = u.running;
        d["finished"] = u.finished;
        d["rejected"] = u.rejected;
        return d;
    }

    // Cancels what is left, waits for every cleanup, joins the I/O threads.
    void shutdown() {
        if (core_ && core_->on_own_thread())
            throw py::value_error("shutdown() was called from one of the launcher's own threads (a callback); "
                                  "call it from another thread");
        std::lock_guard<std::mutex> lock(shutdown_mutex_);
        if (stopped_.exchange(true)) return;
        py::gil_scoped_release nogil;
        core_->shutdown();
    }

    bool is_shut_down() const { return stopped_; }

private:
    std::unique_ptr<launcher_core> core_;
    std::atomic<bool> stopped_{false};
    std::mutex shutdown_mutex_;
};

}  // namespace

PYBIND11_MODULE(_native, m) {
    m.doc() = "genesis-launch's native core; use the genesis_launch package";
    // Kept for the life of the process (never destroyed after the interpreter).
    config_error_type = new py::object(py::reinterpret_steal<py::object>(
        PyErr_NewException("genesis_launch._native.NativeConfigError", PyExc_ValueError, nullptr)));
    launch_error_type = new py::object(py::reinterpret_steal<py::object>(
        PyErr_NewException("genesis_launch._native.NativeLaunchError", PyExc_RuntimeError, nullptr)));
    m.attr("NativeConfigError") = *config_error_type;
    m.attr("NativeLaunchError") = *launch_error_type;
    m.attr("version") = std::string(gl::version());

    py::class_<native_config>(m, "NativeConfig")
        .def("tree", &native_config::tree)
        .def("unresolved_tree", &native_config::unresolved_tree)
        .def_property_readonly("sources", &native_config::sources)
        .def_property_readonly("programs", &native_config::programs)
        .def_property_readonly("notes", [](const native_config& c) { return c.loaded().notes; })
        .def_property_readonly("choices", [](const native_config& c) { return c.loaded().choices; })
        .def_property_readonly("job_type", &native_config::job_type)
        .def_property_readonly("max_parallel_jobs", [](const native_config& c) { return c.loaded().launcher.max_parallel_jobs; })
        .def_property_readonly("init_program_path",
                               [](const native_config& c) { return c.loaded().launcher.init_program_path.string(); })
        .def_property_readonly("eval_program_path",
                               [](const native_config& c) { return c.loaded().launcher.eval_program_path.string(); })
        .def_property_readonly("results_dir", [](const native_config& c) { return c.loaded().launcher.results_dir.string(); })
        .def_property_readonly("dotenv_file", [](const native_config& c) -> std::optional<std::string> {
            if (!c.loaded().dotenv_file) return std::nullopt;
            return c.loaded().dotenv_file->string();
        });

    m.def("load_config", &load, py::arg("config_dir"), py::arg("overrides"), py::arg("working_dir") = py::none(),
          py::arg("env_file") = py::none());

    py::class_<native_launcher>(m, "NativeLauncher")
        .def(py::init<const native_config&, int>(), py::arg("config"), py::arg("threads") = 1)
        .def("submit", &native_launcher::submit, py::arg("program"), py::arg("results_dir"), py::arg("evaluator"),
             py::arg("extra_args_json"), py::arg("timeout"), py::arg("env"), py::arg("on_stdout"),
             py::arg("on_stderr"), py::arg("job_id"), py::arg("done"))
        .def("cancel", &native_launcher::cancel)
        .def("cancel_all", &native_launcher::cancel_all)
        .def("usage", &native_launcher::usage)
        .def("shutdown", &native_launcher::shutdown)
        .def("close", &native_launcher::close)
        .def_property_readonly("is_shut_down", &native_launcher::is_shut_down);
}
