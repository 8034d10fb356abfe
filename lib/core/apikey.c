/* apikey.c: API keys: minting, the id in a key, SHA-256 through Nettle, constant-time comparison, the stored record. */
#include "core/apikey.h"
#include "core/sha256.h"

#include <nettle/memops.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/randid.h"

int apikey_new(char *key, size_t keylen, char *id, size_t idlen)
{
	char secret[APIKEY_SECRET_CHARS + 1], rid[RANDID_MAX_CHARS + 1];

	/* randid mints at least RANDID_MIN_CHARS characters: the first 12 are as uniform */
	if (keylen < APIKEY_TEXT_MAX || idlen < APIKEY_ID_MAX || randid_new(rid, sizeof rid, NULL, RANDID_MIN_CHARS) < 0 ||
	    randid_new(secret, sizeof secret, NULL, APIKEY_SECRET_CHARS) < 0)
		return -1;
	memset(id, 0, idlen);
	memcpy(id, rid, APIKEY_ID_CHARS);
	snprintf(key, keylen, "%s%s-%s", APIKEY_PREFIX, id, secret);
	memset(secret, 0, sizeof secret);
	return 0;
}

/* alnum: n characters of [A-Za-z0-9] at s */
static int alnum(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9')))
			return 0;
	return 1;
}

int apikey_id(const char *key, char *id, size_t idlen)
{
	size_t p = sizeof APIKEY_PREFIX - 1;

	if (idlen < APIKEY_ID_MAX || strncmp(key, APIKEY_PREFIX, p) != 0 ||
	    strlen(key) != p + APIKEY_ID_CHARS + 1 + APIKEY_SECRET_CHARS || !alnum(key + p, APIKEY_ID_CHARS) ||
	    key[p + APIKEY_ID_CHARS] != '-' || !alnum(key + p + APIKEY_ID_CHARS + 1, APIKEY_SECRET_CHARS))
		return -1;
	memcpy(id, key + p, APIKEY_ID_CHARS);
	id[APIKEY_ID_CHARS] = '\0';
	return 0;
}

int apikey_hash(const char *key, size_t len, unsigned char out[APIKEY_HASH_BYTES])
{
	struct sha256 c;

	_Static_assert(APIKEY_HASH_BYTES == SHA256_BYTES, "a key's hash is its SHA-256");
	if (sha256_init(&c) < 0)
		return -1;
	sha256_update(&c, key, len);
	return sha256_final(&c, out);
}

int apikey_equal(const unsigned char a[APIKEY_HASH_BYTES], const unsigned char b[APIKEY_HASH_BYTES])
{
	return memeql_sec(a, b, APIKEY_HASH_BYTES) != 0; /* Nettle: constant time */
}

json_t *apikey_to_json(const struct apikey *k)
{
	char hex[APIKEY_HASH_BYTES * 2 + 1];

	for (int i = 0; i < APIKEY_HASH_BYTES; i++)
		snprintf(hex + 2 * i, 3, "%02x", k->hash[i]);
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:b}", "id", k->id, "name", k->name,
			 "sha256", hex, "servers", k->policy.servers, "tools", k->policy.tools, "rpm",
			 (json_int_t)k->rpm, "tpm", (json_int_t)k->tpm, "tcpm", (json_int_t)k->tcpm, "created_ms",
			 (json_int_t)k->created_ms, "expires_ms", (json_int_t)k->expires_ms, "revoked_ms",
			 (json_int_t)k->revoked_ms, "admin", k->admin != 0);
}

/* hexbyte: two hex digits at s as a byte; -1 if not */
static int hexbyte(const char *s)
{
	int v = 0;

	for (int i = 0; i < 2; i++) {
		char c = s[i];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= c - '0';
		else if (c >= 'a' && c <= 'f')
			v |= c - 'a' + 10;
		else
			return -1;
	}
	return v;
}

/* copy: a string field into dst; 0, or -1 when missing or too long */
static int copy(const json_t *j, const char *field, char *dst, size_t n)
{
	const char *v = json_string_value(json_object_get(j, field));

	if (!v || strlen(v) >= n)
		return -1;
	memcpy(dst, v, strlen(v) + 1);
	return 0;
}

int apikey_from_json(const json_t *j, struct apikey *k, char *err, size_t errlen)
{
	const char *hex = json_string_value(json_object_get(j, "sha256"));
	const json_t *admin = json_object_get(j, "admin");
	json_int_t rpm, tpm, tcpm, created, expires, revoked;

	memset(k, 0, sizeof *k);
	if (copy(j, "id", k->id, sizeof k->id) < 0 || copy(j, "name", k->name, sizeof k->name) < 0 ||
	    copy(j, "servers", k->policy.servers, sizeof k->policy.servers) < 0 ||
	    copy(j, "tools", k->policy.tools, sizeof k->policy.tools) < 0 || !hex ||
	    strlen(hex) != APIKEY_HASH_BYTES * 2 ||
	    json_unpack((json_t *)j, "{s:I, s:I, s:I, s:I, s:I, s:I}", "rpm", &rpm, "tpm", &tpm, "tcpm", &tcpm,
			"created_ms", &created, "expires_ms", &expires, "revoked_ms", &revoked) < 0 ||
	    rpm < 0 || tpm < 0 || tcpm < 0 || rpm > LONG_MAX || tpm > LONG_MAX || tcpm > LONG_MAX ||
	    (admin && !json_is_boolean(admin)))
		goto bad;
	for (int i = 0; i < APIKEY_HASH_BYTES; i++) {
		int b = hexbyte(hex + 2 * i);

		if (b < 0)
			goto bad;
		k->hash[i] = (unsigned char)b;
	}
	k->rpm = (long)rpm;
	k->tpm = (long)tpm;
	k->tcpm = (long)tcpm;
	k->created_ms = created;
	k->expires_ms = expires;
	k->revoked_ms = revoked;
	k->admin = json_is_true(admin); /* absent (a record made before admin keys): not admin */
	return 0;
bad:
	snprintf(err, errlen, "API key record %.40s: a field is missing or malformed", k->id[0] ? k->id : "?");
	return -1;
}

int apikey_parse_date(const char *s, int64_t *ms)
{
	struct tm tm;
	int y, mo, d, h = 23, mi = 59, sec = 59, n = 0, end = 0;
	time_t t;

	memset(&tm, 0, sizeof tm);
	if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3 || n != 10)
		return -1;
	if (s[n]) {
		if (s[n] != 'T' || sscanf(s + n, "T%2d:%2d%n", &h, &mi, &end) != 2 || end != 6)
			return -1;
		n += end;
		sec = 0;
		if (s[n] == ':') {
			if (sscanf(s + n, ":%2d%n", &sec, &end) != 1 || end != 3)
				return -1;
			n += end;
		}
		if (s[n] == 'Z')
			n++;
		if (s[n])
			return -1;
	}
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60 || h < 0 || mi < 0 ||
	    sec < 0)
		return -1;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	if ((t = timegm(&tm)) == (time_t)-1 || tm.tm_mday != d || tm.tm_mon != mo - 1)
		return -1; /* "2026-02-30" normalised to March: refused */
	*ms = (int64_t)t * 1000 + (s[10] ? 0 : 999);
	return 0;
}

void apikey_format_date(int64_t ms, char *out, size_t outlen)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	if (!gmtime_r(&t, &tm) || strftime(out, outlen, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, outlen, "?");
}

int apikey_live(const struct apikey *k, int64_t now)
{
	return !k->revoked_ms && (!k->expires_ms || now < k->expires_ms);
}
