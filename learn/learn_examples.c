/* The labelled examples: texts, their labels in order of first appearance, and the CSV loader
   (RFC 4180, parsed by libcsv). */
#include "learn_examples.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csv.h>

#include "cv_alloc.h"
#include "intent_model.h"

struct _learn_examples_t {
    char **texts; /* the examples, owned */
    size_t *sizes;
    uint32_t *labels; /* index into names */
    size_t count, capacity;
    char **names;   /* the labels, in order of first appearance */
    char **sources; /* each as written in the data */
    size_t name_count, name_capacity;
};

learn_examples_t *
learn_examples_new (void)
{
    return cv_calloc (1, sizeof (learn_examples_t));
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
        return cv_error_set (err, CV_ERR_INVALID, "label", "label '%s' is one more than the %d a model may have", name,
                             INTENT_MODEL_MAX_LABELS);
    if (self->name_count == self->name_capacity) {
        size_t capacity = self->name_capacity ? 2 * self->name_capacity : 64;
        self->names = cv_realloc (self->names, capacity * sizeof *self->names);
        self->sources = cv_realloc (self->sources, capacity * sizeof *self->sources);
        self->name_capacity = capacity;
    }
    self->names[self->name_count] = cv_strdup (name);
    self->sources[self->name_count] = cv_strdup (label);
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
        self->texts = cv_realloc (self->texts, capacity * sizeof *self->texts);
        self->sizes = cv_realloc (self->sizes, capacity * sizeof *self->sizes);
        self->labels = cv_realloc (self->labels, capacity * sizeof *self->labels);
        self->capacity = capacity;
    }
    char *copy = cv_malloc (size + 1);
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

/* --- the CSV loader --- */

/* A file being read: libcsv's callbacks fill the current record here, and each whole record
   becomes an example. */
typedef struct {
    learn_examples_t *self;
    cv_error_t *err;
    int rc;             /* -1 once err is set: the rest of the file is ignored */
    size_t line;        /* the line being parsed, from 1 */
    size_t record_line; /* where the current record starts; 0 between records */
    size_t field_line;  /* where the current field starts; 0 where its record does */
    char *fields;       /* the current record's fields, each NUL-terminated */
    size_t used, size;
    size_t starts[LEARN_EXAMPLES_MAX_FIELDS];
    size_t sizes[LEARN_EXAMPLES_MAX_FIELDS];
    size_t count; /* fields in the current record */
    char *header[LEARN_EXAMPLES_MAX_FIELDS];
    size_t columns;        /* 0 until the header is read */
    size_t text, category; /* their columns */
} reader_t;

/* RFC 4180: spaces are part of a field, so libcsv is told that nothing is a space (by default
   it drops spaces and tabs around fields). */
static int
s_no_space (unsigned char c)
{
    return 0;
}

/* libcsv's field callback: appends the field to the current record. */
static void
s_field (void *data, size_t size, void *arg)
{
    reader_t *reader = arg;
    if (reader->rc)
        return;
    if (reader->count == LEARN_EXAMPLES_MAX_FIELDS) {
        reader->rc = cv_error_set (reader->err, CV_ERR_INVALID, NULL, "line %zu: more than %d fields",
                                   reader->record_line, LEARN_EXAMPLES_MAX_FIELDS);
        return;
    }
    if (reader->used + size + 1 > reader->size) {
        size_t grown = 2 * (reader->used + size + 1);
        char *fields = cv_realloc (reader->fields, grown);
        reader->fields = fields;
        reader->size = grown;
    }
    if (size)
        memcpy (reader->fields + reader->used, data, size);
    reader->starts[reader->count] = reader->used;
    reader->sizes[reader->count++] = size;
    reader->used += size;
    reader->fields[reader->used++] = '\0';
    /* a field ends at a comma or a line's end: the next one starts on this line, or with the
       next record (s_record) */
    reader->field_line = reader->line;
}

/* The header's columns, or -1 with err when it lacks text or category. */
static int
s_header (reader_t *reader)
{
    bool text = false, category = false;
    for (size_t i = 0; i < reader->count; i++) {
        const char *name = reader->fields + reader->starts[i];
        reader->header[i] = cv_strdup (name);
        reader->columns = i + 1;
        if (!text && strcmp (name, "text") == 0)
            text = true, reader->text = i;
        if (!category && strcmp (name, "category") == 0)
            category = true, reader->category = i;
    }
    if (text && category)
        return 0;
    size_t columns = reader->columns;
    return cv_error_set (reader->err, CV_ERR_INVALID, NULL,
                         "line 1: the header must name the columns text and category; it has '%.60s'%s%.60s%s%s",
                         reader->header[0], columns > 1 ? ", '" : "", columns > 1 ? reader->header[1] : "",
                         columns > 1 ? "'" : "", columns > 2 ? ", ..." : "");
}

