/* `conveyor migrate`: applies the SQL migrations compiled into conveyor that the database has
   not recorded yet, and reports the schema version. Safe to run again, and from several places
   at once (cv_migrations takes an advisory lock). */
#ifndef CLI_MIGRATE_H
#define CLI_MIGRATE_H

#define CLI_MIGRATE_SUMMARY "applies the pending SQL migrations to the database (idempotent)"

/* cli_command_fn: `conveyor migrate [options]`. */
int cli_migrate_run (int argc, char **argv);

#endif
