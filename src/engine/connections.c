/* connections.c - connectors and connections for the engine (being written; see engine.h). */
#include "engine/engine_internal.h"

#include "definition/connector.h"

#include <string.h>

void connections_init(engine_t *eng)
{
    pthread_mutex_init(&eng->conn_mu, NULL);
    eng->connectors = strmap_new();
}

void connections_deinit(engine_t *eng)
{
    strmap_free(eng->connectors);
    pthread_mutex_destroy(&eng->conn_mu);
}

int connectors_get(engine_t *eng, const char *slug, int version, const connector_t **out,
                   err_t *err)
{
    (void)eng, (void)version, (void)out;
    return err_set(err, BR_ENOT_FOUND, "connector '%s' is not published", slug);
}

int connection_open(engine_t *eng, const char *id, opened_connection_t *out, err_t *err)
{
    (void)eng;
    memset(out, 0, sizeof *out);
    return err_set(err, BR_ECONNECTION_NOT_FOUND, "connection '%s' does not exist", id);
}

void connection_close(opened_connection_t *oc)
{
    (void)oc;
}
