/*
 * entries: a C++ Node addon written the way addon authors write them, for heapspec's checks
 * against memcheck. An Entry holds a malloc'd key, a std::vector<int> (its growth goes through
 * std::vector<int>::_M_realloc_insert, which Node's binary also exports, so the call resolves to
 * Node's copy) and a std::string long enough to live on the heap. Every function's blocks are
 * known by construction:
 *
 *   keep(key, n)   an Entry kept in a registry (reachable until clear())
 *   clear()        deletes the kept entries
 *   leak(key, n)   an Entry nobody points to: definitely lost 64 bytes (sizeof(Entry)), and
 *                  indirectly its key (strlen + 1), its vector's buffer (4, 8, 16, ... bytes:
 *                  capacities 1, 2, 4, ... as it grows to n; the last is live) and its name
 *   shelve(n)      a shelf from libshelf.so, forgotten: 16 bytes definite, 4n indirect
 *   poolLeak(n)    on libuv's thread pool, n bytes malloc'd and forgotten; returns a Promise
 *   churn(n)       n Entries made and deleted: 4n allocations, none live after
 *   call(fn)       calls fn back: what V8 allocates running it (compiling it, say) has this
 *                  addon's frame below V8's code on the stack
 *
 * With -O0 and no inlining, every allocation has a frame of this file on its stack.
 */
#include <node_api.h>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>
#include "shelf.h"

struct Entry {
    char *key;
    std::vector<int> values;
    std::string name;
};

static std::vector<Entry *> kept;

static Entry *make_entry(const char *key, int n)
{
    Entry *e = new Entry;
    e->key = static_cast<char *>(malloc(strlen(key) + 1));
    strcpy(e->key, key);
    for (int i = 0; i < n; i++)
        e->values.push_back(i);
    e->name = std::string("entry named ") + key + " for heapspec";
    return e;
}

static void delete_entry(Entry *e)
{
    free(e->key);
    delete e;
}

static napi_value number(napi_env env, double value)
{
    napi_value result;
    napi_create_double(env, value, &result);
    return result;
}

/* The call's arguments: a string (copied into `key`, at most 63 bytes) and an int. */
static void arguments(napi_env env, napi_callback_info info, char *key, int *n)
{
    size_t argc = 2;
    napi_value argv[2];
    napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
    size_t length = 0;
    napi_valuetype type;
    napi_typeof(env, argv[0], &type);
    if (type == napi_string) {
        napi_get_value_string_utf8(env, argv[0], key, 64, &length);
        napi_get_value_int32(env, argv[1], n);
    } else {
        key[0] = '\0';
        napi_get_value_int32(env, argv[0], n);
    }
}

static napi_value keep(napi_env env, napi_callback_info info)
{
    char key[64];
    int n;
    arguments(env, info, key, &n);
    kept.push_back(make_entry(key, n));
    return number(env, kept.size());
}

static napi_value clear(napi_env env, napi_callback_info info)
{
    for (Entry *e : kept)
        delete_entry(e);
    kept.clear();
    kept.shrink_to_fit();
    return number(env, 0);
}

static napi_value leak(napi_env env, napi_callback_info info)
{
    char key[64];
    int n;
    arguments(env, info, key, &n);
    Entry *e = make_entry(key, n);
    return number(env, e->values.size());
}

static napi_value shelve(napi_env env, napi_callback_info info)
{
    char key[64];
    int n;
    arguments(env, info, key, &n);
    struct shelf *s = shelf_make(n);
    return number(env, s->count);
}

static napi_value churn(napi_env env, napi_callback_info info)
{
    char key[64];
    int n;
    arguments(env, info, key, &n);
    for (int i = 0; i < n; i++)
        delete_entry(make_entry("k", 1));
    return number(env, n);
}

static napi_value call(napi_env env, napi_callback_info info)
{
    size_t argc = 1;
    napi_value fn, global, result;
    napi_get_cb_info(env, info, &argc, &fn, nullptr, nullptr);
    napi_get_global(env, &global);
    napi_call_function(env, global, fn, 0, nullptr, &result);
    return result;
}

struct PoolWork {
    napi_async_work work;
    napi_deferred deferred;
    int bytes;
    void *lost;
};

static void pool_execute(napi_env, void *data)
{
    PoolWork *w = static_cast<PoolWork *>(data);
    w->lost = malloc(w->bytes);
    memset(w->lost, 1, w->bytes);
    w->lost = nullptr;
}

static void pool_complete(napi_env env, napi_status, void *data)
{
    PoolWork *w = static_cast<PoolWork *>(data);
    napi_resolve_deferred(env, w->deferred, number(env, w->bytes));
    napi_delete_async_work(env, w->work);
    delete w;
}

static napi_value pool_leak(napi_env env, napi_callback_info info)
{
    char key[64];
    int n;
    arguments(env, info, key, &n);
    PoolWork *w = new PoolWork{nullptr, nullptr, n, nullptr};
    napi_value promise, name;
    napi_create_promise(env, &w->deferred, &promise);
    napi_create_string_utf8(env, "entries.poolLeak", NAPI_AUTO_LENGTH, &name);
    napi_create_async_work(env, nullptr, name, pool_execute, pool_complete, w, &w->work);
    napi_queue_async_work(env, w->work);
    return promise;
}

NAPI_MODULE_INIT()
{
    const napi_property_descriptor functions[] = {
        {"keep", nullptr, keep, nullptr, nullptr, nullptr, napi_default, nullptr},
        {"clear", nullptr, clear, nullptr, nullptr, nullptr, napi_default, nullptr},
        {"leak", nullptr, leak, nullptr, nullptr, nullptr, napi_default, nullptr},
        {"shelve", nullptr, shelve, nullptr, nullptr, nullptr, napi_default, nullptr},
        {"churn", nullptr, churn, nullptr, nullptr, nullptr, napi_default, nullptr},
        {"poolLeak", nullptr, pool_leak, nullptr, nullptr, nullptr, napi_default, nullptr},
        {"call", nullptr, call, nullptr, nullptr, nullptr, napi_default, nullptr},
    };
    napi_define_properties(env, exports, sizeof functions / sizeof functions[0], functions);
    return exports;
}
