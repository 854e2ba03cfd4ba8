/* cv_http against a raw HTTP server on its loop that answers as told: well, with a status and
   Retry-After, oversized, cut short, not HTTP at all, never, or by closing. Run under cv_http's
   name, after its self-test. */
#ifndef HTTP_CLIENT_TEST_H
#define HTTP_CLIENT_TEST_H

#include <stdbool.h>

void http_client_test (bool verbose);

#endif
