/* GET /metrics on a port of its own, and the process's series (cv_metrics_http.h). */
#include "cv_metrics_http.h"

#include <arpa/inet.h>
#include <assert.h>
#include <dirent.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "cv_alloc.h"
#include "cv_assert.h"

struct _cv_metrics_http_t {
    struct MHD_Daemon *daemon;
    cv_metrics_t *metrics;
    int port;
};

/* The process's start, in seconds since the epoch: field 22 of /proc/self/stat is it in clock
   ticks since boot, and /proc/stat's btime the boot. 0 when either cannot be read. */
static double
s_start_time (void)
{
    char line[1024];
    double start_ticks = 0, boot = 0;
    FILE *stat = fopen ("/proc/self/stat", "r");
    if (stat) {
        if (fgets (line, sizeof line, stat)) {
            const char *after = strrchr (line, ')'); /* the command may hold spaces */
            unsigned long long ticks = 0;
            if (after
                && sscanf (after + 2,
                           "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d "
                           "%*d %llu",
                           &ticks)
                       == 1)
                start_ticks = (double) ticks;
        }
        fclose (stat);
    }
    FILE *system = fopen ("/proc/stat", "r");
    if (system) {
        unsigned long long btime;
        while (fgets (line, sizeof line, system))
            if (sscanf (line, "btime %llu", &btime) == 1)
                boot = (double) btime;
        fclose (system);
    }
    long hertz = sysconf (_SC_CLK_TCK);
    return boot > 0 && hertz > 0 ? boot + start_ticks / (double) hertz : 0;
}

static long
s_open_fds (void)
{
    DIR *dir = opendir ("/proc/self/fd");
    if (!dir)
        return -1;
    long count = 0;
    for (struct dirent *entry; (entry = readdir (dir));)
        count += entry->d_name[0] != '.';
    closedir (dir);
    return count - 1; /* not the directory's own */
}

void
cv_metrics_http_write (cv_metrics_t *metrics, FILE *out)
{
    struct rusage usage;
    getrusage (RUSAGE_SELF, &usage);
    double cpu = (double) usage.ru_utime.tv_sec + (double) usage.ru_stime.tv_sec
                 + ((double) usage.ru_utime.tv_usec + (double) usage.ru_stime.tv_usec) / 1e6;
    unsigned long long pages_virtual = 0, pages_resident = 0;
    FILE *statm = fopen ("/proc/self/statm", "r");
    if (statm) {
        if (fscanf (statm, "%llu %llu", &pages_virtual, &pages_resident) != 2)
            pages_virtual = pages_resident = 0;
        fclose (statm);
    }
    double page = (double) sysconf (_SC_PAGESIZE);
    struct rlimit files;
    getrlimit (RLIMIT_NOFILE, &files);
    fprintf (out,
             "# HELP process_cpu_seconds_total User and system CPU time spent, in seconds.\n"
             "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total %.6f\n"
             "# HELP process_resident_memory_bytes Resident memory size, in bytes.\n"
             "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes %.0f\n"
             "# HELP process_virtual_memory_bytes Virtual memory size, in bytes.\n"
             "# TYPE process_virtual_memory_bytes gauge\nprocess_virtual_memory_bytes %.0f\n"
             "# HELP process_open_fds Open file descriptors.\n"
             "# TYPE process_open_fds gauge\nprocess_open_fds %ld\n"
             "# HELP process_max_fds The most file descriptors it may open.\n"
             "# TYPE process_max_fds gauge\nprocess_max_fds %.0f\n"
             "# HELP process_start_time_seconds When the process started, in seconds since the epoch.\n"
             "# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds %.2f\n",
             cpu, (double) pages_resident * page, (double) pages_virtual * page, s_open_fds (),
             files.rlim_cur == RLIM_INFINITY ? 1e9 : (double) files.rlim_cur, s_start_time ());
    cv_metrics_render (metrics, out);
}

