/* cv_llm against the stand-in LLM server, in process: what it sends, and how it copes when the
   server is slow, fails, lies, hangs or drops the connection. Runs as part of
   `conveyor-selftest cv_llm`, after cv_llm's own self-test. */
#ifndef LLM_CLIENT_TEST_H
#define LLM_CLIENT_TEST_H

#include <stdbool.h>

void llm_client_test (bool verbose);

#endif
