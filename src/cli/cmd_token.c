/* cmd_token.c - `braid token create|list|revoke`: API tokens (SPEC §9, §10).
 *
 * A new token's secret is printed once, on standard output, and never again: the store keeps
 * only its hash. Every buffer here that held the whole token is wiped before it is freed.
 */
#include "cli/cli_internal.h"

#include "core/buf.h"
#include "core/jsonx.h"
#include "vault/token.h"
#include "vault/vault.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char TOKEN_HELP[] =
    "usage: braid token SUBCOMMAND [options]\n\n"
    "Manage API tokens. A token is shown once, when it is made; only its hash is kept.\n\n"
    "subcommands:\n"
    "  create --role ROLE [--scope GLOB]... [--description TEXT]   make a token\n"
    "  list                                                        list tokens, no secrets\n"
    "  revoke ID                                                   revoke a token\n\n"
    "Roles: admin (everything), editor (publish, manage connections, read runs), viewer\n"
    "(read everything but secrets), invoker (execute the integrations and triggers its\n"
    "scopes name, by glob; read the runs it started).\n\n"
    "'braid token SUBCOMMAND --help' describes each one. Every subcommand takes --data DIR\n"
    "(the data directory) and --json (one JSON document instead of text).\n";

static const char *str_or(const json_t *o, const char *key, const char *dflt)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : dflt;
}

/* Overwrite the text of the JSON string V in place before it is released: jansson frees its
 * strings without clearing them, and this one holds a secret. */
static void wipe_json_string(json_t *v)
{
    if (json_is_string(v))
        vault_wipe((char *)json_string_value(v), json_string_length(v));
}

/* ---- create --------------------------------------------------------------------------------- */

static const cli_command_t create_cmd = {
    "token create",
    "--role ROLE [--scope GLOB]... [--description TEXT]",
    "Make an API token and print it once. Keep it: it cannot be shown again.",
    "The token goes to standard output alone (with --json: the token's record plus \"token\").\n"
    "Scopes are globs of integration names and trigger ids an invoker may execute.",
    0,
    0};

static int token_create_cmd(int argc, char **argv)
{
    const char *role = NULL, *description = NULL;
    json_t *scopes = NULL;
    const cli_opt_t opts[] = {
        {"--role", OPT_STRING, &role, "ROLE", "admin, editor, viewer or invoker (required)", 0, 0},
        {"--scope", OPT_LIST, &scopes, "GLOB", "what an invoker may execute; repeatable", 0, 0},
        {"--description", OPT_STRING, &description, "TEXT", "a note shown in lists", 0, 0},
        {NULL, 0, NULL, NULL, NULL, 0, 0},
    };
    cli_global_t g = {0};
    json_t *args = NULL;
    int rc = cli_parse(&create_cmd, opts, argc, argv, &g, &args);
    if (rc) { /* cli_parse has released ARGS */
        json_decref(scopes);
        return rc < 0 ? CLI_OK : rc;
    }
    json_decref(args);
    if (!role || !token_role_valid(role)) {
        if (role)
            fprintf(stderr,
                    "braid token create: unknown role '%s': use admin, editor, viewer "
                    "or invoker\n",
                    role);
        else
            fprintf(stderr, "braid token create: --role ROLE is required\n"
                            "see 'braid token create --help'\n");
        json_decref(scopes);
        return CLI_USAGE;
    }
    store_t *st;
    if (cli_open(&g, NULL, &st, NULL)) {
        json_decref(scopes);
        return CLI_FAILED;
    }
    char *token = NULL;
    token_rec_t *rec = NULL;
    err_t err = {0};
    int status = CLI_OK;
    rc = token_create(st, role, scopes, description, &token, &rec, &err);
    if (rc < 0) {
        cli_print_error(&err);
        err_clear(&err);
        status = rc == BR_EUSAGE ? CLI_USAGE : CLI_FAILED;
    } else if (g.json) {
        json_t *o = token_rec_to_json(rec);
        json_t *tok = json_string(token);
        json_object_set(o, "token", tok);
        char *text = jsonx_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        if (text) {
            puts(text);
            vault_wipe(text, strlen(text));
            free(text);
        }
        wipe_json_string(tok);
        json_decref(tok);
        json_decref(o);
    } else {
        puts(token);
        fprintf(stderr, "token %s (%s) made; this is the only time its secret is shown\n", rec->id,
                rec->role);
    }
    fflush(stdout);
    if (token) {
        vault_wipe(token, strlen(token));
        free(token);
    }
    token_rec_free(rec);
    json_decref(scopes);
    store_close(st);
    return status;
}

