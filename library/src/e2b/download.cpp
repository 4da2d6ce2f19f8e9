// download.cpp - the results folder of a finished evaluation, from the sandbox
// to the job's local results folder: listed, checked name by name, fetched
// (metrics.json and correct.json read ahead with the listing), written with
// O_NOFOLLOW.
#include "e2b/engine.hpp"

#include "outcome.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <utility>

namespace genesis::launch::detail::e2b {

asio::awaitable<step> engine::download(std::shared_ptr<job_run> j) {
    using kind = e2b::api_error::kind;
    enter(*j, phase::download);
    const auto t_download = clock::now();
    const fs::path& root = j->ctx->job.results_dir;
    std::error_code ec;
    // Resolved only for names below a subfolder (a folder on the way may be a link).
    std::optional<fs::path> resolved_root;

    e2b::sandbox_handle sb = *j->sandbox;
    std::string folder(results_folder);
    // The listing, and the two files every evaluator writes read at the same
    // time (one round trip instead of three), as far as idle pooled connections
    // allow: a connection is never opened just to go faster (with hundreds of
    // jobs starting together that would mean hundreds of connections, over TLS
    // as many handshakes). Other listed files are fetched after the listing. A
    // file read ahead is used only if the listing shows it as a regular file.
    using namespace asio::experimental::awaitable_operators;
    std::string metrics_path = folder + "/metrics.json";
    std::string correct_path = folder + "/correct.json";
    e2b::sandbox_handle sb_metrics = sb, sb_correct = sb;
    const std::size_t spare = api_->idle_envd_connections(sb);
    e2b::api_result<std::vector<e2b::dir_entry>> listing;
    e2b::api_result<std::string> metrics_bytes, correct_bytes;
    if (spare >= 3) {
        auto [l, m, c] = co_await (api_->list_dir(sb, folder, listing_depth) &&
                                   api_->download(sb_metrics, metrics_path) && api_->download(sb_correct, correct_path));
        listing = std::move(l);
        metrics_bytes = std::move(m);
        correct_bytes = std::move(c);
    } else if (spare == 2) {
        auto [l, m] = co_await (api_->list_dir(sb, folder, listing_depth) && api_->download(sb_metrics, metrics_path));
        listing = std::move(l);
        metrics_bytes = std::move(m);
    } else {
        listing = co_await api_->list_dir(sb, folder, listing_depth);
    }
    if (!listing) {
        if (listing.error->k == kind::not_found) {
            j->r.warnings.push_back("the evaluator left no " + folder + " folder in the sandbox");
            j->r.timings.download += since(t_download);
            co_return step::ok;
        }
        co_return envd_failure(*j, *listing.error, "results download");
    }
    std::vector<e2b::dir_entry> entries = std::move(*listing.value);
    std::sort(entries.begin(), entries.end(),
              [](const e2b::dir_entry& a, const e2b::dir_entry& b) { return a.path < b.path; });
    // Every name comes from the sandbox (the evaluator's, or a hostile envd's):
    // nothing is written outside `root`, through a link, or under a name the
    // local file system would mangle; such entries are skipped with a warning.
    auto skip = [&](const std::string& path, const std::string& why) {
        j->r.warnings.push_back("not downloaded: " + e2b_support::printable_name(path) + " (" + why + ")");
    };
    for (const auto& entry : entries) {
        if (j->stop != stop_reason::none) co_return step::failed;
        const std::string path = entry.path.empty() || entry.path.front() != '/' ? folder + "/" + entry.path
                                                                                  : entry.path;
        auto rel = e2b_support::relative_result_path(folder, path);
        if (!rel) {
            skip(path, "not a safe name inside " + folder);
            continue;
        }
        const fs::path local = (root / *rel).lexically_normal();
        // A file right in the folder lands in it; for deeper names the folders on
        // the way are resolved and must stay inside the (resolved) results folder.
        if (rel->has_parent_path()) {
            ec.clear();
            if (!resolved_root) resolved_root = fs::weakly_canonical(root, ec);
            const fs::path parent = ec ? fs::path() : fs::weakly_canonical(local.parent_path(), ec);
            const std::string inside = resolved_root->string() + "/";
            if (ec || !(parent == *resolved_root || parent.string().starts_with(inside))) {
                skip(path, "it would land outside " + root.string());
                continue;
            }
        }
        if (entry.type == e2b::file_type::symlink || !entry.symlink_target.empty()) {
            skip(path, "a symbolic link");
            continue;
        }
        if (entry.type == e2b::file_type::directory) {
            fs::create_directories(local, ec);
            if (ec) skip(path, "cannot create " + local.string() + ": " + ec.message());
            continue;
        }
        if (entry.type != e2b::file_type::file) {
            skip(path, "not a regular file");
            continue;
        }
        if (*rel == "job_log.out" || *rel == "job_log.err") {
            skip(path, "the launcher writes " + rel->string());
            continue;
        }
        // A read-ahead answer counts as this file's one download, errors included
        // (a refused token fails the job as it would have); only "not found"
        // (the listing raced it) is asked again.
        auto read_ahead = [](const e2b::api_result<std::string>& r) {
            return r.value || (r.error && r.error->k != kind::not_found);
        };
        e2b::api_result<std::string> bytes;
        if (path == metrics_path && read_ahead(metrics_bytes)) {
            bytes = std::exchange(metrics_bytes, {});  // used once, even if listed twice
        } else if (path == correct_path && read_ahead(correct_bytes)) {
            bytes = std::exchange(correct_bytes, {});
        } else {
            std::string file_path = path;
            bytes = co_await api_->download(sb, file_path);
        }
        if (!bytes) {
            if (bytes.error->k == kind::not_found) {
                skip(path, "it disappeared");
                continue;
            }
            co_return envd_failure(*j, *bytes.error, "results download");
        }
        if (rel->has_parent_path()) {  // a file right in the folder needs nothing made
            fs::create_directories(local.parent_path(), ec);
            if (ec) {
                skip(path, "cannot create " + local.parent_path().string() + ": " + ec.message());
                continue;
            }
        }
        // O_NOFOLLOW: never write through a link, whatever is there now.
        const int fd = ::open(local.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd < 0) {
            const int err = errno;
            // A name the listing made impossible here (a file where a folder is
            // expected, a link, a name too long): the entry's problem, not ours.
            if (err == ELOOP || err == ENOTDIR || err == EISDIR || err == ENAMETOOLONG || err == EEXIST) {
                skip(path, "cannot write " + local.string() + ": " + std::strerror(err));
                continue;
            }
            co_return fail(*j, outcome::infra_error, "cannot write " + local.string() + ": " + std::strerror(err));
        }
        bool written = write_all(fd, *bytes) == 0;
        if (::close(fd) != 0) written = false;
        if (!written) co_return fail(*j, outcome::infra_error, "cannot write " + local.string());
        j->files_written.push_back(root / *rel);
        if (*rel == "metrics.json") j->metrics_written = std::move(*bytes);
        if (*rel == "correct.json") j->correct_written = std::move(*bytes);
    }
    j->r.timings.download += since(t_download);
    co_return step::ok;
}

}  // namespace genesis::launch::detail::e2b
