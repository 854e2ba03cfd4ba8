/* Free-form data on the wire: JSON values (jansson) packed to and checked out of msgpack. */
#include "cv_msgpack.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "cv_alloc.h"
#include "cv_utf8.h"

static int
s_pack (msgpack_packer *pk, const json_t *value, int depth, cv_error_t *err)
{
    if (depth > CV_MSGPACK_MAX_DEPTH)
        return cv_error_set (err, CV_ERR_INVALID, NULL, "value nested deeper than %d", CV_MSGPACK_MAX_DEPTH);
    switch (json_typeof (value)) {
    case JSON_OBJECT: {
        msgpack_pack_map (pk, json_object_size (value));
        const char *key;
        json_t *member;
        json_object_foreach ((json_t *) value, key, member) {
            size_t length = strlen (key);
            msgpack_pack_str (pk, length);
            msgpack_pack_str_body (pk, key, length);
            if (s_pack (pk, member, depth + 1, err))
                return -1;
        }
        return 0;
    }
    case JSON_ARRAY: {
        msgpack_pack_array (pk, json_array_size (value));
        size_t index;
        json_t *item;
        json_array_foreach (value, index, item)
            if (s_pack (pk, item, depth + 1, err))
                return -1;
        return 0;
    }
    case JSON_STRING: {
        size_t length = json_string_length (value);
        msgpack_pack_str (pk, length);
        msgpack_pack_str_body (pk, json_string_value (value), length);
        return 0;
    }
    case JSON_INTEGER:
        msgpack_pack_int64 (pk, json_integer_value (value));
        return 0;
    case JSON_REAL:
        msgpack_pack_double (pk, json_real_value (value));
        return 0;
    case JSON_TRUE:
        msgpack_pack_true (pk);
        return 0;
    case JSON_FALSE:
        msgpack_pack_false (pk);
        return 0;
    case JSON_NULL:
        msgpack_pack_nil (pk);
        return 0;
    }
    return cv_error_set (err, CV_ERR_INTERNAL, NULL, "unknown JSON type");
}

uint8_t *
cv_msgpack_pack (const json_t *value, size_t *size, cv_error_t *err)
{
    assert (value && size);
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    if (s_pack (&pk, value, 0, err)) {
        msgpack_sbuffer_destroy (&buffer);
        return NULL;
    }
    if (buffer.size > CV_MSGPACK_MAX_BYTES) {
        cv_error_set (err, CV_ERR_INVALID, NULL, "packed value is %zu bytes, over the limit of %d", buffer.size,
                      CV_MSGPACK_MAX_BYTES);
        msgpack_sbuffer_destroy (&buffer);
        return NULL;
    }
    *size = buffer.size;
    return (uint8_t *) msgpack_sbuffer_release (&buffer);
}

/* msgpack-c allocates a container's elements before reading them, so a five-byte message that
   claims four billion elements would ask for gigabytes. This walk checks every header against
   the bytes that remain (each element takes at least one) and the depth, before msgpack-c runs. */
