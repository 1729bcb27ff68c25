/* script.c - the Lua sandbox of the `script` task: state, budgets, globals, log, json, callint.
 *
 * Every Lua API call that can raise (allocate) runs inside lua_pcall: setup is a protected C
 * function, conversions to JSON run protected and build their result top-down (each container
 * is attached to its parent before it is filled), so a memory error never leaks jansson values.
 * Values handed from C to Lua wait in the sandbox's `pending` slots while they are pushed. */
#include "script/script.h"

#include "core/jsonx.h"

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HOOK_EVERY 1000     /* instructions between two budget checks */
#define STOP_CHECK_EVERY 100 /* hooks between two should_stop questions */

typedef struct sbox {
    lua_State *L;
    size_t used, max_mem;
    int64_t max_instr, left;
    int hooks;
    int limit;          /* 0, or the code the script is being stopped with */
    char limit_msg[160];
    bool closing;       /* the script is over: any further Lua instruction raises */
    const script_host_t *host;
    json_t *logs;
    size_t log_bytes;
    bool log_full;
    json_t *pending;    /* a value being pushed into Lua (freed by script_run if a push raised) */
    char *pending_text;
} sbox_t;

static char null_key, array_key; /* json.null's identity; the registry key of the array mark */
#define LUA_JSON_NULL ((void *)&null_key)

static sbox_t *sbox_of(lua_State *L)
{
    void *ud;
    lua_getallocf(L, &ud);
    return ud;
}

static void sbox_hook(lua_State *L, lua_Debug *ar);

/* Start stopping the script: from now on every instruction raises (see sbox_hook). */
static void trip(sbox_t *sb, int code, const char *msg)
{
    if (sb->limit)
        return;
    sb->limit = code;
    snprintf(sb->limit_msg, sizeof sb->limit_msg, "%s", msg);
    if (sb->L)
        lua_sethook(sb->L, sbox_hook, LUA_MASKCOUNT, 1);
}

static void *sbox_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    sbox_t *sb = ud;
    if (!ptr)
        osize = 0; /* then OSIZE tells the kind of object, not a size */
    if (nsize == 0) {
        free(ptr);
        sb->used -= osize;
        return NULL;
    }
    if (nsize > osize && sb->used - osize + nsize > sb->max_mem) {
        char msg[160];
        snprintf(msg, sizeof msg, "the script passed its memory budget (%zu bytes)", sb->max_mem);
        trip(sb, BR_ESCRIPT_LIMIT, msg);
        return NULL;
    }
    void *p = realloc(ptr, nsize);
    if (p)
        sb->used = sb->used - osize + nsize;
    return p;
}

static void sbox_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    sbox_t *sb = sbox_of(L);
    if (!sb->limit && !sb->closing) {
        sb->left -= HOOK_EVERY;
        if (sb->left <= 0) {
            char msg[160];
            snprintf(msg, sizeof msg, "the script passed its instruction budget (%lld instructions)",
                     (long long)sb->max_instr);
            trip(sb, BR_ESCRIPT_LIMIT, msg);
        } else if (sb->host && sb->host->should_stop && ++sb->hooks % STOP_CHECK_EVERY == 0) {
            int code = sb->host->should_stop(sb->host->ctx);
            if (code)
                trip(sb, code,
                     code == BR_ECANCELLED ? "the run was cancelled" : "the task passed its deadline");
        }
    }
    if (sb->limit || sb->closing) {
        /* Keep firing on every instruction of whichever coroutine runs, so that no pcall can
         * swallow the abort: each one it catches is raised again at the next instruction. */
        lua_sethook(L, sbox_hook, LUA_MASKCOUNT, 1);
        luaL_error(L, "%s", sb->limit ? sb->limit_msg : "the script is over");
    }
}

/* ---- JSON -> Lua ------------------------------------------------------------------------- */

