/* clock.c - see clock.h. */
#include "core/clock.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int64_t clock_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t clock_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t clock_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Every run record carries four times and every log line one: the date and time of day
 * change once a second, so each thread keeps the text of its last second and writes only the
 * milliseconds. */
void clock_format_rfc3339(int64_t ms, char *out, size_t n)
{
    static _Thread_local int64_t last_secs = INT64_MIN;
    static _Thread_local char head[32]; /* "YYYY-MM-DDTHH:MM:SS" of last_secs */
    static _Thread_local size_t head_len;
    int64_t secs = ms / 1000;
    int milli = (int)(ms % 1000);
    if (milli < 0) { /* before 1970: round down */
        secs--;
        milli += 1000;
    }
    if (secs != last_secs) {
        time_t t = (time_t)secs;
        struct tm tm;
        gmtime_r(&t, &tm);
        int k = snprintf(head, sizeof head, "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900,
                         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        head_len = k > 0 && (size_t)k < sizeof head ? (size_t)k : 0;
        last_secs = secs;
    }
    if (n < head_len + 6) { /* ".mmmZ" and the NUL do not fit: cut, as snprintf would */
        if (n > 0)
            snprintf(out, n, "%s.%03dZ", head, milli);
        return;
    }
    memcpy(out, head, head_len);
    char *p = out + head_len;
    p[0] = '.';
    p[1] = (char)('0' + milli / 100);
    p[2] = (char)('0' + milli / 10 % 10);
    p[3] = (char)('0' + milli % 10);
    p[4] = 'Z';
    p[5] = '\0';
}

int clock_parse_rfc3339(const char *s, int64_t *ms)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    int consumed = 0;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec, &consumed) != 6)
        return -1;
    const char *p = s + consumed;
    int frac = 0, digits = 0;
    if (*p == '.') {
        p++;
        while (*p >= '0' && *p <= '9') {
            if (digits < 3) {
                frac = frac * 10 + (*p - '0');
                digits++;
            }
            p++;
        }
        while (digits < 3) {
            frac *= 10;
            digits++;
        }
    }
    int offset_min = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int hh, mm;
        if (sscanf(p + 1, "%2d:%2d", &hh, &mm) != 2)
            return -1;
        offset_min = (hh * 60 + mm) * (*p == '-' ? -1 : 1);
        p += 6;
    } else {
        return -1;
    }
    if (*p)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t t = timegm(&tm);
    *ms = ((int64_t)t - offset_min * 60) * 1000 + frac;
    return 0;
}

void clock_sleep_ms(int64_t ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0)
        ;
}