/* libcsv's record callback: the header, then an example per record. */
static void
s_record (int terminator, void *arg)
{
    reader_t *reader = arg;
    if (reader->rc == 0 && reader->columns == 0)
        reader->rc = s_header (reader);
    else if (reader->rc == 0) {
        size_t line = reader->record_line, size = reader->sizes[reader->text];
        if (reader->count != reader->columns)
            reader->rc =
                cv_error_set (reader->err, CV_ERR_INVALID, NULL, "line %zu: %zu field%s where the header has %zu", line,
                              reader->count, reader->count == 1 ? "" : "s", reader->columns);
        else if (size == 0)
            reader->rc = cv_error_set (reader->err, CV_ERR_INVALID, "text", "line %zu: the text is empty", line);
        else if (s_add (reader->self, reader->fields + reader->starts[reader->text], size,
                        reader->fields + reader->starts[reader->category], true, reader->err))
            reader->rc = -1, cv_error_prefix (reader->err, "line %zu", line);
    }
    reader->count = 0;
    reader->used = 0;
    reader->record_line = 0;
    reader->field_line = 0;
}

/* Adds the examples of the size bytes of CSV at data. libcsv parses (strictly: a quote inside an
   unquoted field, anything but a separator after a closing quote, and a quoted field open at the
   end are errors); it is fed one line at a time so that errors can name lines. */
static int
s_read (learn_examples_t *self, const char *data, size_t size, cv_error_t *err)
{
    struct csv_parser parser;
    if (csv_init (&parser, CSV_STRICT | CSV_STRICT_FINI))
        return cv_error_set (err, CV_ERR_INTERNAL, NULL, "out of memory");
    csv_set_space_func (&parser, s_no_space);
    reader_t reader = {.self = self, .err = err, .line = 1};
    /* a UTF-8 byte order mark is not part of the first field */
    size_t at = size >= 3 && memcmp (data, "\xef\xbb\xbf", 3) == 0 ? 3 : 0;
    while (reader.rc == 0 && at < size) {
        /* the line: up to and with its break (CRLF, LF or a lone CR) */
        size_t end = at, breaks = 0;
        while (end < size && data[end] != '\n' && data[end] != '\r')
            end++;
        if (end < size) {
            end += data[end] == '\r' && end + 1 < size && data[end + 1] == '\n' ? 2 : 1;
            breaks = 1;
        }
        /* a blank line between records is skipped (libcsv does too); any other starts one */
        if (reader.record_line == 0 && data[at] != '\n' && data[at] != '\r')
            reader.record_line = reader.line;
        size_t parsed = csv_parse (&parser, data + at, end - at, s_field, s_record, &reader);
        if (reader.rc == 0 && parsed < end - at) {
            char c = data[at + parsed];
            if (csv_error (&parser) != CSV_EPARSE)
                reader.rc = cv_error_set (err, CV_ERR_INTERNAL, NULL, "line %zu: out of memory", reader.line);
            else if (c == '"')
                reader.rc = cv_error_set (err, CV_ERR_INVALID, NULL,
                                          "line %zu: a quote inside a field that does not start with one (quote "
                                          "the field and double the quote)",
                                          reader.line);
            else
                reader.rc = cv_error_set (err, CV_ERR_INVALID, NULL,
                                          "line %zu: '%c' after a closing quote, where a comma or the end of the "
                                          "line should be",
                                          reader.line, c);
        }
        reader.line += breaks;
        at = end;
    }
    if (reader.rc == 0 && csv_fini (&parser, s_field, s_record, &reader))
        reader.rc =
            cv_error_set (err, CV_ERR_INVALID, NULL, "line %zu: a quoted field opened on line %zu is not closed",
                          reader.line, reader.field_line ? reader.field_line : reader.record_line);
    if (reader.rc == 0 && reader.columns == 0)
        reader.rc = cv_error_set (err, CV_ERR_INVALID, NULL, "no header: the file is empty");
    csv_free (&parser);
    for (size_t i = 0; i < reader.columns; i++)
        free (reader.header[i]);
    free (reader.fields);
    return reader.rc;
}

