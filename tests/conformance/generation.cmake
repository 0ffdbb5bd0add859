# Greedy generation + first-step logits: phi3-run vs llama.cpp (node-llama-cpp)
# on tiny generated models of every weight type, a split-QKV file and a
# LongRoPE file below and above its original context (1 thread each: determinism
# across thread counts is pinned by unit tests). One ctest per model variant so
# `ctest -j` spreads them; each prints a one-line summary (see the script).
# llama.cpp runs as the CPU build tests/oracle/ggml_variant.py pins (zen4 where
# the CPU runs it; PHI3_ORACLE_VARIANT=NAME picks another). Included by
# tests/conformance/CMakeLists.txt.
find_program(PHI3_PYTHON3 python3 PATHS /usr/bin NO_DEFAULT_PATH)
if(NOT PHI3_PYTHON3)
  find_program(PHI3_PYTHON3 python3)
endif()
if(NOT (NODE_EXECUTABLE AND PHI3_PYTHON3 AND EXISTS ${PHI3_ORACLE_DIR}/node_modules/node-llama-cpp
        AND TARGET phi3-run AND TARGET phi3-mkmodel))
  message(WARNING "node, python3, tests/oracle/node_modules, phi3-run or phi3-mkmodel missing: "
                  "generation conformance tests not registered")
  return()
endif()

# name | --type | extra script arguments (comma-separated)
set(PHI3_GENERATION_VARIANTS
  "f32|f32|"
  "f16|f16|"
  "bf16|bf16|"
  "q8_0|q8_0|"
  "q4_0|q4_0|"
  "q4_1|q4_1|"
  "q4_k|q4_k|"
  "q5_k|q5_k|"
  "q6_k|q6_k|"
  "q4_k_m|q4_k_m|"
  "f16_split_qkv|f16|--variant,split-qkv"
  "f32_head96|f32|--variant,head96"
  "longrope_short|f32|--variant,longrope,--ctx,2048"
  "longrope_long|f32|--variant,longrope,--ctx,8192")
foreach(v IN LISTS PHI3_GENERATION_VARIANTS)
  string(REPLACE "|" ";" parts "${v}")
  list(GET parts 0 name)
  list(GET parts 1 type)
  list(GET parts 2 extra)
  string(REPLACE "," ";" extra "${extra}")
  add_test(NAME generation_conformance_${name}
           COMMAND ${PHI3_PYTHON3} ${CMAKE_CURRENT_LIST_DIR}/generation_conformance.py
                   --mkmodel $<TARGET_FILE:phi3-mkmodel> --run $<TARGET_FILE:phi3-run>
                   --node ${NODE_EXECUTABLE} --oracle-dir ${PHI3_ORACLE_DIR}
                   --oracle-cache ${CMAKE_BINARY_DIR}/oracle-pinned
                   --work-dir ${CMAKE_CURRENT_BINARY_DIR}/generation/${name}
                   --type ${type} --threads 1 ${extra})
  set_tests_properties(generation_conformance_${name} PROPERTIES LABELS conformance TIMEOUT 900)
endforeach()

# The llama.cpp CPU build the oracle compares against is pinned
# (tests/oracle/ggml_variant.py); this checks the pinning itself.
add_test(NAME oracle_cpu_build_pinning
         COMMAND ${PHI3_PYTHON3} ${PHI3_ORACLE_DIR}/ggml_variant_test.py
                 --oracle-dir ${PHI3_ORACLE_DIR} --node ${NODE_EXECUTABLE}
                 --cache ${CMAKE_BINARY_DIR}/oracle-pinned)
set_tests_properties(oracle_cpu_build_pinning PROPERTIES LABELS conformance TIMEOUT 300)
