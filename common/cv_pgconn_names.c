/* The statements one PostgreSQL session has prepared, by their text. */
#include "cv_pgconn_names.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <czmq.h>

#include "cv_alloc.h"

struct _cv_pgconn_names_t {
    zhashx_t *table; /* text -> name (owned) */
    size_t max;
    size_t issued;
};

static void
s_free_name (void **item)
{
    free (*item);
    *item = NULL;
}

cv_pgconn_names_t *
cv_pgconn_names_new (size_t max)
{
    assert (max >= 1);
    cv_pgconn_names_t *self = cv_calloc (1, sizeof *self);
    self->table = zhashx_new ();
    zhashx_set_destructor (self->table, s_free_name);
    self->max = max;
    return self;
}

void
cv_pgconn_names_destroy (cv_pgconn_names_t **self_p)
{
    assert (self_p);
    cv_pgconn_names_t *self = *self_p;
    if (!self)
        return;
    zhashx_destroy (&self->table);
    free (self);
    *self_p = NULL;
}

const char *
cv_pgconn_names_find (const cv_pgconn_names_t *self, const char *sql)
{
    assert (self && sql);
    return zhashx_lookup (self->table, sql);
}

bool
cv_pgconn_names_next (cv_pgconn_names_t *self, char *name)
{
    assert (self && name);
    if (self->issued >= self->max)
        return false;
    snprintf (name, CV_PGCONN_NAME_BYTES, "cv_%zu", ++self->issued);
    return true;
}

void
cv_pgconn_names_add (cv_pgconn_names_t *self, const char *sql, const char *name)
{
    assert (self && sql && name);
    int rc = zhashx_insert (self->table, sql, cv_strdup (name));
    assert (rc == 0); /* a text is prepared once a session */
}

void
cv_pgconn_names_clear (cv_pgconn_names_t *self)
{
    assert (self);
    zhashx_purge (self->table);
    self->issued = 0;
}

size_t
cv_pgconn_names_count (const cv_pgconn_names_t *self)
{
    assert (self);
    return zhashx_size (self->table);
}

size_t
cv_pgconn_names_issued (const cv_pgconn_names_t *self)
{
    assert (self);
    return self->issued;
}

void
cv_pgconn_names_test (bool verbose)
{
    cv_pgconn_names_t *names = cv_pgconn_names_new (3);
    assert (!cv_pgconn_names_find (names, "SELECT 1"));
    char name[CV_PGCONN_NAME_BYTES];
    assert (cv_pgconn_names_next (names, name) && streq (name, "cv_1"));
    cv_pgconn_names_add (names, "SELECT 1", name);
    assert (streq (cv_pgconn_names_find (names, "SELECT 1"), "cv_1"));
    assert (!cv_pgconn_names_find (names, "SELECT 2"));

    /* a name handed out and not recorded (its prepare failed or was cancelled) is never given
       again in the session */
    assert (cv_pgconn_names_next (names, name) && streq (name, "cv_2"));
    assert (cv_pgconn_names_next (names, name) && streq (name, "cv_3"));
    cv_pgconn_names_add (names, "SELECT 3", name);
    assert (cv_pgconn_names_count (names) == 2 && cv_pgconn_names_issued (names) == 3);

    /* past the bound: no more names; what is recorded is still found */
    strcpy (name, "untouched");
    assert (!cv_pgconn_names_next (names, name) && streq (name, "untouched"));
    assert (streq (cv_pgconn_names_find (names, "SELECT 3"), "cv_3"));

    /* a new session: nothing prepared, names from cv_1 again */
    cv_pgconn_names_clear (names);
    assert (cv_pgconn_names_count (names) == 0 && cv_pgconn_names_issued (names) == 0);
    assert (!cv_pgconn_names_find (names, "SELECT 1"));
    assert (cv_pgconn_names_next (names, name) && streq (name, "cv_1"));
    cv_pgconn_names_add (names, "SELECT 1", name);
    cv_pgconn_names_destroy (&names);
    cv_pgconn_names_destroy (&names);
    assert (!names);
    if (verbose)
        printf ("cv_pgconn_names: ok\n");
}
