/* uuid.h - UUIDv7 run ids: time-ordered, so ids sort by creation time. */
#ifndef BRAID_CORE_UUID_H
#define BRAID_CORE_UUID_H

#include <stdbool.h>
#include <stdint.h>

#define UUID_STR_LEN 37 /* 36 characters and the NUL */

/* Write a new UUIDv7 as lower-case text into OUT and return the epoch millisecond it carries.
 * Thread-safe; ids made by one process are strictly increasing even within one millisecond, so
 * the returned times never go back from one id to the next. */
int64_t uuid_v7(char out[UUID_STR_LEN]);
/* Whether S is a well-formed UUID in canonical text form. */
bool uuid_valid(const char *s);

#endif
