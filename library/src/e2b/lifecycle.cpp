// lifecycle.cpp - one E2B job as a coroutine on the launcher's strand:
//
//   prepare (local files, no sandbox yet)
//   attempt:  [ create -> upload -> install -> run -> download ]  (cancellable child coroutine)
//             cleanup: kill the sandbox                             (always, never cancelled)
//   a sandbox lost mid-job (it vanished, or the evaluator's command stream broke):
//   another attempt on a new sandbox, up to max_sandbox_attempts (retry_vanished)
//   finalize (record_results)
//
// Destructors cannot co_await, so the "scope guard" is structural: the phases
// run in a child coroutine spawned with its own cancellation slot; whatever
// way it ends (result, exception, cancellation, timeout), the parent then
// co_awaits cleanup(), which kills the sandbox. Only if the io_context itself is
// destroyed mid-job does a sandbox survive, and then only until its lifetime
// (timeout + margins) runs out; the shutdown sweep in drain() catches what a
// failed kill left behind. What each error means is decided in decisions.cpp.
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

// ---- small coroutines --------------------------------------------------------------------

asio::awaitable<void> engine::sleep_for(milliseconds d) {
    asio::steady_timer t(strand_);
    t.expires_after(d);
    co_await t.async_wait(asio::use_awaitable);
}

// One create per create_interval_ for the whole launcher; a job takes the next
// free slot and waits for it.
asio::awaitable<void> engine::pace() {
    const auto now = clock::now();
    const auto slot = pacer_.reserve(now);
    if (slot > now) {
        asio::steady_timer t(strand_);
        t.expires_at(slot);
        co_await t.async_wait(asio::use_awaitable);
    }
}

asio::awaitable<void> engine::wait_for_slot(milliseconds at_most) {
    using namespace asio::experimental::awaitable_operators;
    asio::steady_timer limit(strand_);
    limit.expires_after(at_most);
    co_await (slot_freed_.async_wait(asio::as_tuple(asio::use_awaitable)) ||
              limit.async_wait(asio::as_tuple(asio::use_awaitable)));
}

asio::awaitable<void> engine::wait_ready() {
    if (!startup_pending_) co_return;
    co_await gate_.async_wait(asio::as_tuple(asio::use_awaitable));
}

// The command's time limit counts from its start event: time spent getting the
// request through (refusals, retries, a slow handshake) is the service's, and the
// API bounds it on its own. The watchdog is our last word if envd never ends the
// stream: limit + watchdog_margin after the start.
std::function<void(std::uint32_t)> engine::watchdog_from_start(const std::shared_ptr<job_run>& j,
                                                              milliseconds limit) {
    return [w = std::weak_ptr<job_run>(j), limit](std::uint32_t) {
        auto job = w.lock();
        if (!job) return;
        job->watchdog.expires_after(limit + milliseconds(watchdog_margin));
        job->watchdog.async_wait([w](error_code ec) {
            if (ec) return;
            if (auto stopped = w.lock()) stopped->request_stop(stop_reason::timeout);
        });
    };
}

// ---- outcomes ------------------------------------------------------------------------------

step engine::fail(job_run& j, outcome o, std::string why) const {
    j.r.result = o;
    j.r.diagnostic = std::move(why);
    return step::failed;
}

// An envd call failed: what it means for the job (decisions.cpp).
step engine::envd_failure(job_run& j, const e2b::api_error& e, const std::string& what) const {
    if (j.stop != stop_reason::none) return step::failed;  // attempt() reports the stop
    auto verdict = e2b::judge_envd_error(j.current, e, what);
    if (!verdict.sandbox_lost) return fail(j, verdict.result, std::move(verdict.message));
    j.gone_message = std::move(verdict.message);
    j.connection_broke = verdict.connection_broke;
    return step::gone;
}

void engine::set_stopped(job_run& j) const {
    auto verdict = e2b::judge_stop(j.stop, j.current, j.r.sandbox_id, cfg_.e2b.install_timeout, j.eval_limit);
    j.r.result = verdict.result;
    j.r.diagnostic = std::move(verdict.diagnostic);
}

