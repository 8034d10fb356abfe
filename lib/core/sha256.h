/* sha256.h: SHA-256 digests, incremental, from GnuTLS's Nettle (libnettle), for what the gateway keys things by (no secret compared with it). */
#ifndef MCPGW_SHA256_H
#define MCPGW_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_BYTES 32
#define SHA256_HEX (2 * SHA256_BYTES + 1) /* lower-case hex digits and their NUL */

/* one digest in progress: sha256_init, any number of sha256_update, then
 * sha256_final (or sha256_free to drop it). Its members are the module's:
 * Nettle's struct sha256_ctx held in place (no allocation), so that this
 * header needs no Nettle header (whose macros rename sha256_init). */
struct sha256 {
	union {
		unsigned char bytes[128]; /* struct sha256_ctx (112 bytes in Nettle 3.x; checked when built) */
		uint64_t align;
	} ctx;
	int live; /* 1 from sha256_init to sha256_final or sha256_free */
};

/* sha256_init: a new digest (FIPS 180-4, Nettle's sha256_init). 0; it
 * cannot fail (nothing is allocated), and -1 is kept in the contract for
 * callers written against a library that could. */
int sha256_init(struct sha256 *c);

/* sha256_update: feed len bytes of p (len 0: nothing; p may then be NULL).
 * After sha256_final or sha256_free: nothing. */
void sha256_update(struct sha256 *c, const void *p, size_t len);

/* sha256_peek: the digest of what was fed so far into out, c left as it
 * is to be fed more (a copy of the state is finished). 0, or -1 when c is
 * not live (finished or freed). */
int sha256_peek(const struct sha256 *c, unsigned char out[SHA256_BYTES]);

/* sha256_final: the digest of everything fed into out; c is spent. 0, or
 * -1 when c was not live. */
int sha256_final(struct sha256 *c, unsigned char out[SHA256_BYTES]);

/* sha256_free: drop a digest in progress (after sha256_final: nothing). */
void sha256_free(struct sha256 *c);

/* sha256_hex: the digest d as lower-case hex, NUL-ended, into out. */
void sha256_hex(const unsigned char d[SHA256_BYTES], char out[SHA256_HEX]);

#endif
