/* `conveyor seed`: fills the demo bank (schema bank) with generated customers, accounts, cards,
   payments, transfers and top-ups: `select bank.generate(customers, seed)`, deterministic for a
   given size and seed. Replaces whatever the demo bank held. */
#ifndef CLI_SEED_H
#define CLI_SEED_H

#define CLI_SEED_SUMMARY "fills the demo bank with generated customers (replaces its data)"

/* cli_command_fn: `conveyor seed [options]`. */
int cli_seed_run (int argc, char **argv);

#endif