void engine::finalize(job_run& j) const {
    std::optional<std::vector<fs::path>> files;
    if (j.results_dir_made) files = std::move(j.files_written);
    record_results(j.r, j.ctx->job.results_dir, std::move(j.metrics_written), std::move(j.correct_written),
                   std::move(files));
}

// ---- preparation (no sandbox yet) -------------------------------------------------------------

std::optional<std::string> engine::prepare_local(job_run& j) {
    const prepared_job& job = j.ctx->job;
    std::error_code ec;
    // Usually a new folder in an existing one: one mkdir, no checks before it.
    if (::mkdir(job.results_dir.c_str(), 0777) == 0) {
        j.results_dir_made = true;
    } else if (errno != EEXIST || !fs::is_directory(job.results_dir, ec)) {
        fs::create_directories(job.results_dir, ec);
        if (ec) return "cannot create results directory " + job.results_dir.string() + ": " + ec.message();
    }

    std::string why;
    std::set<std::string> targets;
    // `shared`: a file every job uploads (the evaluator, additional_files), read once.
    auto add = [&](std::string target, const fs::path& local, const std::string& role,
                   bool shared) -> std::optional<std::string> {
        if (!targets.insert(target).second)
            return role + ": two files would be uploaded to " + target + " in the sandbox";
        upload_item item{std::move(target), nullptr, local.string()};
        if (shared) {
            item.bytes = inputs_.get(local, why);
        } else if (std::string bytes; read_whole_file(local, bytes, why)) {
            item.bytes = std::make_shared<const std::string>(std::move(bytes));
        }
        if (!item.bytes) return role + " " + local.string() + ": " + why;
        j.uploads.push_back(std::move(item));
        return std::nullopt;
    };

    if (auto e = add(std::string(evaluator_target), job.evaluator, "evaluator", true)) return e;
    std::string name = job.program.filename().string();
    if (name.empty()) name = "main.py";
    j.program_target = std::string(home_dir) + "/" + name;
    if (j.program_target == evaluator_target)
        return "the candidate program is named evaluate.py, which is where the evaluator goes in the sandbox; "
               "rename the candidate";
    if (auto e = add(j.program_target, job.program, "candidate program", false)) return e;
    for (const auto& [sandbox_path, local] : cfg_.e2b.additional_files) {
        // The rule validate() already applied (make_launcher runs it): one place resolves these paths.
        const auto checked = config::check_sandbox_path(sandbox_path);
        if (checked.problem) return "job_config.additional_files." + config::printable(sandbox_path) + ": " + *checked.problem;
        if (auto e = add(checked.target, local, "additional file (job_config.additional_files['" + sandbox_path + "'])",
                         true))
            return e;
    }

    if (auto e = j.out_log.open(job.results_dir / "job_log.out"))
        return "cannot write " + (job.results_dir / "job_log.out").string() + ": " + e.message();
    if (auto e = j.err_log.open(job.results_dir / "job_log.err"))
        return "cannot write " + (job.results_dir / "job_log.err").string() + ": " + e.message();
    j.files_written = {job.results_dir / "job_log.out", job.results_dir / "job_log.err"};

    j.env["PYTHONUNBUFFERED"] = "1";
    j.env["PYTHONIOENCODING"] = "utf-8";
    for (const auto& [k, v] : job.env) j.env[k] = v;
    j.eval_limit = job.timeout ? *job.timeout : milliseconds(cfg_.e2b.timeout);
    return std::nullopt;
}

// ---- the lifecycle -----------------------------------------------------------------------------

