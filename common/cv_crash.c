/* Crash points for the crash tests (cv_crash.h). */
#include "cv_crash.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void
cv_crash_point (const char *name)
{
    const char *at = getenv ("CONVEYOR_CRASH_AT");
    if (!at || strcmp (at, name) != 0)
        return;
    fprintf (stderr, "crash point %s: killing this process (pid %d) with SIGKILL\n", name, (int) getpid ());
    fflush (stderr);
    kill (getpid (), SIGKILL);
    abort (); /* not reached: SIGKILL cannot be caught */
}
