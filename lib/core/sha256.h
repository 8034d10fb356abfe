/* sha256.h: SHA-256 (FIPS 180-4), incremental, for digests the gateway keys things by (no secret compared with it). */
#ifndef MCPGW_SHA256_H
#define MCPGW_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_BYTES 32
#define SHA256_HEX (2 * SHA256_BYTES + 1) /* lower-case hex digits and their NUL */

/* one digest in progress: sha256_init, any number of sha256_update, sha256_final */
struct sha256 {
	uint32_t h[8];
	uint64_t bytes; /* fed so far */
	unsigned char block[64];
	size_t used; /* bytes of block filled */
};

/* sha256_init: a new digest. */
void sha256_init(struct sha256 *c);

/* sha256_update: feed len bytes of p (len 0: nothing; p may then be NULL). */
void sha256_update(struct sha256 *c, const void *p, size_t len);

/* sha256_final: the digest of everything fed, into out; c is then spent
 * (sha256_init it again to reuse). */
void sha256_final(struct sha256 *c, unsigned char out[SHA256_BYTES]);

/* sha256_hex: the digest as lower-case hex, NUL-ended, into out. */
void sha256_hex(const unsigned char d[SHA256_BYTES], char out[SHA256_HEX]);

#endif
