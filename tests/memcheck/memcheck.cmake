# conveyor_memcheck (NAME COMMAND command [arg...])
#
# Registers memcheck.NAME: test NAME's command again, under valgrind memcheck, labelled memcheck.
# The entry fails on any memcheck error or definite leak outside the suppressions
# (tests/memcheck/conveyor.supp, third-party noise only, each entry with its reason). It takes NAME's
# working directory, environment and fixtures (a pg test's copy needs the pg fixture too, through
# conveyor_pg_test), and its timeout times four: valgrind runs code ten to fifty times slower, and
# the tests' own deadlines are on the wire, not on the CPU. Call it after NAME's properties are set.
# In a sanitizer build (CONVEYOR_SANITIZE) it registers nothing: valgrind cannot run ASan binaries,
# and that tree's own gate is the sanitizers.
include(${PROJECT_SOURCE_DIR}/tests/fixtures/pg_fixture.cmake)

if(NOT CONVEYOR_SANITIZE)
  find_program(CONVEYOR_VALGRIND valgrind)
  if(NOT CONVEYOR_VALGRIND)
    message(FATAL_ERROR "valgrind not found: deploy/local/bootstrap installs it (the memcheck label needs it)")
  endif()
endif()

function(conveyor_memcheck name)
  cmake_parse_arguments(PARSE_ARGV 1 MC "" "" "COMMAND")
  if(NOT MC_COMMAND)
    message(FATAL_ERROR "conveyor_memcheck(${name}): COMMAND is required")
  endif()
  if(CONVEYOR_SANITIZE)
    return()
  endif()
  set(valgrind ${CONVEYOR_VALGRIND} --tool=memcheck --quiet --error-exitcode=1 --leak-check=full
    --errors-for-leak-kinds=definite --show-leak-kinds=definite --num-callers=30
    --suppressions=${PROJECT_SOURCE_DIR}/tests/memcheck/conveyor.supp)
  get_test_property(${name} WORKING_DIRECTORY dir)
  get_test_property(${name} ENVIRONMENT env)
  get_test_property(${name} TIMEOUT timeout)
  get_test_property(${name} LABELS labels)
  if(NOT dir)
    set(dir ${CMAKE_CURRENT_BINARY_DIR})
  endif()
  if(NOT timeout)
    set(timeout 60)
  endif()
  math(EXPR timeout "${timeout} * 4")
  add_test(NAME memcheck.${name} COMMAND ${valgrind} ${MC_COMMAND} WORKING_DIRECTORY ${dir})
  set_tests_properties(memcheck.${name} PROPERTIES LABELS memcheck TIMEOUT ${timeout})
  if(env)
    set_property(TEST memcheck.${name} APPEND PROPERTY ENVIRONMENT ${env})
  endif()
  # An isolation test drives a service whose liveness is on the clock (the harness's workers beat
  # every 100 ms and reconnect after HARNESS_LIVENESS beats of silence, tests/isolation/harness.h):
  # under valgrind, beside the chaos and e2e tests on 2 cores, a starved process is slowed down
  # many times over, so these run alone (RUN_SERIAL); together they add about a minute of serial
  # time.
  if(isolation IN_LIST labels)
    set_tests_properties(memcheck.${name} PROPERTIES RUN_SERIAL TRUE)
  endif()
  if(pg IN_LIST labels)
    conveyor_pg_test(memcheck.${name})
  endif()
endfunction()
