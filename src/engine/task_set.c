/* task_set.c - the set task: assign vars; dotted keys create nested objects. All values are
 * rendered before any is assigned, so one value never sees another of the same task. */
#include "engine/engine_internal.h"

#include "core/jsonx.h"
#include "core/xalloc.h"

#include <stdlib.h>

void task_set_exec(run_ctx_t *ctx, const task_t *t, outcome_t *out)
{
    const set_task_t *s = &t->u.set;
    tmpl_scope_t scope;
    run_scope(ctx, NULL, NULL, &scope);
    json_t **values = xcalloc((size_t)s->n, sizeof(json_t *));
    err_t err = {0};
    int i;
    for (i = 0; i < s->n; i++)
        if (!(values[i] = template_render(s->values[i], &scope, &err)))
            break;
    if (i < s->n) {
        outcome_fail_err(out, &err);
        for (int j = 0; j < i; j++)
            json_decref(values[j]);
        free(values);
        return;
    }
    out->result = json_object();
    for (i = 0; i < s->n; i++) {
        json_object_set(out->result, s->keys[i], values[i]);
        /* vars get their own copy: a later set with a dotted key may modify it in place. */
        jsonx_set_dotted(ctx->vars, s->keys[i], jsonx_copy(values[i]));
        json_decref(values[i]);
    }
    free(values);
    out->success = true;
}
