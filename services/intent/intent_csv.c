/* An RFC 4180 CSV reader with a header, for the intent model's training files. */
#include "intent_csv.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct _intent_csv_t {
    char *data;                   /* the whole input */
    size_t size;
    size_t at;                    /* the next byte to read */
    size_t line;                  /* the line of data[at] */
    size_t record_line;           /* the line where the current record starts */
    char *fields;                 /* the current record's fields, unquoted, each NUL-terminated */
    size_t fields_used, fields_size;
    size_t starts[INTENT_CSV_MAX_FIELDS];
    size_t sizes[INTENT_CSV_MAX_FIELDS];
    size_t count;                 /* fields in the current record */
    char *header[INTENT_CSV_MAX_FIELDS];   /* owned copies of the header's names */
    size_t columns;               /* 0 until the header is read */
};

intent_csv_t *
intent_csv_new (const char *data, size_t size)
{
    assert (data || size == 0);
    intent_csv_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->data = malloc (size ? size : 1);
    self->fields_size = 256;
    self->fields = malloc (self->fields_size);
    if (!self->data || !self->fields) {
        intent_csv_destroy (&self);
        return NULL;
    }
    if (size)
        memcpy (self->data, data, size);
    self->size = size;
    self->line = 1;
    /* a UTF-8 byte order mark is not part of the first field */
    if (size >= 3 && memcmp (data, "\xef\xbb\xbf", 3) == 0)
        self->at = 3;
    return self;
}

intent_csv_t *
intent_csv_load (const char *path, cv_error_t *err)
{
    assert (path);
    FILE *file = fopen (path, "rb");
    if (!file) {
        cv_error_set (err, CV_ERR_INVALID, NULL, "%s: %s", path, strerror (errno));
        return NULL;
    }
    intent_csv_t *self = NULL;
    char *data = NULL;
    struct stat status;
    if (fstat (fileno (file), &status) || !S_ISREG (status.st_mode))
        cv_error_set (err, CV_ERR_INVALID, NULL, "%s: not a regular file", path);
    else if ((unsigned long long) status.st_size > INTENT_CSV_MAX_BYTES)
        cv_error_set (err, CV_ERR_INVALID, NULL, "%s: %lld bytes, more than the %u a training file may have", path,
                      (long long) status.st_size, INTENT_CSV_MAX_BYTES);
    else if (!(data = malloc (status.st_size ? (size_t) status.st_size : 1)))
        cv_error_set (err, CV_ERR_INTERNAL, NULL, "%s: out of memory", path);
    else if (fread (data, 1, (size_t) status.st_size, file) != (size_t) status.st_size)
        cv_error_set (err, CV_ERR_INVALID, NULL, "%s: cannot read it: %s", path,
                      ferror (file) ? strerror (errno) : "it shrank while read");
    else if (!(self = intent_csv_new (data, (size_t) status.st_size)))
        cv_error_set (err, CV_ERR_INTERNAL, NULL, "%s: out of memory", path);
    free (data);
    fclose (file);
    return self;
}

void
intent_csv_destroy (intent_csv_t **self_p)
{
    assert (self_p);
    intent_csv_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->columns; i++)
        free (self->header[i]);
    free (self->data);
    free (self->fields);
    free (self);
    *self_p = NULL;
}

/* Appends a byte to the field being read. */
static int
s_put (intent_csv_t *self, char c, cv_error_t *err)
{
    if (self->fields_used + 1 >= self->fields_size) {
        size_t size = self->fields_size * 2;
        char *fields = realloc (self->fields, size);
        if (!fields)
            return cv_error_set (err, CV_ERR_INTERNAL, NULL, "line %zu: out of memory", self->record_line);
        self->fields = fields;
        self->fields_size = size;
    }
    self->fields[self->fields_used++] = c;
    return 0;
}