/* ---- list ----------------------------------------------------------------------------------- */

static const cli_command_t list_cmd = {
    "token list",
    "[options]",
    "List API tokens, newest first: ids, roles, scopes and times; never a secret.",
    NULL,
    0,
    0};

static int token_list_cmd(int argc, char **argv)
{
    cli_global_t g = {0};
    json_t *args = NULL;
    int rc = cli_parse(&list_cmd, NULL, argc, argv, &g, &args);
    if (rc) /* cli_parse has released ARGS */
        return rc < 0 ? CLI_OK : rc;
    json_decref(args);
    store_t *st;
    if (cli_open(&g, NULL, &st, NULL))
        return CLI_FAILED;
    json_t *list = NULL;
    err_t err = {0};
    if (store_token_list(st, &list, &err) < 0) {
        cli_print_error(&err);
        err_clear(&err);
        store_close(st);
        return CLI_FAILED;
    }
    if (g.json) {
        cli_print_json(list);
    } else {
        printf("%-20s  %-8s  %-30s  %-24s  %s\n", "ID", "ROLE", "SCOPES", "CREATED", "REVOKED");
        size_t i;
        json_t *t;
        json_array_foreach(list, i, t)
        {
            buf_t scopes = BUF_INIT;
            size_t k;
            json_t *s;
            json_array_foreach(json_object_get(t, "scopes"), k, s)
            {
                if (k)
                    buf_putc(&scopes, ',');
                buf_puts(&scopes, json_string_value(s));
            }
            char *text = buf_steal(&scopes);
            printf("%-20s  %-8s  %-30s  %-24s  %s\n", str_or(t, "id", "?"), str_or(t, "role", "?"),
                   text && *text ? text : "-", str_or(t, "created_at", "-"),
                   str_or(t, "revoked_at", "-"));
            free(text);
        }
    }
    json_decref(list);
    store_close(st);
    return CLI_OK;
}

/* ---- revoke --------------------------------------------------------------------------------- */

static const cli_command_t revoke_cmd = {
    "token revoke",
    "ID",
    "Revoke the API token ID: requests bearing it are refused from now on.",
    "Revoking a revoked token again changes nothing.",
    1,
    1};

static int token_revoke_cmd(int argc, char **argv)
{
    cli_global_t g = {0};
    json_t *args = NULL;
    int rc = cli_parse(&revoke_cmd, NULL, argc, argv, &g, &args);
    if (rc)
        return rc < 0 ? CLI_OK : rc;
    store_t *st;
    if (cli_open(&g, NULL, &st, NULL)) {
        json_decref(args);
        return CLI_FAILED;
    }
    const char *id = json_string_value(json_array_get(args, 0));
    err_t err = {0};
    token_rec_t *rec = NULL;
    int status = CLI_OK;
    if (store_token_revoke(st, id, 0, &err) < 0 || store_token_get(st, id, &rec, &err) < 0) {
        cli_print_error(&err);
        err_clear(&err);
        status = CLI_FAILED;
    } else if (g.json) {
        json_t *o = token_rec_to_json(rec);
        cli_print_json(o);
        json_decref(o);
    } else {
        json_t *o = token_rec_to_json(rec);
        printf("%s revoked %s\n", rec->id, str_or(o, "revoked_at", "-"));
        json_decref(o);
    }
    token_rec_free(rec);
    json_decref(args);
    store_close(st);
    return status;
}

/* ---- dispatch ------------------------------------------------------------------------------- */

/* `braid token SUBCOMMAND ...`: ARGV starts after "token". Exit 0, 1 (the operation failed)
 * or 2 (usage). */
int cmd_token(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*fn)(int argc, char **argv);
    } subs[] = {
        {"create", token_create_cmd},
        {"list", token_list_cmd},
        {"revoke", token_revoke_cmd},
    };
    if (argc < 1) {
        fputs(TOKEN_HELP, stderr);
        return CLI_USAGE;
    }
    if (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0 ||
        strcmp(argv[0], "help") == 0) {
        fputs(TOKEN_HELP, stdout);
        return CLI_OK;
    }
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++)
        if (strcmp(argv[0], subs[i].name) == 0)
            return subs[i].fn(argc - 1, argv + 1);
    if (argv[0][0] == '-')
        fprintf(stderr, "braid token: a subcommand comes first (create, list or revoke)\n");
    else
        fprintf(stderr, "braid token: unknown subcommand '%s'\n", argv[0]);
    fprintf(stderr, "see 'braid token --help'\n");
    return CLI_USAGE;
}
