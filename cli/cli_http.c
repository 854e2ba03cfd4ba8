/* One JSON request to the orchestrator's HTTP API (cli_http.h). */
#include "cli_http.h"

#include <stdio.h>
#include <string.h>

#include <curl/curl.h>
#include <czmq.h>

#include "cli_command.h"

char *
cli_http_endpoint (const char *url, const char *path)
{
    size_t length = strlen (url);
    while (length > 0 && url[length - 1] == '/')
        length--;
    return zsys_sprintf ("%.*s%s", (int) length, url, path);
}

static size_t
s_collect (char *data, size_t size, size_t count, void *arg)
{
    zchunk_t *answer = arg;
    size_t bytes = size * count;
    if (zchunk_size (answer) + bytes > CLI_HTTP_MAX_ANSWER_BYTES)
        return 0;
    zchunk_extend (answer, data, bytes);
    return bytes;
}

json_t *
cli_http_json (const char *command, const char *url, const char *body, long timeout_ms, long *status)
{
    *status = 0;
    CURL *curl = curl_easy_init ();
    if (!curl) {
        cli_command_fail (command, "cannot initialise libcurl");
        return NULL;
    }
    zchunk_t *answer = zchunk_new (NULL, 0);
    struct curl_slist *headers = curl_slist_append (NULL, "Accept: application/json");
    if (body)
        headers = curl_slist_append (headers, "Content-Type: application/json");
    char error[CURL_ERROR_SIZE] = "";
    curl_easy_setopt (curl, CURLOPT_URL, url);
    curl_easy_setopt (curl, CURLOPT_HTTPHEADER, headers);
    if (body)
        curl_easy_setopt (curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt (curl, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt (curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt (curl, CURLOPT_WRITEFUNCTION, s_collect);
    curl_easy_setopt (curl, CURLOPT_WRITEDATA, answer);
    curl_easy_setopt (curl, CURLOPT_ERRORBUFFER, error);
    CURLcode rc = curl_easy_perform (curl);
    json_t *document = NULL;
    if (rc != CURLE_OK)
        cli_command_fail (command, "cannot reach %s: %s", url, *error ? error : curl_easy_strerror (rc));
    else {
        curl_easy_getinfo (curl, CURLINFO_RESPONSE_CODE, status);
        json_error_t json_error;
        document = json_loadb ((const char *) zchunk_data (answer), zchunk_size (answer), 0, &json_error);
        if (!document)
            cli_command_fail (command, "%s answered %ld with something that is not JSON: %s", url, *status,
                              json_error.text);
    }
    curl_slist_free_all (headers);
    curl_easy_cleanup (curl);
    zchunk_destroy (&answer);
    return document;
}
