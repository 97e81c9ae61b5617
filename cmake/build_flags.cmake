# Build flags of the release binary: link-time optimization (SLUICE_LTO) and profile-guided
# optimization (SLUICE_PGO, `make build-pgo`). Measured in docs/PERFORMANCE.md, "Build flags of
# the release binary". Neither applies to the sanitizer trees: they test the code, not its cost.
# Included after the `sluice` library and the `sluice_cli` program are defined.

if(SLUICE_SANITIZE OR SLUICE_TSAN)
  set(SLUICE_PLAIN_TREE OFF)
else()
  set(SLUICE_PLAIN_TREE ON)
endif()

option(SLUICE_LTO "Link the sluice program with link-time optimization (fat library objects)" OFF)
if(SLUICE_LTO AND SLUICE_PLAIN_TREE)
  # Fat objects: each library object carries GCC's intermediate code for the program's LTO link
  # and ordinary machine code, so the test programs, the micro-benchmarks, the installed
  # libsluice.a and the fuzz build's config target (which takes these objects, linked by clang)
  # link as before, without an LTO link each. Only `sluice` pays the whole-program link.
  target_compile_options(sluice PRIVATE -flto=auto -ffat-lto-objects)
  target_compile_options(sluice_cli PRIVATE -flto=auto)
  target_link_options(sluice_cli PRIVATE -flto=auto)
  # GCC links a fat object's intermediate code whenever it is there, -flto or not: without
  # -fno-lto every test program would get a whole-program link too (~90 s of CPU each). Programs
  # defined after this point (tests, benchmarks, examples) and consumers of the library
  # (the installed CMake package; SLUICE_PC_LINK_FLAGS: sluice.pc) link the ordinary code.
  add_link_options(-fno-lto)
  target_link_options(sluice INTERFACE $<INSTALL_INTERFACE:-fno-lto>)
  set(SLUICE_PC_LINK_FLAGS " -fno-lto")
endif()

# SLUICE_PGO=generate builds an instrumented program that writes its branch and call counts to
# SLUICE_PGO_DIR when it exits; SLUICE_PGO=use compiles with those counts (hot code laid out
# together, cold code split off, likely branches fall through, hot indirect calls promoted).
# -fprofile-prefix-path makes the counts' file names relative to the build tree, so the two
# trees can be different folders. -fprofile-partial-training: code the training did not run is
# optimized as without a profile (not for size), since users run paths the training does not.
set(SLUICE_PGO "" CACHE STRING "Profile-guided build: generate or use (make build-pgo runs both)")
set(SLUICE_PGO_DIR "${PROJECT_BINARY_DIR}/pgo-profile" CACHE PATH "Where the profile counts are")
if(SLUICE_PGO AND SLUICE_PLAIN_TREE)
  if(SLUICE_PGO STREQUAL "generate")
    set(SLUICE_PGO_FLAGS -fprofile-generate=${SLUICE_PGO_DIR})
    # Every program linking the instrumented library needs the profiling runtime.
    link_libraries(-fprofile-generate=${SLUICE_PGO_DIR})
    target_link_options(sluice_cli PRIVATE -fprofile-generate=${SLUICE_PGO_DIR})
  elseif(SLUICE_PGO STREQUAL "use")
    set(SLUICE_PGO_FLAGS -fprofile-use=${SLUICE_PGO_DIR} -fprofile-partial-training -Wno-missing-profile)
  else()
    message(FATAL_ERROR "SLUICE_PGO must be generate, use or empty (got ${SLUICE_PGO})")
  endif()
  target_compile_options(sluice PRIVATE ${SLUICE_PGO_FLAGS} -fprofile-prefix-path=${PROJECT_BINARY_DIR})
  target_compile_options(sluice_cli PRIVATE ${SLUICE_PGO_FLAGS} -fprofile-prefix-path=${PROJECT_BINARY_DIR})
endif()