static void push_json(lua_State *L, const json_t *v, int depth)
{
    if (depth > 2 * SCRIPT_MAX_DEPTH)
        luaL_error(L, "value nested deeper than %d", 2 * SCRIPT_MAX_DEPTH);
    luaL_checkstack(L, 4, "value nested too deeply");
    switch (json_typeof(v)) {
    case JSON_NULL: lua_pushlightuserdata(L, LUA_JSON_NULL); break;
    case JSON_TRUE: lua_pushboolean(L, 1); break;
    case JSON_FALSE: lua_pushboolean(L, 0); break;
    case JSON_INTEGER: lua_pushinteger(L, (lua_Integer)json_integer_value(v)); break;
    case JSON_REAL: lua_pushnumber(L, json_real_value(v)); break;
    case JSON_STRING: lua_pushlstring(L, json_string_value(v), json_string_length(v)); break;
    case JSON_ARRAY: {
        size_t n = json_array_size(v);
        lua_createtable(L, n > INT32_MAX ? 0 : (int)n, 0);
        for (size_t i = 0; i < n; i++) {
            push_json(L, json_array_get(v, i), depth + 1);
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
        lua_rawgetp(L, LUA_REGISTRYINDEX, &array_key);
        lua_setmetatable(L, -2);
        break;
    }
    case JSON_OBJECT: {
        size_t n = json_object_size(v);
        lua_createtable(L, 0, n > INT32_MAX ? 0 : (int)n);
        void *it = json_object_iter((json_t *)v);
        while (it) {
            lua_pushlstring(L, json_object_iter_key(it), json_object_iter_key_len(it));
            push_json(L, json_object_iter_value(it), depth + 1);
            lua_rawset(L, -3);
            it = json_object_iter_next((json_t *)v, it);
        }
        break;
    }
    }
}

/* Push V (taken) through the pending slot, so a raise while pushing cannot leak it. */
static void push_taken(lua_State *L, sbox_t *sb, json_t *v)
{
    json_decref(sb->pending);
    sb->pending = v;
    if (v)
        push_json(L, v, 0);
    else
        lua_pushnil(L);
    sb->pending = NULL;
    json_decref(v);
}

/* ---- Lua -> JSON ------------------------------------------------------------------------- */

typedef struct conv {
    int idx;
    json_t *root; /* what was built so far; owned */
    bool ok;
    char path[256];
    size_t plen;
    const void *seen[SCRIPT_MAX_DEPTH + 2];
    int depth;
    char msg[400];
} conv_t;

/* Append ".KEY" (S) or "[I]" to the path; returns the mark to pop back to. */
static size_t path_push(conv_t *c, const char *s, long long i)
{
    size_t mark = c->plen;
    if (c->plen < sizeof c->path - 1) {
        int n = s ? snprintf(c->path + c->plen, sizeof c->path - c->plen, ".%.60s", s)
                  : snprintf(c->path + c->plen, sizeof c->path - c->plen, "[%lld]", i);
        c->plen += n > 0 ? (size_t)n : 0;
        if (c->plen >= sizeof c->path)
            c->plen = sizeof c->path - 1;
    }
    return mark;
}

static void path_pop(conv_t *c, size_t mark)
{
    c->plen = mark;
    c->path[mark] = '\0';
}

static int conv_fail(conv_t *c, const char *what)
{
    snprintf(c->msg, sizeof c->msg, "%s at %s", what, c->path);
    return -1;
}

/* Attach V (taken; NULL = creation failed) to PARENT (array: append; object: KEY/KLEN) or make it
 * the root. */
static int attach(conv_t *c, json_t *parent, const char *key, size_t klen, json_t *v)
{
    if (!v)
        return -1;
    if (!parent) {
        c->root = v;
        return 0;
    }
    if (json_is_array(parent))
        return json_array_append_new(parent, v);
    if (json_object_setn_new(parent, key, klen, v) < 0)
        return conv_fail(c, "a table key is not valid UTF-8");
    return 0;
}

static int conv_value(lua_State *L, conv_t *c, int idx, json_t *parent, const char *key,
                      size_t klen);

/* The target table of a read-only proxy at IDX, pushed; or nothing (returns false). */
static bool push_proxy_target(lua_State *L, int idx)
{
    if (!lua_getmetatable(L, idx))
        return false;
    lua_pushliteral(L, "__braid_ro");
    lua_rawget(L, -2);
    if (lua_istable(L, -1)) {
        lua_remove(L, -2);
        return true;
    }
    lua_pop(L, 2);
    return false;
}

static bool is_array_marked(lua_State *L, int idx)
{
    if (!lua_getmetatable(L, idx))
        return false;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &array_key);
    bool yes = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    return yes;
}

