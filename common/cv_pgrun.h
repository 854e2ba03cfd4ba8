/* The runs a pipe (cv_pgpipe) keeps: one run of a prepared statement, its parameters copied into
   one block with it, its caller's callback and, once the server answered, its result; and the
   first-in first-out lists the runs wait in, queued or in flight.

   Plain data: the pipe reads and sets the fields itself. A run belongs to one list at a time,
   linked through next; the list functions keep first and last true and never call a run's done
   unless they say so. */
#ifndef CV_PGRUN_H
#define CV_PGRUN_H

#include <stdbool.h>
#include <stddef.h>

#include <libpq-fe.h>

#include "cv_error.h"
#include "cv_pgpipe.h"

typedef struct _cv_pgrun_t cv_pgrun_t;
struct _cv_pgrun_t {
    size_t statement; /* index into the pipe's statements */
    bool prepare;     /* the statement's Prepare, not a run of it */
    int count;
    char **values; /* count values (NULL is SQL NULL), in one block with the run */
    int *lengths;
    int *formats;
    cv_pgpipe_done_fn *done; /* NULL once cancelled, and for Prepare */
    void *arg;
    PGresult *result; /* while in flight: what the server said of it; owned */
    cv_pgrun_t *next;
};

typedef struct {
    cv_pgrun_t *first, *last; /* both NULL when empty */
} cv_pgrun_list_t;

/* A run of statement with count parameters, as cv_pgpipe_run takes them: values[i] (NULL is SQL
   NULL) of lengths[i] bytes in formats[i] (0 text, 1 binary; lengths and formats may be NULL for
   all text, and values too when count is 0). Everything is copied. Owned; no callback yet. */
cv_pgrun_t *cv_pgrun_new (size_t statement, int count, const char *const *values, const int *lengths,
                          const int *formats);
/* Frees the run and its result; NULL-safe, nulls the caller's pointer. */
void cv_pgrun_destroy (cv_pgrun_t **self_p);

/* Puts run (owned, not in a list) at the end of list. */
void cv_pgrun_list_append (cv_pgrun_list_t *list, cv_pgrun_t *run);
/* Moves every run of front before list's own, in their order; front ends empty. */
void cv_pgrun_list_prepend (cv_pgrun_list_t *list, cv_pgrun_list_t *front);
/* Takes up to max runs off the front of list, in their order: the caller owns what it returns. */
cv_pgrun_list_t cv_pgrun_list_take (cv_pgrun_list_t *list, size_t max);
/* Empties list, in order: takes one from *counter, then calls the run's done (when set) with no
   result and err, then frees it. The list is empty before the first callback, so a callback may
   use list's owner. */
void cv_pgrun_list_fail (cv_pgrun_list_t *list, const cv_error_t *err, size_t *counter);
/* Frees every run of list, calling no callback; list ends empty. */
void cv_pgrun_list_destroy (cv_pgrun_list_t *list);
/* Frees the runs of list whose arg is arg, calling no callback; returns how many. */
size_t cv_pgrun_list_drop (cv_pgrun_list_t *list, void *arg);
/* Clears the done of the runs of list whose arg is arg, so that none of them calls back. */
void cv_pgrun_list_forget (cv_pgrun_list_t *list, void *arg);

void cv_pgrun_test (bool verbose);

#endif
