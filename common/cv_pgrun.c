/* The runs of a pipe, and the lists they wait in. */
#include "cv_pgrun.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "cv_alloc.h"

cv_pgrun_t *
cv_pgrun_new (size_t statement, int count, const char *const *values, const int *lengths, const int *formats)
{
    assert (count >= 0 && (values || count == 0));
    size_t bytes = sizeof (cv_pgrun_t) + (size_t) count * (sizeof (char *) + 2 * sizeof (int));
    for (int i = 0; i < count; i++)
        if (values[i])
            bytes += (size_t) (lengths && formats && formats[i] ? lengths[i] : (int) strlen (values[i])) + 1;
    cv_pgrun_t *self = cv_calloc (1, bytes);
    self->statement = statement;
    self->count = count;
    self->values = (char **) (self + 1);
    self->lengths = (int *) (self->values + count);
    self->formats = self->lengths + count;
    char *data = (char *) (self->formats + count);
    for (int i = 0; i < count; i++) {
        self->formats[i] = formats ? formats[i] : 0;
        if (!values[i])
            continue;
        int length = lengths && self->formats[i] ? lengths[i] : (int) strlen (values[i]);
        memcpy (data, values[i], (size_t) length);
        data[length] = '\0';
        self->values[i] = data;
        self->lengths[i] = length;
        data += length + 1;
    }
    return self;
}

void
cv_pgrun_destroy (cv_pgrun_t **self_p)
{
    assert (self_p);
    cv_pgrun_t *self = *self_p;
    if (!self)
        return;
    PQclear (self->result);
    free (self);
    *self_p = NULL;
}

void
cv_pgrun_list_append (cv_pgrun_list_t *list, cv_pgrun_t *run)
{
    assert (list && run && !run->next);
    if (list->last)
        list->last->next = run;
    else
        list->first = run;
    list->last = run;
}

void
cv_pgrun_list_prepend (cv_pgrun_list_t *list, cv_pgrun_list_t *front)
{
    assert (list && front);
    if (!front->first)
        return;
    front->last->next = list->first;
    list->first = front->first;
    if (!list->last)
        list->last = front->last;
    front->first = front->last = NULL;
}

cv_pgrun_list_t
cv_pgrun_list_take (cv_pgrun_list_t *list, size_t max)
{
    assert (list);
    cv_pgrun_list_t taken = {NULL, NULL};
    for (size_t count = 0; list->first && count < max; count++) {
        cv_pgrun_t *run = list->first;
        list->first = run->next;
        run->next = NULL;
        cv_pgrun_list_append (&taken, run);
    }
    if (!list->first)
        list->last = NULL;
    return taken;
}

void
cv_pgrun_list_fail (cv_pgrun_list_t *list, const cv_error_t *err, size_t *counter)
{
    assert (list && err && counter);
    cv_pgrun_t *run = list->first;
    list->first = list->last = NULL;
    while (run) {
        cv_pgrun_t *next = run->next;
        (*counter)--;
        if (run->done)
            run->done (run->arg, NULL, err);
        cv_pgrun_destroy (&run);
        run = next;
    }
}

void
cv_pgrun_list_destroy (cv_pgrun_list_t *list)
{
    assert (list);
    cv_pgrun_t *run = list->first;
    list->first = list->last = NULL;
    while (run) {
        cv_pgrun_t *next = run->next;
        cv_pgrun_destroy (&run);
        run = next;
    }
}

size_t
cv_pgrun_list_drop (cv_pgrun_list_t *list, void *arg)
{
    assert (list);
    size_t dropped = 0;
    cv_pgrun_t **link = &list->first;
    list->last = NULL;
    while (*link) {
        cv_pgrun_t *run = *link;
        if (run->arg == arg) {
            *link = run->next;
            cv_pgrun_destroy (&run);
            dropped++;
        } else {
            list->last = run;
            link = &run->next;
        }
    }
    return dropped;
}

void
cv_pgrun_list_forget (cv_pgrun_list_t *list, void *arg)
{
    assert (list);
    for (cv_pgrun_t *run = list->first; run; run = run->next)
        if (run->arg == arg)
            run->done = NULL;
}

/*  --------------------------------------------------------------------------
    Self-test */

typedef struct {
    int calls;
    cv_error_code_t code;
} test_outcome_t;

static void
s_test_done (void *arg, const cv_pg_result_t *result, const cv_error_t *err)
{
    test_outcome_t *outcome = arg;
    assert (!result && err);
    outcome->calls++;
    outcome->code = err->code;
}

/* A list of one run of statement i for each i of statements, each with outcome i as its arg. */
static cv_pgrun_list_t
s_test_list (const size_t *statements, size_t count, test_outcome_t *outcomes)
{
    cv_pgrun_list_t list = {NULL, NULL};
    for (size_t i = 0; i < count; i++) {
        cv_pgrun_t *run = cv_pgrun_new (statements[i], 0, NULL, NULL, NULL);
        run->done = s_test_done;
        run->arg = &outcomes[i];
        cv_pgrun_list_append (&list, run);
    }
    return list;
}

