/* test_scrub.c - scrub sets: every form of random secrets found and replaced inside larger
 * texts and JSON values (keys included), echoes in base64 inside JSON, overlaps, no false
 * positives, the empty set as identity, many secrets at once.
 */
#include "vault/scrub.h"

#include "core/xalloc.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Base64 of IN (N bytes), URL alphabet when URL, with padding when PAD: returned owned. An
 * implementation separate from libsodium's, so the test checks the forms, not itself. */
static char *b64(const unsigned char *in, size_t n, int url, int pad)
{
    char *o = xmalloc(n / 3 * 4 + 8), *p = o;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v =
            (unsigned)in[i] << 16 | (i + 1 < n ? in[i + 1] : 0) << 8 | (i + 2 < n ? in[i + 2] : 0);
        size_t chars = n - i >= 3 ? 4 : n - i + 1;
        for (size_t j = 0; j < 4; j++) {
            char c = B64[(v >> (18 - 6 * j)) & 63];
            if (url && c == '+')
                c = '-';
            if (url && c == '/')
                c = '_';
            if (j < chars)
                *p++ = c;
            else if (pad)
                *p++ = '=';
        }
    }
    *p = '\0';
    return o;
}

static char *pct(const unsigned char *in, size_t n, int upper)
{
    char *o = xmalloc(3 * n + 1), *p = o;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = in[i];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            strchr("-._~", c))
            *p++ = (char)c;
        else
            p += sprintf(p, upper ? "%%%02X" : "%%%02x", c);
    }
    *p = '\0';
    return o;
}

/* A random secret of N bytes drawn from ALPHABET (NULL: any byte but NUL). */
static void random_secret(unsigned char *s, size_t n, const char *alphabet)
{
    for (size_t i = 0; i < n; i++)
        s[i] = alphabet ? (unsigned char)alphabet[rand() % (int)strlen(alphabet)]
                        : (unsigned char)(1 + rand() % 255);
}

/* Scrub "head " FORM " tail" and expect "head [secret] tail". */
static void expect_scrubbed(const scrub_t *s, const char *form, size_t form_len)
{
    char *text = xmalloc(form_len + 32);
    memcpy(text, "head <", 6);
    memcpy(text + 6, form, form_len);
    memcpy(text + 6 + form_len, "> tail", 6);
    size_t out_len = 0;
    char *out = scrub_text(s, text, form_len + 12, &out_len);
    assert_string_equal(out, "head <[secret]> tail");
    assert_int_equal(out_len, strlen(out));
    free(out);
    free(text);
}

static void test_scrub_each_form(void **state)
{
    (void)state;
    const char *alphabets[] = {"abcdefghijklmnopqrstuvwxyz0123456789",
                               "ab c/d+e=f&g?h\"i\\j\n\t%~é", NULL};
    for (int round = 0; round < 300; round++) {
        unsigned char sec[48];
        size_t n = 4 + (size_t)(rand() % 40);
        random_secret(sec, n, alphabets[round % 3]);
        scrub_t *s = scrub_new();
        scrub_add(s, sec, n);
        expect_scrubbed(s, (const char *)sec, n);
        for (int url = 0; url < 2; url++)
            for (int pad = 0; pad < 2; pad++) {
                char *f = b64(sec, n, url, pad);
                expect_scrubbed(s, f, strlen(f));
                free(f);
            }
        for (int upper = 0; upper < 2; upper++) {
            char *f = pct(sec, n, upper);
            expect_scrubbed(s, f, strlen(f));
            free(f);
        }
        /* JSON-escaped as Jansson writes it (when the value is valid UTF-8). */
        json_t *js = json_stringn((const char *)sec, n);
        if (js) {
            char *dump = json_dumps(js, JSON_ENCODE_ANY);
            expect_scrubbed(s, dump + 1, strlen(dump) - 2); /* without the quotes */
            free(dump);
            dump = json_dumps(js, JSON_ENCODE_ANY | JSON_ENSURE_ASCII | JSON_ESCAPE_SLASH);
            expect_scrubbed(s, dump + 1, strlen(dump) - 2);
            free(dump);
            json_decref(js);
        }
        scrub_free(s);
    }
}