static int conv_table(lua_State *L, conv_t *c, int idx, json_t *parent, const char *key,
                      size_t klen)
{
    if (push_proxy_target(L, idx)) {
        int rc = conv_table(L, c, lua_gettop(L), parent, key, klen);
        lua_pop(L, 1);
        return rc;
    }
    const void *self = lua_topointer(L, idx);
    for (int i = 0; i < c->depth; i++)
        if (c->seen[i] == self)
            return conv_fail(c, "a table contains itself (a cycle)");
    if (c->depth >= SCRIPT_MAX_DEPTH)
        return conv_fail(c, "tables nested deeper than 64");
    luaL_checkstack(L, 6, "tables nested too deeply");

    bool array = is_array_marked(L, idx);
    lua_Integer n = 0;
    if (!array) {
        /* A table without the mark is an array when its keys are exactly 1..n, n >= 1. */
        lua_Integer count = 0, max = 0;
        bool ints = true;
        lua_pushnil(L);
        while (lua_next(L, idx)) {
            lua_pop(L, 1);
            count++;
            if (ints && lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 1) {
                if (lua_tointeger(L, -1) > max)
                    max = lua_tointeger(L, -1);
            } else {
                ints = false;
            }
        }
        array = ints && count > 0 && max == count;
        n = max;
    } else {
        n = (lua_Integer)lua_rawlen(L, idx);
    }

    json_t *v = array ? json_array() : json_object();
    if (attach(c, parent, key, klen, v) < 0)
        return -1;
    c->seen[c->depth++] = self;
    int rc = 0;
    if (array) {
        for (lua_Integer i = 1; i <= n && rc == 0; i++) {
            lua_rawgeti(L, idx, i);
            size_t mark = path_push(c, NULL, (long long)i);
            rc = conv_value(L, c, lua_gettop(L), v, NULL, 0);
            path_pop(c, mark);
            lua_pop(L, 1);
        }
    } else {
        lua_pushnil(L);
        while (rc == 0 && lua_next(L, idx)) {
            char num[24];
            const char *k;
            size_t kl;
            if (lua_type(L, -2) == LUA_TSTRING) {
                k = lua_tolstring(L, -2, &kl); /* a string: no conversion in place */
            } else if (lua_isinteger(L, -2)) {
                kl = jsonx_format_int((long long)lua_tointeger(L, -2), num);
                k = num;
            } else {
                snprintf(c->msg, sizeof c->msg, "a table key of type %s cannot be a JSON key at %s",
                         luaL_typename(L, -2), c->path);
                rc = -1;
                lua_pop(L, 2);
                break;
            }
            size_t mark = path_push(c, k, 0);
            rc = conv_value(L, c, lua_gettop(L), v, k, kl);
            path_pop(c, mark);
            lua_pop(L, 1);
        }
    }
    c->depth--;
    return rc;
}

static int conv_value(lua_State *L, conv_t *c, int idx, json_t *parent, const char *key,
                      size_t klen)
{
    switch (lua_type(L, idx)) {
    case LUA_TNIL: return attach(c, parent, key, klen, json_null());
    case LUA_TBOOLEAN: return attach(c, parent, key, klen, json_boolean(lua_toboolean(L, idx)));
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx))
            return attach(c, parent, key, klen, json_integer((json_int_t)lua_tointeger(L, idx)));
        if (!isfinite(lua_tonumber(L, idx)))
            return conv_fail(c, "NaN and infinities have no JSON form");
        return attach(c, parent, key, klen, json_real(lua_tonumber(L, idx)));
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        json_t *v = json_stringn(s, n);
        if (!v)
            return conv_fail(c, "string is not valid UTF-8");
        return attach(c, parent, key, klen, v);
    }
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == LUA_JSON_NULL)
            return attach(c, parent, key, klen, json_null());
        return conv_fail(c, "a userdata has no JSON form");
    case LUA_TTABLE: return conv_table(L, c, idx, parent, key, klen);
    default: {
        char what[64];
        snprintf(what, sizeof what, "a %s has no JSON form", luaL_typename(L, idx));
        return conv_fail(c, what);
    }
    }
}

static int conv_protected(lua_State *L)
{
    conv_t *c = lua_touserdata(L, 1);
    c->ok = conv_value(L, c, c->idx, NULL, NULL, 0) == 0;
    return 0;
}

/* The JSON form of the value at IDX (returned owned), or NULL with MSG naming the place (PATH
 * is its name: "vars", "result"). Never raises. */
