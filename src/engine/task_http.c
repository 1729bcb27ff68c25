/* task_http.c - the http and connector tasks (being written). */
#include "engine/engine_internal.h"

int outbound_init(engine_t *eng, err_t *err)
{
    (void)eng, (void)err;
    return 0;
}

void outbound_deinit(engine_t *eng)
{
    (void)eng;
}
