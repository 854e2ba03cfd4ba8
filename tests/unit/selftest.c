/* Runs the self-tests of libconveyor's classes and the services' logic: `conveyor-selftest NAME`
   runs one (ctest registers one entry per class), no argument runs them all. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <selftests.h> /* the table, from the include path: tests/unit/<room>/ */

int
main (int argc, char **argv)
{
    bool verbose = argc > 2 && strcmp (argv[2], "-v") == 0;
    int ran = 0;
    for (const selftest_t *test = selftests; test->name; test++)
        if (argc < 2 || strcmp (argv[1], test->name) == 0) {
            printf ("%s\n", test->name);
            fflush (stdout);
            test->run (verbose);
            ran++;
        }
    if (ran == 0) {
        fprintf (stderr, "conveyor-selftest: no test named %s\n", argc > 1 ? argv[1] : "");
        return 1;
    }
    return 0;
}