static json_t *to_json(lua_State *L, int idx, const char *path, char *msg, size_t msg_len)
{
    conv_t *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(msg, msg_len, "out of memory");
        return NULL;
    }
    idx = lua_absindex(L, idx);
    snprintf(c->path, sizeof c->path, "%s", path);
    c->plen = strlen(c->path);
    if (!lua_checkstack(L, 4)) {
        free(c);
        snprintf(msg, msg_len, "Lua stack overflow");
        return NULL;
    }
    lua_pushcfunction(L, conv_protected);
    lua_pushlightuserdata(L, c);
    lua_pushvalue(L, idx);
    c->idx = 2; /* inside conv_protected: the value is its second argument */
    int st = lua_pcall(L, 2, 0, 0);
    json_t *out = NULL;
    if (st != LUA_OK) {
        snprintf(msg, msg_len, "%s", lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1)
                                                                    : "not enough memory");
        lua_pop(L, 1);
        json_decref(c->root);
    } else if (!c->ok) {
        snprintf(msg, msg_len, "%s", c->msg);
        json_decref(c->root);
    } else {
        out = c->root;
    }
    free(c);
    return out;
}

/* ---- globals ------------------------------------------------------------------------------- */

static void add_log(sbox_t *sb, const char *s, size_t n)
{
    if (sb->log_full)
        return;
    if (json_array_size(sb->logs) >= SCRIPT_MAX_LOG_LINES || sb->log_bytes + n > SCRIPT_MAX_LOG_BYTES) {
        json_array_append_new(sb->logs, json_string("(log truncated: more than 1000 lines or 64 KiB)"));
        sb->log_full = true;
        return;
    }
    json_t *line = json_stringn(s, n);
    if (!line) {
        char *copy = strndup(s, n); /* cut at a NUL; invalid bytes replaced */
        line = copy ? jsonx_string_lossy(copy) : NULL;
        free(copy);
    }
    if (line) {
        json_array_append_new(sb->logs, line);
        sb->log_bytes += n;
    }
}

static int l_log(lua_State *L)
{
    int n = lua_gettop(L);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int i = 1; i <= n; i++) {
        if (i > 1)
            luaL_addchar(&b, '\t');
        if (lua_touserdata(L, i) == LUA_JSON_NULL)
            lua_pushliteral(L, "null");
        else
            luaL_tolstring(L, i, NULL);
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    size_t len;
    const char *s = lua_tolstring(L, -1, &len);
    add_log(sbox_of(L), s, len);
    return 0;
}

/* load(chunk [, chunkname [, mode [, env]]]): text chunks only, whatever MODE says. */
static int l_load(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    const char *name = luaL_optstring(L, 2, "=(load)");
    int st = luaL_loadbufferx(L, s, len, name, "t");
    if (st != LUA_OK) {
        luaL_pushfail(L);
        lua_insert(L, -2);
        return 2;
    }
    if (!lua_isnone(L, 4)) {
        lua_pushvalue(L, 4);
        if (!lua_setupvalue(L, -2, 1))
            lua_pop(L, 1);
    }
    return 1;
}

static int l_json_encode(lua_State *L)
{
    luaL_checkany(L, 1);
    sbox_t *sb = sbox_of(L);
    char msg[400];
    json_t *v = to_json(L, 1, "value", msg, sizeof msg);
    if (!v)
        return luaL_error(L, "json.encode: %s", msg);
    free(sb->pending_text);
    sb->pending_text = jsonx_dump(v);
    json_decref(v);
    lua_pushstring(L, sb->pending_text);
    free(sb->pending_text);
    sb->pending_text = NULL;
    return 1;
}

static int l_json_decode(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    err_t e = {0};
    jsonx_limits_t lim = {.max_bytes = 0, .max_depth = SCRIPT_MAX_DEPTH};
    json_t *v = jsonx_parse(s, len, &lim, &e);
    if (!v) {
        char msg[sizeof e.msg];
        snprintf(msg, sizeof msg, "%s", e.msg);
        err_clear(&e);
        return luaL_error(L, "json.decode: %s", msg);
    }
    push_taken(L, sbox_of(L), v);
    return 1;
}

