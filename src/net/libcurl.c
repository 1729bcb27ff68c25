/* libcurl.c - see libcurl.h. */
#include "net/libcurl.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

#define LIBCURL_SONAME "libcurl.so.4"

struct libcurl libcurl;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static char load_error[256]; /* why libcurl cannot be used; empty when it can */

static void load(void)
{
    void *lib = dlopen(LIBCURL_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        snprintf(load_error, sizeof load_error, "%s", dlerror());
        return;
    }
    /* The library stays loaded for the life of the process. POSIX's way to store a dlsym
     * result in a function pointer without an object-to-function cast. */
#define LOAD_POINTER(f)                                                                            \
    if (!(*(void **)&libcurl.p_##f = dlsym(lib, #f))) {                                            \
        snprintf(load_error, sizeof load_error, "%s has no %s", LIBCURL_SONAME, #f);               \
        return;                                                                                    \
    }
    LIBCURL_FUNCTIONS(LOAD_POINTER)
#undef LOAD_POINTER
    CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
    if (rc != CURLE_OK)
        snprintf(load_error, sizeof load_error, "%s", curl_easy_strerror(rc));
}

int libcurl_start(err_t *err)
{
    pthread_once(&once, load);
    if (load_error[0])
        return err_set(err, BR_EINTERNAL, "libcurl cannot start: %s", load_error);
    return 0;
}
