/* The stop signal of a libmicrohttpd server whose connection threads wait on purpose (a slow or
   hanging answer, in the stand-ins tests make misbehave): a thread waits for a time, until its
   client goes away, or until the server stops, whichever comes first, so that stopping the
   server never waits behind an answer that was told to take forever.

   Raise it before MHD_stop_daemon, which then joins threads that have all woken. Thread-safe:
   one signal, any number of waiting threads. */
#ifndef CV_MHD_STOP_H
#define CV_MHD_STOP_H

#include <stdbool.h>

#include <microhttpd.h>

typedef struct _cv_mhd_stop_t cv_mhd_stop_t;

/* A signal not raised yet; NULL when the process is out of file descriptors. */
cv_mhd_stop_t *cv_mhd_stop_new (void);
/* Frees it; no thread may be waiting on it any more (stop the daemon first). */
void cv_mhd_stop_destroy (cv_mhd_stop_t **self_p);

/* Wakes every thread waiting on it, and every later wait returns at once. */
void cv_mhd_stop_raise (cv_mhd_stop_t *self);

/* In connection's thread: waits ms (forever when negative). true when the time passed; false
   when the client went away or the signal was raised first. */
bool cv_mhd_stop_wait (cv_mhd_stop_t *self, struct MHD_Connection *connection, long ms);

void cv_mhd_stop_test (bool verbose);

#endif
