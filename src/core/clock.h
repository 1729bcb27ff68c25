/* clock.h - wall-clock and monotonic time in milliseconds, RFC 3339 formatting. */
#ifndef BRAID_CORE_CLOCK_H
#define BRAID_CORE_CLOCK_H

#include <stddef.h>
#include <stdint.h>

/* Milliseconds since the Unix epoch (wall clock): what run records store. */
int64_t clock_now_ms(void);
/* Microseconds since the Unix epoch. */
int64_t clock_now_us(void);
/* Monotonic milliseconds, for deadlines and durations inside one process. */
int64_t clock_mono_ms(void);
/* Format epoch MS as "2026-11-22T17:49:22.123Z" into OUT (at least 32 bytes). */
void clock_format_rfc3339(int64_t ms, char *out, size_t n);
/* Parse an RFC 3339 time (Z or offset, optional fraction) into epoch ms; 0 ok, -1 bad. */
int clock_parse_rfc3339(const char *s, int64_t *ms);
/* Sleep for MS milliseconds. */
void clock_sleep_ms(int64_t ms);

#endif
