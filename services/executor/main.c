/* conveyor-executor: the executor worker. Performs the actions of each request through the bank's
   write path and answers with their results; see executor_server.h for its settings and
   cv_launcher.h for the standard ones. */
#include "cv_launcher.h"
#include "executor_server.h"

int
main (int argc, char **argv)
{
    return cv_launcher_run (&executor_server_spec, argc, argv);
}
