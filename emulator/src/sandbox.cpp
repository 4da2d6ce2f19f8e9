#include "sandbox.hpp"

#include <openssl/rand.h>

#include <array>
#include <stdexcept>
#include <system_error>

namespace genesis::e2b_emulator {

namespace {

// Bytes from OpenSSL's CSPRNG (seeded by the kernel).
void random_bytes(unsigned char* out, std::size_t n) {
    if (RAND_bytes(out, static_cast<int>(n)) != 1) throw std::runtime_error("RAND_bytes failed");
}

// Converts a point on the system clock into the steady clock's time line, for timers.
std::chrono::steady_clock::time_point to_steady(sys_clock::time_point t) {
    auto left = std::chrono::duration_cast<std::chrono::steady_clock::duration>(t - sys_clock::now());
    return std::chrono::steady_clock::now() + left;
}

}  // namespace

std::string random_hex(std::size_t digits) {
    static constexpr char hex[] = "0123456789abcdef";
    std::string bytes((digits + 1) / 2, '\0');
    random_bytes(reinterpret_cast<unsigned char*>(bytes.data()), bytes.size());
    std::string out;
    out.reserve(digits);
    for (unsigned char b : bytes) {
        out += hex[b >> 4];
        out += hex[b & 0x0f];
    }
    out.resize(digits);
    return out;
}

std::string random_sandbox_id() {
    static constexpr std::string_view alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
    std::string id = "i";
    while (id.size() < 21) {
        std::array<unsigned char, 32> bytes;
        random_bytes(bytes.data(), bytes.size());
        for (unsigned char b : bytes) {
            // Rejection sampling keeps the 36 characters equally likely (252 = 7 * 36).
            if (b < 252 && id.size() < 21) id += alphabet[b % alphabet.size()];
        }
    }
    return id;
}

sandbox_registry::sandbox_registry(boost::asio::any_io_executor ex, std::filesystem::path state_dir)
    : ex_(std::move(ex)), state_dir_(std::move(state_dir)) {}

sandbox_registry::~sandbox_registry() { destroy_all(); }

std::shared_ptr<sandbox> sandbox_registry::create(const template_spec& tmpl, std::chrono::seconds timeout,
                                                  std::map<std::string, std::string> metadata,
                                                  std::map<std::string, std::string> env_vars, bool internet) {
    auto sb = std::make_shared<sandbox>();
    do {
        sb->id = random_sandbox_id();
    } while (sandboxes_.count(sb->id) != 0);
    sb->template_id = tmpl.name;
    sb->alias = tmpl.name;
    sb->access_token = random_hex(64);
    sb->metadata = std::move(metadata);
    sb->env_vars = std::move(env_vars);
    sb->tmpl = tmpl;
    sb->internet = internet;
    sb->started_at = sys_clock::now();
    sb->end_at = sb->started_at + timeout;
    sb->root = state_dir_ / "sandboxes" / sb->id;
    std::filesystem::create_directories(sb->home());  // throws on failure: the caller answers 500
    sb->expiry = std::make_unique<boost::asio::steady_timer>(ex_);
    sandboxes_.emplace(sb->id, sb);
    ++counters_.created;
    arm(sb);
    return sb;
}

std::shared_ptr<sandbox> sandbox_registry::find(const std::string& id) const {
    auto it = sandboxes_.find(id);
    return it == sandboxes_.end() ? nullptr : it->second;
}

bool sandbox_registry::destroy(const std::string& id, end_reason why) {
    auto it = sandboxes_.find(id);
    if (it == sandboxes_.end()) return false;
    auto sb = it->second;
    sandboxes_.erase(it);  // gone for everyone from now on, also while the hook runs
    sb->expiry.reset();    // cancels the wait; a null timer also marks the sandbox as ended
    if (on_destroy) on_destroy(*sb);
    std::error_code ignored;
    std::filesystem::remove_all(sb->root, ignored);
    switch (why) {
        case end_reason::killed:
            ++counters_.killed;
            break;
        case end_reason::expired:
            ++counters_.expired;
            break;
        case end_reason::vanished:
            ++counters_.vanished;
            break;
        case end_reason::shutdown:
            break;
    }
    return true;
}

bool sandbox_registry::set_timeout(const std::string& id, std::chrono::seconds timeout) {
    auto sb = find(id);
    if (!sb) return false;
    sb->end_at = sys_clock::now() + timeout;
    arm(sb);
    return true;
}

std::vector<std::shared_ptr<sandbox>> sandbox_registry::list() const {
    std::vector<std::shared_ptr<sandbox>> out;
    out.reserve(sandboxes_.size());
    for (const auto& [id, sb] : sandboxes_) out.push_back(sb);
    return out;
}

void sandbox_registry::destroy_all() {
    while (!sandboxes_.empty()) destroy(sandboxes_.begin()->first, end_reason::shutdown);
}

void sandbox_registry::arm(const std::shared_ptr<sandbox>& sb) {
    // Re-arming cancels the previous wait (its handler sees operation_aborted).
    sb->expiry->expires_at(to_steady(sb->end_at));
    std::weak_ptr<sandbox> weak = sb;
    auto armed_for = sb->end_at;
    sb->expiry->async_wait([this, weak, armed_for](boost::system::error_code ec) {
        if (ec) return;  // cancelled: re-armed, destroyed, or shutting down
        auto sb = weak.lock();
        // Ended already (the registry may be gone then), or a stale expiry: the
        // timeout changed after this wait had completed.
        if (!sb || !sb->expiry || sb->end_at != armed_for || find(sb->id) != sb) return;
        destroy(sb->id, end_reason::expired);
    });
}

}  // namespace genesis::e2b_emulator
