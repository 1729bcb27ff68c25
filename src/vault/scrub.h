/* scrub.h - a run's scrub set: the secret values it used, in every form they may take on
 * the way out (raw, base64, base64url, percent-encoded, JSON-escaped), and the functions that
 * replace each occurrence of any of them in text and JSON with "[secret]". */
#ifndef BRAID_VAULT_SCRUB_H
#define BRAID_VAULT_SCRUB_H

#include <jansson.h>
#include <stddef.h>

#define SCRUB_MARK "[secret]"
/* Values shorter than this are not added (see scrub.c). */
#define SCRUB_MIN_LEN 4

typedef struct scrub scrub_t;

scrub_t *scrub_new(void);
void scrub_add(scrub_t *s, const unsigned char *secret, size_t len);
/* How many distinct forms the set matches (for tests and metrics). */
size_t scrub_form_count(const scrub_t *s);
char *scrub_text(const scrub_t *s, const char *text, size_t len, size_t *out_len);
json_t *scrub_json(const scrub_t *s, const json_t *v);
void scrub_free(scrub_t *s);

#endif
