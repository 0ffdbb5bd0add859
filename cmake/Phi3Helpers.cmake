# Shared CMake helpers. Each module folder owns its own CMakeLists.txt.

# phi3_add_subdirectories(dir...): adds each folder that has a CMakeLists.txt.
function(phi3_add_subdirectories)
  foreach(dir IN LISTS ARGN)
    if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/${dir}/CMakeLists.txt)
      add_subdirectory(${dir})
    endif()
  endforeach()
endfunction()

# phi3_add_test(NAME name SOURCES src... [LIBS lib...] [DEFINITIONS def...]
#               [LABELS label...] [TIMEOUT s])
# A gtest binary registered with ctest under the given labels (default: unit).
# Without GoogleTest (BUILD_TESTING OFF) it defines nothing, so callers pass
# everything here instead of touching the target afterwards.
function(phi3_add_test)
  if(NOT BUILD_TESTING)
    return()
  endif()
  cmake_parse_arguments(T "" "NAME;TIMEOUT" "SOURCES;LIBS;DEFINITIONS;LABELS" ${ARGN})
  if(NOT T_LABELS)
    set(T_LABELS unit)
  endif()
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  add_executable(${T_NAME} ${T_SOURCES})
  target_link_libraries(${T_NAME} PRIVATE ${T_LIBS} GTest::gtest GTest::gmock GTest::gtest_main)
  target_compile_definitions(${T_NAME} PRIVATE ${T_DEFINITIONS})
  add_test(NAME ${T_NAME} COMMAND ${T_NAME})
  set_tests_properties(${T_NAME} PROPERTIES LABELS "${T_LABELS}" TIMEOUT ${T_TIMEOUT})
endfunction()