static int l_json_array(lua_State *L)
{
    if (lua_isnoneornil(L, 1))
        lua_newtable(L);
    else
        luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    if (lua_getmetatable(L, 1) && !is_array_marked(L, 1))
        return luaL_error(L, "json.array: the table already has a metatable");
    lua_settop(L, 1);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &array_key);
    lua_setmetatable(L, 1);
    return 1;
}

static int l_callint(lua_State *L)
{
    static const char *const ext_fields[] = {"payload", "params", "path", "headers",
                                             "method",  "fullpath", NULL};
    sbox_t *sb = sbox_of(L);
    const char *target = luaL_checkstring(L, 1);
    bool extended = lua_toboolean(L, 3);
    script_mode_t mode = SCRIPT_MODE_DEFAULT;
    if (!lua_isnoneornil(L, 4)) {
        const char *m = luaL_checkstring(L, 4);
        if (strcmp(m, "sync") == 0)
            mode = SCRIPT_MODE_SYNC;
        else if (strcmp(m, "async") == 0)
            mode = SCRIPT_MODE_ASYNC;
        else
            return luaL_argerror(L, 4, "force_run_mode must be nil, \"sync\" or \"async\"");
    }
    if (!sb->host || !sb->host->callint)
        return luaL_error(L, "callint is not available here");
    if (extended && !lua_istable(L, 2))
        return luaL_argerror(L, 2, "with extended_payload the payload must be a table");

    char msg[400];
    json_t *payload = NULL, *context = NULL;
    if (!lua_isnoneornil(L, 2)) {
        payload = to_json(L, 2, "payload", msg, sizeof msg);
        if (!payload)
            return luaL_error(L, "callint: %s", msg);
    }
    if (extended) {
        if (!json_is_object(payload)) {
            json_decref(payload);
            return luaL_error(L, "callint: with extended_payload the payload must be a table "
                                 "with payload, params, path, headers, method, fullpath");
        }
        const char *k;
        json_t *x;
        json_object_foreach(payload, k, x)
        {
            bool known = false;
            for (int i = 0; ext_fields[i]; i++)
                known = known || strcmp(k, ext_fields[i]) == 0;
            if (!known) {
                snprintf(msg, sizeof msg, "callint: unknown extended_payload field '%.100s'", k);
                json_decref(payload);
                return luaL_error(L, "%s", msg);
            }
        }
        context = payload;
        json_t *p = json_object_get(context, "payload");
        payload = p ? json_incref(p) : json_object();
        json_object_del(context, "payload");
    }
    if (!payload)
        payload = json_object();

    json_t *out = NULL, *error = NULL;
    int rc = sb->host->callint(sb->host->ctx, target, payload, context, mode, &out, &error);
    json_decref(payload);
    json_decref(context);
    if (rc == 0) {
        push_taken(L, sb, out);
        return 1;
    }
    if (!error)
        error = json_pack("{s:s, s:s}", "code", "internal", "message", "callint failed");
    push_taken(L, sb, error);
    return lua_error(L);
}

static const char *const PRELUDE =
    "local setmetatable, type, next, error, rawget = setmetatable, type, next, error, rawget\n"
    /* Finalizers run with hooks off (Lua's GCTM), where no budget could stop them: a metatable
     * with __gc is refused (marking happens only in setmetatable, so adding it later is inert). */
    "_G.setmetatable = function(t, mt)\n"
    "  if type(mt) == 'table' and rawget(mt, '__gc') ~= nil then\n"
    "    error('__gc metamethods are not available in scripts', 2)\n"
    "  end\n"
    "  return setmetatable(t, mt)\n"
    "end\n"
    "local function ro(t)\n"
    "  local cache = {}\n"
    "  local function wrap(k, v)\n"
    "    if type(v) == 'table' then\n"
    "      local p = cache[k]\n"
    "      if p == nil then p = ro(v); cache[k] = p end\n"
    "      return p\n"
    "    end\n"
    "    return v\n"
    "  end\n"
    "  return setmetatable({}, {\n"
    "    __braid_ro = t,\n"
    "    __index = function(_, k) return wrap(k, t[k]) end,\n"
    "    __newindex = function() error('input is read-only', 2) end,\n"
    "    __len = function() return #t end,\n"
    "    __pairs = function()\n"
    "      return function(_, k)\n"
    "        local nk, nv = next(t, k)\n"
    "        if nk == nil then return nil end\n"
    "        return nk, wrap(nk, nv)\n"
    "      end, nil, nil\n"
    "    end,\n"
    "    __metatable = false,\n"
    "  })\n"
    "end\n"
    "return ro\n";