static void test_scrub_json_values_and_keys(void **state)
{
    (void)state;
    const unsigned char sec[] = "tok_9f8e7d6c5b4a";
    size_t n = sizeof sec - 1;
    scrub_t *s = scrub_new();
    scrub_add(s, sec, n);
    char *enc = b64(sec, n, 0, 1);
    char *basic = b64((const unsigned char *)"user:tok_9f8e7d6c5b4a", 21, 0, 1);
    json_t *v = json_pack("{s:s, s:[s, i, {s:s}], s:s, s:s, s:s, s:n, s:b, s:f}", "Authorization",
                          "Bearer tok_9f8e7d6c5b4a", "list", "x tok_9f8e7d6c5b4a y", 42,
                          "tok_9f8e7d6c5b4a", "nested", "echo", enc, "basic", basic, "safe",
                          "nothing to see", "none", "flag", 1, "num", 1.5);
    json_t *out = scrub_json(s, v);
    char *dump = json_dumps(out, JSON_SORT_KEYS | JSON_COMPACT);
    assert_null(strstr(dump, "tok_9f8e7d6c5b4a"));
    assert_null(strstr(dump, enc));
    assert_string_equal(json_string_value(json_object_get(out, "Authorization")),
                        "Bearer [secret]");
    assert_string_equal(json_string_value(json_object_get(out, "echo")), "[secret]");
    assert_string_equal(json_string_value(json_object_get(out, "safe")), "nothing to see");
    json_t *inner = json_array_get(json_object_get(out, "list"), 2);
    assert_string_equal(json_string_value(json_object_get(inner, "[secret]")), "nested");
    assert_int_equal(json_integer_value(json_array_get(json_object_get(out, "list"), 1)), 42);
    /* The Basic header's base64 holds the secret at an offset: its core is scrubbed. */
    const char *b = json_string_value(json_object_get(out, "basic"));
    assert_non_null(strstr(b, "[secret]"));
    assert_true(strlen(b) < 16);
    /* The original is untouched. */
    assert_string_equal(json_string_value(json_object_get(v, "Authorization")),
                        "Bearer tok_9f8e7d6c5b4a");
    free(dump);
    json_decref(out);
    json_decref(v);

    /* A base64 echo of the secret inside a JSON document kept as a string. */
    char *doc = xasprintf("{\"headers\":{\"authorization\":\"Basic %s\"}}", enc);
    json_t *sv = json_string(doc);
    out = scrub_json(s, sv);
    assert_string_equal(json_string_value(out),
                        "{\"headers\":{\"authorization\":\"Basic [secret]\"}}");
    json_decref(out);
    json_decref(sv);
    free(doc);

    /* Keys that collide once scrubbed keep both members. */
    scrub_t *two = scrub_new();
    scrub_add(two, (const unsigned char *)"alpha-secret", 12);
    scrub_add(two, (const unsigned char *)"bravo-secret", 12);
    v = json_pack("{s:i, s:i, s:i}", "alpha-secret", 1, "bravo-secret", 2, "[secret]#2", 3);
    out = scrub_json(two, v);
    assert_int_equal(json_object_size(out), 3);
    assert_non_null(json_object_get(out, "[secret]"));
    /* A number whose digits are a secret becomes the mark. */
    scrub_t *num = scrub_new();
    scrub_add(num, (const unsigned char *)"987654321", 9);
    json_t *nv = json_integer(987654321);
    json_t *no = scrub_json(num, nv);
    assert_string_equal(json_string_value(no), "[secret]");
    json_decref(no);
    json_decref(nv);
    scrub_free(num);
    json_decref(out);
    json_decref(v);
    scrub_free(two);
    free(basic);
    free(enc);
    scrub_free(s);
}

static void test_scrub_overlaps_and_repeats(void **state)
{
    (void)state;
    scrub_t *s = scrub_new();
    scrub_add(s, (const unsigned char *)"aaaa", 4);
    char *out = scrub_text(s, "xaaaaaaay aaaa aaa", 18, NULL);
    assert_string_equal(out, "x[secret]y [secret] aaa");
    free(out);
    scrub_add(s, (const unsigned char *)"abcdef", 6);
    scrub_add(s, (const unsigned char *)"defghi", 6);
    out = scrub_text(s, "1abcdefghi2abcdefabcdef3", 24, NULL);
    assert_string_equal(out, "1[secret]2[secret][secret]3");
    free(out);
    /* Adding again changes nothing; short values are ignored. */
    size_t forms = scrub_form_count(s);
    scrub_add(s, (const unsigned char *)"abcdef", 6);
    scrub_add(s, (const unsigned char *)"abc", 3);
    scrub_add(s, NULL, 10);
    assert_int_equal(scrub_form_count(s), forms);
    /* Embedded NULs pass through. */
    size_t ol = 0;
    out = scrub_text(s, "a\0aaaa\0b", 8, &ol);
    assert_int_equal(ol, 12);
    assert_memory_equal(out, "a\0[secret]\0b", 12);
    free(out);
    scrub_free(s);
}