int
learn_examples_load (learn_examples_t *self, const char *path, cv_error_t *err)
{
    assert (self && path);
    FILE *file = fopen (path, "rb");
    if (!file)
        return cv_error_set (err, CV_ERR_INVALID, NULL, "%s: %s", path, strerror (errno));
    int rc = -1;
    char *data = NULL;
    struct stat status;
    if (fstat (fileno (file), &status) || !S_ISREG (status.st_mode))
        cv_error_set (err, CV_ERR_INVALID, NULL, "%s: not a regular file", path);
    else if ((unsigned long long) status.st_size > LEARN_EXAMPLES_MAX_BYTES)
        cv_error_set (err, CV_ERR_INVALID, NULL, "%s: %lld bytes, more than the %u a training file may have", path,
                      (long long) status.st_size, LEARN_EXAMPLES_MAX_BYTES);
    else {
        data = cv_malloc (status.st_size ? (size_t) status.st_size : 1);
        if (fread (data, 1, (size_t) status.st_size, file) != (size_t) status.st_size)
            cv_error_set (err, CV_ERR_INVALID, NULL, "%s: cannot read it: %s", path,
                          ferror (file) ? strerror (errno) : "it shrank while read");
        else if ((rc = s_read (self, data, (size_t) status.st_size, err)))
            cv_error_prefix (err, "%s", path);
    }
    free (data);
    fclose (file);
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

/* Writes size bytes of data to a new file name in directory; returns its path, which the caller
   frees. */
static char *
s_write_bytes (const char *directory, const char *name, const char *data, size_t size)
{
    char *path = cv_asprintf ("%s/%s", directory, name);
    FILE *file = fopen (path, "wb");
    assert (file);
    assert (fwrite (data, 1, size, file) == size);
    fclose (file);
    return path;
}

static char *
s_write_file (const char *directory, const char *name, const char *text)
{
    return s_write_bytes (directory, name, text, strlen (text));
}

/* Loads the size bytes of data as a training file into examples; the rc, and err filled. */
static int
s_load_bytes (const char *directory, learn_examples_t *examples, const char *data, size_t size, cv_error_t *err)
{
    char *path = s_write_bytes (directory, "data.csv", data, size);
    int rc = learn_examples_load (examples, path, err);
    unlink (path);
    free (path);
    return rc;
}

/* Asserts that example index has text (size bytes) and label. */
static void
s_expect_example (const learn_examples_t *examples, size_t index, const char *text, size_t text_size, const char *label)
{
    size_t size;
    const char *name;
    const char *got = learn_examples_example (examples, index, &size, &name);
    cv_assert_that (!(!got || size != text_size || memcmp (got, text, size) != 0 || strcmp (name, label) != 0),
                    "learn_examples: example %zu is [%s] [%s], expected [%s] [%s]", index, got ? got : "(none)",
                    got ? name : "", text, label);
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
    cv_assert_that (!(rc == 0 || !strstr (err.message, expected) || !strstr (err.message, path)),
                    "learn_examples: loading [%s] gave [%s], expected [%s]", text, rc ? err.message : "ok", expected);
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
    assert (learn_examples_add (examples, "x", 1, "no spaces please", &err) == -1
            && strstr (err.message, "not a valid"));
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
    path = s_write_file (directory, "renamed.csv",
                         "text,category\nhello,reverted card payment?\nbye,b\n"
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
    assert (strstr (err.message, "No such file"));
    learn_examples_destroy (&examples);

    /* RFC 4180 as libcsv reads it: quotes, doubled quotes, a comma and line breaks inside quotes,
       CRLF, a BOM, blank lines; the record on line 9 has an empty text, the examples before it
       stay */
    const char *rfc = "\xef\xbb\xbftext,category\r\n"
                      "plain,a\r\n"
                      "\"with, comma\",b\r\n"
                      "\"say \"\"hi\"\"\",c\r\n"
                      "\"two\nlines\r\nand three\",d\r\n"
                      "\r\n"
                      "\"\",e\n"
                      "last,\"f\"";
    examples = learn_examples_new ();
    assert (s_load_bytes (directory, examples, rfc, strlen (rfc), &err) == -1);
    if (verbose)
        printf ("  %s\n", err.message);
    assert (strstr (err.message, "line 9: the text is empty")); /* the BOM is not part of the column's name */
    assert (learn_examples_size (examples) == 4);
    s_expect_example (examples, 0, "plain", 5, "a");
    s_expect_example (examples, 1, "with, comma", 11, "b");
    s_expect_example (examples, 2, "say \"hi\"", 8, "c");
    s_expect_example (examples, 3, "two\nlines\r\nand three", 20, "d");
    learn_examples_destroy (&examples);
    /* without it: the last record, with no line break after its closing quote, is line 9; a
       record after it, line 10 */
    char rfc_data[256];
    const char *blank = strstr (rfc, "\"\",e\n");
    snprintf (rfc_data, sizeof rfc_data, "%.*s%s", (int) (blank - rfc), rfc, blank + 5);
    examples = learn_examples_new ();
    assert (s_load_bytes (directory, examples, rfc_data, strlen (rfc_data), &err) == 0);
    assert (learn_examples_size (examples) == 5);
    s_expect_example (examples, 4, "last", 4, "f");
    strcat (rfc_data, "\nnot,fine,z");
    assert (s_load_bytes (directory, examples, rfc_data, strlen (rfc_data), &err) == -1);
    assert (strstr (err.message, "line 10: 3 fields where the header has 2"));
    learn_examples_destroy (&examples);

    /* a NUL inside a field, an empty field at the end of a line (an empty label: refused) */
    static const char nul[] = "text,category\n\"n\0l\",y\nx,\n";
    examples = learn_examples_new ();
    assert (s_load_bytes (directory, examples, nul, sizeof nul - 1, &err) == -1);
    assert (strstr (err.message, "line 3: label '' is not a valid"));
    s_expect_example (examples, 0, "n\0l", 3, "y");
    learn_examples_destroy (&examples);

    /* spaces are the field's, also around quotes' insides; a lone CR ends a record */
    examples = learn_examples_new ();
    const char *spaces = "text,category\r padded ,a\r\" in quotes \",b\rtab\there,a";
    assert (s_load_bytes (directory, examples, spaces, strlen (spaces), &err) == 0);
    assert (learn_examples_size (examples) == 3);
    s_expect_example (examples, 0, " padded ", 8, "a");
    s_expect_example (examples, 1, " in quotes ", 11, "b");
    s_expect_example (examples, 2, "tab\there", 8, "a");
    learn_examples_destroy (&examples);

    /* a missing header: nothing at all, or only blank lines */
    s_expect_load_error (directory, "\r\n\n", "no header: the file is empty", verbose);
    /* a row with the wrong number of fields, named by its line (after a multi-line field; a
       lone CR counts as a line too) */
    s_expect_load_error (directory, "text,category\n\"a\nb\",x\nc,y,z\n", "line 4: 3 fields where the header has 2",
                         verbose);
    s_expect_load_error (directory, "text,category\nalone\n", "line 2: 1 field where the header has 2", verbose);
    s_expect_load_error (directory, "text,category\rone,a\r\"x\ry\",b\rbad\r", "line 5: 1 field where", verbose);
    /* malformed quoting */
    s_expect_load_error (directory, "text,category\n\"open,x\nmore\n",
                         "line 4: a quoted field opened on line 2 is not closed", verbose);
    s_expect_load_error (directory, "text,category\nfine,x\nmore,\"open\n", "opened on line 3 is not closed", verbose);
    s_expect_load_error (directory, "text,category\n\"closed\"x,y\n", "line 2: 'x' after a closing quote", verbose);
    s_expect_load_error (directory, "text,category\n\"closed\" ,y\n", "line 2: ' ' after a closing quote", verbose);
    s_expect_load_error (directory, "text,category\nsay \"hi\",y\n", "line 2: a quote inside a field", verbose);
    s_expect_load_error (directory, "text,category\n\"a\nb\",x\nsay \"hi\",y\n", "line 4: a quote inside a field",
                         verbose);

    /* too many fields */
    char wide[2 * LEARN_EXAMPLES_MAX_FIELDS + 8];
    size_t used = 0;
    for (int i = 0; i <= LEARN_EXAMPLES_MAX_FIELDS; i++) {
        wide[used++] = 'a';
        wide[used++] = ',';
    }
    wide[used - 1] = '\0';
    s_expect_load_error (directory, wide, "line 1: more than 64 fields", verbose);

    /* a long field */
    size_t long_size = 100000;
    char *long_data = cv_malloc (long_size + 32);
    memcpy (long_data, "text,category\n", 14);
    memset (long_data + 14, 'x', long_size);
    memcpy (long_data + 14 + long_size, ",a\n", 3);
    examples = learn_examples_new ();
    assert (s_load_bytes (directory, examples, long_data, long_size + 17, &err) == 0);
    assert (learn_examples_example (examples, 0, &size, &label) && size == long_size);
    learn_examples_destroy (&examples);
    free (long_data);
    assert (rmdir (directory) == 0);

    /* Banking77's training split */
    examples = learn_examples_new ();
    int rc = learn_examples_load (examples, CONVEYOR_SOURCE_DIR "/data/banking77/train.csv", &err);
    if (rc)
        fprintf (stderr, "learn_examples: %s\n", err.message);
    assert (rc == 0 && learn_examples_size (examples) == 10003 && learn_examples_label_count (examples) == 77);
    learn_examples_destroy (&examples);
    if (verbose)
        printf ("learn_examples: ok\n");
}
