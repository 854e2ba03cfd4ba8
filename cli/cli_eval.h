/* `conveyor eval`: a labelled CSV file through the intent worker's logic, in process or on a live
   worker's control endpoint, with accuracy, macro-F1, confusions, the fast path and latency. */
#ifndef CLI_EVAL_H
#define CLI_EVAL_H

#define CLI_EVAL_SUMMARY "runs a labelled file through the intent worker; prints accuracy, fast path, latency"

int cli_eval_run (int argc, char **argv);

#endif