/* Asserts that list holds exactly the runs of statements, in order. */
static void
s_test_holds (const cv_pgrun_list_t *list, const size_t *statements, size_t count)
{
    const cv_pgrun_t *run = list->first, *last = NULL;
    for (size_t i = 0; i < count; i++) {
        cv_assert_that (run && run->statement == statements[i], "run %zu is not of statement %zu", i, statements[i]);
        last = run;
        run = run->next;
    }
    assert (!run && list->last == last);
}

void
cv_pgrun_test (bool verbose)
{
    (void) verbose;
    /* parameters are copied: text by its length, binary by the given one, NULL stays NULL */
    char text[] = "hello";
    const char raw[] = {'a', 0, 'b'};
    const char *values[] = {text, raw, NULL};
    int lengths[] = {0, 3, 0}, formats[] = {0, 1, 0};
    cv_pgrun_t *run = cv_pgrun_new (7, 3, values, lengths, formats);
    text[0] = 'j';
    assert (run->statement == 7 && run->count == 3 && !run->prepare && !run->done && !run->result);
    assert (streq (run->values[0], "hello") && run->lengths[0] == 5 && run->formats[0] == 0);
    assert (memcmp (run->values[1], raw, 3) == 0 && run->lengths[1] == 3 && run->formats[1] == 1);
    assert (!run->values[2] && run->formats[2] == 0);
    cv_pgrun_destroy (&run);
    assert (!run);
    cv_pgrun_destroy (&run);
    /* without lengths and formats, every value is text */
    run = cv_pgrun_new (0, 1, (const char *const[]){"abc"}, NULL, NULL);
    assert (streq (run->values[0], "abc") && run->lengths[0] == 3 && run->formats[0] == 0);
    cv_pgrun_destroy (&run);

    /* take: up to max from the front, in order; taking all leaves the list empty */
    test_outcome_t outcomes[5] = {{0}};
    cv_pgrun_list_t list = s_test_list ((size_t[]){0, 1, 2, 3, 4}, 5, outcomes);
    s_test_holds (&list, (size_t[]){0, 1, 2, 3, 4}, 5);
    cv_pgrun_list_t taken = cv_pgrun_list_take (&list, 2);
    s_test_holds (&taken, (size_t[]){0, 1}, 2);
    s_test_holds (&list, (size_t[]){2, 3, 4}, 3);
    cv_pgrun_list_t rest = cv_pgrun_list_take (&list, 10);
    s_test_holds (&rest, (size_t[]){2, 3, 4}, 3);
    s_test_holds (&list, NULL, 0);

    /* prepend: the front goes first, in its order, and ends empty; onto an empty list too */
    cv_pgrun_list_prepend (&rest, &taken);
    s_test_holds (&rest, (size_t[]){0, 1, 2, 3, 4}, 5);
    s_test_holds (&taken, NULL, 0);
    cv_pgrun_list_prepend (&list, &rest);
    s_test_holds (&list, (size_t[]){0, 1, 2, 3, 4}, 5);
    cv_pgrun_list_prepend (&list, &rest);
    s_test_holds (&list, (size_t[]){0, 1, 2, 3, 4}, 5);

    /* drop frees the runs of one arg, the last one too; forget keeps them but silences them */
    assert (cv_pgrun_list_drop (&list, &outcomes[4]) == 1);
    assert (cv_pgrun_list_drop (&list, &outcomes[0]) == 1);
    assert (cv_pgrun_list_drop (&list, &outcomes[0]) == 0);
    s_test_holds (&list, (size_t[]){1, 2, 3}, 3);
    cv_pgrun_list_forget (&list, &outcomes[2]);
    s_test_holds (&list, (size_t[]){1, 2, 3}, 3);

    /* fail calls back every run still listening, in order, counting each down */
    cv_error_t err;
    cv_error_set (&err, CV_ERR_UNAVAILABLE, NULL, "gone");
    size_t counter = 3;
    cv_pgrun_list_fail (&list, &err, &counter);
    assert (counter == 0);
    s_test_holds (&list, NULL, 0);
    assert (outcomes[1].calls == 1 && outcomes[1].code == CV_ERR_UNAVAILABLE);
    assert (outcomes[2].calls == 0 && outcomes[3].calls == 1);
    assert (outcomes[0].calls == 0 && outcomes[4].calls == 0);

    /* destroy frees without callbacks */
    list = s_test_list ((size_t[]){5, 6}, 2, outcomes);
    cv_pgrun_list_destroy (&list);
    s_test_holds (&list, NULL, 0);
    assert (outcomes[0].calls == 0 && outcomes[1].calls == 1);
}
