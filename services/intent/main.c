/* conveyor-intent: classifies customer messages into intents: rules, the trained model, an LLM. */
#include "cv_launcher.h"
#include "intent_server.h"

int
main (int argc, char **argv)
{
    return cv_launcher_run (&intent_server_spec, argc, argv);
}