asio::awaitable<job_result> engine::lifecycle(std::shared_ptr<job_run> j) {
    j->r.backend = "e2b";
    j->r.results_dir = j->ctx->job.results_dir;
    const auto t_prepare = clock::now();
    if (auto why = prepare_local(*j)) {
        j->r.result = outcome::setup_failed;
        j->r.diagnostic = std::move(*why);
        j->r.timings.setup = since(t_prepare);
        j->r.error = j->r.diagnostic;
        j->out_log.close();
        j->err_log.close();
        co_return std::move(j->r);
    }
    j->r.timings.setup += since(t_prepare);

    j->ctx->on_cancel([w = std::weak_ptr<job_run>(j)] {
        if (auto job = w.lock()) job->request_stop(stop_reason::cancel);
    });
    while (co_await attempt(j) == attempt_end::retry) {
    }
    j->ctx->clear_on_cancel();
    j->out_log.close();
    j->err_log.close();
    finalize(*j);
    co_return std::move(j->r);
}

asio::awaitable<attempt_end> engine::attempt(std::shared_ptr<job_run> j) {
    ++j->attempts;
    if (j->stop != stop_reason::none) {
        set_stopped(*j);
        co_return attempt_end::done;
    }
    step result = step::failed;
    std::exception_ptr error;
    try {
        result = co_await asio::co_spawn(strand_, phases(j),
                                         asio::bind_cancellation_slot(j->cancel_phases.slot(), asio::use_awaitable));
    } catch (...) {
        error = std::current_exception();
    }
    j->cancel_phases.slot().clear();
    j->watchdog.cancel();
    const stop_reason stopped = j->stop;

    co_await end_attempt(j);  // on every path

    if (stopped != stop_reason::none) {
        set_stopped(*j);
        co_return attempt_end::done;
    }
    if (error) {
        std::string what = "unknown error";
        try {
            std::rethrow_exception(error);
        } catch (const std::exception& e) {
            what = e.what();
        } catch (...) {
        }
        fail(*j, outcome::infra_error, "internal error in the E2B backend during " +
                                           std::string(phase_name(j->current)) + ": " + what);
        co_return attempt_end::done;
    }
    if (result != step::gone) co_return attempt_end::done;

    auto verdict = e2b::judge_lost_sandbox(j->attempts, cfg_.e2b.retry_vanished, j->current, j->connection_broke,
                                           j->r.sandbox_id, j->gone_message);
    if (!verdict.run_again) {
        fail(*j, outcome::infra_error, std::move(verdict.message));
        co_return attempt_end::done;
    }
    job_log(log_level::warning, *j, verdict.message);
    j->log_both("[genesis-launch] " + verdict.message + "\n");
    j->r.warnings.push_back(std::move(verdict.message));
    // The next attempt starts from scratch.
    j->r.result = outcome::infra_error;
    j->r.diagnostic.clear();
    j->r.exit_code.reset();
    j->r.signal.reset();
    j->r.stdout_text.clear();
    j->r.stderr_text.clear();
    j->r.stdout_truncated = j->r.stderr_truncated = false;
    j->out.reset();
    j->err.reset();
    j->metrics_written.reset();
    j->correct_written.reset();
    co_return attempt_end::retry;
}

asio::awaitable<step> engine::phases(std::shared_ptr<job_run> j) {
    co_await wait_ready();
    step s = co_await create(j);
    if (s != step::ok) co_return s;
    const auto t_setup = clock::now();
    s = co_await upload(j);
    if (s == step::ok && !cfg_.e2b.dependencies.empty()) s = co_await install(j);
    j->r.timings.setup += since(t_setup);
    if (s != step::ok) co_return s;
    s = co_await run_evaluator(j);
    if (s != step::ok) co_return s;
    if (j->r.result == outcome::timeout) co_return co_await download_after_timeout(j);
    co_return co_await download(j);
}

