/* uuid.c - UUIDv7 (RFC 9562): 48 bits of epoch ms, then a counter seeded at random per
 * millisecond so that ids from one process stay strictly increasing. */
#include "core/uuid.h"

#include "core/clock.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

/* Random bits from a per-thread xorshift generator seeded once from the kernel: a getrandom(2)
 * system call per id showed up in the sub-call profile. Ids need uniqueness, not secrecy. */
static _Thread_local uint64_t rng_state;

static uint64_t next_random(void)
{
    if (!rng_state) {
        if (getrandom(&rng_state, sizeof rng_state, 0) != (ssize_t)sizeof rng_state)
            rng_state = (uint64_t)clock_now_us();
        rng_state |= 1;
    }
    uint64_t x = rng_state; /* xorshift64* */
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng_state = x;
    return x * 0x2545F4914F6CDD1Dull;
}
static int64_t last_ms;
static uint64_t counter; /* 42 bits: 12 in rand_a, 30 at the top of rand_b */

int64_t uuid_v7(char out[UUID_STR_LEN])
{
    uint8_t rnd[8];
    uint64_t r = next_random();
    memcpy(rnd, &r, sizeof rnd);

    pthread_mutex_lock(&lock);
    int64_t ms = clock_now_ms();
    if (ms > last_ms) {
        last_ms = ms;
        counter = ((uint64_t)rnd[0] << 8 | rnd[1]) & 0x1ffff; /* leaves room to count up */
    } else {
        counter++;
        if (counter >> 42) { /* overflow: borrow the next millisecond */
            last_ms++;
            counter = 0;
        }
        ms = last_ms;
    }
    uint64_t c = counter;
    pthread_mutex_unlock(&lock);

    uint8_t b[16];
    b[0] = (uint8_t)(ms >> 40);
    b[1] = (uint8_t)(ms >> 32);
    b[2] = (uint8_t)(ms >> 24);
    b[3] = (uint8_t)(ms >> 16);
    b[4] = (uint8_t)(ms >> 8);
    b[5] = (uint8_t)ms;
    b[6] = (uint8_t)(0x70 | ((c >> 38) & 0x0f));
    b[7] = (uint8_t)(c >> 30);
    b[8] = (uint8_t)(0x80 | ((c >> 24) & 0x3f));
    b[9] = (uint8_t)(c >> 16);
    b[10] = (uint8_t)(c >> 8);
    b[11] = (uint8_t)c;
    memcpy(b + 12, rnd + 2, 4);

    static const char hex[] = "0123456789abcdef";
    char *p = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *p++ = '-';
        *p++ = hex[b[i] >> 4];
        *p++ = hex[b[i] & 15];
    }
    *p = '\0';
    return ms;
}

bool uuid_valid(const char *s)
{
    for (int i = 0; i < 36; i++) {
        char c = s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-')
                return false;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
            return false;
        }
    }
    return s[36] == '\0';
}
