/* script.h - the `script` task's Lua 5.4 sandbox (SPEC §6), kept apart from the engine: it
 * knows nothing of runs, and reaches integrations only through the host's callint hook.
 *
 * Each run gets a fresh lua_State from our own allocator (memory cap) with a count hook
 * (instruction budget). Once a budget is passed the hook fires on every instruction and keeps
 * raising, so a script's own pcall cannot swallow the abort (Redis's script_lua.c). Globals
 * come from an allow-list. Only src/script/ includes the Lua headers. See docs/scripts.md.
 */
#ifndef BRAID_SCRIPT_H
#define BRAID_SCRIPT_H

#include "core/err.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SCRIPT_DEFAULT_MAX_MEMORY ((size_t)64 << 20)
#define SCRIPT_DEFAULT_MAX_INSTRUCTIONS 100000000LL
#define SCRIPT_MAX_LOG_LINES 1000
#define SCRIPT_MAX_LOG_BYTES (64 * 1024)
#define SCRIPT_MAX_DEPTH 64 /* nesting of values converted between Lua and JSON */

typedef enum { SCRIPT_MODE_DEFAULT, SCRIPT_MODE_SYNC, SCRIPT_MODE_ASYNC } script_mode_t;

typedef struct script_host {
    void *ctx;
    /* callint(TARGET, PAYLOAD, CONTEXT (may be NULL), MODE): 0 with *OUT (owned; the child's
     * output, or {"run_id"} for an async call), or -1 with *ERROR (owned ERROR object). NULL:
     * callint raises a script_error. */
    int (*callint)(void *ctx, const char *target, const json_t *payload, const json_t *context,
                   script_mode_t mode, json_t **out, json_t **error);
    /* Asked every ~100k instructions: non-zero (an error code such as BR_ETIMEOUT or
     * BR_ECANCELLED) stops the script with that code. May be NULL. */
    int (*should_stop)(void *ctx);
} script_host_t;

typedef struct script_env {
    size_t max_memory;        /* bytes; 0 = SCRIPT_DEFAULT_MAX_MEMORY */
    int64_t max_instructions; /* 0 = SCRIPT_DEFAULT_MAX_INSTRUCTIONS */
    const script_host_t *host; /* may be NULL */
} script_env_t;

/* Compile SOURCE (LEN bytes, text only: binary chunks are refused) without running it. 0, or
 * -1 with *LINE (0 when unknown) and MSG holding the syntax error. */
int script_check(const char *source, size_t len, int *line, char *msg, size_t msg_len);

typedef struct script_out {
    json_t *result; /* owned: the script's return value (nil -> null) */
    json_t *vars;   /* owned: the script's vars when it succeeded, else NULL */
    json_t *logs;   /* owned: array of the lines log() wrote (always set) */
    json_t *error;  /* owned: when the script failed with an ERROR table (a callint failure it
                       did not catch, or error({code=...})), that table; else NULL */
} script_out_t;

/* Run SOURCE with globals `vars` (a copy of VARS), `input` (read-only view of INPUT; NULL =
 * {}), log, json and callint. Returns 0 with OUT filled, or a negative code with ERR: 
 * BR_ESCRIPT_ERROR (a runtime or conversion error; OUT->error set when the error value was an
 * ERROR table), BR_ESCRIPT_LIMIT (instruction or memory budget), or what should_stop said.
 * Free OUT with script_out_deinit either way. Any thread; states are never shared. */
int script_run(const script_env_t *env, const char *source, size_t len, const json_t *vars,
               const json_t *input, script_out_t *out, err_t *err);

void script_out_deinit(script_out_t *out);

#endif
