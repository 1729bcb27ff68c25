/* test_fiber.c - fibers: switching in both directions, their own stacks, what travels with
 * them (the crash report's run), sleeps through a host and on a plain thread. */
#include "core/clock.h"
#include "core/crash.h"
#include "core/fiber.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

static char trail[64];

static void note(char c)
{
    size_t n = strlen(trail);
    trail[n] = c;
    trail[n + 1] = '\0';
}

static void two_steps(void *arg)
{
    const char *name = arg;
    assert_non_null(fiber_current());
    note(name[0]);
    fiber_yield();
    note(name[1]);
}

/* Two fibers interleave with their host: each runs until it yields, and resumes where it
 * left off; a finished fiber says so. */
static void test_interleave(void **state)
{
    (void)state;
    trail[0] = '\0';
    static char a_name[] = "aA", b_name[] = "bB";
    fiber_t *a = fiber_new(two_steps, a_name, 64 * 1024);
    fiber_t *b = fiber_new(two_steps, b_name, 64 * 1024);
    assert_non_null(a);
    assert_non_null(b);
    assert_null(fiber_current());
    assert_false(fiber_resume(a));
    note('.');
    assert_false(fiber_resume(b));
    note('.');
    assert_true(fiber_resume(b));
    assert_true(fiber_resume(a));
    assert_true(fiber_resume(a)); /* finished stays finished */
    assert_string_equal(trail, "a.b.BA");
    assert_null(fiber_current());
    fiber_free(a);
    fiber_free(b);
}

static size_t deep(size_t n)
{
    volatile char pad[1024];
    pad[0] = (char)n;
    return n == 0 ? (size_t)pad[0] : deep(n - 1) + 1;
}

static void stack_user(void *arg)
{
    char here;
    char *low = fiber_stack_low();
    assert_non_null(low);
    assert_true(&here > low);
    *(size_t *)arg = deep(1000) + (size_t)(&here - low); /* about 1 MiB of frames */
}

/* A fiber runs on a stack of its own, as large as asked, and knows where it ends; the host's
 * stack is not one. */
static void test_own_stack(void **state)
{
    (void)state;
    size_t out = 0;
    fiber_t *f = fiber_new(stack_user, &out, 4u << 20);
    assert_non_null(f);
    assert_true(fiber_resume(f));
    assert_true(out > 1000 && out < (4u << 20) + 1001);
    assert_null(fiber_stack_low());
    fiber_free(f);
    /* The pooled stack serves the next fiber. */
    for (int i = 0; i < 200; i++) {
        f = fiber_new(stack_user, &out, 4u << 20);
        assert_non_null(f);
        assert_true(fiber_resume(f));
        fiber_free(f);
    }
}

static void names_run(void *arg)
{
    crash_set_run(arg);
    fiber_yield();
    assert_string_equal(crash_current_run(), arg); /* still its own after the host's turn */
    crash_set_run(NULL);
}

/* The run a crash report names travels with the fiber that set it, not with the thread. */
static void test_crash_run_travels(void **state)
{
    (void)state;
    crash_set_run("host-run");
    static char name[] = "fiber-run";
    fiber_t *f = fiber_new(names_run, name, 64 * 1024);
    assert_false(fiber_resume(f));
    assert_string_equal(crash_current_run(), "host-run");
    crash_set_run("host-run-2");
    assert_true(fiber_resume(f));
    assert_string_equal(crash_current_run(), "host-run-2");
    crash_set_run(NULL);
    fiber_free(f);
}

static int64_t slept_ms;

static void host_sleep(void *host, fiber_t *f, int64_t ms)
{
    assert_ptr_equal(host, &slept_ms);
    assert_ptr_equal(f, fiber_current());
    slept_ms += ms;
    fiber_yield();
}

static void sleeper(void *arg)
{
    (void)arg;
    fiber_sleep_ms(250);
    fiber_sleep_ms(0); /* nothing to wait for: no call to the host */
    fiber_sleep_ms(50);
}

/* A fiber's sleep goes through its host, which decides when to resume it; on a thread's own
 * stack the thread sleeps. */
static void test_sleep(void **state)
{
    (void)state;
    slept_ms = 0;
    fiber_t *f = fiber_new(sleeper, NULL, 64 * 1024);
    fiber_set_host(f, &slept_ms, host_sleep);
    int64_t t0 = clock_mono_ms();
    assert_false(fiber_resume(f));
    assert_int_equal(slept_ms, 250);
    assert_false(fiber_resume(f));
    assert_int_equal(slept_ms, 300);
    assert_true(fiber_resume(f));
    assert_true(clock_mono_ms() - t0 < 200); /* the host did not sleep for it */
    fiber_free(f);

    t0 = clock_mono_ms();
    fiber_sleep_ms(60);
    assert_true(clock_mono_ms() - t0 >= 60);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_interleave),
        cmocka_unit_test(test_own_stack),
        cmocka_unit_test(test_crash_run_travels),
        cmocka_unit_test(test_sleep),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
