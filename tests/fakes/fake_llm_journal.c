/* What the stand-in LLM server was sent: its requests, recorded in order. */
#include "fake_llm_journal.h"

#include <assert.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "cv_alloc.h"

struct _fake_llm_journal_t {
    pthread_mutex_t mutex;   /* guards records */
    pthread_cond_t recorded; /* signalled with each record added */
    json_t *records;
};

fake_llm_journal_t *
fake_llm_journal_new (void)
{
    fake_llm_journal_t *self = cv_calloc (1, sizeof *self);
    pthread_mutex_init (&self->mutex, NULL);
    pthread_cond_init (&self->recorded, NULL);
    self->records = json_array ();
    assert (self->records);
    return self;
}

void
fake_llm_journal_destroy (fake_llm_journal_t **self_p)
{
    assert (self_p);
    fake_llm_journal_t *self = *self_p;
    if (!self)
        return;
    json_decref (self->records);
    pthread_cond_destroy (&self->recorded);
    pthread_mutex_destroy (&self->mutex);
    free (self);
    *self_p = NULL;
}

void
fake_llm_journal_add (fake_llm_journal_t *self, json_t *record)
{
    assert (self && record);
    pthread_mutex_lock (&self->mutex);
    json_array_append_new (self->records, record);
    pthread_cond_broadcast (&self->recorded);
    pthread_mutex_unlock (&self->mutex);
}

size_t
fake_llm_journal_count (fake_llm_journal_t *self)
{
    assert (self);
    pthread_mutex_lock (&self->mutex);
    size_t count = json_array_size (self->records);
    pthread_mutex_unlock (&self->mutex);
    return count;
}

bool
fake_llm_journal_wait (fake_llm_journal_t *self, size_t count, int timeout_ms)
{
    assert (self);
    struct timespec until;
    clock_gettime (CLOCK_REALTIME, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long) (timeout_ms % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock (&self->mutex);
    int rc = 0;
    while (json_array_size (self->records) < count && rc == 0)
        rc = pthread_cond_timedwait (&self->recorded, &self->mutex, &until);
    bool reached = json_array_size (self->records) >= count;
    pthread_mutex_unlock (&self->mutex);
    return reached;
}

json_t *
fake_llm_journal_get (fake_llm_journal_t *self, size_t index)
{
    assert (self);
    pthread_mutex_lock (&self->mutex);
    json_t *record = json_array_get (self->records, index);
    json_t *copy = record ? json_deep_copy (record) : NULL;
    pthread_mutex_unlock (&self->mutex);
    return copy;
}

json_t *
fake_llm_journal_all (fake_llm_journal_t *self)
{
    assert (self);
    pthread_mutex_lock (&self->mutex);
    json_t *copy = json_deep_copy (self->records);
    pthread_mutex_unlock (&self->mutex);
    return copy;
}

void
fake_llm_journal_clear (fake_llm_journal_t *self)
{
    assert (self);
    pthread_mutex_lock (&self->mutex);
    json_array_clear (self->records);
    pthread_mutex_unlock (&self->mutex);
}
