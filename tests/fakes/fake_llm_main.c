/* fake-llm: the stand-in LLM server as a process, for shell and end-to-end tests. Prints its base
   URL on the first line of stdout, serves until SIGTERM or SIGINT, then exits 0. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_alloc.h"
#include "fake_llm.h"

static const char s_usage[] =
    "usage: fake-llm [--port N] [--default STEP] [--step STEP]... [--intent KEYWORD=LABEL]... [--verbose]\n"
    "  STEP is JSON, e.g. '{\"mode\": \"status\", \"status\": 503}'; see tests/fakes/fake_llm.h.\n"
    "  --port 0 (the default) takes a free port. Script it at run time with POST /_fake/steps.\n";

int
main (int argc, char **argv)
{
    /* Block the stop signals before any thread starts, so only sigwait sees them. */
    sigset_t stop;
    sigemptyset (&stop);
    sigaddset (&stop, SIGTERM);
    sigaddset (&stop, SIGINT);
    pthread_sigmask (SIG_BLOCK, &stop, NULL);

    int port = 0;
    bool verbose = false;
    for (int arg = 1; arg < argc; arg++) {
        if (strcmp (argv[arg], "--verbose") == 0)
            verbose = true;
        else if (strcmp (argv[arg], "--help") == 0) {
            fputs (s_usage, stdout);
            return 0;
        } else if (strcmp (argv[arg], "--port") == 0 && arg + 1 < argc) {
            char *end;
            long value = strtol (argv[++arg], &end, 10);
            if (*end || value < 0 || value > 65535) {
                fprintf (stderr, "fake-llm: --port must be 0..65535\n");
                return 1;
            }
            port = (int) value;
        }
    }
    fake_llm_t *fake = fake_llm_new (port, verbose);
    if (!fake) {
        fprintf (stderr, "fake-llm: cannot listen on 127.0.0.1:%d\n", port);
        return 1;
    }
    for (int arg = 1; arg < argc; arg++) {
        char error[256] = "";
        const char *flag = argv[arg];
        const char *value = arg + 1 < argc ? argv[arg + 1] : NULL;
        int rc = 0;
        if (strcmp (flag, "--verbose") == 0)
            continue;
        if (!value)
            rc = -1, snprintf (error, sizeof error, "%s needs a value", flag);
        else if (strcmp (flag, "--port") == 0)
            ;
        else if (strcmp (flag, "--default") == 0)
            rc = fake_llm_set_default_json (fake, value, error, sizeof error);
        else if (strcmp (flag, "--step") == 0)
            rc = fake_llm_push_json (fake, value, error, sizeof error);
        else if (strcmp (flag, "--intent") == 0 && strchr (value, '=') && value[0] != '=') {
            char *keyword = cv_strndup (value, (size_t) (strchr (value, '=') - value));
            fake_llm_add_intent (fake, keyword, strchr (value, '=') + 1);
            free (keyword);
        } else
            rc = -1, snprintf (error, sizeof error, "unknown or malformed argument %s", flag);
        if (rc) {
            fprintf (stderr, "fake-llm: %s\n%s", error, s_usage);
            fake_llm_destroy (&fake);
            return 1;
        }
        arg++;
    }
    printf ("%s\n", fake_llm_base_url (fake));
    fflush (stdout);
    int signal_number;
    sigwait (&stop, &signal_number);
    fake_llm_destroy (&fake);
    return 0;
}
