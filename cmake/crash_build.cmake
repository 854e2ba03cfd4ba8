# conveyor_crash_build(SERVICE SOURCES...): conveyor-SERVICE-crashes, the service's launcher (main.c
# beside its sources) built from the same sources with the crash points of common/cv_crash.h
# compiled in, for tests/chaos/crash_points_test.sh. Made only with the tests; nothing else runs it.
function(conveyor_crash_build service)
  add_library(conveyor_${service}_crashes STATIC ${ARGN})
  target_include_directories(conveyor_${service}_crashes PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
  target_compile_definitions(conveyor_${service}_crashes PRIVATE CONVEYOR_CRASH_POINTS)
  target_link_libraries(conveyor_${service}_crashes PUBLIC conveyor)
  add_executable(conveyor-${service}-crashes main.c)
  target_link_libraries(conveyor-${service}-crashes PRIVATE conveyor_${service}_crashes)
endfunction()