typedef struct setup_args {
    const json_t *vars, *input;
} setup_args_t;

static int setup(lua_State *L)
{
    setup_args_t *a = lua_touserdata(L, 1);
    static const luaL_Reg libs[] = {
        {LUA_GNAME, luaopen_base},         {LUA_STRLIBNAME, luaopen_string},
        {LUA_TABLIBNAME, luaopen_table},   {LUA_MATHLIBNAME, luaopen_math},
        {LUA_UTF8LIBNAME, luaopen_utf8},   {LUA_COLIBNAME, luaopen_coroutine},
        {NULL, NULL},
    };
    for (const luaL_Reg *l = libs; l->name; l++) {
        luaL_requiref(L, l->name, l->func, 1);
        lua_pop(L, 1);
    }
    /* Everything not on the allow-list goes. */
    static const char *const removed[] = {"dofile", "loadfile", "collectgarbage", "warn", NULL};
    for (int i = 0; removed[i]; i++) {
        lua_pushnil(L);
        lua_setglobal(L, removed[i]);
    }
    lua_getglobal(L, LUA_STRLIBNAME);
    lua_pushnil(L);
    lua_setfield(L, -2, "dump");
    lua_pop(L, 1);
    lua_pushcfunction(L, l_load);
    lua_setglobal(L, "load");
    lua_pushcfunction(L, l_log);
    lua_setglobal(L, "log");
    lua_pushcfunction(L, l_log);
    lua_setglobal(L, "print");
    lua_pushcfunction(L, l_callint);
    lua_setglobal(L, "callint");

    lua_newtable(L); /* the mark of JSON arrays */
    lua_pushliteral(L, "json.array");
    lua_setfield(L, -2, "__name");
    lua_rawsetp(L, LUA_REGISTRYINDEX, &array_key);

    lua_createtable(L, 0, 4);
    lua_pushcfunction(L, l_json_encode);
    lua_setfield(L, -2, "encode");
    lua_pushcfunction(L, l_json_decode);
    lua_setfield(L, -2, "decode");
    lua_pushcfunction(L, l_json_array);
    lua_setfield(L, -2, "array");
    lua_pushlightuserdata(L, LUA_JSON_NULL);
    lua_setfield(L, -2, "null");
    lua_setglobal(L, "json");

    if (a->vars)
        push_json(L, a->vars, 0);
    else
        lua_newtable(L);
    lua_setglobal(L, "vars");

    if (luaL_loadbufferx(L, PRELUDE, strlen(PRELUDE), "=prelude", "t") != LUA_OK)
        return lua_error(L);
    lua_call(L, 0, 1);
    if (a->input)
        push_json(L, a->input, 0);
    else
        lua_newtable(L);
    lua_call(L, 1, 1);
    lua_setglobal(L, "input");
    return 0;
}

/* ---- entry points -------------------------------------------------------------------------- */

int script_check(const char *source, size_t len, int *line, char *msg, size_t msg_len)
{
    sbox_t sb = {.max_mem = SCRIPT_DEFAULT_MAX_MEMORY};
    *line = 0;
    lua_State *L = lua_newstate(sbox_alloc, &sb);
    if (!L) {
        snprintf(msg, msg_len, "cannot create a Lua state");
        return -1;
    }
    int rc = 0;
    if (luaL_loadbufferx(L, source, len, "=script", "t") != LUA_OK) {
        const char *m = lua_tostring(L, -1);
        if (!m)
            m = "cannot compile the script";
        if (strncmp(m, "script:", 7) == 0)
            *line = atoi(m + 7);
        snprintf(msg, msg_len, "%s", m);
        rc = -1;
    }
    lua_close(L);
    return rc;
}

void script_out_deinit(script_out_t *out)
{
    json_decref(out->result);
    json_decref(out->vars);
    json_decref(out->logs);
    json_decref(out->error);
    memset(out, 0, sizeof *out);
}

