/* sha256.h: SHA-256 digests, incremental, from OpenSSL's libcrypto (EVP), for what the gateway keys things by (no secret compared with it). */
#ifndef MCPGW_SHA256_H
#define MCPGW_SHA256_H

#include <stddef.h>

#define SHA256_BYTES 32
#define SHA256_HEX (2 * SHA256_BYTES + 1) /* lower-case hex digits and their NUL */

/* one digest in progress: sha256_init, any number of sha256_update, then
 * sha256_final (or sha256_free to drop it). Its members are the module's. */
struct sha256 {
	void *ctx;  /* EVP_MD_CTX, NULL once final or freed */
	int failed; /* an update failed: sha256_final says so */
};

/* sha256_init: a new digest (FIPS 180-4, through EVP_DigestInit_ex; the
 * algorithm fetched once per process, thread-safe). 0, or
 * -1 when libcrypto could not make one (out of memory); c is then freed. */
int sha256_init(struct sha256 *c);

/* sha256_update: feed len bytes of p (len 0: nothing; p may then be NULL).
 * A failure is kept for sha256_final. */
void sha256_update(struct sha256 *c, const void *p, size_t len);

/* sha256_peek: the digest of what was fed so far into out, c left as it
 * is to be fed more (EVP_MD_CTX_copy_ex). 0, or -1 (out of memory, or an
 * update had failed). */
int sha256_peek(const struct sha256 *c, unsigned char out[SHA256_BYTES]);

/* sha256_final: the digest of everything fed into out; c is freed. 0, or
 * -1 when it could not be made (an update or libcrypto failed). */
int sha256_final(struct sha256 *c, unsigned char out[SHA256_BYTES]);

/* sha256_free: drop a digest in progress (after sha256_final: nothing). */
void sha256_free(struct sha256 *c);

/* sha256_hex: the digest d as lower-case hex, NUL-ended, into out. */
void sha256_hex(const unsigned char d[SHA256_BYTES], char out[SHA256_HEX]);

#endif
