/* guard.h - the outbound address guard's classifier (SPEC §4 "Address guard").
 *
 * A pure function of an IP address and the operator's --allow-net ranges: no sockets, no
 * DNS. The HTTP client calls guard_check from libcurl's open-socket callback with the
 * address it is about to connect to, so every hop of every request is checked after name
 * resolution. A guard is configured once, then read-only: guard_check may be called from
 * any number of threads at once.
 */
#ifndef BRAID_NET_GUARD_H
#define BRAID_NET_GUARD_H

#include "core/err.h"

#include <stddef.h>
#include <sys/socket.h>

typedef struct guard guard_t;

/* A guard that refuses every special-purpose range and allows nothing extra.
 * Returned owned (free with guard_free). */
guard_t *guard_new(void);
void guard_free(guard_t *g);

/* Open CIDR ("127.0.0.1/32", "fd00::/8"; a bare address means a single host). */
int guard_allow_cidr(guard_t *g, const char *cidr, err_t *err);

/* 0 when the address may be connected to, else BR_EBLOCKED with the reason in WHY. */
int guard_check(const guard_t *g, const struct sockaddr *sa, socklen_t len, char *why,
                size_t why_len);

/* guard_check for a textual address in the strict inet_pton forms; other text is refused. */
int guard_check_text(const guard_t *g, const char *ip, char *why, size_t why_len);

#endif