/* Message of a failed run from the error value at the top of L. */
static void error_message(lua_State *L, script_out_t *out, char *msg, size_t msg_len)
{
    if (lua_type(L, -1) == LUA_TSTRING) {
        snprintf(msg, msg_len, "%s", lua_tostring(L, -1));
        return;
    }
    if (lua_type(L, -1) == LUA_TTABLE) {
        char cm[400];
        json_t *e = to_json(L, -1, "error", cm, sizeof cm);
        if (json_is_object(e) && json_is_string(json_object_get(e, "code"))) {
            const char *m = json_string_value(json_object_get(e, "message"));
            snprintf(msg, msg_len, "%s%s%s", json_string_value(json_object_get(e, "code")),
                     m ? ": " : "", m ? m : "");
            out->error = e;
            return;
        }
        json_decref(e);
    }
    snprintf(msg, msg_len, "the script raised an error value of type %s", luaL_typename(L, -1));
}

int script_run(const script_env_t *env, const char *source, size_t len, const json_t *vars,
               const json_t *input, script_out_t *out, err_t *err)
{
    memset(out, 0, sizeof *out);
    out->logs = json_array();
    sbox_t sb = {
        .max_mem = env && env->max_memory ? env->max_memory : SCRIPT_DEFAULT_MAX_MEMORY,
        .max_instr = env && env->max_instructions ? env->max_instructions
                                                  : SCRIPT_DEFAULT_MAX_INSTRUCTIONS,
        .host = env ? env->host : NULL,
        .logs = out->logs,
    };
    sb.left = sb.max_instr;
    lua_State *L = lua_newstate(sbox_alloc, &sb);
    if (!L)
        return err_set(err, BR_EINTERNAL, "cannot create a Lua state");
    sb.L = L;
    int rc = 0;
    char msg[512];

    setup_args_t a = {vars, input};
    lua_pushcfunction(L, setup);
    lua_pushlightuserdata(L, &a);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
        rc = sb.limit ? err_set(err, BR_ESCRIPT_LIMIT, "%s while preparing the script", sb.limit_msg)
                      : err_set(err, BR_EINTERNAL, "cannot prepare the script: %s",
                                lua_tostring(L, -1) ? lua_tostring(L, -1) : "?");
        goto done;
    }
    if (luaL_loadbufferx(L, source, len, "=script", "t") != LUA_OK) {
        rc = err_set(err, BR_ESCRIPT_ERROR, "%s", lua_tostring(L, -1) ? lua_tostring(L, -1) : "?");
        goto done;
    }
    lua_sethook(L, sbox_hook, LUA_MASKCOUNT, HOOK_EVERY);
    int st = lua_pcall(L, 0, 1, 0);
    /* The script is over: a finalizer that runs from here on raises at its first instruction. */
    sb.closing = true;
    lua_sethook(L, sbox_hook, LUA_MASKCOUNT, 1);
    if (sb.limit) {
        rc = err_set(err, sb.limit, "%s", sb.limit_msg);
        goto done;
    }
    if (st != LUA_OK) {
        error_message(L, out, msg, sizeof msg);
        rc = err_set(err, BR_ESCRIPT_ERROR, "%s", msg);
        goto done;
    }
    out->result = to_json(L, -1, "result", msg, sizeof msg);
    if (!out->result) {
        rc = err_set(err, sb.limit ? sb.limit : BR_ESCRIPT_ERROR, "the script's return value: %s",
                     msg);
        goto done;
    }
    lua_pop(L, 1);
    lua_pushglobaltable(L);
    lua_pushliteral(L, "vars");
    lua_rawget(L, -2);
    if (!lua_istable(L, -1)) {
        rc = err_set(err, BR_ESCRIPT_ERROR, "vars must stay a table, the script left a %s",
                     luaL_typename(L, -1));
        goto done;
    }
    out->vars = to_json(L, -1, "vars", msg, sizeof msg);
    if (!out->vars) {
        rc = err_set(err, sb.limit ? sb.limit : BR_ESCRIPT_ERROR, "%s", msg);
        goto done;
    }
    if (!json_is_object(out->vars)) {
        json_decref(out->vars);
        out->vars = NULL;
        rc = err_set(err, BR_ESCRIPT_ERROR, "vars must stay a table with string keys, not an array");
        goto done;
    }
done:
    lua_close(L);
    json_decref(sb.pending);
    free(sb.pending_text);
    if (rc < 0) {
        json_decref(out->result);
        out->result = NULL;
        json_decref(out->vars);
        out->vars = NULL;
    }
    return rc;
}
