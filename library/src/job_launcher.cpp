#include "genesis/launch/job_launcher.hpp"

#include "e2b/e2b_backend.hpp"
#include "launcher_core.hpp"
#include "local/local_backend.hpp"

#include <boost/asio/use_future.hpp>

#include <atomic>
#include <random>

namespace genesis::launch {

std::string JobLauncher::make_job_id() {
    static std::atomic<std::uint64_t> counter{0};
    static const std::uint32_t salt = std::random_device{}();
    char buf[48];
    std::snprintf(buf, sizeof buf, "job-%llu-%06x", static_cast<unsigned long long>(++counter), salt & 0xffffffu);
    return buf;
}

job_handle JobLauncher::submit(job_spec job) {
    if (job.job_id.empty()) job.job_id = make_job_id();
    auto promise = std::make_shared<std::promise<job_result>>();
    auto future = promise->get_future();
    std::string id = job.job_id;
    async_submit(std::move(job), [promise](boost::system::error_code ec, job_result r) {
        if (ec) {
            diagnostics d;
            d.client_message = r.diagnostic;
            promise->set_exception(std::make_exception_ptr(launch_error(ec, std::move(d))));
        } else {
            promise->set_value(std::move(r));
        }
    });
    return job_handle(id, std::move(future), canceller(id));
}

void JobLauncher::shutdown() {
    if (get_executor().target<detail::strand_type>() &&
        get_executor().target<detail::strand_type>()->running_in_this_thread())
        throw std::logic_error("JobLauncher::shutdown() called from the launcher's own executor; use async_shutdown");
    auto f = async_shutdown(boost::asio::use_future);
    f.get();
}

std::unique_ptr<JobLauncher> make_launcher(const launcher_config& cfg, JobLauncher::executor_type executor,
                                           boost::system::error_code& ec, diagnostics& diag) {
    ec = {};
    diag.clear();
    validate(cfg, ec, diag);
    if (ec) return nullptr;
    switch (cfg.type) {
        case job_type::local:
            return std::make_unique<detail::launcher_core>(cfg, std::move(executor), detail::make_local_backend);
        case job_type::e2b: {
            if (cfg.e2b.api_key.empty()) {
                ec = make_error_code(errc::missing_credentials);
                diag.client_message =
                    "E2B_API_KEY is not set (set it in the environment or in a .env file in the working directory or a parent)";
                return nullptr;
            }
            if (auto why = detail::check_e2b_config(cfg)) {
                ec = make_error_code(errc::config_error);
                diag.client_message = std::move(*why);
                return nullptr;
            }
            return std::make_unique<detail::launcher_core>(cfg, std::move(executor), detail::make_e2b_backend);
        }
    }
    ec = make_error_code(errc::config_error);
    diag.client_message = "unknown job type";
    return nullptr;
}

std::unique_ptr<JobLauncher> make_launcher(const launcher_config& cfg, JobLauncher::executor_type executor) {
    boost::system::error_code ec;
    diagnostics diag;
    auto l = make_launcher(cfg, std::move(executor), ec, diag);
    if (ec) throw launch_error(ec, std::move(diag));
    return l;
}

}  // namespace genesis::launch