// The evaluator was stopped at its time limit, so the job's outcome is known and its
// result is due: what the evaluator wrote is fetched within kill_grace +
// results_margin, or the job ends without it (a warning says so). A lost sandbox
// here does not run the job again either.
asio::awaitable<step> engine::download_after_timeout(std::shared_ptr<job_run> j) {
    using namespace asio::experimental::awaitable_operators;
    const auto budget = milliseconds(cfg_.kill_grace) + milliseconds(results_margin);
    const auto started = clock::now();
    const std::string diagnostic = j->r.diagnostic;
    asio::steady_timer limit(strand_);
    limit.expires_after(budget);
    auto ended = co_await (download(j) || limit.async_wait(asio::as_tuple(asio::use_awaitable)));
    if (j->stop != stop_reason::none) co_return step::failed;
    if (ended.index() == 0 && std::get<0>(ended) == step::ok) co_return step::ok;
    const std::string why = ended.index() == 1
                                ? "could not be fetched within " + seconds_text(budget) + " (job_config.kill_grace + " +
                                      seconds_text(milliseconds(results_margin)) + ")"
                                : "could not be fetched (" +
                                      (j->gone_message.empty() ? j->r.diagnostic : j->gone_message) + ")";
    j->r.result = outcome::timeout;
    j->r.diagnostic = diagnostic;
    j->gone_message.clear();
    j->connection_broke = false;
    j->r.timings.download += since(started);
    j->r.warnings.push_back("the results the evaluator wrote before its time limit " + why);
    job_log(log_level::info, *j, j->r.warnings.back());
    co_return step::ok;
}

// ---- create ------------------------------------------------------------------------------------

asio::awaitable<step> engine::create(std::shared_ptr<job_run> j) {
    enter(*j, phase::create);
    const auto t_create = clock::now();
    const step s = co_await create_sandbox(j);
    j->r.timings.create += since(t_create);
    co_return s;
}

asio::awaitable<step> engine::create_sandbox(std::shared_ptr<job_run> j) {
    using kind = e2b::api_error::kind;
    e2b::backoff_params backoff = create_backoff_;
    backoff.max_attempts = std::max(1, cfg_.e2b.max_retries);
    e2b::retry_state retry(backoff);
    const auto lifetime = e2b_support::sandbox_lifetime(cfg_.e2b, j->eval_limit);
    std::string last_problem;

    for (;;) {
        // No more sandboxes than max_parallel_jobs, kills still under way included (a
        // result does not wait for a slow kill; the next job's create does).
        while (live_ + creating_ >= std::max(1, cfg_.max_parallel_jobs) && j->stop == stop_reason::none) {
            const auto waiting = clock::now();
            co_await wait_for_slot(backoff.maximum);
            retry.exclude(clock::now() - waiting);
        }
        if (j->stop != stop_reason::none) co_return step::failed;
        co_await pace();
        std::map<std::string, std::string> tags;
        tags["genesis_run"] = run_tag_;
        tags["genesis_job"] = j->ctx->job.job_id;
        tags["genesis_attempt"] = random_hex(12);  // tells this create apart from any other
        std::string template_id = cfg_.e2b.template_id;
        std::map<std::string, std::string> metadata = tags;
        std::map<std::string, std::string> env = j->env;
        const auto sent = clock::now();
        j->create_in_flight = tags;
        j->create_sent = sent;
        ++creating_;
        auto created = co_await api_->create(template_id, lifetime, metadata, env);
        --creating_;
        slot_freed_.cancel();  // creates waiting on this one look again
        // A cancelled create may still have made a sandbox: cleanup looks for it.
        if (created || created.error->k != kind::cancelled) j->create_in_flight.reset();
        if (created) {
            ++live_;
            j->sandbox = std::move(*created.value);
            j->sandbox_since = sent;
            j->r.sandbox_id = j->sandbox->id;
            job_log(log_level::debug, *j,
                    "sandbox " + j->sandbox->id + " created (template " + cfg_.e2b.template_id + ", lifetime " +
                        std::to_string(lifetime.count()) + "s)");
            co_return step::ok;
        }
        const e2b::api_error& e = *created.error;
        if (j->stop != stop_reason::none || e.k == kind::cancelled) co_return step::failed;

        using action = e2b::create_verdict::action;
        auto verdict = e2b::judge_create_error(e, live_ > 0 || creating_ > 0, cfg_.e2b.template_id, lifetime);
        switch (verdict.act) {
            case action::fail:
                co_return fail(*j, verdict.result, std::move(verdict.message));
            case action::wait_for_slot:
                // Creates still in flight count too: their sandboxes may hold the slots already.
                job_log(log_level::debug, *j, "create refused (" + e.message + "); waiting for a sandbox to end");
                last_problem = std::move(verdict.message);
                {
                    const auto waiting = clock::now();
                    co_await wait_for_slot(backoff.maximum);
                    retry.exclude(clock::now() - waiting);  // waiting for a slot is not retrying
                }
                if (j->stop != stop_reason::none) co_return step::failed;
                continue;
            case action::look_up_lost:
                last_problem = std::move(verdict.message);
                co_await kill_lost(j, tags, sent);
                break;
            case action::retry:
                last_problem = std::move(verdict.message);
                break;
        }
        // Another create, within the job's budget.
        auto delay = retry.next_delay(e.retry_after);
        if (!delay)
            co_return fail(*j, outcome::infra_error,
                           "could not create a sandbox after " + std::to_string(retry.attempts()) + " attempts (" +
                               retry.gave_up_because() + "): " + last_problem);
        job_log(log_level::info, *j,
                "create failed (" + last_problem + "); trying again in " + seconds_text(*delay));
        co_await sleep_for(*delay);
    }
}