/* True at a record separator: CRLF, LF or a lone CR, which it consumes. */
static bool
s_end_of_line (intent_csv_t *self)
{
    if (self->at >= self->size)
        return false;
    char c = self->data[self->at];
    if (c == '\n' || c == '\r') {
        self->at += c == '\r' && self->at + 1 < self->size && self->data[self->at + 1] == '\n' ? 2 : 1;
        self->line++;
        return true;
    }
    return false;
}

/* Reads one field at self->at into the fields buffer; -1 with err when malformed. */
static int
s_field (intent_csv_t *self, cv_error_t *err)
{
    if (self->count == INTENT_CSV_MAX_FIELDS)
        return cv_error_set (err, CV_ERR_INVALID, NULL, "line %zu: more than %d fields", self->record_line,
                             INTENT_CSV_MAX_FIELDS);
    self->starts[self->count] = self->fields_used;
    if (self->at < self->size && self->data[self->at] == '"') {
        size_t opened = self->line;
        self->at++;
        while (true) {
            if (self->at >= self->size)
                return cv_error_set (err, CV_ERR_INVALID, NULL,
                                     "line %zu: a quoted field opened on line %zu is not closed", self->line, opened);
            char c = self->data[self->at++];
            if (c == '"') {
                if (self->at < self->size && self->data[self->at] == '"') {
                    self->at++;
                    if (s_put (self, '"', err))
                        return -1;
                    continue;
                }
                break;
            }
            /* a line break inside quotes is the field's; count it (CRLF once) */
            if (c == '\n' || (c == '\r' && !(self->at < self->size && self->data[self->at] == '\n')))
                self->line++;
            if (s_put (self, c, err))
                return -1;
        }
        if (self->at < self->size) {
            char c = self->data[self->at];
            if (c != ',' && c != '\r' && c != '\n')
                return cv_error_set (err, CV_ERR_INVALID, NULL,
                                     "line %zu: '%c' after a closing quote, where a comma or the end of the line "
                                     "should be", self->line, c);
        }
    } else {
        while (self->at < self->size) {
            char c = self->data[self->at];
            if (c == ',' || c == '\r' || c == '\n')
                break;
            if (c == '"')
                return cv_error_set (err, CV_ERR_INVALID, NULL,
                                     "line %zu: a quote inside a field that does not start with one (quote the "
                                     "field and double the quote)", self->line);
            if (s_put (self, c, err))
                return -1;
            self->at++;
        }
    }
    self->sizes[self->count] = self->fields_used - self->starts[self->count];
    self->count++;
    return s_put (self, '\0', err);
}

/* Reads one record; 1, 0 at the end, -1 with err. */
static int
s_record (intent_csv_t *self, cv_error_t *err)
{
    while (s_end_of_line (self))
        ; /* blank lines */
    if (self->at >= self->size)
        return 0;
    self->record_line = self->line;
    self->count = 0;
    self->fields_used = 0;
    while (true) {
        if (s_field (self, err))
            return -1;
        if (self->at < self->size && self->data[self->at] == ',') {
            self->at++;
            continue;
        }
        s_end_of_line (self);
        return 1;
    }
}

int
intent_csv_read_header (intent_csv_t *self, cv_error_t *err)
{
    assert (self);
    assert (self->columns == 0); /* once */
    int rc = s_record (self, err);
    if (rc < 0)
        return -1;
    if (rc == 0)
        return cv_error_set (err, CV_ERR_INVALID, NULL, "no header: the file is empty");
    for (size_t i = 0; i < self->count; i++) {
        self->header[i] = strdup (self->fields + self->starts[i]);
        if (!self->header[i]) {
            self->columns = i;
            return cv_error_set (err, CV_ERR_INTERNAL, NULL, "out of memory");
        }
    }
    self->columns = self->count;
    return 0;
}

int
intent_csv_column (const intent_csv_t *self, const char *name)
{
    assert (self && name);
    for (size_t i = 0; i < self->columns; i++)
        if (strcmp (self->header[i], name) == 0)
            return (int) i;
    return -1;
}

size_t
intent_csv_columns (const intent_csv_t *self)
{
    assert (self);
    return self->columns;
}

