/* The statements one PostgreSQL session has prepared, by their text: what cv_pgconn looks up to
   execute a text it has run before without preparing it again.

   Names are "cv_1", "cv_2"... in the order they are handed out, and never handed out twice in a
   session: a prepare that was cancelled may still have created its statement on the server, so
   its name is not taken again. At most max names are handed out in a session, which bounds the
   server's memory for them; past that, cv_pgconn_names_next refuses and the caller runs its
   text unprepared. A closed session's statements are gone: clear forgets them and starts the
   names again. */
#ifndef CV_PGCONN_NAMES_H
#define CV_PGCONN_NAMES_H

#include <stdbool.h>
#include <stddef.h>

/* Room for a name: "cv_" and a size_t in decimal. */
#define CV_PGCONN_NAME_BYTES 24

typedef struct _cv_pgconn_names_t cv_pgconn_names_t;

/* A map that hands out at most max (>= 1) names per session. */
cv_pgconn_names_t *cv_pgconn_names_new (size_t max);
void cv_pgconn_names_destroy (cv_pgconn_names_t **self_p);

/* The name sql was prepared under in this session (borrowed, valid until clear), or NULL. */
const char *cv_pgconn_names_find (const cv_pgconn_names_t *self, const char *sql);

/* Writes a name never handed out in this session into name (CV_PGCONN_NAME_BYTES); false, and
   name untouched, once max have been. */
bool cv_pgconn_names_next (cv_pgconn_names_t *self, char *name);

/* Records that sql is prepared as name (one that next gave, and sql not yet recorded). */
void cv_pgconn_names_add (cv_pgconn_names_t *self, const char *sql, const char *name);

/* The session is over: forgets every statement, and names start again from cv_1. */
void cv_pgconn_names_clear (cv_pgconn_names_t *self);

/* Statements recorded; names handed out (recorded or not) in this session. */
size_t cv_pgconn_names_count (const cv_pgconn_names_t *self);
size_t cv_pgconn_names_issued (const cv_pgconn_names_t *self);

void cv_pgconn_names_test (bool verbose);

#endif
