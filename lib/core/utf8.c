/* utf8.c: UTF-8 decoding, encoding, sequence lengths and safe cuts (RFC 3629, section 4's well-formed sequences). */
#include "core/utf8.h"

size_t utf8_seq_len(const unsigned char *s, size_t n)
{
	unsigned c = s[0], v;
	size_t len;

	if (c < 0x80)
		return 1;
	if (c < 0xC2 || c > 0xF4)
		return 0;
	len = c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
	if (n < len)
		return 0;
	v = c & (0x7Fu >> len);
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		v = (v << 6) | (s[i] & 0x3F);
	}
	if ((len == 3 && v < 0x800) || (len == 4 && v < 0x10000) || (v >= 0xD800 && v <= 0xDFFF) || v > 0x10FFFF)
		return 0;
	return len;
}

long utf8_next(const unsigned char *s, size_t len, size_t *i)
{
	size_t n = utf8_seq_len(s + *i, len - *i);
	long cp;

	if (n == 0) {
		(*i)++;
		return -1;
	}
	cp = n == 1 ? s[*i] : s[*i] & (0x7F >> n);
	for (size_t k = 1; k < n; k++)
		cp = (cp << 6) | (s[*i + k] & 0x3F);
	*i += n;
	return cp;
}

size_t utf8_put(uint32_t cp, char *out)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xC0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xE0 | (cp >> 12));
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		out[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	out[0] = (char)(0xF0 | (cp >> 18));
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
	out[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

size_t utf8_cut(const char *s, size_t len)
{
	size_t n = len;

	/* step back over continuation bytes to the start of the last sequence */
	while (n > 0 && ((unsigned char)s[n - 1] & 0xC0) == 0x80 && len - n < 3)
		n--;
	if (n > 0 && ((unsigned char)s[n - 1] & 0x80)) {
		unsigned char lead = (unsigned char)s[n - 1];
		size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;

		if (len - (n - 1) < need)
			return n - 1; /* the last sequence is incomplete: drop it */
	}
	return len;
}
