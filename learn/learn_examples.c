/* The labelled examples: texts, their labels in order of first appearance, and the CSV loader. */
#include "learn_examples.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "intent_csv.h"
#include "intent_model.h"

struct _learn_examples_t {
    char **texts;                /* the examples, owned */
    size_t *sizes;
    uint32_t *labels;            /* index into names */
    size_t count, capacity;
    char **names;                /* the labels, in order of first appearance */
    char **sources;              /* each as written in the data */
    size_t name_count, name_capacity;
};

learn_examples_t *
learn_examples_new (void)
{
    return calloc (1, sizeof (learn_examples_t));
}

void
learn_examples_destroy (learn_examples_t **self_p)
{
    assert (self_p);
    learn_examples_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->count; i++)
        free (self->texts[i]);
    for (size_t i = 0; i < self->name_count; i++) {
        free (self->names[i]);
        free (self->sources[i]);
    }
    free (self->sources);
    free (self->texts);
    free (self->sizes);
    free (self->labels);
    free (self->names);
    free (self);
    *self_p = NULL;
}

/* label with its spaces made underscores and its other characters outside [A-Za-z0-9_.:-]
   dropped, into name (of CV_NAME_MAX_BYTES + 1); false when nothing valid is left or too much. */
static bool
s_clean_label (const char *label, char *name)
{
    size_t used = 0;
    for (const char *c = label; *c; c++) {
        char kept = *c == ' ' || *c == '\t' ? '_' : *c;
        if (!intent_model_label_valid (&kept, 1))
            continue;
        if (used == CV_NAME_MAX_BYTES)
            return false;
        name[used++] = kept;
    }
    name[used] = '\0';
    return used > 0;
}

/* The index of label (as written in the data), added if new; -1 with err. With rename, a label
   that is not a valid intent name is cleaned into one (s_clean_label) rather than refused. */
static int
s_label (learn_examples_t *self, const char *label, bool rename, cv_error_t *err)
{
    for (size_t i = 0; i < self->name_count; i++)
        if (strcmp (self->sources[i], label) == 0)
            return (int) i;
    char name[CV_NAME_MAX_BYTES + 1];
    if (intent_model_label_valid (label, strlen (label)))
        snprintf (name, sizeof name, "%s", label);
    else if (!rename || !s_clean_label (label, name))
        return cv_error_set (err, CV_ERR_INVALID, "label",
                             "label '%.80s' is not a valid intent name (1..%d of A-Z a-z 0-9 _ . : -)", label,
                             CV_NAME_MAX_BYTES);
    for (size_t i = 0; i < self->name_count; i++)
        if (strcmp (self->names[i], name) == 0)
            return cv_error_set (err, CV_ERR_INVALID, "label", "labels '%.80s' and '%.80s' would both be named %s",
                                 self->sources[i], label, name);
    if (self->name_count == INTENT_MODEL_MAX_LABELS)
        return cv_error_set (err, CV_ERR_INVALID, "label", "label '%s' is one more than the %d a model may have",
                             name, INTENT_MODEL_MAX_LABELS);
    if (self->name_count == self->name_capacity) {
        size_t capacity = self->name_capacity ? 2 * self->name_capacity : 64;
        char **names = realloc (self->names, capacity * sizeof *names);
        if (names)
            self->names = names;
        char **sources = realloc (self->sources, capacity * sizeof *sources);
        if (sources)
            self->sources = sources;
        if (!names || !sources)
            return cv_error_set (err, CV_ERR_INTERNAL, NULL, "out of memory");
        self->name_capacity = capacity;
    }
    self->names[self->name_count] = strdup (name);
    self->sources[self->name_count] = strdup (label);
    if (!self->names[self->name_count] || !self->sources[self->name_count]) {
        free (self->names[self->name_count]);
        free (self->sources[self->name_count]);
        return cv_error_set (err, CV_ERR_INTERNAL, NULL, "out of memory");
    }
    return (int) self->name_count++;
}

/* Adds an example whose label may be renamed. */
static int
s_add (learn_examples_t *self, const char *text, size_t size, const char *label, bool rename, cv_error_t *err)
{
    int index = s_label (self, label, rename, err);
    if (index < 0)
        return -1;
    if (self->count == self->capacity) {
        size_t capacity = self->capacity ? 2 * self->capacity : 1024;
        char **texts = realloc (self->texts, capacity * sizeof *texts);
        if (texts)
            self->texts = texts;
        size_t *sizes = realloc (self->sizes, capacity * sizeof *sizes);
        if (sizes)
            self->sizes = sizes;
        uint32_t *labels = realloc (self->labels, capacity * sizeof *labels);
        if (labels)
            self->labels = labels;
        if (!texts || !sizes || !labels)
            return cv_error_set (err, CV_ERR_INTERNAL, NULL, "out of memory");
        self->capacity = capacity;
    }
    char *copy = malloc (size + 1);
    if (!copy)
        return cv_error_set (err, CV_ERR_INTERNAL, NULL, "out of memory");
    if (size)
        memcpy (copy, text, size);
    copy[size] = '\0';
    self->texts[self->count] = copy;
    self->sizes[self->count] = size;
    self->labels[self->count] = (uint32_t) index;
    self->count++;
    return 0;
}

