# Sanitizer and fuzzing options for the top-level build (see docs/testing.md).
#
#   GENESIS_LAUNCH_SANITIZE=address,undefined   ASan + LeakSanitizer + UBSan (GCC or Clang)
#   GENESIS_LAUNCH_SANITIZE=thread              ThreadSanitizer (Clang recommended)
#   GENESIS_LAUNCH_FUZZ=ON                      libFuzzer targets (Clang only)
#
# The flags are applied directory-wide, so they reach the library, the CLI, the
# E2B emulator, the tests and the fuzz targets alike. UBSan findings are fatal
# (-fno-sanitize-recover=all), so any finding fails the test that hit it.
set(GENESIS_LAUNCH_SANITIZE "" CACHE STRING
    "Sanitizers for the whole build: empty, address,undefined, or thread")
option(GENESIS_LAUNCH_FUZZ "Build the libFuzzer targets (Clang only)" OFF)

set(GENESIS_LAUNCH_SANITIZER_FLAGS "")
if(GENESIS_LAUNCH_SANITIZE)
  string(REPLACE "," ";" _genesis_sanitizers "${GENESIS_LAUNCH_SANITIZE}")
  foreach(_s IN LISTS _genesis_sanitizers)
    if(NOT _s MATCHES "^(address|undefined|thread|leak)$")
      message(FATAL_ERROR "GENESIS_LAUNCH_SANITIZE: unknown sanitizer '${_s}'")
    endif()
  endforeach()
  if("thread" IN_LIST _genesis_sanitizers AND "address" IN_LIST _genesis_sanitizers)
    message(FATAL_ERROR "GENESIS_LAUNCH_SANITIZE: thread and address cannot be combined")
  endif()
  # Debug information comes from the build type (bootstrap.sh: -gline-tables-only,
  # which is all a sanitizer's stack traces need and compiles about 25% faster than -g).
  list(APPEND GENESIS_LAUNCH_SANITIZER_FLAGS
       -fsanitize=${GENESIS_LAUNCH_SANITIZE} -fno-omit-frame-pointer)
  if("undefined" IN_LIST _genesis_sanitizers)
    list(APPEND GENESIS_LAUNCH_SANITIZER_FLAGS -fno-sanitize-recover=all)
    if(CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
      # Clang 14 cannot compile our Asio coroutines with -fsanitize=function (part of
      # `undefined`): "error: Cannot represent a difference across sections" (LLVM
      # issue 49689). GCC has no such check, so nothing is lost against a GCC build.
      list(APPEND GENESIS_LAUNCH_SANITIZER_FLAGS -fno-sanitize=function)
    endif()
  endif()
endif()

if(GENESIS_LAUNCH_FUZZ AND NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  message(FATAL_ERROR "GENESIS_LAUNCH_FUZZ=ON needs Clang (e.g. -DCMAKE_CXX_COMPILER=clang++-14)")
endif()

if(GENESIS_LAUNCH_SANITIZER_FLAGS)
  add_compile_options(${GENESIS_LAUNCH_SANITIZER_FLAGS})
  add_link_options(${GENESIS_LAUNCH_SANITIZER_FLAGS})
  message(STATUS "genesis-launch: sanitizers ${GENESIS_LAUNCH_SANITIZE}")
endif()
# With GENESIS_LAUNCH_FUZZ, tests/fuzz adds libFuzzer's coverage instrumentation to
# the fuzz targets and the library sources they exercise only, so the rest of the
# (sanitizer) build and its tests run at full speed.