static int
s_check_bounds (const uint8_t **p, const uint8_t *end, int depth, const char *field, cv_error_t *err)
{
    if (depth > CV_MSGPACK_MAX_DEPTH)
        return cv_error_set (err, CV_ERR_INVALID, field, "msgpack nested deeper than %d", CV_MSGPACK_MAX_DEPTH);
    if (*p >= end)
        return cv_error_set (err, CV_ERR_INVALID, field, "msgpack truncated");
    uint8_t tag = *(*p)++;
    size_t remaining = (size_t) (end - *p);
    uint64_t skip = 0, count = 0;
    int count_width = 0, skip_width = 0;
    bool is_map = false;

    if (tag <= 0x7f || tag >= 0xe0 || tag == 0xc0 || tag == 0xc2 || tag == 0xc3)
        return 0;
    else if (tag >= 0xa0 && tag <= 0xbf)
        skip = tag & 0x1f;
    else if (tag >= 0x90 && tag <= 0x9f)
        count = tag & 0x0f;
    else if (tag >= 0x80 && tag <= 0x8f)
        count = tag & 0x0f, is_map = true;
    else
        switch (tag) {
        case 0xcc:
        case 0xd0:
            skip = 1;
            break;
        case 0xcd:
        case 0xd1:
            skip = 2;
            break;
        case 0xca:
        case 0xce:
        case 0xd2:
            skip = 4;
            break;
        case 0xcb:
        case 0xcf:
        case 0xd3:
            skip = 8;
            break;
        case 0xd9:
            skip_width = 1;
            break;
        case 0xda:
            skip_width = 2;
            break;
        case 0xdb:
            skip_width = 4;
            break;
        case 0xdc:
            count_width = 2;
            break;
        case 0xdd:
            count_width = 4;
            break;
        case 0xde:
            count_width = 2, is_map = true;
            break;
        case 0xdf:
            count_width = 4, is_map = true;
            break;
        default:
            return cv_error_set (err, CV_ERR_INVALID, field, "msgpack type 0x%02x (binary or extension) not allowed",
                                 tag);
        }
    int width = skip_width ? skip_width : count_width;
    if (width) {
        if (remaining < (size_t) width)
            return cv_error_set (err, CV_ERR_INVALID, field, "msgpack truncated");
        uint64_t n = 0;
        for (int i = 0; i < width; i++)
            n = (n << 8) | (*p)[i];
        *p += width;
        remaining -= (size_t) width;
        if (skip_width)
            skip = n;
        else
            count = n;
    }
    if (skip) {
        if (skip > remaining)
            return cv_error_set (err, CV_ERR_INVALID, field, "msgpack truncated");
        *p += skip;
        return 0;
    }
    uint64_t elements = is_map ? count * 2 : count;
    if (elements > remaining)
        return cv_error_set (err, CV_ERR_INVALID, field, "msgpack container claims %llu elements in %zu bytes",
                             (unsigned long long) elements, remaining);
    for (uint64_t i = 0; i < elements; i++)
        if (s_check_bounds (p, end, depth + 1, field, err))
            return -1;
    return 0;
}

