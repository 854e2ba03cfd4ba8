/* Random ids for envelopes, from a per-thread pool of the kernel's random bytes. */
#include "cv_envelope_ids.h"

#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <czmq.h>

/* Bytes from the kernel's generator, fetched 4 KiB at a time per thread and each used once: a
   request id stays unguessable without a system call for every id (about ten per request). The
   pool is per thread, so no lock; a thread's pool dies with it. */
static void
s_random_bytes (uint8_t *out, size_t size)
{
    static __thread uint8_t pool[4096];
    static __thread size_t next, filled; /* pool[next..filled) is unused */
    while (size > 0) {
        if (next == filled) {
            ssize_t got = getrandom (pool, sizeof pool, 0);
            if (got <= 0) {
                /* only before the kernel's pool is ready, at boot: ids need uniqueness, not secrecy */
                struct timespec now;
                clock_gettime (CLOCK_REALTIME, &now);
                uint64_t x = (uint64_t) now.tv_nsec ^ ((uint64_t) now.tv_sec << 20) ^ (uint64_t) (uintptr_t) out;
                for (size_t i = 0; i < sizeof pool; i++) {
                    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                    pool[i] = (uint8_t) x;
                }
                got = sizeof pool;
            }
            next = 0;
            filled = (size_t) got;
        }
        size_t take = size < filled - next ? size : filled - next;
        memcpy (out, pool + next, take);
        memset (pool + next, 0, take); /* each byte is used once */
        next += take;
        out += take;
        size -= take;
    }
}

void
cv_envelope_random_hex (char *buffer, size_t size)
{
    assert (buffer && size > 0);
    static const char digits[] = "0123456789abcdef";
    uint8_t random[64];
    size_t wanted = (size - 1 + 1) / 2;
    assert (wanted <= sizeof random);
    s_random_bytes (random, wanted);
    for (size_t i = 0; i + 1 < size; i++)
        buffer[i] = digits[(random[i / 2] >> ((i % 2) ? 0 : 4)) & 0x0f];
    buffer[size - 1] = '\0';
}

/*  --------------------------------------------------------------------------
    Self-test */

void
cv_envelope_ids_test (bool verbose)
{
    char trace[33];
    cv_envelope_random_hex (trace, sizeof trace);
    assert (strlen (trace) == 32);
    /* ids stay distinct across refills of the random pool (a refill every 512 of these) */
    zhashx_t *seen = zhashx_new ();
    for (int i = 0; i < 3000; i++) {
        char id[17];
        cv_envelope_random_hex (id, sizeof id);
        assert (strlen (id) == 16 && strspn (id, "0123456789abcdef") == 16);
        assert (zhashx_insert (seen, id, "") == 0);
    }
    zhashx_destroy (&seen);
    if (verbose)
        printf ("cv_envelope_ids: ok\n");
}
