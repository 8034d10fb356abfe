/* apikey.h: the gateway's API keys: their form, their SHA-256 hash, and one key's record (name, policy, rates, expiry). */
#ifndef MCPGW_APIKEY_H
#define MCPGW_APIKEY_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "core/toolpolicy.h"

/* A minted key is "sk-mcpgw-" ID "-" SECRET: ID 12 and SECRET 43 characters
 * of [A-Za-z0-9] from the kernel (lib/core/randid.h; the secret carries 256
 * bits). The ID is public (listed, logged, in errors); the secret never is.
 * Only the SHA-256 of the whole key is stored: a key of 256 random bits needs
 * no salt nor slow hash (nothing to guess from the hash; the argument of
 * NIST SP 800-63B 5.1.1.2 for memorised secrets does not apply), and a fast
 * hash keeps the check of every request cheap. Keys of MCPGW_API_KEYS have
 * any form (at least APIKEY_ENV_MIN bytes); their ids are "env1", "env2"... */
#define APIKEY_PREFIX "sk-mcpgw-"
#define APIKEY_ID_CHARS 12
#define APIKEY_SECRET_CHARS 43
#define APIKEY_ID_MAX 32                                                                   /* an id and its NUL */
#define APIKEY_NAME_MAX 128                                                                /* a name and its NUL */
#define APIKEY_TEXT_MAX (sizeof APIKEY_PREFIX + APIKEY_ID_CHARS + 1 + APIKEY_SECRET_CHARS) /* a key and its NUL */
#define APIKEY_HASH_BYTES 32                                                               /* SHA-256 */
#define APIKEY_PRESENTED_MAX 512 /* the longest key a client may send (longer: wrong) */
#define APIKEY_ENV_MIN 16        /* the shortest key MCPGW_API_KEYS takes */

/* One key: what the store keeps (apikey_to_json) and the check needs. */
struct apikey {
	char id[APIKEY_ID_MAX];
	char name[APIKEY_NAME_MAX];
	unsigned char hash[APIKEY_HASH_BYTES];
	struct toolpolicy policy; /* "" lists: every server and tool */
	long rpm;                 /* requests per minute, 0: no limit */
	long tpm;                 /* upstream tokens per minute (chat completions, embeddings), 0: no limit */
	long tcpm;                /* MCP tool calls per minute (POST /v1/tools and chat rounds), 0: no limit */
	int64_t created_ms;       /* wall clock, ms */
	int64_t expires_ms;       /* 0: never */
	int64_t revoked_ms;       /* 0: not revoked */
	int admin;                /* 1: may read the operator's views (GET /metrics) from anywhere */
};

/* apikey_new: mint a key into key (keylen >= APIKEY_TEXT_MAX) and its id
 * into id (idlen >= APIKEY_ID_MAX). 0, or -1 (no randomness from the kernel, errno). */
int apikey_new(char *key, size_t keylen, char *id, size_t idlen);

/* apikey_id: the id of a key of the minted form into id (idlen >=
 * APIKEY_ID_MAX). 0, or -1 when key has another form. */
int apikey_id(const char *key, char *id, size_t idlen);

/* apikey_hash: SHA-256 of len bytes of key (lib/core/sha256: Nettle) into
 * out. 0, or -1 (the digest could not be made). */
int apikey_hash(const char *key, size_t len, unsigned char out[APIKEY_HASH_BYTES]);

/* apikey_equal: the two hashes are equal, in time that does not depend on
 * where they differ (CRYPTO_memcmp). */
int apikey_equal(const unsigned char a[APIKEY_HASH_BYTES], const unsigned char b[APIKEY_HASH_BYTES]);

/* apikey_to_json: the record as the store keeps it (the hash in hex, never
 * the key). New reference, or NULL on ENOMEM. */
json_t *apikey_to_json(const struct apikey *k);

/* apikey_from_json: a stored record (borrowed) into *k. 0, or -1 with err
 * when a field is missing or of the wrong shape. */
int apikey_from_json(const json_t *j, struct apikey *k, char *err, size_t errlen);

/* apikey_parse_date: "YYYY-MM-DD" (the end of that day, UTC: valid through
 * it) or "YYYY-MM-DDTHH:MM[:SS][Z]" (UTC) into *ms since the epoch. 0, or
 * -1 when s is no such date. */
int apikey_parse_date(const char *s, int64_t *ms);

/* apikey_format_date: ms since the epoch as "YYYY-MM-DDTHH:MM:SSZ" into out. */
void apikey_format_date(int64_t ms, char *out, size_t outlen);

/* apikey_live: k may be used at now (ms): not revoked, not expired. */
int apikey_live(const struct apikey *k, int64_t now);

#endif
