/* http_client.c - outbound HTTP on libcurl, performed for the caller.
 *
 * Easy handles are pooled: a request takes one, performs and gives it back. On a
 * plain thread it performs right there, and a pooled handle keeps its live connections, so the
 * pool is the connection cache: keep-alive connections are reused by whichever run takes the
 * handle next, and an idle connection costs a socket in a pooled handle, never a thread. A job
 * of the outbound loop (net/http_loop.c) hands the handle to the loop's multi handle instead
 * and its fiber sleeps until the transfer ends; there the multi handle keeps the connections.
 * Either way the progress callback asks the run directly whether it was cancelled.
 *
 * A handle comes back from a plain request (GET without a body, no credentials) still
 * configured: the next request on it sets only what differs per request (URL, headers, limits,
 * callbacks' data). A reset and twenty options per request were ~5% of the outbound loop's
 * instructions per call. Any other request leaves its handle reset, so nothing it set (a
 * method, a body, a password) reaches the next.
 *
 * Security lives in three places: the open-socket callback (every address dialled, each hop,
 * goes through the guard; a refused one never gets a socket), the protocol lists (http and
 * https only, redirects included) and the proxy settings (environment proxies are never
 * used, so no request can be steered through one).
 */
#include "net/http_client.h"

#include "core/buf.h"
#include "core/clock.h"
#include "core/jsonx.h"
#include "core/xalloc.h"

#include "net/http_loop.h"
#include "net/libcurl.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define USER_AGENT "braid/0.1"
#define POLL_SLICE_MS 50

typedef struct xfer xfer_t;

typedef struct pooled {
    CURL *easy;
    bool configured; /* holds this client's standing options (see configure) */
} pooled_t;

struct http_client {
    http_client_config_t cfg;
    guard_t *guard;
    pthread_mutex_t mu;
    pooled_t *pool; /* under mu: easy handles, each with at most one idle connection */
    int n_pool, cap;
};

struct xfer {
    http_client_t *client;
    CURL *easy;
    const http_request_t *req;
    http_response_t *resp;
    buf_t body;
    bool too_large;
    bool blocked;
    char blocked_why[192];
    int stop_code; /* the BR_E* code should_stop answered, once it did */
    int64_t next_check; /* monotonic ms of the next should_stop call */
};

/* ---- callbacks ---------------------------------------------------------------------------- */

/* Every socket libcurl wants for a connection passes here with the resolved address. */
static curl_socket_t open_socket(void *p, curlsocktype purpose, struct curl_sockaddr *a)
{
    xfer_t *x = p;
    (void)purpose;
    char why[160];
    if (guard_check(x->client->guard, &a->addr, a->addrlen, why, sizeof why) != 0) {
        if (!x->blocked) {
            x->blocked = true;
            snprintf(x->blocked_why, sizeof x->blocked_why, "%s", why);
        }
        return CURL_SOCKET_BAD;
    }
    return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

static size_t on_body(char *data, size_t size, size_t n, void *p)
{
    xfer_t *x = p;
    size_t len = size * n;
    if (x->body.len + len > x->req->max_response_bytes) {
        x->too_large = true;
        return 0; /* a short count makes libcurl stop with CURLE_WRITE_ERROR */
    }
    buf_append(&x->body, data, len);
    return len;
}

/* Header lines of every hop arrive here; a new status line starts a new set, so the response
 * keeps the last hop's headers only. */
/* Whether S[0..N) is printable ASCII (tabs allowed): then it is UTF-8 without jansson's
 * check, which a response's every header line would otherwise pay. */
static bool printable_ascii(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < ' ' && c != '\t') || c >= 127)
            return false;
    }
    return true;
}

static size_t on_header(char *data, size_t size, size_t n, void *p)
{
    xfer_t *x = p;
    size_t len = size * n;
    if (len >= 5 && memcmp(data, "HTTP/", 5) == 0) {
        json_object_clear(x->resp->headers);
        return len;
    }
    const char *colon = memchr(data, ':', len);
    if (!colon || colon == data)
        return len;
    size_t name_len = (size_t)(colon - data);
    if (name_len > 256)
        return len;
    char name[257];
    for (size_t i = 0; i < name_len; i++) {
        char c = data[i];
        name[i] = c >= 'A' && c <= 'Z' ? (char)(c + ('a' - 'A')) : c;
    }
    name[name_len] = '\0';
    const char *v = colon + 1, *end = data + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
        end--;
    size_t value_len = (size_t)(end - v);
    json_t *value = printable_ascii(v, value_len) ? json_stringn_nocheck(v, value_len)
                                                  : json_stringn(v, value_len);
    if (!value)
        return len; /* not UTF-8: a header we cannot show faithfully is left out */
    json_t *old = json_object_get(x->resp->headers, name);
    if (old && json_is_string(old)) {
        buf_t joined = {0};
        buf_printf(&joined, "%s, %s", json_string_value(old), json_string_value(value));
        json_decref(value);
        value = json_stringn(joined.data, joined.len);
        buf_deinit(&joined);
    }
    if (!value || !json_is_object(x->resp->headers))
        json_decref(value);
    else if (printable_ascii(name, name_len))
        json_object_set_new_nocheck(x->resp->headers, name, value);
    else
        json_object_set_new(x->resp->headers, name, value);
    return len;
}