int
learn_examples_add (learn_examples_t *self, const char *text, size_t size, const char *label, cv_error_t *err)
{
    assert (self && label);
    assert (text || size == 0);
    return s_add (self, text, size, label, false, err);
}

int
learn_examples_load (learn_examples_t *self, const char *path, cv_error_t *err)
{
    assert (self && path);
    intent_csv_t *csv = intent_csv_load (path, err);
    if (!csv)
        return -1;
    int rc = intent_csv_read_header (csv, err);
    int text = intent_csv_column (csv, "text"), category = intent_csv_column (csv, "category");
    if (rc == 0 && (text < 0 || category < 0)) {
        size_t columns = intent_csv_columns (csv);
        rc = cv_error_set (err, CV_ERR_INVALID, NULL,
                           "line 1: the header must name the columns text and category; it has '%.60s'%s%.60s%s%s",
                           intent_csv_column_name (csv, 0), columns > 1 ? ", '" : "",
                           columns > 1 ? intent_csv_column_name (csv, 1) : "", columns > 1 ? "'" : "",
                           columns > 2 ? ", ..." : "");
    }
    while (rc == 0) {
        int next = intent_csv_next (csv, err);
        if (next <= 0) {
            rc = next;
            break;
        }
        size_t size;
        const char *example = intent_csv_field (csv, (size_t) text, &size);
        const char *label = intent_csv_field (csv, (size_t) category, NULL);
        if (size == 0)
            rc = cv_error_set (err, CV_ERR_INVALID, "text", "line %zu: the text is empty", intent_csv_line (csv));
        else if (s_add (self, example, size, label, true, err))
            rc = -1, cv_error_prefix (err, "line %zu", intent_csv_line (csv));
    }
    if (rc)
        cv_error_prefix (err, "%s", path);
    intent_csv_destroy (&csv);
    return rc;
}

size_t
learn_examples_size (const learn_examples_t *self)
{
    assert (self);
    return self->count;
}

size_t
learn_examples_label_count (const learn_examples_t *self)
{
    assert (self);
    return self->name_count;
}

const char *
learn_examples_label (const learn_examples_t *self, size_t index)
{
    assert (self);
    return index < self->name_count ? self->names[index] : NULL;
}

const char *
learn_examples_example (const learn_examples_t *self, size_t index, size_t *size, const char **label)
{
    assert (self && size && label);
    if (index >= self->count)
        return NULL;
    *size = self->sizes[index];
    *label = self->names[self->labels[index]];
    return self->texts[index];
}

const char *
learn_examples_label_source (const learn_examples_t *self, size_t index)
{
    assert (self);
    return index < self->name_count ? self->sources[index] : NULL;
}


const uint32_t *
learn_examples_labels (const learn_examples_t *self)
{
    assert (self);
    return self->labels;
}

const char *const *
learn_examples_names (const learn_examples_t *self)
{
    assert (self);
    return (const char *const *) self->names;
}

/* --- self-test --- */

/* Writes text to a new file name in directory; returns its path, which the caller frees. */
static char *
s_write_file (const char *directory, const char *name, const char *text)
{
    char *path = NULL;
    assert (asprintf (&path, "%s/%s", directory, name) > 0);
    FILE *file = fopen (path, "wb");
    assert (file);
    assert (fwrite (text, 1, strlen (text), file) == strlen (text));
    fclose (file);
    return path;
}

/* Asserts that loading text as a training file fails with a message containing expected. */
static void
s_expect_load_error (const char *directory, const char *text, const char *expected, bool verbose)
{
    char *path = s_write_file (directory, "bad.csv", text);
    learn_examples_t *examples = learn_examples_new ();
    cv_error_t err;
    int rc = learn_examples_load (examples, path, &err);
    if (verbose)
        printf ("  %s\n", rc ? err.message : "(loaded)");
    if (rc == 0 || !strstr (err.message, expected) || !strstr (err.message, path)) {
        fprintf (stderr, "learn_examples: loading [%s] gave [%s], expected [%s]\n", text, rc ? err.message : "ok",
                 expected);
        abort ();
    }
    learn_examples_destroy (&examples);
    unlink (path);
    free (path);
}

