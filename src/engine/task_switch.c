/* task_switch.c - the switch task: render a value and jump to the case it names; otherwise to
 * `default`, otherwise on to `next`. Values compare as text: a string as it is, anything else
 * as compact JSON (so 3 matches the case "3" and true matches "true"). */
#include "engine/engine_internal.h"

#include "core/jsonx.h"

#include <stdlib.h>
#include <string.h>

void task_switch_exec(run_ctx_t *ctx, const task_t *t, outcome_t *out)
{
    const switch_task_t *sw = &t->u.sw;
    tmpl_scope_t scope;
    run_scope(ctx, NULL, NULL, &scope);
    err_t err = {0};
    json_t *v = template_render(sw->value, &scope, &err);
    if (!v) {
        outcome_fail_err(out, &err);
        return;
    }
    char *text = json_is_string(v) ? NULL : jsonx_dump(v);
    const char *key = text ? text : json_string_value(v);
    out->jump = sw->default_target == -2 ? t->next : sw->default_target;
    for (int i = 0; i < sw->n_cases; i++) {
        if (strcmp(sw->cases[i].outcome, key) == 0) {
            out->jump = sw->cases[i].target;
            break;
        }
    }
    free(text);
    out->result = v;
    out->success = true;
}
