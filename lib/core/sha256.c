/* sha256.c: SHA-256 through GnuTLS's Nettle (https://www.lysator.liu.se/~nisse/nettle/nettle.html#Hash-functions), kept behind one small noun: a small library with no start-up work (OpenSSL's libcrypto, used before, added 1.4 MB to every responder's resident size for one digest a request). */
#include "core/sha256.h"

#include <nettle/sha2.h>
#include <string.h>

/* Nettle's header names its functions through macros (sha256_init ->
 * nettle_sha256_init): ours keep their names, and Nettle's are called by
 * their real ones */
#undef sha256_init
#undef sha256_update
#undef sha256_digest

_Static_assert(sizeof(struct sha256_ctx) <= sizeof(((struct sha256 *)0)->ctx.bytes),
	       "struct sha256's room for Nettle's struct sha256_ctx");
_Static_assert(_Alignof(struct sha256_ctx) <= _Alignof(uint64_t), "struct sha256_ctx's alignment");

static struct sha256_ctx *ctx_of(struct sha256 *c)
{
	return (struct sha256_ctx *)(void *)c->ctx.bytes;
}

int sha256_init(struct sha256 *c)
{
	nettle_sha256_init(ctx_of(c));
	c->live = 1;
	return 0;
}

void sha256_update(struct sha256 *c, const void *p, size_t len)
{
	if (!c->live || len == 0)
		return;
	nettle_sha256_update(ctx_of(c), len, p);
}

int sha256_peek(const struct sha256 *c, unsigned char out[SHA256_BYTES])
{
	struct sha256 copy;

	if (!c->live)
		return -1;
	memcpy(&copy, c, sizeof copy);
	return sha256_final(&copy, out);
}

int sha256_final(struct sha256 *c, unsigned char out[SHA256_BYTES])
{
	if (!c->live)
		return -1;
	nettle_sha256_digest(ctx_of(c), SHA256_BYTES, out);
	sha256_free(c);
	return 0;
}

void sha256_free(struct sha256 *c)
{
	memset(c->ctx.bytes, 0, sizeof c->ctx.bytes);
	c->live = 0;
}

void sha256_hex(const unsigned char d[SHA256_BYTES], char out[SHA256_HEX])
{
	static const char digits[] = "0123456789abcdef";

	for (int i = 0; i < SHA256_BYTES; i++) {
		out[2 * i] = digits[d[i] >> 4];
		out[2 * i + 1] = digits[d[i] & 15];
	}
	out[2 * SHA256_BYTES] = '\0';
}
