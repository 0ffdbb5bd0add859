# Tokenizer conformance against llama.cpp (node-llama-cpp): included by
# tests/conformance/CMakeLists.txt.
phi3_add_test(NAME tokenizer_conformance_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/tokenizer_conformance_test.cc
              LIBS phi3_tokenizer LABELS conformance TIMEOUT 600)
target_compile_definitions(tokenizer_conformance_test PRIVATE
  PHI3_NODE="${NODE_EXECUTABLE}" PHI3_ORACLE_DIR="${PHI3_ORACLE_DIR}")
# Also check the vocabulary as phi3-mkmodel writes it into a real tiny model.
if(TARGET phi3-mkmodel)
  add_dependencies(tokenizer_conformance_test phi3-mkmodel)
  target_compile_definitions(tokenizer_conformance_test PRIVATE
    PHI3_MKMODEL="$<TARGET_FILE:phi3-mkmodel>")
endif()
# The committed vocabulary data and test cases must equal what the scripts
# derive from the npm package (llama-tokenizer-js) today.
add_test(NAME tokenizer_vocab_data_check
         COMMAND ${NODE_EXECUTABLE} ${PHI3_ORACLE_DIR}/derive_vocab.mjs --check)
add_test(NAME tokenizer_js_cases_check
         COMMAND ${NODE_EXECUTABLE} ${PHI3_ORACLE_DIR}/tokenize_js_cases.mjs --check)
set_tests_properties(tokenizer_vocab_data_check tokenizer_js_cases_check
                     PROPERTIES LABELS conformance TIMEOUT 120)
