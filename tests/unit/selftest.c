/* Runs one room's self-tests from its table: `ROOM-selftest NAME [-v]` runs one class's (ctest
   registers one entry per class), no name runs them all, --list prints the names. A test fails by
   assert, which aborts the run. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <selftests.h> /* the room's table, written into the build tree by conveyor_selftests */

static void
s_usage (FILE *out, const char *program)
{
    fprintf (out,
             "usage: %s [NAME [-v]]   run every self-test, or NAME's (-v: verbose)\n"
             "       %s --list        print the names, one a line\n",
             program, program);
}

int
main (int argc, char **argv)
{
    const char *name = argc > 1 ? argv[1] : NULL;
    if (name && (strcmp (name, "--help") == 0 || strcmp (name, "-h") == 0)) {
        s_usage (stdout, argv[0]);
        return 0;
    }
    if (name && strcmp (name, "--list") == 0) {
        for (const selftest_t *test = selftests; test->name; test++)
            if (test == selftests || strcmp (test->name, test[-1].name) != 0)
                printf ("%s\n", test->name);
        return 0;
    }
    bool verbose = argc > 2 && strcmp (argv[2], "-v") == 0;
    if (argc > 3 || (argc == 3 && !verbose)) {
        s_usage (stderr, argv[0]);
        return 2;
    }
    int ran = 0;
    for (const selftest_t *test = selftests; test->name; test++)
        if (!name || strcmp (name, test->name) == 0) {
            printf ("%s\n", test->name);
            fflush (stdout);
            test->run (verbose);
            ran++;
        }
    if (ran == 0) {
        fprintf (stderr, "%s: no self-test named %s (--list prints them)\n", argv[0], name);
        return 1;
    }
    return 0;
}
