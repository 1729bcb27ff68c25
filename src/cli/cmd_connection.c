/* cmd_connection.c - `braid connection set|list|show|delete`: connections, the credentials a
 * connector uses (SPEC §5, §10).
 *
 * Secret values never come from the command line, where every user of the machine can read
 * them in the process list: `set` reads them from standard input, one line per --secret in
 * the order given, or prompts for each with echo off when standard input is a terminal. Every
 * buffer that held a value is wiped before it is freed, and nothing printed holds one.
 */
#include "cli/cli_internal.h"

#include "core/buf.h"
#include "core/jsonx.h"
#include "core/xalloc.h"
#include "vault/vault.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#define MAX_SECRET_BYTES (1 << 20) /* one value; the vault refuses larger ones anyway */

static const char CONNECTION_HELP[] =
    "usage: braid connection SUBCOMMAND [options]\n\n"
    "Manage connections: one set of credentials (config and secrets) for a connector.\n"
    "Secrets are sealed under the master key; nothing ever shows their values.\n\n"
    "subcommands:\n"
    "  set ID --connector SLUG [--config K=V]... [--secret NAME]...   create or change one\n"
    "  list                                                         connections, secret "
    "names only\n"
    "  show ID                                                      one connection\n"
    "  delete ID                                                    delete one\n\n"
    "'braid connection SUBCOMMAND --help' describes each one. Every subcommand takes\n"
    "--data DIR (the data directory) and --json (one JSON document instead of text).\n";

static const char *str_or(const json_t *o, const char *key, const char *dflt)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : dflt;
}

/* Exit status for a refused operation: a bad id, config or secret name is the caller's
 * mistake on the command line (2); anything else failed (1). */
static int status_for(int rc)
{
    return rc == BR_EINPUT_INVALID || rc == BR_EUSAGE ? CLI_USAGE : CLI_FAILED;
}

/* "a, b, c" of the secret names of a public connection object (returned owned). */
static char *secret_names(const json_t *conn)
{
    buf_t b = BUF_INIT;
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(conn, "secrets"), i, s)
    {
        if (i)
            buf_puts(&b, ",");
        buf_puts(&b, str_or(s, "name", "?"));
    }
    char *text = buf_steal(&b);
    if (!text || !*text) {
        free(text);
        text = xstrdup("-");
    }
    return text;
}

/* ---- reading secret values ---------------------------------------------------------------------
 */

/* Lines from standard input, read with read(2) into a buffer of ours, so no stdio buffer keeps
 * a copy of a value; the buffer is wiped when it grows and when it is released. */
typedef struct line_reader {
    char *buf;
    size_t len, cap, pos; /* bytes held, allocated, consumed */
    bool eof;
} line_reader_t;

static void reader_deinit(line_reader_t *lr)
{
    if (lr->buf) {
        vault_wipe(lr->buf, lr->cap);
        free(lr->buf);
    }
    memset(lr, 0, sizeof *lr);
}

/* The next line: *LINE points into the reader (valid until the next call), *N its length
 * without the one trailing "\n" or "\r\n". 1 for a line, 0 at the end of input, -1 for a line
 * longer than MAX_SECRET_BYTES or a read error (message printed). */
static int reader_next(line_reader_t *lr, const char **line, size_t *n)
{
    for (;;) {
        char *start = lr->buf + lr->pos;
        size_t avail = lr->len - lr->pos;
        char *nl = avail ? memchr(start, '\n', avail) : NULL;
        if (nl || (lr->eof && avail)) {
            size_t len = nl ? (size_t)(nl - start) : avail;
            lr->pos += nl ? len + 1 : len;
            if (nl && len && start[len - 1] == '\r')
                len--;
            *line = start;
            *n = len;
            return 1;
        }
        if (lr->eof)
            return 0;
        if (avail > MAX_SECRET_BYTES) {
            fprintf(stderr, "error: a secret on standard input is longer than %d bytes\n",
                    MAX_SECRET_BYTES);
            return -1;
        }
        if (lr->len == lr->cap) {
            size_t cap = lr->cap ? lr->cap * 2 : 4096;
            char *grown = xmalloc(cap);
            if (lr->buf) {
                memcpy(grown, lr->buf, lr->len);
                vault_wipe(lr->buf, lr->cap);
                free(lr->buf);
            }
            lr->buf = grown;
            lr->cap = cap;
        }
        ssize_t r = read(STDIN_FILENO, lr->buf + lr->len, lr->cap - lr->len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            fprintf(stderr, "error: cannot read standard input: %s\n", strerror(errno));
            return -1;
        }
        if (r == 0)
            lr->eof = true;
        lr->len += (size_t)r;
    }
}

