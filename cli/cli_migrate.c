/* `conveyor migrate`: the pending SQL migrations applied, the schema version reported. */
#include "cli_migrate.h"

#include <stdio.h>
#include <stdlib.h>

#include <czmq.h>

#include "cli_command.h"
#include "cv_migrations.h"

#define COMMAND "migrate"

static const cv_setting_t s_settings[] = {
    {"database-url", CV_SETTING_STRING, "postgresql://conveyor@127.0.0.1:55432/conveyor", 0, 0,
     "the PostgreSQL database (a libpq URL or key=value string)"},
};

static const char s_summary[] =
    "Applies the SQL migrations compiled into conveyor (deploy/sql/migrations) that the database\n"
    "has not recorded in schema_migrations, each in its own transaction, and prints how many ran\n"
    "and the schema version. Running it again applies nothing.";

int
cli_migrate_run (int argc, char **argv)
{
    int rc = CLI_EXIT_OK;
    cv_settings_t *settings = cli_command_settings (COMMAND, "conveyor migrate", s_summary, s_settings,
                                                    sizeof s_settings / sizeof s_settings[0], argc, argv, &rc);
    if (!settings)
        return rc;
    if (cv_settings_positional_count (settings) > 0) {
        cli_command_fail (COMMAND, "takes no arguments, got '%s' (see --help)", cv_settings_positional (settings, 0));
        cv_settings_destroy (&settings);
        return CLI_EXIT_USAGE;
    }
    cv_pg_t *pg = cli_command_connect (COMMAND, cv_settings_string (settings, "database-url"));
    cv_settings_destroy (&settings);
    if (!pg)
        return CLI_EXIT_FAILED;

    cv_error_t err;
    int applied = 0;
    int64_t started = zclock_usecs ();
    if (cv_migrations_apply (pg, &applied, &err)) {
        cli_command_fail (COMMAND, "%s (%d applied before it)", err.message, applied);
        cv_pg_destroy (&pg);
        return CLI_EXIT_FAILED;
    }
    double seconds = cli_command_seconds_since (started);
    cv_pg_result_t *result = cv_pg_exec (pg, "SELECT coalesce(max(version), 0) FROM schema_migrations", 0, NULL, &err);
    if (!result) {
        cli_command_fail (COMMAND, "migrated, but cannot read the schema version: %s", err.message);
        cv_pg_destroy (&pg);
        return CLI_EXIT_FAILED;
    }
    int version = (int) cv_pg_result_int (result, 0, 0);
    cv_pg_result_destroy (&result);
    cv_pg_destroy (&pg);

    if (applied)
        printf ("applied %d migration%s in %.2f s; schema version %d\n", applied, applied == 1 ? "" : "s", seconds,
                version);
    else
        printf ("applied 0 migrations: already up to date; schema version %d\n", version);
    if (version > cv_migrations_latest ())
        fprintf (stderr,
                 "conveyor migrate: note: the database's schema version %d is newer than this conveyor's (%d)\n",
                 version, cv_migrations_latest ());
    return CLI_EXIT_OK;
}
