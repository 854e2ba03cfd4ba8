/* conveyor-decision: applies the agent file's policies to a request's intent and evidence. */
#include "cv_launcher.h"
#include "decision_server.h"

int
main (int argc, char **argv)
{
    return cv_launcher_run (&decision_server_spec, argc, argv);
}
