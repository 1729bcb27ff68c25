/* cmd_keys.c - `braid keys rotate`: re-seal every connection's secrets under a new master key
 * (SPEC §5, §10; the steps and their crash safety are in engine_keys_rotate).
 *
 * With the key file, braid makes the new key itself. With BRAID_MASTER_KEY, the operator
 * brings the new key in BRAID_NEW_MASTER_KEY and afterwards must make it BRAID_MASTER_KEY
 * everywhere braid runs: this command says so, and never prints either key.
 */
#include "cli/cli_internal.h"

#include "vault/secret.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char KEYS_HELP[] =
    "usage: braid keys SUBCOMMAND [options]\n\n"
    "Manage the master key that seals connection secrets.\n\n"
    "subcommands:\n"
    "  rotate     re-encrypt every connection's secrets under a new master key\n\n"
    "'braid keys rotate --help' says more.\n";

static const cli_command_t rotate_cmd = {
    "keys rotate",
    "[options]",
    "Re-encrypt every connection's secrets under a new master key, in one transaction.",
    "With the key file DATA/master.key, a new random key is added to it, every secret is\n"
    "re-sealed under the new key, and then the old key is removed from the file. A crash\n"
    "part way leaves both keys in the file, so every secret still opens; run it again.\n\n"
    "With BRAID_MASTER_KEY set, put the new key (base64 of 32 random bytes, e.g. the output\n"
    "of `head -c 32 /dev/urandom | base64`) in BRAID_NEW_MASTER_KEY. Afterwards set\n"
    "BRAID_MASTER_KEY to that new value wherever braid runs: the old key opens nothing any\n"
    "more.\n\n"
    "Stop other braid processes that change connections while this runs. A secret that\n"
    "cannot be opened stops the rotation with nothing changed.",
    0,
    0};

static void print_rotated(const json_t *out, void *ctx)
{
    (void)ctx;
    long long n = json_integer_value(json_object_get(out, "resealed"));
    if (json_is_integer(json_object_get(out, "key_version")))
        printf("re-sealed %lld secrets under key version %lld\n", n,
               json_integer_value(json_object_get(out, "key_version")));
    else
        printf("re-sealed %lld secrets under the key in %s\n", n, SECRET_NEW_KEY_ENV);
}

static int keys_rotate_cmd(int argc, char **argv)
{
    cli_global_t g = {0};
    json_t *args = NULL;
    store_t *st;
    engine_t *eng;
    int rc = cli_begin(&rotate_cmd, NULL, argc, argv, &g, &args, &st, &eng);
    if (rc != CLI_CONTINUE)
        return rc;
    json_decref(args);
    bool env = getenv(SECRET_KEY_ENV) != NULL;
    int count = 0;
    err_t err = {0};
    rc = engine_keys_rotate(eng, &count, &err);
    json_t *out = NULL;
    if (rc == 0) {
        out = json_pack("{s:i, s:s}", "resealed", count, "key_source", env ? "env" : "file");
        secret_key_t *key = NULL;
        if (!env && secret_key_load(g.data, &key, NULL) == 0)
            json_object_set_new(out, "key_version", json_integer(secret_key_version(key)));
        secret_key_free(key);
    }
    int status = rc == BR_EUSAGE ? CLI_USAGE : CLI_OK;
    if (rc == BR_EUSAGE) {
        cli_print_error(&err);
        err_clear(&err);
    } else {
        status = cli_answer(&g, rc, &err, out, print_rotated, NULL);
        out = NULL;
    }
    json_decref(out);
    if (rc == 0 && env)
        fprintf(stderr,
                "now set %s to the value of %s (and unset %s) everywhere braid runs: the old key "
                "no longer opens these secrets\n",
                SECRET_KEY_ENV, SECRET_NEW_KEY_ENV, SECRET_NEW_KEY_ENV);
    cli_close(st, eng);
    return status;
}

/* `braid keys SUBCOMMAND ...`: ARGV starts after "keys". Exit 0, 1 or 2 (usage). */
int cmd_keys(int argc, char **argv)
{
    if (argc < 1) {
        fputs(KEYS_HELP, stderr);
        return CLI_USAGE;
    }
    if (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0 ||
        strcmp(argv[0], "help") == 0) {
        fputs(KEYS_HELP, stdout);
        return CLI_OK;
    }
    if (strcmp(argv[0], "rotate") == 0)
        return keys_rotate_cmd(argc - 1, argv + 1);
    if (argv[0][0] == '-')
        fprintf(stderr, "braid keys: a subcommand comes first (rotate)\n");
    else
        fprintf(stderr, "braid keys: unknown subcommand '%s'\n", argv[0]);
    fprintf(stderr, "see 'braid keys --help'\n");
    return CLI_USAGE;
}
