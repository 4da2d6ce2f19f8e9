#pragma once

namespace genesis::launch {
// The library's version, "MAJOR.MINOR.PATCH".
const char* version() noexcept;
}  // namespace genesis::launch
