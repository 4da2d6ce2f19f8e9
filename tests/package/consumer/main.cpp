// A program that links genesis-launch the way an engine would, and checks one job.
// usage: consumer <python> <evaluator> <program> <results_dir>
#include <genesis/launch/launch.hpp>

#include <boost/asio/io_context.hpp>

#include <cstdio>
#include <thread>

int main(int argc, char** argv) {
    if (argc != 5) {
        std::fprintf(stderr, "usage: consumer <python> <evaluator> <program> <results_dir>\n");
        return 2;
    }
    namespace gl = genesis::launch;
    boost::asio::io_context io;
    auto work = boost::asio::make_work_guard(io);
    std::thread runner([&] { io.run(); });

    gl::launcher_config cfg;
    cfg.local.python = argv[1];
    cfg.eval_program_path = argv[2];
    cfg.results_dir = argv[4];
    auto launcher = gl::make_launcher(cfg, io.get_executor());
    gl::job_spec job;
    job.program_path = argv[3];
    job.job_id = "consumer";
    gl::job_result r = launcher->submit(job).result.get();
    launcher->shutdown();
    work.reset();
    runner.join();

    std::printf("genesis-launch %s: %s correct=%d score=%g\n", gl::version(), std::string(gl::to_string(r.result)).c_str(),
                r.correct, r.combined_score);
    return r.succeeded() && r.combined_score == 1.5 ? 0 : 1;
}