/* Read secret NAME's value, prompting with echo off when standard input is a terminal. 1 with
 * *LINE / *N, 0 when input ended first, -1 on error (message printed). */
static int read_secret(line_reader_t *lr, bool tty, const char *name, const char **line, size_t *n)
{
    if (!tty)
        return reader_next(lr, line, n);
    struct termios saved, quiet;
    bool restore = tcgetattr(STDIN_FILENO, &saved) == 0;
    fprintf(stderr, "secret %s: ", name);
    fflush(stderr);
    if (restore) {
        quiet = saved;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    }
    int rc = reader_next(lr, line, n);
    if (restore)
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
    fputc('\n', stderr);
    return rc;
}

/* Overwrite the value strings of the object SECRETS in place before it is released: jansson
 * frees its strings without clearing them. */
static void wipe_values(json_t *secrets)
{
    const char *name;
    json_t *v;
    json_object_foreach(secrets, name, v)
    {
        if (json_is_string(v))
            vault_wipe((char *)json_string_value(v), json_string_length(v));
    }
}

/* Fill SECRETS with NAMES' values read from standard input. CLI_OK or the exit status. */
static int read_secrets(const json_t *names, json_t *secrets)
{
    if (!json_array_size(names))
        return CLI_OK;
    bool tty = isatty(STDIN_FILENO);
    line_reader_t lr = {0};
    int status = CLI_OK;
    size_t i;
    json_t *nm;
    json_array_foreach(names, i, nm)
    {
        const char *name = json_string_value(nm);
        const char *line = NULL;
        size_t n = 0;
        int rc = read_secret(&lr, tty, name, &line, &n);
        if (rc < 0) {
            status = CLI_FAILED;
            break;
        }
        if (rc == 0) {
            fprintf(stderr,
                    "braid connection set: standard input ended before the value of secret "
                    "'%s': give one line per --secret, in the order of the options\n",
                    name);
            status = CLI_USAGE;
            break;
        }
        json_t *value = json_stringn(line, n);
        if (!value) {
            fprintf(stderr, "braid connection set: the value of secret '%s' is not UTF-8 text\n",
                    name);
            status = CLI_USAGE;
            break;
        }
        json_object_set_new(secrets, name, value);
    }
    reader_deinit(&lr);
    return status;
}

/* ---- set ------------------------------------------------------------------------------------- */

static const cli_command_t set_cmd = {
    "connection set",
    "ID --connector SLUG [--config KEY=VALUE]... [--secret NAME]...",
    "Create connection ID for connector SLUG, or change it.",
    "Each --config VALUE is read as JSON when it parses (8080, true, {\"a\": 1}), else as a\n"
    "string. Given --config options replace the whole config; with none, an existing\n"
    "connection of the same connector keeps its config.\n\n"
    "Secret values are never taken from the command line: for each --secret NAME, one line\n"
    "is read from standard input, in the order of the options (a trailing newline is not\n"
    "part of the value); on a terminal each is asked for with echo off. Secrets not named\n"
    "keep their values while the connector stays the same, and are dropped when it changes.\n\n"
    "  printf '%s\\n' \"$API_KEY\" | braid connection set billing-prod --connector billing \\\n"
    "      --config base_url=https://billing.example.com --secret api_key",
    1,
    1};

/* Parse "KEY=VALUE" options into CONFIG. CLI_OK or CLI_USAGE (message printed). */
static int parse_config(const json_t *pairs, json_t *config)
{
    size_t i;
    json_t *p;
    json_array_foreach(pairs, i, p)
    {
        const char *text = json_string_value(p);
        const char *eq = strchr(text, '=');
        if (!eq || eq == text) {
            fprintf(stderr,
                    "braid connection set: --config takes KEY=VALUE, not '%s'\n"
                    "see 'braid connection set --help'\n",
                    text);
            return CLI_USAGE;
        }
        char *key = xstrndup(text, (size_t)(eq - text));
        json_t *value = jsonx_parse(eq + 1, strlen(eq + 1), NULL, NULL);
        if (!value)
            value = json_string(eq + 1);
        if (!value) {
            fprintf(stderr, "braid connection set: --config %s: the value is not UTF-8 text\n",
                    key);
            free(key);
            return CLI_USAGE;
        }
        json_object_set_new(config, key, value);
        free(key);
    }
    return CLI_OK;
}