asio::awaitable<void> engine::kill_lost(std::shared_ptr<job_run> j, std::map<std::string, std::string> tags,
                                        clock::time_point sent, std::shared_ptr<cleanup_ticket> ticket) {
    // After the job's result (a detached cleanup), only the log hears of it.
    auto warn = [&](const std::string& message) {
        if (!ticket || !ticket->detached) j->r.warnings.push_back(message);
    };
    auto found = co_await api_->list(tags);
    if (!found) {
        const std::string message = "a sandbox creation got no answer and the sandboxes tagged for it could not be "
                                    "listed (" + found.error->message + "); the shutdown sweep will look again";
        job_log(log_level::warning, *j, message);
        warn(message);
        co_return;
    }
    for (const auto& s : *found) {
        std::string id = s.id;
        auto killed = co_await api_->kill(id);
        if (!ticket || !ticket->detached) j->r.sandbox_seconds += seconds_between(sent, clock::now());
        const std::string message = "sandbox " + id + " was created without an answer reaching us; " +
                                    (killed ? "killed it" : "could not kill it (" + killed.error->message + ")");
        job_log(log_level::info, *j, message);
        warn(message);
        if (!killed) unkilled_.insert(id);
    }
}

// ---- upload, install, run, download ---------------------------------------------------------------

asio::awaitable<step> engine::upload(std::shared_ptr<job_run> j) {
    enter(*j, phase::upload);
    if (j->stop != stop_reason::none) co_return step::failed;
    // Every file in one request (a copy: a retried attempt uploads them again).
    std::vector<e2b::upload_file> files;
    files.reserve(j->uploads.size());
    for (const auto& item : j->uploads) files.push_back(e2b::upload_file{item.target, *item.bytes});
    e2b::sandbox_handle sb = *j->sandbox;
    auto sent = co_await api_->upload_files(sb, std::move(files));
    if (!sent) {
        std::string what = "upload of";
        for (std::size_t i = 0; i < j->uploads.size(); ++i)
            what += (i == 0 ? " " : ", ") + j->uploads[i].source;
        co_return envd_failure(*j, *sent.error, what);
    }
    co_return step::ok;
}