static void test_scrub_no_false_positives(void **state)
{
    (void)state;
    scrub_t *s = scrub_new();
    scrub_add(s, (const unsigned char *)"Zq8-xW3_pL0vR7t", 15);
    const char *texts[] = {"", "Zq8-xW3_pL0vR7", "q8-xW3_pL0vR7t",
                           "The quick brown fox jumps over the lazy dog 0123456789",
                           "{\"a\":[1,2,3],\"b\":\"Zq8 xW3 pL0vR7t\"}"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        size_t ol = 99;
        char *out = scrub_text(s, texts[i], strlen(texts[i]), &ol);
        assert_string_equal(out, texts[i]);
        assert_int_equal(ol, strlen(texts[i]));
        free(out);
    }
    /* Random base64 text: with a 15-byte secret no form should appear by chance. */
    char big[20001];
    for (size_t i = 0; i < 20000; i++)
        big[i] = B64[rand() % 64];
    big[20000] = '\0';
    char *out = scrub_text(s, big, 20000, NULL);
    assert_string_equal(out, big);
    free(out);
    scrub_free(s);
}

static void test_scrub_empty_set_is_identity(void **state)
{
    (void)state;
    scrub_t *s = scrub_new();
    size_t ol;
    char *out = scrub_text(s, "any text [secret] at all", 24, &ol);
    assert_string_equal(out, "any text [secret] at all");
    free(out);
    out = scrub_text(NULL, "x", 1, NULL);
    assert_string_equal(out, "x");
    free(out);
    out = scrub_text(s, NULL, 0, &ol);
    assert_string_equal(out, "");
    assert_int_equal(ol, 0);
    free(out);
    json_t *v = json_loads("{\"a\":[1,2.5,\"x\",null,true,{\"b\":\"c\"}]}", 0, NULL);
    json_t *c = scrub_json(s, v);
    assert_true(json_equal(v, c));
    json_decref(c);
    json_decref(v);
    assert_null(scrub_json(s, NULL));
    scrub_free(s);
    scrub_free(NULL);
}

static void test_scrub_many_secrets(void **state)
{
    (void)state;
    enum { N = 200, LEN = 24 };
    static unsigned char secs[N][LEN];
    scrub_t *s = scrub_new();
    for (int i = 0; i < N; i++) {
        random_secret(secs[i], LEN, NULL);
        scrub_add(s, secs[i], LEN);
    }
    /* A text holding every secret in a rotating form, separated by plain words. */
    char *text = xstrdup("");
    for (int i = 0; i < N; i++) {
        char *f = i % 3 == 0   ? b64(secs[i], LEN, i % 2, 1)
                  : i % 3 == 1 ? pct(secs[i], LEN, 1)
                               : b64(secs[i], LEN, 1, 0);
        char *t = xasprintf("%s word%d %s", text, i, f);
        free(text);
        free(f);
        text = t;
    }
    size_t ol;
    char *out = scrub_text(s, text, strlen(text), &ol);
    size_t marks = 0;
    for (const char *p = out; (p = strstr(p, "[secret]")); p += 8)
        marks++;
    assert_int_equal(marks, N);
    for (int i = 0; i < N; i++) {
        char *w = xasprintf("word%d ", i);
        assert_non_null(strstr(out, w));
        free(w);
    }
    free(out);
    free(text);
    scrub_free(s);
}

int main(void)
{
    srand(12345);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scrub_each_form),
        cmocka_unit_test(test_scrub_json_values_and_keys),
        cmocka_unit_test(test_scrub_overlaps_and_repeats),
        cmocka_unit_test(test_scrub_no_false_positives),
        cmocka_unit_test(test_scrub_empty_set_is_identity),
        cmocka_unit_test(test_scrub_many_secrets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