const char *
intent_csv_column_name (const intent_csv_t *self, size_t index)
{
    assert (self);
    return index < self->columns ? self->header[index] : NULL;
}

int
intent_csv_next (intent_csv_t *self, cv_error_t *err)
{
    assert (self);
    assert (self->columns > 0); /* the header first */
    int rc = s_record (self, err);
    if (rc == 1 && self->count != self->columns)
        return cv_error_set (err, CV_ERR_INVALID, NULL, "line %zu: %zu field%s where the header has %zu",
                             self->record_line, self->count, self->count == 1 ? "" : "s", self->columns);
    return rc;
}

const char *
intent_csv_field (const intent_csv_t *self, size_t index, size_t *size)
{
    assert (self);
    assert (index < self->count);
    if (size)
        *size = self->sizes[index];
    return self->fields + self->starts[index];
}

size_t
intent_csv_line (const intent_csv_t *self)
{
    assert (self);
    return self->record_line;
}

/* Reads data's header and every record, asserting it ends with expected_rc; returns the reader at
   its last record for more checks. */
static intent_csv_t *
s_read_all (const char *data, size_t *records, int expected_rc, cv_error_t *err)
{
    intent_csv_t *csv = intent_csv_new (data, strlen (data));
    assert (csv);
    assert (intent_csv_read_header (csv, err) == 0);
    *records = 0;
    int rc;
    while ((rc = intent_csv_next (csv, err)) == 1)
        (*records)++;
    assert (rc == expected_rc);
    return csv;
}

