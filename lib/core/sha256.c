/* sha256.c: SHA-256 through OpenSSL's EVP interface (https://docs.openssl.org/3.0/man3/EVP_DigestInit/), kept behind one small noun. */
#include "core/sha256.h"

#include <openssl/evp.h>
#include <pthread.h>

/* The algorithm, fetched once per process (EVP_MD_fetch) rather than looked up
 * by every digest (EVP_sha256's implicit fetch): a digest per request (the
 * API-key check) costs the hashing only. */
static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void sha256_fetch(void)
{
	sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL); /* kept for the process's life */
}

int sha256_init(struct sha256 *c)
{
	c->failed = 0;
	c->ctx = NULL;
	if (pthread_once(&sha256_once, sha256_fetch) != 0 || !sha256_md || !(c->ctx = EVP_MD_CTX_new()))
		return -1;
	if (EVP_DigestInit_ex(c->ctx, sha256_md, NULL) != 1) {
		sha256_free(c);
		return -1;
	}
	return 0;
}

void sha256_update(struct sha256 *c, const void *p, size_t len)
{
	if (!c->ctx || c->failed || len == 0)
		return;
	if (EVP_DigestUpdate(c->ctx, p, len) != 1)
		c->failed = 1;
}

int sha256_peek(const struct sha256 *c, unsigned char out[SHA256_BYTES])
{
	struct sha256 copy = { .ctx = NULL, .failed = 0 };

	if (!c->ctx || c->failed || !(copy.ctx = EVP_MD_CTX_new()))
		return -1;
	if (EVP_MD_CTX_copy_ex(copy.ctx, c->ctx) != 1) {
		sha256_free(&copy);
		return -1;
	}
	return sha256_final(&copy, out);
}

int sha256_final(struct sha256 *c, unsigned char out[SHA256_BYTES])
{
	unsigned int n = 0;
	int ok = c->ctx && !c->failed && EVP_DigestFinal_ex(c->ctx, out, &n) == 1 && n == SHA256_BYTES;

	sha256_free(c);
	return ok ? 0 : -1;
}

void sha256_free(struct sha256 *c)
{
	EVP_MD_CTX_free(c->ctx); /* NULL: nothing */
	c->ctx = NULL;
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
