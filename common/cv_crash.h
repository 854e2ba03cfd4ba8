/* Crash points, for the tests that prove nothing is lost or done twice when a process dies at the
   worst moment: CV_CRASH_POINT ("executor.after_side_effect") marks a place in a service's code.

   In the binaries a user runs it is nothing at all. In the crash-test builds of the services
   (conveyor-<service>-crashes, made only with the tests, whose sources are compiled with
   CONVEYOR_CRASH_POINTS defined) it kills the process with SIGKILL, as a power cut would, when the
   environment's CONVEYOR_CRASH_AT names the point: no clean-up, no reply, no log line after the
   one that says where it dies. */
#ifndef CV_CRASH_H
#define CV_CRASH_H

#ifdef CONVEYOR_CRASH_POINTS
#define CV_CRASH_POINT(name) cv_crash_point (name)
#else
#define CV_CRASH_POINT(name) ((void) 0)
#endif

/* Dies by SIGKILL when CONVEYOR_CRASH_AT is name, saying so on stderr first; else returns. */
void cv_crash_point (const char *name);

#endif
