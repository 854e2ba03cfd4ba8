/* conveyor-orchestrator: reads its settings and runs the orchestrator actor until SIGINT or SIGTERM. */
#include "cv_launcher.h"
#include "orchestrator_settings.h"

int
main (int argc, char **argv)
{
    return cv_launcher_serve (&orchestrator_settings_service, argc, argv);
}
