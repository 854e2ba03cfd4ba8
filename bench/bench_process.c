/* A benchmark's child process: started, watched, measured through /proc, stopped. */
#include "bench_process.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <czmq.h>

#include "cv_alloc.h"
#include "cv_assert.h"

struct _bench_process_t {
    pid_t pid;   /* 0 once reaped */
    int status;  /* its wait status, once reaped */
    pid_t child; /* the pid it had, for /proc and messages */
};

bench_process_t *
bench_process_start (char *const *argv, const char *log_path, cv_error_t *err)
{
    assert (argv && argv[0]);
    pid_t parent = getpid ();
    pid_t pid = fork ();
    if (pid == 0) {
        /* Only async-signal-safe calls until exec: the parent may have threads (libzmq's). */
        prctl (PR_SET_PDEATHSIG, SIGTERM);
        if (getppid () != parent)
            _exit (127);
        if (log_path && *log_path) {
            int fd = open (log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
            if (fd < 0 || dup2 (fd, STDERR_FILENO) < 0)
                _exit (126);
        }
        if (dup2 (STDERR_FILENO, STDOUT_FILENO) < 0)
            _exit (126);
        execv (argv[0], argv);
        _exit (127);
    }
    if (pid < 0) {
        cv_error_set (err, CV_ERR_INTERNAL, NULL, "cannot start %s: %s", argv[0], strerror (errno));
        return NULL;
    }
    bench_process_t *self = cv_calloc (1, sizeof *self);
    self->pid = self->child = pid;
    return self;
}

void
bench_process_destroy (bench_process_t **self_p)
{
    assert (self_p);
    bench_process_t *self = *self_p;
    if (!self)
        return;
    if (self->pid) {
        kill (self->pid, SIGKILL);
        waitpid (self->pid, &self->status, 0);
    }
    free (self);
    *self_p = NULL;
}

pid_t
bench_process_pid (const bench_process_t *self)
{
    assert (self);
    return self->child;
}

bool
bench_process_alive (bench_process_t *self)
{
    assert (self);
    if (!self->pid)
        return false;
    if (waitpid (self->pid, &self->status, WNOHANG) == self->pid) {
        self->pid = 0;
        return false;
    }
    return true;
}

int
bench_process_stop (bench_process_t *self, int timeout_ms)
{
    assert (self);
    if (!bench_process_alive (self))
        return -1;
    kill (self->pid, SIGTERM);
    int64_t until = zclock_mono () + timeout_ms;
    /* A child's exit wakes nothing this process polls: look every 20 ms. */
    while (bench_process_alive (self) && zclock_mono () < until)
        zclock_sleep (20);
    if (self->pid) {
        kill (self->pid, SIGKILL);
        waitpid (self->pid, &self->status, 0);
        self->pid = 0;
        return -1;
    }
    return WIFEXITED (self->status) && WEXITSTATUS (self->status) == 0 ? 0 : -1;
}

void
bench_process_describe_exit (const bench_process_t *self, char *out, size_t size)
{
    assert (self && out);
    if (self->pid)
        snprintf (out, size, "running");
    else if (WIFEXITED (self->status))
        snprintf (out, size, "exit status %d%s", WEXITSTATUS (self->status),
                  WEXITSTATUS (self->status) == 127 ? " (could it be run?)" : "");
    else if (WIFSIGNALED (self->status))
        snprintf (out, size, "signal %d", WTERMSIG (self->status));
    else
        snprintf (out, size, "wait status %d", self->status);
}

double
bench_process_cpu_s (const bench_process_t *self)
{
    assert (self);
    char path[64], line[1024];
    snprintf (path, sizeof path, "/proc/%d/stat", (int) self->child);
    FILE *file = fopen (path, "r");
    if (!file)
        return -1;
    bool read = fgets (line, sizeof line, file) != NULL;
    fclose (file);
    /* Field 2, the command name, is in parentheses and may hold spaces: count from after it.
       utime and stime are fields 14 and 15, in clock ticks. */
    char *fields = read ? strrchr (line, ')') : NULL;
    unsigned long long utime, stime;
    if (!fields || sscanf (fields + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) != 2)
        return -1;
    return (double) (utime + stime) / (double) sysconf (_SC_CLK_TCK);
}

long
bench_process_peak_rss_kb (const bench_process_t *self)
{
    assert (self);
    char path[64], line[256];
    snprintf (path, sizeof path, "/proc/%d/status", (int) self->child);
    FILE *file = fopen (path, "r");
    if (!file)
        return -1;
    long kb = -1;
    while (fgets (line, sizeof line, file))
        if (sscanf (line, "VmHWM: %ld kB", &kb) == 1)
            break;
    fclose (file);
    return kb;
}

double
bench_process_self_cpu_s (void)
{
    struct rusage usage;
    getrusage (RUSAGE_SELF, &usage);
    return (double) (usage.ru_utime.tv_sec + usage.ru_stime.tv_sec)
           + (double) (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}