void
intent_csv_test (bool verbose)
{
    cv_error_t err;
    /* quotes, doubled quotes, a comma and line breaks inside quotes, CRLF, a BOM, blank lines */
    const char *data = "\xef\xbb\xbftext,category\r\n"
                       "plain,a\r\n"
                       "\"with, comma\",b\r\n"
                       "\"say \"\"hi\"\"\",c\r\n"
                       "\"two\nlines\r\nand three\",d\r\n"
                       "\r\n"
                       "\"\",e\n"
                       "last,\"f\"";
    intent_csv_t *csv = intent_csv_new (data, strlen (data));
    assert (csv);
    assert (intent_csv_read_header (csv, &err) == 0);
    assert (intent_csv_line (csv) == 1);
    assert (intent_csv_columns (csv) == 2);
    assert (intent_csv_column (csv, "text") == 0); /* the BOM is not part of it */
    assert (intent_csv_column (csv, "category") == 1);
    assert (intent_csv_column (csv, "label") == -1);
    assert (strcmp (intent_csv_column_name (csv, 1), "category") == 0);
    assert (!intent_csv_column_name (csv, 2));
    static const struct {
        const char *text, *category;
        size_t line;
    } expected[] = {
        {"plain", "a", 2},
        {"with, comma", "b", 3},
        {"say \"hi\"", "c", 4},
        {"two\nlines\r\nand three", "d", 5},
        {"", "e", 9},
        {"last", "f", 10},
    };
    for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++) {
        assert (intent_csv_next (csv, &err) == 1);
        size_t size;
        const char *text = intent_csv_field (csv, 0, &size);
        if (verbose)
            printf ("  line %zu: [%s] [%s]\n", intent_csv_line (csv), text, intent_csv_field (csv, 1, NULL));
        assert (strcmp (text, expected[i].text) == 0 && size == strlen (expected[i].text));
        assert (strcmp (intent_csv_field (csv, 1, NULL), expected[i].category) == 0);
        assert (intent_csv_line (csv) == expected[i].line);
    }
    assert (intent_csv_next (csv, &err) == 0);
    assert (intent_csv_next (csv, &err) == 0);
    intent_csv_destroy (&csv);
    intent_csv_destroy (&csv);

    /* an empty field at the end of a line, a NUL inside a field */
    static const char nul[] = "a,b\nx,\n\"n\0l\",y\n";
    csv = intent_csv_new (nul, sizeof nul - 1);
    assert (intent_csv_read_header (csv, &err) == 0);
    assert (intent_csv_next (csv, &err) == 1);
    size_t size;
    assert (strcmp (intent_csv_field (csv, 1, &size), "") == 0 && size == 0);
    assert (intent_csv_next (csv, &err) == 1);
    assert (memcmp (intent_csv_field (csv, 0, &size), "n\0l", 4) == 0 && size == 3);
    intent_csv_destroy (&csv);

    /* a missing header: nothing at all, or only blank lines */
    csv = intent_csv_new ("", 0);
    assert (intent_csv_read_header (csv, &err) == -1 && strstr (err.message, "no header"));
    intent_csv_destroy (&csv);
    csv = intent_csv_new ("\r\n\n", 3);
    assert (intent_csv_read_header (csv, &err) == -1 && strstr (err.message, "no header"));
    intent_csv_destroy (&csv);

    /* a row with the wrong number of fields, named by its line (after a multi-line field) */
    size_t records;
    csv = s_read_all ("text,category\n\"a\nb\",x\nc,y,z\n", &records, -1, &err);
    assert (records == 1);
    if (verbose)
        printf ("  %s\n", err.message);
    assert (strstr (err.message, "line 4: 3 fields where the header has 2"));
    intent_csv_destroy (&csv);
    csv = s_read_all ("text,category\nalone\n", &records, -1, &err);
    assert (strstr (err.message, "line 2: 1 field where the header has 2"));
    intent_csv_destroy (&csv);

    /* malformed quoting */
    csv = s_read_all ("text,category\n\"open,x\nmore\n", &records, -1, &err);
    assert (strstr (err.message, "opened on line 2 is not closed"));
    intent_csv_destroy (&csv);
    csv = s_read_all ("text,category\n\"closed\"x,y\n", &records, -1, &err);
    assert (strstr (err.message, "line 2: 'x' after a closing quote"));
    intent_csv_destroy (&csv);
    csv = s_read_all ("text,category\nsay \"hi\",y\n", &records, -1, &err);
    assert (strstr (err.message, "line 2: a quote inside a field"));
    intent_csv_destroy (&csv);

    /* too many fields */
    char wide[2 * INTENT_CSV_MAX_FIELDS + 8];
    size_t used = 0;
    for (int i = 0; i <= INTENT_CSV_MAX_FIELDS; i++) {
        wide[used++] = 'a';
        wide[used++] = ',';
    }
    wide[used - 1] = '\0';
    csv = intent_csv_new (wide, strlen (wide));
    assert (intent_csv_read_header (csv, &err) == -1 && strstr (err.message, "more than"));
    intent_csv_destroy (&csv);

    /* a long field grows the buffer */
    size_t long_size = 100000;
    char *long_data = malloc (long_size + 16);
    assert (long_data);
    memcpy (long_data, "t\n", 2);
    memset (long_data + 2, 'x', long_size);
    long_data[long_size + 2] = '\0';
    csv = intent_csv_new (long_data, long_size + 2);
    assert (intent_csv_read_header (csv, &err) == 0 && intent_csv_next (csv, &err) == 1);
    assert (strlen (intent_csv_field (csv, 0, NULL)) == long_size);
    intent_csv_destroy (&csv);
    free (long_data);

    /* files */
    assert (!intent_csv_load ("/nonexistent/train.csv", &err) && strstr (err.message, "No such file"));
    csv = intent_csv_load (CONVEYOR_SOURCE_DIR "/data/banking77/train.csv", &err);
    assert (csv);
    assert (intent_csv_read_header (csv, &err) == 0);
    assert (intent_csv_column (csv, "text") == 0 && intent_csv_column (csv, "category") == 1);
    size_t rows = 0;
    int rc;
    while ((rc = intent_csv_next (csv, &err)) == 1)
        rows++;
    if (rc)
        fprintf (stderr, "intent_csv: %s\n", err.message);
    assert (rc == 0 && rows == 10003);
    intent_csv_destroy (&csv);
    if (verbose)
        printf ("intent_csv: ok\n");
}
