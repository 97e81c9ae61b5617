# Examples: the C plugin (and two broken variants the plugin tests need) and a cpp-httplib
# application that adds sluice middlewares.
enable_language(C)
if(CCACHE_PROGRAM)
  set(CMAKE_C_COMPILER_LAUNCHER "${CCACHE_PROGRAM}")
endif()

foreach(plugin IN ITEMS hello_plugin hello_plugin_abi99 hello_plugin_dup)
  add_library(${plugin} MODULE ${PROJECT_SOURCE_DIR}/examples/plugins/hello_plugin.c)
  set_target_properties(${plugin} PROPERTIES PREFIX "" C_VISIBILITY_PRESET hidden
                        C_STANDARD 11)
  target_include_directories(${plugin} PRIVATE ${PROJECT_SOURCE_DIR}/include)
  target_compile_options(${plugin} PRIVATE -Wall -Wextra -Wpedantic -Werror)
endforeach()
target_compile_definitions(hello_plugin_abi99 PRIVATE HELLO_PLUGIN_ABI=99)
target_compile_definitions(hello_plugin_dup PRIVATE HELLO_PLUGIN_TYPE="request_id")

# The application is only compiled (no test runs it): the release tree does that, the sanitizer
# tree would only link the whole instrumented library once more.
if(EXISTS ${PROJECT_SOURCE_DIR}/examples/httplib_app/main.cpp AND NOT SLUICE_SANITIZE)
  add_executable(sluice_httplib_app ${PROJECT_SOURCE_DIR}/examples/httplib_app/main.cpp)
  target_compile_options(sluice_httplib_app PRIVATE ${SLUICE_WARNINGS})
  target_include_directories(sluice_httplib_app PRIVATE ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(sluice_httplib_app PRIVATE sluice PkgConfig::HTTPLIB)
endif()

if(TARGET sluice_integration_tests)
  target_compile_definitions(sluice_integration_tests PRIVATE
    SLUICE_HELLO_PLUGIN="$<TARGET_FILE:hello_plugin>"
    SLUICE_HELLO_PLUGIN_ABI99="$<TARGET_FILE:hello_plugin_abi99>"
    SLUICE_HELLO_PLUGIN_DUP="$<TARGET_FILE:hello_plugin_dup>")
  add_dependencies(sluice_integration_tests hello_plugin hello_plugin_abi99 hello_plugin_dup)
endif()