static int on_progress(void *p, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    xfer_t *x = p;
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    if (!x->req->should_stop || x->stop_code)
        return x->stop_code != 0;
    /* libcurl calls this often (at least once a second, and on every chunk); asking the run
     * costs little, but there is no need to ask more often than a person would notice. */
    int64_t now = clock_mono_ms();
    if (now < x->next_check)
        return 0;
    x->next_check = now + POLL_SLICE_MS;
    x->stop_code = x->req->should_stop(x->req->stop_ctx);
    return x->stop_code != 0;
}

/* ---- the client ----------------------------------------------------------------------------- */

http_client_t *http_client_new(const http_client_config_t *cfg, guard_t *guard)
{
    http_client_t *c = XNEW(http_client_t);
    c->cfg = *cfg;
    c->guard = guard;
    c->cap = cfg->max_idle_connections > 0 ? cfg->max_idle_connections : 64;
    c->pool = xcalloc((size_t)c->cap, sizeof *c->pool);
    pthread_mutex_init(&c->mu, NULL);
    return c;
}

void http_client_free(http_client_t *c)
{
    if (!c)
        return;
    for (int i = 0; i < c->n_pool; i++)
        curl_easy_cleanup(c->pool[i].easy);
    free(c->pool);
    pthread_mutex_destroy(&c->mu);
    guard_free(c->guard);
    free(c);
}

static pooled_t easy_take(http_client_t *c)
{
    pooled_t h = {NULL, false};
    pthread_mutex_lock(&c->mu);
    if (c->n_pool > 0)
        h = c->pool[--c->n_pool];
    pthread_mutex_unlock(&c->mu);
    if (!h.easy)
        h.easy = curl_easy_init();
    return h;
}

/* Whether REQ sets nothing beyond the standing options and those configure sets every time. */
static bool plain_request(const http_request_t *req)
{
    return !req->body && !req->username && (!req->method || strcmp(req->method, "GET") == 0);
}

/* Give E back after REQ: still configured when REQ was plain, else reset. */
static void easy_give(http_client_t *c, CURL *e, const http_request_t *req)
{
    pooled_t h = {e, plain_request(req)};
    if (h.configured)
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, NULL); /* the list is freed next */
    else
        curl_easy_reset(e);
    pthread_mutex_lock(&c->mu);
    if (c->n_pool < c->cap) {
        c->pool[c->n_pool++] = h;
        e = NULL;
    }
    pthread_mutex_unlock(&c->mu);
    if (e)
        curl_easy_cleanup(e);
}

/* ---- one request ---------------------------------------------------------------------------- */

static bool header_name_ok(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (*s <= ' ' || *s >= 127 || strchr("()<>@,;:\\\"/[]?={}", *s))
            return false;
    return true;
}

static bool header_value_ok(const char *s)
{
    for (; *s; s++)
        if (*s == '\r' || *s == '\n' || *s == '\0')
            return false;
    return true;
}

/* The curl header list for REQ: the caller's headers, then defaults the caller did not set. */
static int build_headers(const http_request_t *req, struct curl_slist **out, err_t *err)
{
    struct curl_slist *list = NULL;
    buf_t line = {0};
    bool has_ct = false, has_ua = false;
    for (int i = 0; i < req->n_headers; i++) {
        const http_header_t *h = &req->headers[i];
        if (!header_name_ok(h->name) || !header_value_ok(h->value)) {
            curl_slist_free_all(list);
            buf_deinit(&line);
            return err_set(err, BR_EINPUT_INVALID,
                           "header '%.64s' is not valid: names are HTTP tokens and values may "
                           "not hold line breaks",
                           header_name_ok(h->name) ? h->name : "(invalid name)");
        }
        if (strcasecmp(h->name, "content-type") == 0)
            has_ct = true;
        else if (strcasecmp(h->name, "user-agent") == 0)
            has_ua = true;
        buf_reset(&line);
        buf_puts(&line, h->name);
        /* "Name;" is libcurl's way of sending a header with an empty value. */
        if (*h->value) {
            buf_append(&line, ": ", 2);
            buf_puts(&line, h->value);
        } else {
            buf_putc(&line, ';');
        }
        list = curl_slist_append(list, line.data);
    }
    /* Among these lines rather than CURLOPT_USERAGENT: libcurl prints that one into a line of
     * its own and then the line into the request head, one byte at a time each (~128
     * instructions a byte); a line of this list is printed once. */
    if (!has_ua)
        list = curl_slist_append(list, "User-Agent: " USER_AGENT);
    if (req->body && !has_ct)
        list = curl_slist_append(list, "Content-Type: application/octet-stream");
    if (req->body)
        list = curl_slist_append(list, "Expect:"); /* no 100-continue round trip */
    buf_wipe(&line);
    *out = list;
    return 0;
}

