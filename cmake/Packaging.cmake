# `cmake --install` rules and the Debian package (CPack):
#   cmake --install build [--prefix /usr/local]   # or: cd build && cpack -G DEB
# phi3serve_<version>_amd64.deb holds the programs, the API's .proto, the
# example settings (/etc/phi3serve/phi3-server.env, a conffile), a hardened
# systemd unit and its system user. The unit is installed, not started: it
# needs a model first (README, "Get the model").
include(GNUInstallDirs)

# phi3-bench is not installed: it compares against llama.cpp through a script
# of the source tree (tests/oracle).
foreach(program phi3-server phi3-client phi3-run phi3-mkmodel phi3-usage)
  if(TARGET ${program})
    install(TARGETS ${program} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
  endif()
endforeach()
install(FILES ${CMAKE_SOURCE_DIR}/proto/phi3/v1/phi3.proto
        DESTINATION ${CMAKE_INSTALL_DATADIR}/phi3serve/proto/phi3/v1)
# The settings file and the unit naming it and the server go where the
# install prefix, known only at install time, says: /usr (the package) keeps
# settings in /etc/phi3serve, any other prefix in PREFIX/etc/phi3serve.
install(CODE "set(PHI3_SOURCE_DIR \"${CMAKE_SOURCE_DIR}\")
              set(PHI3_BINARY_DIR \"${CMAKE_CURRENT_BINARY_DIR}\")")
install(CODE [[
  if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
    set(PHI3_CONFIG_DIR /etc/phi3serve)
  else()
    set(PHI3_CONFIG_DIR "${CMAKE_INSTALL_PREFIX}/etc/phi3serve")
  endif()
  set(PHI3_BIN_DIR "${CMAKE_INSTALL_PREFIX}/bin")
  configure_file("${PHI3_SOURCE_DIR}/deploy/systemd/phi3-server.service.in"
                 "${PHI3_BINARY_DIR}/phi3-server.service" @ONLY)
  # file(INSTALL) prepends $DESTDIR itself.
  file(INSTALL DESTINATION "${CMAKE_INSTALL_PREFIX}/lib/systemd/system" TYPE FILE
       FILES "${PHI3_BINARY_DIR}/phi3-server.service")
  file(INSTALL DESTINATION "${PHI3_CONFIG_DIR}" TYPE FILE
       FILES "${PHI3_SOURCE_DIR}/deploy/systemd/phi3-server.env")
]])
install(FILES ${CMAKE_SOURCE_DIR}/deploy/systemd/phi3serve.sysusers
        DESTINATION lib/sysusers.d RENAME phi3serve.conf)
install(FILES ${CMAKE_SOURCE_DIR}/README.md ${CMAKE_SOURCE_DIR}/deploy/systemd/api-keys.example
        DESTINATION ${CMAKE_INSTALL_DOCDIR})

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME phi3serve)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "Phi-3-mini server for CPUs: gRPC and OpenAI-compatible HTTP APIs")
set(CPACK_PACKAGE_CONTACT "phi3serve maintainers <phi3serve@localhost>")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # phi3serve_<version>_<arch>.deb
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)   # Depends from the binaries' libraries
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION
    "Serves Microsoft's Phi-3-mini from GGUF files on CPUs with continuous batching,
 a paged KV cache with prompt-prefix caching and SIMD kernels for llama.cpp's
 quantized formats. APIs: gRPC (phi3.v1.Phi3) and OpenAI-compatible HTTP;
 Prometheus metrics; API keys per tenant.")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${CMAKE_SOURCE_DIR}/deploy/debian/conffiles
    ${CMAKE_SOURCE_DIR}/deploy/debian/postinst
    ${CMAKE_SOURCE_DIR}/deploy/debian/prerm
    ${CMAKE_SOURCE_DIR}/deploy/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