static json_t *
s_to_json (const msgpack_object *object, const char *field, cv_error_t *err)
{
    switch (object->type) {
    case MSGPACK_OBJECT_NIL:
        return json_null ();
    case MSGPACK_OBJECT_BOOLEAN:
        return json_boolean (object->via.boolean);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        if (object->via.u64 > (uint64_t) INT64_MAX) {
            cv_error_set (err, CV_ERR_INVALID, field, "msgpack integer out of range");
            return NULL;
        }
        return json_integer ((json_int_t) object->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return json_integer (object->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        return json_real (object->via.f64);
    case MSGPACK_OBJECT_STR: {
        json_t *string = NULL;
        if (cv_utf8_valid (object->via.str.ptr, object->via.str.size))
            string = json_stringn (object->via.str.ptr, object->via.str.size);
        if (!string)
            cv_error_set (err, CV_ERR_INVALID, field, "msgpack string is not valid UTF-8");
        return string;
    }
    case MSGPACK_OBJECT_ARRAY: {
        json_t *array = json_array ();
        for (uint32_t i = 0; i < object->via.array.size; i++) {
            json_t *item = s_to_json (&object->via.array.ptr[i], field, err);
            if (!item) {
                json_decref (array);
                return NULL;
            }
            json_array_append_new (array, item);
        }
        return array;
    }
    case MSGPACK_OBJECT_MAP: {
        json_t *map = json_object ();
        for (uint32_t i = 0; i < object->via.map.size; i++) {
            const msgpack_object_kv *kv = &object->via.map.ptr[i];
            if (kv->key.type != MSGPACK_OBJECT_STR || !cv_utf8_valid (kv->key.via.str.ptr, kv->key.via.str.size)) {
                cv_error_set (err, CV_ERR_INVALID, field, "msgpack map key is not a UTF-8 string");
                json_decref (map);
                return NULL;
            }
            json_t *member = s_to_json (&kv->val, field, err);
            if (!member) {
                json_decref (map);
                return NULL;
            }
            json_object_setn_new_nocheck (map, kv->key.via.str.ptr, kv->key.via.str.size, member);
        }
        return map;
    }
    default:
        cv_error_set (err, CV_ERR_INVALID, field, "msgpack type %d not allowed", (int) object->type);
        return NULL;
    }
}

json_t *
cv_msgpack_unpack (const uint8_t *data, size_t size, const char *field, cv_error_t *err)
{
    if (size == 0)
        return json_object ();
    if (size > CV_MSGPACK_MAX_BYTES) {
        cv_error_set (err, CV_ERR_INVALID, field, "msgpack is %zu bytes, over the limit of %d", size,
                      CV_MSGPACK_MAX_BYTES);
        return NULL;
    }
    const uint8_t *cursor = data;
    if (s_check_bounds (&cursor, data + size, 0, field, err))
        return NULL;
    if (cursor != data + size) {
        cv_error_set (err, CV_ERR_INVALID, field, "msgpack has %zu trailing bytes", (size_t) (data + size - cursor));
        return NULL;
    }
    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    size_t offset = 0;
    json_t *value = NULL;
    if (msgpack_unpack_next (&unpacked, (const char *) data, size, &offset) != MSGPACK_UNPACK_SUCCESS)
        cv_error_set (err, CV_ERR_INVALID, field, "msgpack is not well formed");
    else
        value = s_to_json (&unpacked.data, field, err);
    msgpack_unpacked_destroy (&unpacked);
    return value;
}

void
cv_msgpack_test (bool verbose)
{
    cv_error_t err;
    json_t *value = json_pack ("{s:s, s:i, s:f, s:b, s:n, s:[i,s,{s:s}]}", "last4", "4417", "amount", -1250, "rate",
                               1.5, "ok", 1, "none", "list", 1, "caf\xc3\xa9", "k", "v");
    size_t size = 0;
    uint8_t *packed = cv_msgpack_pack (value, &size, &err);
    assert (packed && size > 0);
    json_t *back = cv_msgpack_unpack (packed, size, "slots", &err);
    assert (back);
    assert (json_equal (value, back));
    json_decref (back);

    /* trailing bytes, truncation */
    uint8_t *longer = cv_malloc (size + 1);
    memcpy (longer, packed, size);
    longer[size] = 0xc0;
    assert (!cv_msgpack_unpack (longer, size + 1, "slots", &err));
    assert (strstr (err.message, "trailing"));
    assert (strcmp (err.field, "slots") == 0);
    for (size_t cut = 1; cut < size; cut++)
        assert (!cv_msgpack_unpack (packed, cut, "slots", &err));
    free (longer);
    free (packed);
    json_decref (value);

    /* an array header claiming 2^32-1 elements in five bytes */
    const uint8_t huge[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
    assert (!cv_msgpack_unpack (huge, sizeof huge, "data", &err));
    assert (strstr (err.message, "claims"));

    /* nesting beyond the limit */
    uint8_t deep[64];
    memset (deep, 0x91, sizeof deep); /* fixarray of one, nested */
    deep[sizeof deep - 1] = 0xc0;
    assert (!cv_msgpack_unpack (deep, sizeof deep, "data", &err));
    assert (strstr (err.message, "deeper"));

    /* invalid UTF-8 string; binary type; non-string key */
    const uint8_t bad_string[] = {0xa2, 0xc3, 0x28};
    assert (!cv_msgpack_unpack (bad_string, sizeof bad_string, "data", &err));
    const uint8_t binary[] = {0xc4, 0x01, 0x00};
    assert (!cv_msgpack_unpack (binary, sizeof binary, "data", &err));
    const uint8_t int_key[] = {0x81, 0x01, 0x02};
    assert (!cv_msgpack_unpack (int_key, sizeof int_key, "data", &err));

    /* empty input is an empty map */
    json_t *empty = cv_msgpack_unpack (NULL, 0, "slots", &err);
    assert (json_is_object (empty) && json_object_size (empty) == 0);
    json_decref (empty);
    if (verbose)
        printf ("cv_msgpack: ok\n");
}