/* Header lines may hold credentials: wipe them before they go back to the allocator. */
static void free_headers(struct curl_slist *list)
{
    for (struct curl_slist *l = list; l; l = l->next)
        explicit_bzero(l->data, strlen(l->data));
    curl_slist_free_all(list);
}

static void set_method(CURL *e, const http_request_t *req)
{
    const char *m = req->method ? req->method : "GET";
    if (strcmp(m, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
        return;
    }
    if (req->body) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, req->body);
    }
    if (strcmp(m, "GET") == 0 && !req->body)
        return;
    if (strcmp(m, "POST") != 0)
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, m);
    else if (!req->body)
        curl_easy_setopt(e, CURLOPT_POST, 1L), curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, 0L);
}

/* The options every request of client C has alike; kept on a pooled handle (easy_give). */
static void configure_standing(http_client_t *c, CURL *e)
{
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_PROXY, "");   /* never a proxy, whatever the environment says */
    curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_MAXCONNECTS, 1L); /* a pooled handle keeps one idle connection */
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_socket);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, ""); /* decoded bytes count against the cap */
    curl_easy_setopt(e, CURLOPT_MAXREDIRS, 5L);
    if (c->cfg.low_speed_bytes > 0 && c->cfg.low_speed_ms > 0) {
        curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, (long)c->cfg.low_speed_bytes);
        curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, (long)((c->cfg.low_speed_ms + 999) / 1000));
    }
}

/* Set up X's handle for its request; CONFIGURED when it holds the standing options already. */
static void configure(http_client_t *c, xfer_t *x, struct curl_slist *headers, bool configured)
{
    CURL *e = x->easy;
    const http_request_t *req = x->req;
    if (!configured)
        configure_standing(c, e);
    curl_easy_setopt(e, CURLOPT_URL, req->url);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, x);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(e, CURLOPT_XFERINFODATA, x);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)req->max_response_bytes);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, req->follow_redirects ? 1L : 0L);
    int64_t timeout = req->timeout_ms > 0 ? req->timeout_ms : 10000;
    int64_t connect = c->cfg.connect_timeout_ms > 0 && c->cfg.connect_timeout_ms < timeout
                          ? c->cfg.connect_timeout_ms
                          : timeout;
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)timeout);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)connect);
    if (req->username) {
        curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(e, CURLOPT_USERNAME, req->username);
        curl_easy_setopt(e, CURLOPT_PASSWORD, req->password ? req->password : "");
    }
    set_method(e, req);
}

/* Turn a finished transfer's result into our error codes. */
static int result_error(xfer_t *x, CURLcode rc, err_t *err)
{
    int stop = x->stop_code;
    if (rc == CURLE_OK)
        return 0;
    if (x->blocked)
        return err_set(err, BR_EBLOCKED, "the address guard refused the connection: %s",
                       x->blocked_why);
    if (x->too_large || rc == CURLE_FILESIZE_EXCEEDED)
        return err_set(err, BR_ERESPONSE_TOO_LARGE,
                       "the response passed max_response_bytes (%zu bytes)",
                       x->req->max_response_bytes);
    if (rc == CURLE_ABORTED_BY_CALLBACK && stop)
        return err_set(err, stop, stop == BR_ECANCELLED ? "the request was cancelled"
                                                        : "the request passed its deadline");
    switch (rc) {
    case CURLE_OPERATION_TIMEDOUT:
        return err_set(err, BR_ETIMEOUT, "the request timed out: %s", curl_easy_strerror(rc));
    case CURLE_UNSUPPORTED_PROTOCOL:
        return err_set(err, BR_EBLOCKED, "only http and https may be called (a redirect led "
                                         "elsewhere)");
    case CURLE_TOO_MANY_REDIRECTS:
        return err_set(err, BR_ENETWORK, "more than 5 redirects");
    case CURLE_URL_MALFORMAT:
        return err_set(err, BR_EINPUT_INVALID, "the URL is not valid");
    default:
        return err_set(err, BR_ENETWORK, "the request failed: %s", curl_easy_strerror(rc));
    }
}

