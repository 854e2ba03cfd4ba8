/* conveyor-bankapi: the demo bank's FX-rate service and card-delivery tracker, over HTTP, until
   SIGINT or SIGTERM. */
#include "bankapi_settings.h"
#include "cv_launcher.h"

int
main (int argc, char **argv)
{
    return cv_launcher_serve (&bankapi_settings_service, argc, argv);
}
