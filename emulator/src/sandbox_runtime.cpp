#include "sandbox_runtime.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/process/v2/process.hpp>
#include <boost/process/v2/stdio.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <deque>
#include <fstream>
#include <sstream>

namespace genesis::e2b_emulator {

namespace bp = boost::process::v2;
namespace fs = std::filesystem;
using boost::system::error_code;

// --- unique_fd ---

unique_fd& unique_fd::operator=(unique_fd&& o) noexcept {
    if (this != &o) {
        if (fd_ >= 0) ::close(fd_);
        fd_ = o.release();
    }
    return *this;
}

unique_fd::~unique_fd() {
    if (fd_ >= 0) ::close(fd_);
}

// --- paths ---

namespace {

std::error_code last_error() { return {errno, std::generic_category()}; }

// Splits on '/', dropping empty components.
std::vector<std::string> split_path(std::string_view p) {
    std::vector<std::string> out;
    std::size_t i = 0;
    while (i <= p.size()) {
        auto j = p.find('/', i);
        if (j == std::string_view::npos) j = p.size();
        if (j > i) out.emplace_back(p.substr(i, j - i));
        i = j + 1;
    }
    return out;
}

std::string join_path(const std::vector<std::string>& comps) {
    if (comps.empty()) return "/";
    std::string out;
    for (const auto& c : comps) out += "/" + c;
    return out;
}

// The served folders, as component lists of the sandbox path.
const std::vector<std::string> home_comps{"home", "user"};
const std::vector<std::string> tmp_comps{"tmp"};

bool starts_with(const std::vector<std::string>& comps, const std::vector<std::string>& prefix) {
    return comps.size() >= prefix.size() && std::equal(prefix.begin(), prefix.end(), comps.begin());
}

fs::path sandbox_tmp(const sandbox& sb) { return sb.root / "tmp"; }

// Opens the host folder behind a served area, or fails with permission_denied.
std::error_code open_area(const sandbox& sb, const std::vector<std::string>& comps, unique_fd& fd,
                          std::size_t& prefix_len) {
    fs::path host;
    if (starts_with(comps, home_comps)) {
        host = sb.home();
        prefix_len = home_comps.size();
    } else if (starts_with(comps, tmp_comps)) {
        host = sandbox_tmp(sb);
        prefix_len = tmp_comps.size();
        std::error_code ignored;
        fs::create_directories(host, ignored);
    } else {
        return std::make_error_code(std::errc::permission_denied);
    }
    fd = unique_fd(::open(host.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    return fd ? std::error_code{} : last_error();
}

// A directory fd for `comps` (already free of symlinks), walked from its area
// root with O_NOFOLLOW so a symlink swapped in meanwhile fails instead of leading out.
std::error_code open_dir(const sandbox& sb, const std::vector<std::string>& comps, unique_fd& out) {
    std::size_t prefix = 0;
    unique_fd fd;
    if (auto ec = open_area(sb, comps, fd, prefix)) return ec;
    for (std::size_t i = prefix; i < comps.size(); ++i) {
        unique_fd next(::openat(fd.get(), comps[i].c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!next) return errno == ELOOP ? std::make_error_code(std::errc::too_many_symbolic_link_levels) : last_error();
        fd = std::move(next);
    }
    out = std::move(fd);
    return {};
}

// True for "/", "/home": folders on the way to a served area (not served themselves).
bool is_area_ancestor(const std::vector<std::string>& comps) {
    return comps.empty() || comps == std::vector<std::string>{"home"};
}

bool is_served(const std::vector<std::string>& comps) {
    return starts_with(comps, home_comps) || starts_with(comps, tmp_comps);
}

}  // namespace

std::string normalize_sandbox_path(std::string_view path) {
    std::string p(path);
    if (p.empty() || p == "~") p = std::string(sandbox_home_path);
    else if (p.rfind("~/", 0) == 0) p = std::string(sandbox_home_path) + p.substr(1);
    else if (p.front() != '/') p = std::string(sandbox_home_path) + "/" + p;
    std::vector<std::string> out;
    for (auto& c : split_path(p)) {
        if (c == ".") continue;
        if (c == "..") {
            if (!out.empty()) out.pop_back();
            continue;
        }
        out.push_back(std::move(c));
    }
    return join_path(out);
}

bool inside_served_area(std::string_view view) { return is_served(split_path(view)); }

std::string outside_message(const std::string& view) {
    return "path '" + view + "' is (or leads) outside /home/user and /tmp, the only folders the emulator's envd serves";
}

std::error_code locate(const sandbox& sb, std::string_view path, const locate_options& opts, host_location& out) {
    out.view = normalize_sandbox_path(path);
    std::deque<std::string> todo;
    for (auto& c : split_path(out.view)) todo.push_back(std::move(c));
    std::vector<std::string> done;  // resolved so far: real directories, no symlinks
    unique_fd dir;                  // open for `done` unless `stale`
    bool stale = true;
    int hops = 0;

    while (!todo.empty()) {
        std::string comp = std::move(todo.front());
        todo.pop_front();
        if (comp == ".") continue;
        if (comp == "..") {
            if (!done.empty()) done.pop_back();
            stale = true;
            continue;
        }
        const bool last = todo.empty();
        // Folders on the way to /home/user and /tmp are virtual: never looked up on the host.
        if (!is_served(done)) {
            auto next = done;
            next.push_back(comp);
            if (!is_served(next) && !is_area_ancestor(next)) return std::make_error_code(std::errc::permission_denied);
            done = std::move(next);
            stale = true;
            continue;
        }
        if (stale) {
            if (auto ec = open_dir(sb, done, dir)) return ec;
            stale = false;
        }
        struct stat st {};
        if (::fstatat(dir.get(), comp.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
            if (errno != ENOENT) return last_error();
            if (last) {  // a missing last component is fine: the caller creates it or reports it
                done.push_back(comp);
                break;
            }
            if (!opts.create_parents) return last_error();
            if (::mkdirat(dir.get(), comp.c_str(), 0755) != 0 && errno != EEXIST) return last_error();
            if (::fstatat(dir.get(), comp.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return last_error();
        }
        if (S_ISLNK(st.st_mode) && (!last || opts.follow_last)) {
            if (++hops > 40) return std::make_error_code(std::errc::too_many_symbolic_link_levels);
            std::array<char, 4096> buf{};
            auto n = ::readlinkat(dir.get(), comp.c_str(), buf.data(), buf.size() - 1);
            if (n < 0) return last_error();
            std::string_view target(buf.data(), static_cast<std::size_t>(n));
            auto parts = split_path(target);
            todo.insert(todo.begin(), parts.begin(), parts.end());
            if (!target.empty() && target.front() == '/') {
                done.clear();  // an absolute target is a path inside the sandbox
                stale = true;
            }
            continue;
        }
        done.push_back(comp);
        if (last) break;
        if (!S_ISDIR(st.st_mode)) return std::make_error_code(std::errc::not_a_directory);
        unique_fd next(::openat(dir.get(), comp.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!next) return last_error();
        dir = std::move(next);
    }

    if (!is_served(done)) return std::make_error_code(std::errc::permission_denied);
    out.resolved = join_path(done);
    const bool area_root = done == home_comps || done == tmp_comps;
    if (area_root) {
        out.name = ".";
    } else {
        out.name = done.back();
        done.pop_back();
    }
    if (auto ec = open_dir(sb, done, out.dir)) return ec;
    return {};
}

bool sandbox_directory_exists(const sandbox& sb, const fs::path& state_dir, const std::string& view) {
    if (inside_served_area(view)) {
        host_location loc;
        if (locate(sb, view, {.create_parents = false, .follow_last = true}, loc)) return false;
        struct stat st {};
        return ::fstatat(loc.dir.get(), loc.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
    }
    // Outside the served folders the sandbox sees the host read-only, except for
    // what is hidden: other homes, /root, the emulator's state, /opt/e2b.
    if (view == "/home" || view == "/root" || view == "/opt/e2b" || view == "/opt/e2b/bin") return true;
    auto under = [&](std::string_view prefix) {
        return view.size() > prefix.size() && view.compare(0, prefix.size(), prefix) == 0 && view[prefix.size()] == '/';
    };
    if (under("/home") || under("/root") || under("/opt/e2b") || under(state_dir.string())) return false;
    std::error_code ec;
    return fs::is_directory(view, ec);
}

// --- template runtime (/opt/e2b) ---

namespace {

std::string shell_quote(std::string_view s) {
    std::string out = "'";
    for (char c : s) {
        if (c == '\'') out += "'\\''";
        else out += c;
    }
    return out + "'";
}

// FNV-1a: a stable folder name per template configuration.
std::string stable_hash(std::string_view s) {
    std::uint64_t h = 1469598103934665603ull;
    for (unsigned char c : s) {
        h ^= c;
        h *= 1099511628211ull;
    }
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
    return buf;
}

std::string read_text(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// Writes `content` unless the file already holds it; atomically (a running
// sandbox may be executing the old file).
std::string write_if_changed(const fs::path& file, const std::string& content, fs::perms perms) {
    std::error_code ec;
    if (fs::exists(file, ec) && read_text(file) == content) return {};
    fs::create_directories(file.parent_path(), ec);
    const fs::path tmp = file.string() + ".tmp" + std::to_string(::getpid());
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        out << content;
        if (!out) return "cannot write " + tmp.string();
    }
    fs::permissions(tmp, perms, ec);
    fs::rename(tmp, file, ec);
    if (ec) return "cannot write " + file.string() + ": " + ec.message();
    return {};
}

std::string python_wrapper(const std::string& python) {
    return "#!/bin/sh\n"
           "# genesis_e2b_emulator: the template's Python (`python -m pip` goes to the sandbox's pip).\n"
           "if [ \"$1\" = -m ] && [ \"$2\" = pip ]; then shift 2; exec /opt/e2b/bin/pip \"$@\"; fi\n"
           "exec " + shell_quote(python) + " \"$@\"\n";
}

std::string pip_wrapper(const std::string& python) {
    return "#!/bin/sh\n"
           "# genesis_e2b_emulator: pip. No package index is reachable from the emulator,\n"
           "# so `install` is answered offline (already importable = satisfied); other\n"
           "# commands use the real pip when the template's Python has one.\n"
           "PY=" + shell_quote(python) + "\n"
           "cmd=\n"
           "for a in \"$@\"; do case \"$a\" in -*) ;; *) cmd=$a; break ;; esac; done\n"
           "if [ \"$cmd\" = install ]; then exec \"$PY\" /opt/e2b/lib/offline_pip.py \"$@\"; fi\n"
           "if \"$PY\" -m pip --version >/dev/null 2>&1; then exec \"$PY\" -m pip \"$@\"; fi\n"
           "exec \"$PY\" /opt/e2b/lib/offline_pip.py \"$@\"\n";
}

// The offline `pip install`: every requirement must already be importable.
constexpr std::string_view offline_pip_py = R"PY("""pip stand-in for genesis_e2b_emulator sandboxes, which have no package index.

`pip install REQ...` (and -r FILE) succeeds when every requirement is already
importable by this Python, and fails like pip does when one is not.
"""
import importlib.metadata
import importlib.util
import re
import sys

# Distribution names whose import name differs.
MODULES = {
    "scikit-learn": "sklearn", "pyyaml": "yaml", "pillow": "PIL", "beautifulsoup4": "bs4",
    "opencv-python": "cv2", "opencv-python-headless": "cv2", "opencv-contrib-python": "cv2",
    "python-dateutil": "dateutil", "scikit-image": "skimage", "attrs": "attr",
    "protobuf": "google.protobuf", "msgpack-python": "msgpack", "pytorch": "torch",
    "typing-extensions": "typing_extensions", "jax[cpu]": "jax", "ipython": "IPython",
}
VALUE_OPTIONS = {"-r", "--requirement", "-c", "--constraint", "-i", "--index-url", "--extra-index-url",
                 "-f", "--find-links", "-t", "--target", "--prefix", "--root", "--progress-bar",
                 "--trusted-host", "--platform", "--python-version", "--implementation", "--abi",
                 "--timeout", "--retries", "--cache-dir", "--log", "--src", "--upgrade-strategy",
                 "-e", "--editable", "--config-settings", "--global-option", "--only-binary", "--no-binary"}


def version_text():
    v = sys.version_info
    return "pip 23.0 (genesis e2b emulator offline stand-in) from /opt/e2b/lib (python %d.%d)" % (v.major, v.minor)


def requirement_name(req):
    return re.split(r"[\s\[<>=!~;@(]", req.strip(), maxsplit=1)[0]


def module_for(name):
    key = name.lower().replace("_", "-")
    return MODULES.get(key, key.replace("-", "_").replace(".", "_"))


def importable(module):
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def read_requirements(path, out):
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as e:
        print("ERROR: Could not open requirements file: %s" % e, file=sys.stderr)
        sys.exit(1)
    for line in lines:
        line = line.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(("-r ", "--requirement ")):
            read_requirements(line.split(None, 1)[1], out)
        elif not line.startswith("-"):
            out.append(line)


def install(args):
    reqs, quiet, i = [], False, 0
    while i < len(args):
        a = args[i]
        name, has_eq, value = a.partition("=")
        if a in ("-q", "-qq", "-qqq", "--quiet"):
            quiet = True
        elif name in ("-r", "--requirement"):
            if not has_eq:
                i += 1
                value = args[i] if i < len(args) else ""
            read_requirements(value, reqs)
        elif a in VALUE_OPTIONS:
            i += 1
        elif not a.startswith("-"):
            reqs.append(a)
        i += 1
    if not reqs:
        print("ERROR: You must give at least one requirement to install (see \"pip help install\")", file=sys.stderr)
        return 1
    for req in reqs:
        name = requirement_name(req)
        if not name or "/" in name or name.startswith(".") or ":" in name:
            print("ERROR: Cannot install %s: the emulator is offline and installs nothing" % req, file=sys.stderr)
            return 1
        if not importable(module_for(name)):
            print("ERROR: Could not find a version that satisfies the requirement %s (the emulator is offline)" % req,
                  file=sys.stderr)
            print("ERROR: No matching distribution found for %s" % name, file=sys.stderr)
            return 1
        if not quiet:
            try:
                print("Requirement already satisfied: %s (%s)" % (name, importlib.metadata.version(name)))
            except importlib.metadata.PackageNotFoundError:
                print("Requirement already satisfied: %s" % name)
    return 0


def main(argv):
    words = [a for a in argv if not a.startswith("-")]
    if not words and ("--version" in argv or "-V" in argv):
        print(version_text())
        return 0
    if words and words[0] == "install":
        return install(argv[argv.index("install") + 1:])
    print("ERROR: the emulator's offline pip only supports `install` and `--version`", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
)PY";

constexpr std::string_view profile_wrapper =
    "# /etc/profile in a genesis_e2b_emulator sandbox: the host's profile, then the\n"
    "# template's tools first on PATH again (the host's profile resets PATH).\n"
    "if [ -r /opt/e2b/etc/host-profile ]; then . /opt/e2b/etc/host-profile; fi\n"
    "case \":$PATH:\" in *:/opt/e2b/bin:*) ;; *) PATH=\"/opt/e2b/bin:$PATH\" ;; esac\n"
    "export PATH\n";

// <state>/runtime/<hash>: bound read-only at /opt/e2b. Refreshed when a file differs.
std::string ensure_runtime(const fs::path& state_dir, const template_spec& tmpl, fs::path& dir) {
    const std::string python = tmpl.python.empty() ? "/usr/bin/python3" : tmpl.python;
    dir = state_dir / "runtime" / stable_hash(tmpl.name + '\0' + python);
    constexpr auto exe = fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                         fs::perms::others_read | fs::perms::others_exec;
    constexpr auto text = fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read | fs::perms::others_read;
    const std::pair<const char*, std::string> exes[] = {
        {"bin/python", python_wrapper(python)},
        {"bin/python3", python_wrapper(python)},
        {"bin/pip", pip_wrapper(python)},
        {"bin/pip3", pip_wrapper(python)},
    };
    for (const auto& [name, content] : exes)
        if (auto err = write_if_changed(dir / name, content, exe); !err.empty()) return err;
    const std::pair<const char*, std::string> texts[] = {
        {"lib/offline_pip.py", std::string(offline_pip_py)},
        {"etc/profile", std::string(profile_wrapper)},
        {"etc/host-profile", read_text("/etc/profile")},
    };
    for (const auto& [name, content] : texts)
        if (auto err = write_if_changed(dir / name, content, text); !err.empty()) return err;
    return {};
}

}  // namespace

// --- bubblewrap ---

namespace {

const fs::path& bubblewrap_path() {
    static const fs::path path = [] {
        for (const char* p : {"/usr/bin/bwrap", "/usr/local/bin/bwrap", "/bin/bwrap"})
            if (::access(p, X_OK) == 0) return fs::path(p);
        return fs::path();
    }();
    return path;
}

bool path_under(const fs::path& p, std::string_view prefix) {
    const std::string s = p.string();
    return s == prefix || (s.size() > prefix.size() && s.compare(0, prefix.size(), prefix) == 0 && s[prefix.size()] == '/');
}

std::vector<std::string> bubblewrap_args(const sandbox& sb, const fs::path& state_dir, const fs::path& runtime,
                                         const process_spec& spec) {
    std::vector<std::string> a{"--die-with-parent", "--unshare-pid", "--unshare-ipc", "--unshare-uts"};
    if (!sb.internet) a.push_back("--unshare-net");
    auto add = [&a](std::initializer_list<std::string> more) { a.insert(a.end(), more); };
    add({"--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"});
    add({"--tmpfs", "/home", "--tmpfs", "/root", "--tmpfs", "/tmp"});
    // /opt/e2b cannot be created on the read-only root: /opt becomes a tmpfs
    // holding the host's /opt entries (bound back) plus /opt/e2b.
    add({"--tmpfs", "/opt"});
    std::error_code ec;
    for (fs::directory_iterator it("/opt", ec), end; !ec && it != end; it.increment(ec)) {
        const std::string name = it->path().filename().string();
        if (name != "e2b") add({"--ro-bind", it->path().string(), it->path().string()});
    }
    fs::path state = fs::weakly_canonical(state_dir, ec);
    if (ec) state = state_dir;
    if (!path_under(state, "/tmp") && !path_under(state, "/home") && !path_under(state, "/root"))
        add({"--tmpfs", state.string()});
    add({"--bind", sb.home().string(), std::string(sandbox_home_path)});
    add({"--bind", sandbox_tmp(sb).string(), std::string(sandbox_tmp_path)});
    add({"--ro-bind", runtime.string(), "/opt/e2b"});
    if (fs::exists("/etc/profile", ec)) add({"--ro-bind", (runtime / "etc/profile").string(), "/etc/profile"});
    add({"--chdir", spec.cwd, "--", "/bin/sh", "-c", "exec \"$@\"", "--", spec.cmd});
    a.insert(a.end(), spec.args.begin(), spec.args.end());
    return a;
}

// docs/e2b-wire.md, "Start behaviour": envd's base variables, then the template's, the sandbox's, the request's.
std::vector<std::string> sandbox_environment(const sandbox& sb, const process_spec& spec) {
    std::map<std::string, std::string> vars{
        {"PATH", "/opt/e2b/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
        {"HOME", std::string(sandbox_home_path)},
        {"USER", "user"},
        {"LOGNAME", "user"},
        {"E2B_SANDBOX", "true"},
        {"E2B_SANDBOX_ID", sb.id},
    };
    for (const auto* layer : {&sb.tmpl.env, &sb.env_vars, &spec.envs})
        for (const auto& [k, v] : *layer) vars[k] = v;
    std::vector<std::string> out;
    for (const auto& [k, v] : vars) out.push_back(k + "=" + v);
    return out;
}

// Process v2 initializer: bubblewrap's environment (it passes it on to the
// command), a new session and process group, and a clean signal state.
struct sandbox_init {
    const std::vector<const char*>* env;

    error_code on_setup(bp::posix::default_launcher& launcher, const bp::filesystem::path&, const char* const*) {
        launcher.env = env->data();
        return {};
    }
    error_code on_exec_setup(bp::posix::default_launcher& launcher, const bp::filesystem::path&, const char* const*) {
        // setsid: own process group (kill(-pid) reaches all of it) and no controlling terminal.
        if (::setsid() < 0) return {errno, boost::system::system_category()};
        // Should the emulator die without cleaning up, bubblewrap dies too (and
        // with --die-with-parent, the sandbox).
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        sigset_t none;
        ::sigemptyset(&none);
        ::sigprocmask(SIG_SETMASK, &none, nullptr);
        for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE, SIGCHLD}) ::signal(sig, SIG_DFL);
        // Boost 1.81's close_all (Linux) only closes descriptors above the highest
        // whitelisted one (its exec-error pipe): every descriptor below it (the
        // emulator's sockets, other sandboxes' pipes) would reach bubblewrap and the
        // command. stdio is in place already; close everything else but the whitelist.
        std::sort(launcher.fd_whitelist.begin(), launcher.fd_whitelist.end());
        unsigned int next = 0;
        for (int fd : launcher.fd_whitelist) {
            if (fd < 0) continue;
            const auto keep = static_cast<unsigned int>(fd);
            if (keep > next && ::close_range(next, keep - 1, 0) != 0) return {errno, boost::system::system_category()};
            next = std::max(next, keep + 1);
        }
        if (::close_range(next, ~0U, 0) != 0) return {errno, boost::system::system_category()};
        return {};
    }
};

// Children of `pid`, from /proc/<pid>/task/<pid>/children.
std::vector<pid_t> children_of(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) + "/children");
    std::vector<pid_t> out;
    for (pid_t child; in >> child;) out.push_back(child);
    return out;
}

// bubblewrap folds "killed by signal N" into exit code 128+N. These are read
// back as signals; other codes above 128 stay exit codes (a script's `exit 130`).
bool folded_signal(int code, int sent_signal) {
    const int sig = code - 128;
    if (sig <= 0) return false;
    if (sig == sent_signal) return true;
    for (int crash : {SIGKILL, SIGSEGV, SIGABRT, SIGBUS, SIGFPE, SIGILL})
        if (sig == crash) return true;
    return false;
}

exit_report report_for(int status, int sent_signal) {
    exit_report r;
    int sig = 0;
    if (WIFSIGNALED(status)) sig = WTERMSIG(status);
    else if (WIFEXITED(status) && folded_signal(WEXITSTATUS(status), sent_signal)) sig = WEXITSTATUS(status) - 128;
    if (sig) {
        r.signal = sig;
        r.exit_code = -1;
        r.status = "signal: " + go_signal_text(sig);
    } else {
        r.exited = true;
        r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        r.status = "exit status " + std::to_string(r.exit_code);
    }
    return r;
}

}  // namespace

std::string check_bubblewrap() {
    return bubblewrap_path().empty() ? "bubblewrap (bwrap) not found in /usr/bin, /usr/local/bin or /bin" : "";
}

std::string go_signal_text(int sig) {
    static constexpr std::array<std::string_view, 32> names{
        "",
        "hangup",
        "interrupt",
        "quit",
        "illegal instruction",
        "trace/breakpoint trap",
        "aborted",
        "bus error",
        "floating point exception",
        "killed",
        "user defined signal 1",
        "segmentation fault",
        "user defined signal 2",
        "broken pipe",
        "alarm clock",
        "terminated",
        "stack fault",
        "child exited",
        "continued",
        "stopped (signal)",
        "stopped",
        "stopped (tty input)",
        "stopped (tty output)",
        "urgent I/O condition",
        "CPU time limit exceeded",
        "file size limit exceeded",
        "virtual timer expired",
        "profiling timer expired",
        "window changed",
        "I/O possible",
        "power failure",
        "bad system call",
    };
    if (sig > 0 && sig < static_cast<int>(names.size())) return std::string(names[sig]);
    return "signal " + std::to_string(sig);
}

// --- sandbox_process ---

struct sandbox_process::impl {
    impl(bp::basic_process<asio::any_io_executor> p)
        : proc(std::move(p)), retry(proc.get_executor()) {}
    ~impl() { *alive = false; }
    bp::basic_process<asio::any_io_executor> proc;
    asio::steady_timer retry;  // signal_command() retries
    std::shared_ptr<bool> alive = std::make_shared<bool>(true);
};

sandbox_process::sandbox_process(asio::any_io_executor ex) : out_(ex), err_(ex) {}

sandbox_process::~sandbox_process() {
    kill_and_reap();
    if (impl_) impl_->proc.detach();  // reaped already; nothing for Process v2 to do
}

std::unique_ptr<sandbox_process> sandbox_process::start(asio::any_io_executor ex, const sandbox& sb,
                                                        const fs::path& state_dir, const process_spec& spec,
                                                        std::string& error) {
    if (auto missing = check_bubblewrap(); !missing.empty()) {
        error = missing;
        return nullptr;
    }
    std::error_code fec;
    if (!fs::is_directory("/opt", fec)) {
        error = "the host has no /opt folder, which sandboxes need for /opt/e2b";
        return nullptr;
    }
    fs::path runtime;
    if (auto err = ensure_runtime(state_dir, sb.tmpl, runtime); !err.empty()) {
        error = "cannot prepare the template runtime: " + err;
        return nullptr;
    }
    fs::create_directories(sandbox_tmp(sb), fec);

    const auto env_strings = sandbox_environment(sb, spec);
    std::vector<const char*> env;
    for (const auto& e : env_strings) env.push_back(e.c_str());
    env.push_back(nullptr);

    std::unique_ptr<sandbox_process> p(new sandbox_process(ex));
    error_code ec;
    auto args = bubblewrap_args(sb, state_dir, runtime, spec);
    if (spec.stdin_pipe) {
        p->in_.emplace(ex);
        p->impl_ = std::make_unique<impl>(bp::default_process_launcher()(
            ex, ec, bubblewrap_path(), args, bp::process_stdio{*p->in_, p->out_, p->err_}, sandbox_init{&env}));
    } else {
        p->impl_ = std::make_unique<impl>(bp::default_process_launcher()(
            ex, ec, bubblewrap_path(), args, bp::process_stdio{nullptr, p->out_, p->err_}, sandbox_init{&env}));
    }
    if (ec) {
        error = "could not start bubblewrap: " + ec.message();
        p->impl_.reset();
        return nullptr;
    }
    p->pid_ = p->impl_->proc.id();
    return p;
}

void sandbox_process::close_stdin() {
    if (in_) {
        error_code ignored;
        in_->close(ignored);
    }
}

void sandbox_process::signal(int sig) {
    if (reaped_ || pid_ <= 0) return;
    sent_signal_ = sig;
    if (sig == SIGKILL) {
        // The group holds bubblewrap and its init in the PID namespace; when
        // that init dies, the kernel kills everything else in the namespace.
        ::kill(-pid_, SIGKILL);
        return;
    }
    signal_command(sig, 0);
}

// Never a group-wide SIGTERM: bubblewrap would die, but its init in the PID
// namespace ignores the signal and, early in its setup, may not be armed to die
// with bubblewrap yet, leaving the sandbox's processes behind. So the signal
// waits (briefly) until the command exists.
void sandbox_process::signal_command(int sig, int attempt) {
    if (reaped_) return;
    // bubblewrap (outside) -> its init in the PID namespace -> the command.
    for (pid_t init : children_of(pid_))
        for (pid_t command : children_of(init))
            if (::kill(command, sig) == 0) return;
    if (attempt >= 500) return;  // ~5 s without a command: it is not going to appear
    impl_->retry.expires_after(std::chrono::milliseconds(10));
    impl_->retry.async_wait([this, alive = impl_->alive, sig, attempt](error_code ec) {
        if (!ec && *alive) signal_command(sig, attempt + 1);
    });
}

asio::awaitable<exit_report> sandbox_process::wait() {
    if (!reaped_ && impl_) {
        auto [ec, status] = co_await impl_->proc.async_wait(asio::as_tuple(asio::use_awaitable));
        if (!reaped_) {  // else kill_and_reap() got the status first
            reaped_ = true;
            // Process v2 returns the raw wait status on POSIX.
            status_ = ec ? (SIGKILL & 0x7f) : impl_->proc.native_exit_code();
        }
    }
    co_return report_for(status_, sent_signal_);
}

void sandbox_process::kill_and_reap() {
    if (reaped_ || pid_ <= 0) return;
    sent_signal_ = SIGKILL;
    ::kill(-pid_, SIGKILL);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    reaped_ = true;
    status_ = status;
}

}  // namespace genesis::e2b_emulator
