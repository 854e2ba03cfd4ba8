/* Allocators that abort on out of memory instead of returning NULL (see cv_alloc.h). */
#include "cv_alloc.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One line on stderr, written without allocating, then abort (). */
static void __attribute__ ((noreturn)) s_out_of_memory (const char *function, size_t size)
{
    fprintf (stderr, "%s: out of memory asking for %zu bytes\n", function, size);
    fflush (stderr);
    abort ();
}

void *
cv_malloc (size_t size)
{
    /* malloc (0) may return NULL; asking for one byte keeps NULL meaning failure only. */
    void *block = malloc (size ? size : 1);
    if (!block)
        s_out_of_memory ("cv_malloc", size);
    return block;
}

void *
cv_calloc (size_t count, size_t size)
{
    if (size && count > SIZE_MAX / size)
        s_out_of_memory ("cv_calloc", SIZE_MAX);
    void *block = calloc (count ? count : 1, size ? size : 1);
    if (!block)
        s_out_of_memory ("cv_calloc", count * size);
    return block;
}

void *
cv_realloc (void *block, size_t size)
{
    /* realloc (block, 0) may free block and return NULL; keep a one-byte block instead. */
    void *resized = realloc (block, size ? size : 1);
    if (!resized)
        s_out_of_memory ("cv_realloc", size);
    return resized;
}

char *
cv_strdup (const char *string)
{
    assert (string);
    size_t size = strlen (string) + 1;
    char *copy = cv_malloc (size);
    memcpy (copy, string, size);
    return copy;
}

char *
cv_strndup (const char *string, size_t size)
{
    assert (string);
    size_t length = strnlen (string, size);
    char *copy = cv_malloc (length + 1);
    memcpy (copy, string, length);
    copy[length] = '\0';
    return copy;
}

char *
cv_vasprintf (const char *format, va_list args)
{
    assert (format);
    va_list measure;
    va_copy (measure, args);
    int length = vsnprintf (NULL, 0, format, measure);
    va_end (measure);
    assert (length >= 0); /* only an invalid format or a wide character fails: a bug */
    char *string = cv_malloc ((size_t) length + 1);
    int written = vsnprintf (string, (size_t) length + 1, format, args);
    assert (written == length);
    return string;
}

char *
cv_asprintf (const char *format, ...)
{
    va_list args;
    va_start (args, format);
    char *string = cv_vasprintf (format, args);
    va_end (args);
    return string;
}

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

/* A failed allocation in a child process, its stderr into a pipe: true when it aborted the child
   and said the size. Under AddressSanitizer the sanitizer reports an impossible size first and
   exits, so there only the child's death is checked. */
static bool
s_failure_aborts (void)
{
    int pipe_fds[2];
    assert (pipe (pipe_fds) == 0);
    pid_t child = fork ();
    assert (child >= 0);
    if (child == 0) {
        close (pipe_fds[0]);
        dup2 (pipe_fds[1], STDERR_FILENO);
        volatile size_t huge = SIZE_MAX - 16;
        void *block = cv_malloc (huge);
        free (block);
        _exit (0);
    }
    close (pipe_fds[1]);
    char said[512] = "";
    size_t used = 0;
    ssize_t got;
    while (used < sizeof said - 1 && (got = read (pipe_fds[0], said + used, sizeof said - 1 - used)) > 0)
        used += (size_t) got;
    said[used] = '\0';
    close (pipe_fds[0]);
    int status = 0;
    assert (waitpid (child, &status, 0) == child);
#if defined(__SANITIZE_ADDRESS__)
    return !(WIFEXITED (status) && WEXITSTATUS (status) == 0);
#else
    char expected[128];
    snprintf (expected, sizeof expected, "cv_malloc: out of memory asking for %zu bytes\n", (size_t) (SIZE_MAX - 16));
    cv_assert_that (strcmp (said, expected) == 0, "the child said \"%s\"", said);
    return WIFSIGNALED (status) && WTERMSIG (status) == SIGABRT;
#endif
}

void
cv_alloc_test (bool verbose)
{
    char *block = cv_malloc (16);
    memset (block, 'x', 16);
    block = cv_realloc (block, 4096);
    assert (block[15] == 'x');
    block = cv_realloc (block, 0); /* a one-byte block, not NULL */
    free (block);
    free (cv_malloc (0));

    int *zeroed = cv_calloc (8, sizeof *zeroed);
    for (int i = 0; i < 8; i++)
        assert (zeroed[i] == 0);
    free (zeroed);
    free (cv_calloc (0, 0));
    int *grown = cv_realloc (NULL, 4 * sizeof *grown); /* realloc of NULL allocates */
    free (grown);

    char *copy = cv_strdup ("conveyor");
    assert (strcmp (copy, "conveyor") == 0);
    free (copy);
    copy = cv_strndup ("conveyor", 4);
    assert (strcmp (copy, "conv") == 0);
    free (copy);
    copy = cv_strndup ("cv", 10);
    assert (strcmp (copy, "cv") == 0);
    free (copy);

    char *formatted = cv_asprintf ("%s-%d", "intent", 7);
    cv_assert_that (strcmp (formatted, "intent-7") == 0, "got %s", formatted);
    free (formatted);
    formatted = cv_asprintf ("%s", "");
    assert (strcmp (formatted, "") == 0);
    free (formatted);

    assert (s_failure_aborts ());
    if (verbose)
        printf ("cv_alloc: allocations never return NULL; a failed one aborts\n");
}
