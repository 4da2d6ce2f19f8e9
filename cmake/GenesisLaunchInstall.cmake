include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(GENESIS_LAUNCH_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/GenesisLaunch)

install(TARGETS genesis_launch_lib EXPORT GenesisLaunchTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/library/include/genesis
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
foreach(program genesis_launch genesis_e2b_emulator)
  if(TARGET ${program})
    install(TARGETS ${program} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
  endif()
endforeach()
install(EXPORT GenesisLaunchTargets NAMESPACE genesis:: DESTINATION ${GENESIS_LAUNCH_CMAKE_DIR})

configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/GenesisLaunchConfig.cmake.in
  ${PROJECT_BINARY_DIR}/GenesisLaunchConfig.cmake
  INSTALL_DESTINATION ${GENESIS_LAUNCH_CMAKE_DIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/GenesisLaunchConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/GenesisLaunchConfig.cmake
              ${PROJECT_BINARY_DIR}/GenesisLaunchConfigVersion.cmake
        DESTINATION ${GENESIS_LAUNCH_CMAKE_DIR})
