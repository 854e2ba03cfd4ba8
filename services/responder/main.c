/* conveyor-responder: renders the reply to each request from the agent file's templates. */
#include "cv_launcher.h"
#include "responder_server.h"

int
main (int argc, char **argv)
{
    return cv_launcher_run (&responder_server_spec, argc, argv);
}
