/*
 * A Node addon with two functions that join two strings through a malloc'd buffer:
 * join() frees the buffer, leakyJoin() forgets to. heapspec finds the leak, in the test case
 * that made it, at the line below that allocated it.
 */
#include <node_api.h>
#include <stdlib.h>
#include <string.h>

/* Copies a JS string argument into a new buffer (the caller frees it). */
static char *string_arg(napi_env env, napi_value value, size_t *length)
{
    napi_get_value_string_utf8(env, value, NULL, 0, length);
    char *text = malloc(*length + 1);
    napi_get_value_string_utf8(env, value, text, *length + 1, length);
    return text;
}

/* a + b as a new JS string; the joined buffer is freed unless `leak` is set. */
static napi_value join_strings(napi_env env, napi_callback_info info, int leak)
{
    size_t argc = 2, a_length, b_length;
    napi_value argv[2], result;
    napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
    char *a = string_arg(env, argv[0], &a_length);
    char *b = string_arg(env, argv[1], &b_length);
    char *joined = malloc(a_length + b_length + 1);
    memcpy(joined, a, a_length);
    memcpy(joined + a_length, b, b_length + 1);
    napi_create_string_utf8(env, joined, a_length + b_length, &result);
    free(a);
    free(b);
    if (!leak)
        free(joined);
    return result;
}

static napi_value join(napi_env env, napi_callback_info info)
{
    return join_strings(env, info, 0);
}

static napi_value leaky_join(napi_env env, napi_callback_info info)
{
    return join_strings(env, info, 1);
}

NAPI_MODULE_INIT()
{
    napi_value fn;
    napi_create_function(env, "join", NAPI_AUTO_LENGTH, join, NULL, &fn);
    napi_set_named_property(env, exports, "join", fn);
    napi_create_function(env, "leakyJoin", NAPI_AUTO_LENGTH, leaky_join, NULL, &fn);
    napi_set_named_property(env, exports, "leakyJoin", fn);
    return exports;
}
