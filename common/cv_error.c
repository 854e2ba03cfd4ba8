/* Errors that travel up a call chain as a code, a field and a message fit for a log line. */
#include "cv_error.h"

#include <stdio.h>
#include <string.h>

int
cv_error_set (cv_error_t *err, cv_error_code_t code, const char *field, const char *format, ...)
{
    if (!err)
        return -1;
    err->code = code;
    snprintf (err->field, sizeof err->field, "%s", field ? field : "");
    va_list args;
    va_start (args, format);
    vsnprintf (err->message, sizeof err->message, format, args);
    va_end (args);
    return -1;
}

void
cv_error_prefix (cv_error_t *err, const char *format, ...)
{
    if (!err)
        return;
    char prefix[256];
    va_list args;
    va_start (args, format);
    vsnprintf (prefix, sizeof prefix, format, args);
    va_end (args);
    char joined[sizeof err->message];
    snprintf (joined, sizeof joined, "%s: %s", prefix, err->message);
    memcpy (err->message, joined, sizeof joined);
}

void
cv_error_clear (cv_error_t *err)
{
    if (err)
        memset (err, 0, sizeof *err);
}

const char *
cv_error_code_name (cv_error_code_t code)
{
    switch (code) {
    case CV_OK:
        return "OK";
    case CV_ERR_MALFORMED:
        return "MALFORMED";
    case CV_ERR_INVALID:
        return "INVALID";
    case CV_ERR_WRONG_BODY:
        return "WRONG_BODY";
    case CV_ERR_DEADLINE_EXCEEDED:
        return "DEADLINE_EXCEEDED";
    case CV_ERR_UNAVAILABLE:
        return "UNAVAILABLE";
    case CV_ERR_INTERNAL:
        return "INTERNAL";
    }
    return "UNKNOWN";
}

#include <assert.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

/* A false assert (or, with_message, a false cv_assert_that) in a child process: true when it
   aborted the child, as it must in every build type, -DNDEBUG (Release) included. */
static bool
s_assert_aborts (bool with_message)
{
    pid_t child = fork ();
    assert (child >= 0);
    if (child == 0) {
        int null = open ("/dev/null", O_WRONLY);
        if (null >= 0)
            dup2 (null, STDERR_FILENO); /* the assert's message is expected */
        volatile int never = 0;
        if (with_message)
            cv_assert_that (never, "never is %d", never);
        else
            assert (never);
        _exit (0);
    }
    int status = 0;
    assert (waitpid (child, &status, 0) == child);
    return WIFSIGNALED (status) && WTERMSIG (status) == SIGABRT;
}

void
cv_error_test (bool verbose)
{
    cv_error_t err;
    cv_error_clear (&err);
    assert (err.code == CV_OK);
    assert (cv_error_set (&err, CV_ERR_INVALID, "text", "too long: %d bytes", 9000) == -1);
    assert (err.code == CV_ERR_INVALID);
    assert (strcmp (err.field, "text") == 0);
    assert (strcmp (err.message, "too long: 9000 bytes") == 0);
    cv_error_prefix (&err, "%s:%d", "agent.yaml", 12);
    assert (strcmp (err.message, "agent.yaml:12: too long: 9000 bytes") == 0);
    assert (cv_error_set (NULL, CV_ERR_INTERNAL, NULL, "ignored") == -1);
    assert (strcmp (cv_error_code_name (CV_ERR_DEADLINE_EXCEEDED), "DEADLINE_EXCEEDED") == 0);
#ifdef NDEBUG
#error "cv_assert.h undoes NDEBUG: asserts stay on in every build type"
#endif
    cv_assert_that (s_assert_aborts (false), "cv_error: a false assert did not abort: asserts are compiled away");
    cv_assert_that (s_assert_aborts (true), "cv_error: a false cv_assert_that did not abort");
    if (verbose)
        printf ("cv_error: ok\n");
}