static int connection_set_cmd(int argc, char **argv)
{
    const char *connector = NULL;
    json_t *pairs = NULL, *names = NULL;
    const cli_opt_t opts[] = {
        {"--connector", OPT_STRING, &connector, "SLUG", "the connector (required)", 0, 0},
        {"--config", OPT_LIST, &pairs, "KEY=VALUE", "a config field; repeatable", 0, 0},
        {"--secret", OPT_LIST, &names, "NAME",
         "a secret to set, its value read from standard input; repeatable", 0, 0},
        {NULL, 0, NULL, NULL, NULL, 0, 0},
    };
    cli_global_t g = {0};
    json_t *args = NULL, *body = NULL, *secrets = NULL, *out = NULL;
    store_t *st = NULL;
    engine_t *eng = NULL;
    int status = CLI_OK;
    int rc = cli_parse(&set_cmd, opts, argc, argv, &g, &args);
    if (rc) {
        args = NULL; /* cli_parse has released it */
        status = rc < 0 ? CLI_OK : rc;
        goto out;
    }
    const char *id = json_string_value(json_array_get(args, 0));
    if (!connector) {
        fprintf(stderr, "braid connection set: --connector SLUG is required\n"
                        "see 'braid connection set --help'\n");
        status = CLI_USAGE;
        goto out;
    }
    body = json_pack("{s:s}", "connector", connector);
    if (!body) {
        fprintf(stderr, "braid connection set: --connector must be UTF-8 text\n");
        status = CLI_USAGE;
        goto out;
    }
    if (pairs) {
        json_t *config = json_object();
        json_object_set_new(body, "config", config);
        if ((status = parse_config(pairs, config)) != CLI_OK)
            goto out;
    }
    size_t i;
    json_t *nm;
    json_array_foreach(names, i, nm)
    {
        for (size_t j = 0; j < i; j++)
            if (json_equal(nm, json_array_get(names, j))) {
                fprintf(stderr, "braid connection set: --secret %s is given twice\n",
                        json_string_value(nm));
                status = CLI_USAGE;
                goto out;
            }
    }
    if (names) {
        secrets = json_object();
        json_object_set(body, "secrets", secrets);
        if ((status = read_secrets(names, secrets)) != CLI_OK)
            goto out;
    }
    if (cli_open(&g, NULL, &st, &eng)) {
        status = CLI_FAILED;
        goto out;
    }
    err_t err = {0};
    bool created = false;
    if ((rc = engine_connection_put(eng, id, body, &created, &out, &err)) < 0) {
        cli_print_error(&err);
        err_clear(&err);
        status = status_for(rc);
        goto out;
    }
    if (g.json) {
        cli_print_json(out);
    } else {
        char *list = secret_names(out);
        printf("%s connection %s (connector %s; secrets: %s)\n", created ? "created" : "updated",
               id, str_or(out, "connector", "?"), list);
        free(list);
    }
out:
    if (secrets) {
        wipe_values(secrets);
        json_decref(secrets);
    }
    json_decref(body);
    json_decref(out);
    json_decref(args);
    json_decref(pairs);
    json_decref(names);
    cli_close(st, eng);
    return status;
}

/* ---- list, show, delete ------------------------------------------------------------------------
 */

static const cli_command_t list_cmd = {
    "connection list",
    "[options]",
    "List connections by id: connector, secret names (never values) and when each changed.",
    NULL,
    0,
    0};

static void print_list(const json_t *list, void *ctx)
{
    (void)ctx;
    printf("%-24s  %-16s  %-30s  %s\n", "ID", "CONNECTOR", "SECRETS", "UPDATED");
    size_t i;
    json_t *c;
    json_array_foreach(list, i, c)
    {
        char *names = secret_names(c);
        printf("%-24s  %-16s  %-30s  %s\n", str_or(c, "id", "?"), str_or(c, "connector", "?"),
               names, str_or(c, "updated_at", "-"));
        free(names);
    }
}

