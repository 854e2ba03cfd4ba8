/* conveyor-gatherer: the gatherer worker. Runs the tools of each request's plan and answers with
   the evidence; see gatherer_server.h for its settings and cv_launcher.h for the standard ones. */
#include "gatherer_server.h"

int
main (int argc, char **argv)
{
    const cv_launcher_spec_t spec = {
        .service = GATHERER_SERVICE,
        .summary = "conveyor's gatherer: runs the tools of an intent's plan (SQL, in parallel) and answers "
                   "with the evidence.",
        .request_body = CONVEYOR__V1__ENVELOPE__BODY_GATHER_REQUEST,
        .logic_new = gatherer_server_new,
        .logic_destroy = gatherer_server_destroy,
        .handle = gatherer_server_handle,
        .check = gatherer_server_check,
        .default_control_endpoint = GATHERER_DEFAULT_CONTROL_ENDPOINT,
        .extra_settings = gatherer_server_settings,
        .extra_count = gatherer_server_settings_count,
    };
    return cv_launcher_run (&spec, argc, argv);
}
