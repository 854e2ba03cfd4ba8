/* The SQL migrations, compiled into the binaries from deploy/sql/migrations, and their runner:
   each pending migration in its own transaction, under an advisory lock so that two processes
   migrating at once do not collide, recorded in schema_migrations. */
#ifndef CV_MIGRATIONS_H
#define CV_MIGRATIONS_H

#include <stdbool.h>
#include <stddef.h>

#include "cv_error.h"
#include "cv_pg.h"

typedef struct {
    int version;
    const char *name;
    const char *sql;
} cv_migration_t;

extern const cv_migration_t cv_migrations[];
extern const size_t cv_migrations_count;

/* Applies the migrations not yet recorded; *applied gets how many ran. Idempotent. */
int cv_migrations_apply (cv_pg_t *pg, int *applied, cv_error_t *err) CV_MUST_CHECK;

/* The highest migration version compiled in. */
int cv_migrations_latest (void);

void cv_migrations_test (bool verbose);

#endif
