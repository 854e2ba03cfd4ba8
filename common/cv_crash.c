/* Crash points for the crash tests (cv_crash.h). */
#include "cv_crash.h"

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Wall-clock milliseconds, to set the line beside the logs'. */
static long long
s_now_ms (void)
{
    struct timespec now;
    clock_gettime (CLOCK_REALTIME, &now);
    return (long long) now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

void
cv_crash_point (const char *name)
{
    static bool stopped; /* a stop point stops the process once */
    const char *at = getenv ("CONVEYOR_CRASH_AT");
    size_t length = strlen (name);
    if (!at || strncmp (at, name, length) != 0)
        return;
    if (at[length] == '\0') {
        fprintf (stderr, "crash point %s: killing this process (pid %d) with SIGKILL\n", name, (int) getpid ());
        fflush (stderr);
        /* To this thread, not the process: a signal sent to the process is taken by whichever
           thread the kernel picks, while this one runs on and may answer first. */
        raise (SIGKILL);
        abort (); /* not reached: SIGKILL cannot be caught */
    }
    if (strcmp (at + length, ":stop") == 0 && !stopped) {
        stopped = true;
        fprintf (stderr, "crash point %s: stopping this process (pid %d) with SIGSTOP at %lld ms\n", name,
                 (int) getpid (), (long long) s_now_ms ());
        fflush (stderr);
        raise (SIGSTOP); /* to this thread, as above; returns once SIGCONT comes */
        fprintf (stderr, "crash point %s: continued\n", name);
    }
}
