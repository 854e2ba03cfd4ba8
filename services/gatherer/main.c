/* conveyor-gatherer: the gatherer worker. Runs the tools of each request's plan and answers with
   the evidence; see gatherer_server.h for its settings and cv_launcher.h for the standard ones. */
#include "cv_launcher.h"
#include "gatherer_server.h"

int
main (int argc, char **argv)
{
    return cv_launcher_run (&gatherer_server_spec, argc, argv);
}
