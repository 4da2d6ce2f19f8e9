#include "genesis/launch/job_launcher.hpp"

#include "launcher_core.hpp"

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
    if (detail::running_in_launcher_strand(get_executor()))
        throw std::logic_error("JobLauncher::shutdown() called from the launcher's own executor; use async_shutdown");
    auto f = async_shutdown(boost::asio::use_future);
    f.get();
}

}  // namespace genesis::launch
