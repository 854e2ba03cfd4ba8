/* `conveyor train`: trains the intent worker's embedded classifier (learn_train) on a labelled
   CSV file and writes the model atomically, with a one-screen report: the cross-validated
   accuracy and macro-F1, the fast path at 70/80/90% coverage, the settings, time and size. */
#ifndef CLI_TRAIN_H
#define CLI_TRAIN_H

#define CLI_TRAIN_SUMMARY "trains the intent model on a labelled CSV file and reports its cross-validation"

/* cli_command_fn: `conveyor train --data FILE.csv --out MODEL [options]`. */
int cli_train_run (int argc, char **argv);

#endif