static enum MHD_Result
s_answer (struct MHD_Connection *connection, unsigned status, const char *type, char *body, size_t size)
{
    struct MHD_Response *response = MHD_create_response_from_buffer (size, body, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header (response, "Content-Type", type);
    enum MHD_Result result = MHD_queue_response (connection, status, response);
    MHD_destroy_response (response);
    return result;
}

static enum MHD_Result
s_access (void *cls, struct MHD_Connection *connection, const char *url, const char *method, const char *version,
          const char *upload_data, size_t *upload_data_size, void **request)
{
    (void) version, (void) upload_data, (void) upload_data_size, (void) request;
    cv_metrics_http_t *self = cls;
    if (strcmp (url, "/metrics") != 0)
        return s_answer (connection, MHD_HTTP_NOT_FOUND, "text/plain", cv_strdup ("only /metrics here\n"), 19);
    if (strcmp (method, "GET") != 0 && strcmp (method, "HEAD") != 0)
        return s_answer (connection, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", cv_strdup ("GET /metrics\n"), 13);
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream (&text, &size);
    cv_metrics_http_write (self->metrics, out);
    fclose (out);
    return s_answer (connection, MHD_HTTP_OK, CV_METRICS_CONTENT_TYPE, text, size);
}

static void
s_mhd_log (void *arg, const char *format, va_list args)
{
    cv_log_t *log = arg;
    if (!log)
        return;
    char message[256];
    vsnprintf (message, sizeof message, format, args);
    message[strcspn (message, "\n")] = '\0';
    cv_log_warn (log, "metrics server: %s", message);
}

cv_metrics_http_t *
cv_metrics_http_new (const char *listen, cv_metrics_t *metrics, cv_log_t *log, cv_error_t *err)
{
    assert (listen && metrics);
    const char *colon = strrchr (listen, ':');
    char host[64];
    char *end = NULL;
    long port = colon ? strtol (colon + 1, &end, 10) : -1;
    struct sockaddr_in address = {.sin_family = AF_INET};
    if (!colon || (size_t) (colon - listen) >= sizeof host || colon == listen || !end || end == colon + 1 || *end
        || port < 0 || port > 65535) {
        cv_error_set (err, CV_ERR_INVALID, "metrics-listen",
                      "metrics-listen must be HOST:PORT (an IPv4 address), not %s", listen);
        return NULL;
    }
    memcpy (host, listen, (size_t) (colon - listen));
    host[colon - listen] = '\0';
    if (inet_pton (AF_INET, host, &address.sin_addr) != 1) {
        cv_error_set (err, CV_ERR_INVALID, "metrics-listen", "metrics-listen's host %s is not an IPv4 address", host);
        return NULL;
    }
    address.sin_port = htons ((uint16_t) port);
    cv_metrics_http_t *self = cv_calloc (1, sizeof *self);
    self->metrics = metrics;
    self->daemon = MHD_start_daemon (MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL, s_access, self,
                                     MHD_OPTION_EXTERNAL_LOGGER, s_mhd_log, log, MHD_OPTION_SOCK_ADDR, &address,
                                     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned) 10, MHD_OPTION_CONNECTION_LIMIT,
                                     (unsigned) 64, MHD_OPTION_END);
    if (!self->daemon) {
        cv_error_set (err, CV_ERR_UNAVAILABLE, "metrics-listen", "cannot listen on %s for /metrics (in use?)", listen);
        free (self);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info (self->daemon, MHD_DAEMON_INFO_BIND_PORT);
    self->port = info ? (int) info->port : (int) port;
    if (log)
        cv_log_info (log, "metrics at http://%s:%d/metrics", host, self->port);
    return self;
}

void
cv_metrics_http_destroy (cv_metrics_http_t **self_p)
{
    assert (self_p);
    cv_metrics_http_t *self = *self_p;
    if (!self)
        return;
    MHD_stop_daemon (self->daemon);
    free (self);
    *self_p = NULL;
}

int
cv_metrics_http_port (const cv_metrics_http_t *self)
{
    assert (self);
    return self->port;
}

/*  --------------------------------------------------------------------------
    Self-test: a real server on loopback, read over a socket. */

/* The answer to "METHOD PATH" from 127.0.0.1:port, whole, malloc'd. */
static char *
s_fetch (int port, const char *method, const char *path)
{
    int sock = socket (AF_INET, SOCK_STREAM, 0);
    assert (sock >= 0);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons ((uint16_t) port)};
    address.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    assert (connect (sock, (struct sockaddr *) &address, sizeof address) == 0);
    char request[128];
    int size = snprintf (request, sizeof request, "%s %s HTTP/1.0\r\nHost: x\r\n\r\n", method, path);
    assert (write (sock, request, (size_t) size) == size);
    size_t used = 0, capacity = 4096;
    char *answer = cv_malloc (capacity);
    for (ssize_t got; (got = read (sock, answer + used, capacity - used - 1)) > 0;) {
        used += (size_t) got;
        if (capacity - used < 1024)
            answer = cv_realloc (answer, capacity *= 2);
    }
    answer[used] = '\0';
    close (sock);
    return answer;
}

void
cv_metrics_http_test (bool verbose)
{
    cv_error_t err;
    cv_metrics_t *metrics = cv_metrics_new ();
    cv_metric_add (cv_metric_with (cv_metrics_counter (metrics, "conveyor_test_total", "A test's.", "kind"), "a"), 3);
    cv_metrics_http_t *http = cv_metrics_http_new ("127.0.0.1:0", metrics, NULL, &err);
    cv_assert_that (http, "%s", err.message);
    int port = cv_metrics_http_port (http);
    assert (port > 0);
    char *answer = s_fetch (port, "GET", "/metrics");
    cv_assert_that (strncmp (answer, "HTTP/1.0 200", 12) == 0 || strncmp (answer, "HTTP/1.1 200", 12) == 0, "%s",
                    answer);
    assert (strstr (answer, "Content-Type: " CV_METRICS_CONTENT_TYPE));
    assert (strstr (answer, "\nconveyor_test_total{kind=\"a\"} 3\n"));
    assert (strstr (answer, "\nprocess_resident_memory_bytes ") && strstr (answer, "\nprocess_open_fds "));
    const char *start = strstr (answer, "\nprocess_start_time_seconds ");
    assert (start && strtod (start + 28, NULL) > 1.7e9 && strtod (start + 28, NULL) <= (double) time (NULL) + 1);
    free (answer);
    answer = s_fetch (port, "GET", "/other");
    assert (strstr (answer, " 404 "));
    free (answer);
    answer = s_fetch (port, "POST", "/metrics");
    assert (strstr (answer, " 405 "));
    free (answer);
    /* a second server on the same port cannot listen; a malformed listen is refused */
    char taken[32];
    snprintf (taken, sizeof taken, "127.0.0.1:%d", port);
    assert (!cv_metrics_http_new (taken, metrics, NULL, &err) && err.code == CV_ERR_UNAVAILABLE);
    const char *bad[] = {"9100", "127.0.0.1:", "127.0.0.1:x", "localhost:9100", ":9100", "127.0.0.1:70000"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cv_assert_that (!cv_metrics_http_new (bad[i], metrics, NULL, &err) && err.code == CV_ERR_INVALID, "%s", bad[i]);
    cv_metrics_http_destroy (&http);
    cv_metrics_destroy (&metrics);
    if (verbose)
        printf ("cv_metrics_http: ok\n");
}