void
learn_examples_test (bool verbose)
{
    cv_error_t err;
    /* examples added one by one */
    learn_examples_t *examples = learn_examples_new ();
    assert (examples);
    assert (learn_examples_add (examples, "where is my card", 16, "card_arrival", &err) == 0);
    assert (learn_examples_add (examples, "a\0b", 3, "odd", &err) == 0);
    assert (learn_examples_add (examples, "", 0, "card_arrival", &err) == 0);
    assert (learn_examples_add (examples, "x", 1, "no spaces please", &err) == -1 && strstr (err.message, "not a valid"));
    assert (learn_examples_size (examples) == 3 && learn_examples_label_count (examples) == 2);
    assert (strcmp (learn_examples_label (examples, 1), "odd") == 0 && !learn_examples_label (examples, 2));
    assert (strcmp (learn_examples_label_source (examples, 0), "card_arrival") == 0);
    size_t size;
    const char *label;
    const char *text = learn_examples_example (examples, 1, &size, &label);
    assert (size == 3 && memcmp (text, "a\0b", 4) == 0 && strcmp (label, "odd") == 0);
    assert (!learn_examples_example (examples, 3, &size, &label));
    const uint32_t *labels = learn_examples_labels (examples);
    assert (labels[0] == 0 && labels[1] == 1 && labels[2] == 0);
    assert (strcmp (learn_examples_names (examples)[1], "odd") == 0);
    learn_examples_destroy (&examples);
    assert (!examples);
    learn_examples_destroy (&examples);

    /* training files: good, and each way of being bad, named by file and line */
    char directory[] = "/tmp/learn_examples_test.XXXXXX";
    assert (mkdtemp (directory));
    char *path = s_write_file (directory, "good.csv",
                               "id,category,text\r\n1,card_arrival,\"Where is my card, still?\"\r\n"
                               "2,lost_or_stolen_card,\"I lost it\nyesterday\"\r\n");
    examples = learn_examples_new ();
    assert (learn_examples_load (examples, path, &err) == 0);
    assert (learn_examples_size (examples) == 2 && learn_examples_label_count (examples) == 2);
    assert (strcmp (learn_examples_label (examples, 1), "lost_or_stolen_card") == 0);
    text = learn_examples_example (examples, 1, &size, &label);
    assert (strcmp (text, "I lost it\nyesterday") == 0 && size == 19);
    learn_examples_destroy (&examples);
    unlink (path);
    free (path);
    s_expect_load_error (directory, "I lost my card,lost_or_stolen_card\n", "line 1: the header must name", verbose);
    s_expect_load_error (directory, "", "no header", verbose);
    s_expect_load_error (directory, "text,category\nfine,a\nnot,fine,b\n", "line 3: 3 fields", verbose);
    s_expect_load_error (directory, "text,category\n\"two\nlines\",a\n,b\n", "line 4: the text is empty", verbose);
    s_expect_load_error (directory, "text,category\nhello,!!\n", "line 2: label '!!' is not a valid", verbose);
    s_expect_load_error (directory, "text,category\nhello,a?\nbye,a!\n", "line 3: labels 'a?' and 'a!' would both",
                         verbose);
    /* a label that is not a valid intent name is cleaned into one, and remembered as written */
    path = s_write_file (directory, "renamed.csv", "text,category\nhello,reverted card payment?\nbye,b\n"
                                                   "again,reverted card payment?\n");
    examples = learn_examples_new ();
    assert (learn_examples_load (examples, path, &err) == 0);
    assert (learn_examples_size (examples) == 3 && learn_examples_label_count (examples) == 2);
    assert (strcmp (learn_examples_label (examples, 0), "reverted_card_payment") == 0);
    assert (strcmp (learn_examples_label_source (examples, 0), "reverted card payment?") == 0);
    assert (strcmp (learn_examples_label_source (examples, 1), "b") == 0);
    assert (!learn_examples_label_source (examples, 2));
    learn_examples_destroy (&examples);
    unlink (path);
    free (path);
    s_expect_load_error (directory, "text,category\n\"open,a\n", "not closed", verbose);
    examples = learn_examples_new ();
    assert (learn_examples_load (examples, "/nonexistent.csv", &err) == -1 && strstr (err.message, "/nonexistent.csv"));
    learn_examples_destroy (&examples);
    assert (rmdir (directory) == 0);
    if (verbose)
        printf ("learn_examples: ok\n");
}