int http_perform(http_client_t *c, const http_request_t *req, http_response_t *resp, err_t *err)
{
    memset(resp, 0, sizeof *resp);
    resp->headers = json_object();
    int rc = libcurl_start(err); /* before any curl_* call, build_headers' included */
    if (rc < 0)
        return rc;
    struct curl_slist *headers = NULL;
    if ((rc = build_headers(req, &headers, err)) < 0)
        return rc;
    xfer_t x = {.client = c, .req = req, .resp = resp};
    pooled_t h = easy_take(c);
    x.easy = h.easy;
    if (!x.easy) {
        free_headers(headers);
        return err_set(err, BR_EINTERNAL, "libcurl cannot create a handle");
    }
    configure(c, &x, headers, h.configured);
    /* A job of the outbound loop gives its thread to other jobs while the request is out. */
    CURLcode result =
        http_loop_here() ? (CURLcode)http_loop_transfer(x.easy) : curl_easy_perform(x.easy);

    long status = 0, redirects = 0;
    curl_easy_getinfo(x.easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(x.easy, CURLINFO_REDIRECT_COUNT, &redirects);
    char *ct = NULL;
    if (curl_easy_getinfo(x.easy, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct)
        resp->content_type = xstrdup(ct);
    resp->status = status;
    resp->redirects = (int)redirects;
    rc = result_error(&x, result, err);
    if (rc == 0) {
        buf_append(&x.body, "", 0);
        resp->body_len = x.body.len;
        resp->body = buf_steal(&x.body);
    }
    buf_deinit(&x.body);
    easy_give(c, x.easy, req);
    free_headers(headers);
    return rc;
}

void http_response_deinit(http_response_t *resp)
{
    json_decref(resp->headers);
    free(resp->body);
    free(resp->content_type);
    memset(resp, 0, sizeof *resp);
}

/* ---- URLs ----------------------------------------------------------------------------------- */

/* Whether URL may be sent as it is: http or https, nothing to append, and only printable ASCII
 * (so nothing to encode). libcurl parses it when it sends it, with the same parser, and the
 * protocol list stops any other scheme there too; parsing it here as well (and printing it
 * back) cost 8% of an outbound call's instructions on the loop's thread. */
static bool url_as_is(const char *url, const json_t *query)
{
    if (json_object_size(query) > 0)
        return false;
    if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
        return false;
    for (const unsigned char *p = (const unsigned char *)url; *p; p++)
        if (*p <= ' ' || *p >= 127)
            return false;
    return true;
}

char *http_url_with_query(const char *url, const json_t *query, err_t *err)
{
    if (url_as_is(url, query))
        return xstrdup(url);
    if (libcurl_start(err) < 0)
        return NULL;
    CURLU *u = curl_url();
    if (!u) {
        err_set(err, BR_EINTERNAL, "out of memory");
        return NULL;
    }
    char *scheme = NULL, *out = NULL;
    CURLUcode uc = curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME);
    if (uc != CURLUE_OK) {
        err_set(err, BR_EINPUT_INVALID, "'%.200s' is not a valid URL: %s", url,
                curl_url_strerror(uc));
        goto out;
    }
    if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)) {
        err_set(err, BR_EBLOCKED, "only http and https URLs may be called, not '%.32s:'",
                scheme ? scheme : "?");
        goto out;
    }
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)query, key, v)
    {
        buf_t pair = {0};
        buf_printf(&pair, "%s=", key);
        if (json_is_string(v))
            buf_append(&pair, json_string_value(v), json_string_length(v));
        else if (!json_is_null(v)) {
            char *text = jsonx_dump(v);
            buf_puts(&pair, text ? text : "");
            free(text);
        }
        buf_append(&pair, "", 0);
        uc = curl_url_set(u, CURLUPART_QUERY, pair.data, CURLU_APPENDQUERY | CURLU_URLENCODE);
        buf_wipe(&pair);
        if (uc != CURLUE_OK) {
            err_set(err, BR_EINPUT_INVALID, "query parameter '%.64s' cannot be added: %s", key,
                    curl_url_strerror(uc));
            goto out;
        }
    }
    char *text = NULL;
    if (curl_url_get(u, CURLUPART_URL, &text, 0) != CURLUE_OK) {
        err_set(err, BR_EINPUT_INVALID, "'%.200s' is not a valid URL", url);
        goto out;
    }
    out = xstrdup(text);
    explicit_bzero(text, strlen(text));
    curl_free(text);
out:
    curl_free(scheme);
    curl_url_cleanup(u);
    return out;
}