asio::awaitable<step> engine::install(std::shared_ptr<job_run> j) {
    enter(*j, phase::install);
    std::string command = "pip install";
    for (const auto& d : cfg_.e2b.dependencies) command += " " + shell_quote(d);
    j->log_both("[genesis-launch] $ " + command + "\n");
    j->installed = true;

    capture_buffer out(pip_capture_bytes), err(pip_capture_bytes);
    auto job = j;
    std::function<void(std::string_view)> on_out = [job, &out](std::string_view b) {
        job->out_log.write(b);
        out.append(b);
    };
    std::function<void(std::string_view)> on_err = [job, &err](std::string_view b) {
        job->err_log.write(b);
        err.append(b);
    };
    const milliseconds limit(cfg_.e2b.install_timeout);
    e2b::sandbox_handle sb = *j->sandbox;
    std::string cwd(home_dir);
    std::map<std::string, std::string> envs;
    std::optional<milliseconds> timeout = limit;
    auto ran = co_await api_->run(sb, command, cwd, envs, timeout, on_out, on_err, watchdog_from_start(j, limit));
    j->watchdog.cancel();
    if (j->stop != stop_reason::none) co_return step::failed;

    auto with_output = [&](std::string text) {
        j->r.stdout_text = out.text();
        j->r.stderr_text = err.text();
        j->r.stdout_truncated = out.truncated();
        j->r.stderr_truncated = err.truncated();
        const std::string tail = err.text() + (out.text().empty() ? "" : "\n" + out.text());
        if (!tail.empty()) text += "\n" + tail;
        return text;
    };
    if (!ran) {
        if (ran.error->k == e2b::api_error::kind::timeout)
            co_return fail(*j, outcome::setup_failed,
                           with_output("dependency install (`" + command + "`) did not finish within " +
                                       seconds_text(limit) + " (job_config.install_timeout)"));
        co_return envd_failure(*j, *ran.error, "dependency install");
    }
    if (!ran->exited || ran->exit_code != 0)
        co_return fail(*j, outcome::setup_failed,
                       with_output("dependency install failed: `" + command + "` " +
                                   (ran->exited ? "exited with status " + std::to_string(ran->exit_code)
                                                : "ended with " + ran->status)));
    co_return step::ok;
}

asio::awaitable<step> engine::run_evaluator(std::shared_ptr<job_run> j) {
    enter(*j, phase::run);
    const prepared_job& job = j->ctx->job;
    std::string command = "mkdir -p results && exec python";
    for (const auto& arg : evaluator_arguments("evaluate.py", j->program_target, std::string(results_folder),
                                               job.extra_args))
        command += " " + shell_quote(arg);
    if (j->installed) j->log_both("[genesis-launch] $ " + command + "\n");

    j->out = std::make_unique<output_sink>(cfg_.output_capture_bytes, job.on_stdout);
    j->err = std::make_unique<output_sink>(cfg_.output_capture_bytes, job.on_stderr);
    auto sink = j;
    std::function<void(std::string_view)> on_out = [sink](std::string_view b) {
        sink->out_log.write(b);
        if (sink->out) sink->out->write(b);
    };
    std::function<void(std::string_view)> on_err = [sink](std::string_view b) {
        sink->err_log.write(b);
        if (sink->err) sink->err->write(b);
    };
    const auto t_run = clock::now();
    e2b::sandbox_handle sb = *j->sandbox;
    std::string cwd(home_dir);
    std::map<std::string, std::string> envs;
    std::optional<milliseconds> timeout = j->eval_limit;
    auto ran = co_await api_->run(sb, command, cwd, envs, timeout, on_out, on_err,
                                  watchdog_from_start(j, j->eval_limit));
    j->watchdog.cancel();
    j->r.timings.run += since(t_run);
    record_output(j->r, *j->out, *j->err);
    if (j->stop != stop_reason::none) co_return step::failed;

    if (!ran) {
        if (ran.error->k != e2b::api_error::kind::timeout)
            co_return envd_failure(*j, *ran.error, "evaluator run");
        // The sandbox killed the command at its deadline: keep what it wrote.
        j->r.result = outcome::timeout;
        j->r.diagnostic = "time limit of " + seconds_text(j->eval_limit) + " exceeded; the evaluator was killed";
        co_return step::ok;
    }
    if (ran->exited) classify_exit(j->r, {ran->exit_code, std::nullopt, {}});
    else classify_exit(j->r, {std::nullopt, signal_from_go_status(ran->status), ran->status});
    co_return step::ok;
}

}  // namespace genesis::launch::detail::e2b
