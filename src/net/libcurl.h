/* libcurl.h - libcurl, loaded with dlopen on the first outbound request instead of linked.
 *
 * libcurl brings some 25 libraries (OpenSSL, GnuTLS, Kerberos, LDAP...) whose pages, and
 * GnuTLS's start-up run from its constructor, made up half the resident size of a server that
 * never calls out (5.4 of 11 MiB idle). Only its declarations come from the header; every
 * call goes through the table LIBCURL, and the macros below let the files of net/ that
 * include this header write curl_* calls as usual. The header's gcc type checks wrap
 * curl_easy_setopt in macros, which the pointers cannot be.
 */
#ifndef BRAID_NET_LIBCURL_H
#define BRAID_NET_LIBCURL_H

#include "core/err.h"

#define CURL_DISABLE_TYPECHECK
#include <curl/curl.h>

#define LIBCURL_FUNCTIONS(X)                                                                       \
    X(curl_global_init) X(curl_easy_init) X(curl_easy_cleanup) X(curl_easy_reset)                   \
    X(curl_easy_setopt) X(curl_easy_perform) X(curl_easy_getinfo) X(curl_easy_strerror)             \
    X(curl_slist_append) X(curl_slist_free_all) X(curl_free) X(curl_url) X(curl_url_cleanup)        \
    X(curl_url_get) X(curl_url_set) X(curl_url_strerror) X(curl_multi_init)                         \
    X(curl_multi_cleanup) X(curl_multi_setopt) X(curl_multi_add_handle)                             \
    X(curl_multi_remove_handle) X(curl_multi_perform) X(curl_multi_poll) X(curl_multi_wakeup)       \
    X(curl_multi_info_read)

#undef curl_easy_setopt /* the header's argument-count checks */
#undef curl_easy_getinfo
#undef curl_multi_setopt

struct libcurl {
#define LIBCURL_DECLARE_POINTER(f) __typeof__(f) *p_##f;
    LIBCURL_FUNCTIONS(LIBCURL_DECLARE_POINTER)
#undef LIBCURL_DECLARE_POINTER
};
extern struct libcurl libcurl;

/* Load and start libcurl once per process (any thread; later calls return at once). 0, or
 * BR_EINTERNAL with ERR when it cannot be loaded. Before any curl_* call. */
int libcurl_start(err_t *err);

/* From here on, every curl_* call goes through the loaded library. */
#define curl_global_init (*libcurl.p_curl_global_init)
#define curl_easy_init (*libcurl.p_curl_easy_init)
#define curl_easy_cleanup (*libcurl.p_curl_easy_cleanup)
#define curl_easy_reset (*libcurl.p_curl_easy_reset)
#define curl_easy_setopt (*libcurl.p_curl_easy_setopt)
#define curl_easy_perform (*libcurl.p_curl_easy_perform)
#define curl_easy_getinfo (*libcurl.p_curl_easy_getinfo)
#define curl_easy_strerror (*libcurl.p_curl_easy_strerror)
#define curl_slist_append (*libcurl.p_curl_slist_append)
#define curl_slist_free_all (*libcurl.p_curl_slist_free_all)
#define curl_free (*libcurl.p_curl_free)
#define curl_url (*libcurl.p_curl_url)
#define curl_url_cleanup (*libcurl.p_curl_url_cleanup)
#define curl_url_get (*libcurl.p_curl_url_get)
#define curl_url_set (*libcurl.p_curl_url_set)
#define curl_url_strerror (*libcurl.p_curl_url_strerror)
#define curl_multi_init (*libcurl.p_curl_multi_init)
#define curl_multi_cleanup (*libcurl.p_curl_multi_cleanup)
#define curl_multi_setopt (*libcurl.p_curl_multi_setopt)
#define curl_multi_add_handle (*libcurl.p_curl_multi_add_handle)
#define curl_multi_remove_handle (*libcurl.p_curl_multi_remove_handle)
#define curl_multi_perform (*libcurl.p_curl_multi_perform)
#define curl_multi_poll (*libcurl.p_curl_multi_poll)
#define curl_multi_wakeup (*libcurl.p_curl_multi_wakeup)
#define curl_multi_info_read (*libcurl.p_curl_multi_info_read)

#endif
