/* task_fail.c - the fail task: end the run with an error of the integration's own making. */
#include "engine/engine_internal.h"

#include "core/jsonx.h"

#include <stdlib.h>

void task_fail_exec(run_ctx_t *ctx, const task_t *t, outcome_t *out)
{
    const fail_task_t *f = &t->u.fail;
    tmpl_scope_t scope;
    run_scope(ctx, NULL, NULL, &scope);
    err_t err = {0};
    json_t *code = NULL, *message = NULL, *detail = NULL;

    if (!(code = template_render(f->code, &scope, &err)))
        goto failed;
    if (!json_is_string(code) || json_string_length(code) == 0) {
        err_set(&err, BR_EEXPRESSION_ERROR, "the fail task's code must render to a non-empty string");
        goto failed;
    }
    if (f->message && !(message = template_render(f->message, &scope, &err)))
        goto failed;
    if (f->detail && !(detail = template_render(f->detail, &scope, &err)))
        goto failed;

    char *text = message && !json_is_string(message) ? jsonx_dump(message) : NULL;
    outcome_fail(out, json_string_value(code),
                 text ? text : message ? json_string_value(message) : "", detail);
    detail = NULL;
    free(text);
    goto out;
failed:
    outcome_fail_err(out, &err);
out:
    json_decref(code);
    json_decref(message);
    json_decref(detail);
}
