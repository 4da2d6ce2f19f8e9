# Dependencies of the library itself (kept in one place so that the installed
# GenesisLaunchConfig.cmake can repeat them with find_dependency).
find_package(Threads REQUIRED)
find_package(Boost 1.81 REQUIRED COMPONENTS json url filesystem)
find_package(yaml-cpp REQUIRED)
find_package(OpenSSL 3 REQUIRED)
