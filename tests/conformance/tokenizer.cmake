# Tokenizer conformance against llama.cpp (node-llama-cpp): included by
# tests/conformance/CMakeLists.txt.
phi3_add_test(NAME tokenizer_conformance_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/tokenizer_conformance_test.cc
              LIBS phi3_tokenizer LABELS conformance TIMEOUT 600)
target_compile_definitions(tokenizer_conformance_test PRIVATE
  PHI3_NODE="${NODE_EXECUTABLE}" PHI3_ORACLE_DIR="${PHI3_ORACLE_DIR}")
