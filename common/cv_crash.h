/* Crash points, for the tests that prove nothing is lost or done twice when a process dies or
   hangs at the worst moment: CV_CRASH_POINT ("executor.after_side_effect") marks a place in a
   service's code.

   In the binaries a user runs it is nothing at all. In the crash-test builds of the services
   (conveyor-<service>-crashes, made only with the tests, whose sources are compiled with
   CONVEYOR_CRASH_POINTS defined) the environment's CONVEYOR_CRASH_AT names what happens there:
     NAME       the process kills itself with SIGKILL, as a power cut would: no clean-up, no reply,
                no log line after the one that says where it dies;
     NAME:stop  the process stops itself with SIGSTOP, as a hung machine would (no heartbeat, no
                reply), the first time it gets there; sent SIGCONT, it goes on as if nothing had
                happened, its late answer and all. */
#ifndef CV_CRASH_H
#define CV_CRASH_H

#ifdef CONVEYOR_CRASH_POINTS
#define CV_CRASH_POINT(name) cv_crash_point (name)
#else
#define CV_CRASH_POINT(name) ((void) 0)
#endif

/* Does what CONVEYOR_CRASH_AT says for the point called name, saying so on stderr first; returns
   at once when it names another point or none. */
void cv_crash_point (const char *name);

#endif
