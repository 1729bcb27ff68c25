/* history.c - reading run history for people: one run with its steps, a whole call tree, and
 * the static call graph of the published integrations. */
#include "engine/engine_internal.h"

#include "core/xalloc.h"

#include <stdlib.h>
#include <string.h>

#define STEP_CHILD_IDS_MAX 1000 /* child run ids listed per step; the rest via the tree */
#define TREE_MAX_RUNS 10000     /* runs drawn in one tree */

/* One run with its steps. See engine.h. */
int engine_run_get(engine_t *eng, const char *run_id, json_t **out, err_t *err)
{
    run_rec_t *rec = NULL;
    int rc = store_run_get(eng->store, run_id, &rec, err);
    if (rc < 0)
        return rc;
    step_rec_t **steps = NULL;
    int n = 0;
    json_t *run = run_rec_to_json(rec);
    run_rec_free(rec);
    if ((rc = store_run_steps(eng->store, run_id, &steps, &n, err)) < 0) {
        json_decref(run);
        return rc;
    }
    json_t *list = json_array();
    for (int i = 0; i < n; i++) {
        json_t *children = NULL;
        if (strcmp(steps[i]->type, "call_integration") == 0)
            store_step_children(eng->store, run_id, steps[i]->seq, STEP_CHILD_IDS_MAX, &children,
                                NULL);
        json_array_append_new(list, step_rec_to_json(steps[i], children));
        json_decref(children);
        step_rec_free(steps[i]);
    }
    free(steps);
    json_object_set_new(run, "steps", list);
    *out = run;
    return 0;
}

static json_t *tree_node(engine_t *eng, run_rec_t *rec, int *budget)
{
    json_t *node = run_rec_to_json(rec);
    json_t *children = json_array();
    run_rec_t **kids = NULL;
    int n = 0;
    if (*budget > 0 && store_run_children(eng->store, rec->id, &kids, &n, NULL) == 0) {
        for (int i = 0; i < n; i++) {
            if (--(*budget) < 0) {
                json_object_set_new(node, "children_truncated", json_true());
                break;
            }
            json_array_append_new(children, tree_node(eng, kids[i], budget));
        }
        run_recs_free(kids, n);
    }
    json_object_set_new(node, "children", children);
    return node;
}

/* The run and all its descendants, nested. See engine.h. */
int engine_run_tree(engine_t *eng, const char *run_id, json_t **out, err_t *err)
{
    run_rec_t *rec = NULL;
    int rc = store_run_get(eng->store, run_id, &rec, err);
    if (rc < 0)
        return rc;
    int budget = TREE_MAX_RUNS;
    *out = tree_node(eng, rec, &budget);
    run_rec_free(rec);
    return 0;
}

static const char *strategy_text(strategy_t s)
{
    return s == STRATEGY_SYNC ? "sync" : s == STRATEGY_ASYNC ? "async" : "default";
}

/* The static call graph of the latest versions. See engine.h. */
int engine_graph(engine_t *eng, json_t **out, err_t *err)
{
    json_t *names = NULL;
    int rc = store_integration_list(eng->store, false, &names, err);
    if (rc < 0)
        return rc;
    json_t *nodes = json_array(), *edges = json_array();
    size_t i;
    json_t *entry;
    json_array_foreach(names, i, entry)
    {
        const char *name = json_string_value(json_object_get(entry, "name"));
        const definition_t *def;
        bool archived;
        if (!name || registry_get(eng->reg, name, 0, &def, &archived, NULL) < 0)
            continue;
        json_t *triggers = json_array();
        for (int t = 0; t < def->n_triggers; t++)
            json_array_append_new(triggers, json_string(def->triggers[t]));
        json_array_append_new(nodes, json_pack("{s:s, s:i, s:o}", "name", def->name, "version",
                                               def->version, "triggers", triggers));
        for (int t = 0; t < def->n_tasks; t++) {
            const task_t *task = &def->tasks[t];
            if (task->type != TASK_CALL_INTEGRATION)
                continue;
            const call_task_t *c = &task->u.call;
            const char *strategy = strategy_text(c->strategy);
            if (c->trigger) {
                json_t *targets = NULL;
                if (registry_trigger_targets(eng->reg, c->trigger, &targets, NULL) < 0)
                    continue;
                size_t k;
                json_t *to;
                json_array_foreach(targets, k, to)
                {
                    json_array_append_new(
                        edges, json_pack("{s:s, s:O, s:s, s:s, s:s, s:b}", "from", def->name, "to",
                                         to, "task", task->id, "strategy", strategy, "trigger",
                                         c->trigger, "for_each", c->for_each != NULL));
                }
                json_decref(targets);
            } else {
                json_t *e = json_pack("{s:s, s:s?, s:s, s:s, s:b}", "from", def->name, "to",
                                      c->literal_target, "task", task->id, "strategy", strategy,
                                      "for_each", c->for_each != NULL);
                if (!c->literal_target) {
                    json_object_set_new(e, "to", json_null());
                    json_object_set_new(e, "dynamic", json_true());
                }
                json_array_append_new(edges, e);
            }
        }
    }
    json_decref(names);
    *out = json_pack("{s:o, s:o}", "nodes", nodes, "edges", edges);
    return 0;
}