static int connection_list_cmd(int argc, char **argv)
{
    cli_global_t g = {0};
    json_t *args = NULL;
    store_t *st;
    engine_t *eng;
    int rc = cli_begin(&list_cmd, NULL, argc, argv, &g, &args, &st, &eng);
    if (rc != CLI_CONTINUE)
        return rc;
    json_decref(args);
    json_t *list = NULL;
    err_t err = {0};
    rc = engine_connection_list(eng, &list, &err);
    int status = cli_answer(&g, rc, &err, list, print_list, NULL);
    cli_close(st, eng);
    return status;
}

static const cli_command_t show_cmd = {
    "connection show",
    "ID",
    "Show connection ID: connector, config, and its secrets' names and times (never values).",
    NULL,
    1,
    1};

static void print_one(const json_t *c, void *ctx)
{
    (void)ctx;
    char *config = jsonx_dumps(json_object_get(c, "config"), JSON_COMPACT | JSON_SORT_KEYS);
    printf("id         %s\n", str_or(c, "id", "?"));
    printf("connector  %s\n", str_or(c, "connector", "?"));
    printf("config     %s\n", config ? config : "{}");
    size_t i;
    json_t *s;
    json_t *secrets = json_object_get(c, "secrets");
    if (!json_array_size(secrets))
        printf("secrets    -\n");
    json_array_foreach(secrets, i, s)
    {
        printf("%s  %s (updated %s)\n", i ? "          " : "secrets  ", str_or(s, "name", "?"),
               str_or(s, "updated_at", "-"));
    }
    printf("created    %s\n", str_or(c, "created_at", "-"));
    printf("updated    %s\n", str_or(c, "updated_at", "-"));
    free(config);
}

static int connection_show_cmd(int argc, char **argv)
{
    cli_global_t g = {0};
    json_t *args = NULL;
    store_t *st;
    engine_t *eng;
    int rc = cli_begin(&show_cmd, NULL, argc, argv, &g, &args, &st, &eng);
    if (rc != CLI_CONTINUE)
        return rc;
    json_t *c = NULL;
    err_t err = {0};
    rc = engine_connection_get(eng, json_string_value(json_array_get(args, 0)), &c, &err);
    int status = cli_answer(&g, rc, &err, c, print_one, NULL);
    json_decref(args);
    cli_close(st, eng);
    return status;
}

static const cli_command_t delete_cmd = {
    "connection delete",
    "ID",
    "Delete connection ID and its sealed secrets. Integrations that use it fail with\n"
    "connection_not_found until it is set again.",
    NULL,
    1,
    1};

static void print_deleted(const json_t *out, void *ctx)
{
    (void)ctx;
    printf("deleted connection %s\n", str_or(out, "id", "?"));
}

static int connection_delete_cmd(int argc, char **argv)
{
    cli_global_t g = {0};
    json_t *args = NULL;
    store_t *st;
    engine_t *eng;
    int rc = cli_begin(&delete_cmd, NULL, argc, argv, &g, &args, &st, &eng);
    if (rc != CLI_CONTINUE)
        return rc;
    const char *id = json_string_value(json_array_get(args, 0));
    err_t err = {0};
    rc = engine_connection_delete(eng, id, &err);
    json_t *out = rc < 0 ? NULL : json_pack("{s:s, s:b}", "id", id, "deleted", 1);
    int status = cli_answer(&g, rc, &err, out, print_deleted, NULL);
    json_decref(args);
    cli_close(st, eng);
    return status;
}

/* ---- dispatch ----------------------------------------------------------------------------------
 */

/* `braid connection SUBCOMMAND ...`: ARGV starts after "connection". Exit 0, 1 (the operation
 * failed) or 2 (usage). */
int cmd_connection(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*fn)(int argc, char **argv);
    } subs[] = {
        {"set", connection_set_cmd},
        {"list", connection_list_cmd},
        {"show", connection_show_cmd},
        {"delete", connection_delete_cmd},
    };
    if (argc < 1) {
        fputs(CONNECTION_HELP, stderr);
        return CLI_USAGE;
    }
    if (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0 ||
        strcmp(argv[0], "help") == 0) {
        fputs(CONNECTION_HELP, stdout);
        return CLI_OK;
    }
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++)
        if (strcmp(argv[0], subs[i].name) == 0)
            return subs[i].fn(argc - 1, argv + 1);
    if (argv[0][0] == '-')
        fprintf(stderr, "braid connection: a subcommand comes first (set, list, show or delete)\n");
    else
        fprintf(stderr, "braid connection: unknown subcommand '%s'\n", argv[0]);
    fprintf(stderr, "see 'braid connection --help'\n");
    return CLI_USAGE;
}
