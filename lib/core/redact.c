/* redact.c: URLs as messages and logs may show them (see redact.h). */
#include "core/redact.h"

#include <string.h>

/* rd_put: n bytes of s at o in out[outn] (cut at the end, NUL kept); the new end */
static size_t rd_put(char *out, size_t outn, size_t o, const char *s, size_t n)
{
	if (o + 1 >= outn)
		return o;
	if (n > outn - 1 - o)
		n = outn - 1 - o;
	memcpy(out + o, s, n);
	out[o + n] = '\0';
	return o + n;
}

/* rd_query: the query q[0..qn) (no '?') with each value but api-version's as "***" at o; the new end */
static size_t rd_query(const char *q, size_t qn, char *out, size_t outn, size_t o)
{
	const char *end = q + qn;

	while (q < end) {
		size_t k = 0, name;

		while (q + k < end && q[k] != '&')
			k++;
		for (name = 0; name < k && q[name] != '='; name++)
			;
		/* api-version: Azure OpenAI's protocol version, shown so a wrong one can be seen */
		if (name == 11 && strncmp(q, "api-version", 11) == 0) {
			o = rd_put(out, outn, o, q, k);
		} else {
			o = rd_put(out, outn, o, q, name);
			if (name < k)
				o = rd_put(out, outn, o, "=" REDACT_MASK, 1 + strlen(REDACT_MASK));
		}
		if (q + k >= end)
			break;
		o = rd_put(out, outn, o, "&", 1);
		q += k + 1;
	}
	return o;
}

/* rd_url: the URL url[0..n) as shown, at o; the new end */
static size_t rd_url(const char *url, size_t n, char *out, size_t outn, size_t o)
{
	const char *end = url + n, *auth = url, *hostend, *at = NULL, *p;
	size_t rest;

	for (p = url; p + 3 <= end; p++)
		if (memcmp(p, "://", 3) == 0) {
			auth = p + 3;
			break;
		}
	for (hostend = auth; hostend < end && !strchr("/?#", *hostend); hostend++)
		if (*hostend == '@')
			at = hostend;
	o = rd_put(out, outn, o, url, (size_t)(auth - url));
	if (at)
		auth = at + 1;
	for (rest = 0; auth + rest < end && auth[rest] != '?' && auth[rest] != '#'; rest++)
		;
	o = rd_put(out, outn, o, auth, rest);
	if (auth + rest < end && auth[rest] == '?') {
		const char *q = auth + rest + 1;
		size_t qn = 0;

		while (q + qn < end && q[qn] != '#')
			qn++;
		o = rd_put(out, outn, o, "?", 1);
		o = rd_query(q, qn, out, outn, o);
	}
	return o;
}

const char *redact_url(const char *url, char *out, size_t outn)
{
	if (outn == 0)
		return out;
	out[0] = '\0';
	rd_url(url, strlen(url), out, outn, 0);
	return out;
}

/* rd_scheme_char: a byte a URL scheme may hold (RFC 3986 section 3.1) */
static int rd_scheme_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '+' || c == '-' ||
	       c == '.';
}

/* rd_url_char: a byte that continues a URL found in free text */
static int rd_url_char(char c)
{
	return (unsigned char)c > ' ' && c != 0x7f && !strchr("\"'<>`", c);
}

const char *redact_text(const char *text, size_t len, char *out, size_t outn)
{
	size_t i = 0, o = 0, copied = 0;

	if (outn == 0)
		return out;
	out[0] = '\0';
	while (i + 3 <= len) {
		size_t s = i, e = i + 3;

		if (memcmp(text + i, "://", 3) != 0) {
			i++;
			continue;
		}
		while (s > copied && rd_scheme_char(text[s - 1]))
			s--;
		while (e < len && rd_url_char(text[e]))
			e++;
		/* punctuation closing a sentence or a bracket ends the URL in free text ("POST URL: why") */
		while (e > i + 3 && strchr(".,:;!?)]}", text[e - 1]))
			e--;
		o = rd_put(out, outn, o, text + copied, s - copied);
		o = rd_url(text + s, e - s, out, outn, o);
		i = copied = e;
	}
	rd_put(out, outn, o, text + copied, len - copied);
	return out;
}

const char *redact_secret(const char *text, const char *secret, char *out, size_t outn)
{
	size_t o = 0, sn = secret ? strlen(secret) : 0;
	const char *hit;

	if (outn == 0)
		return out;
	out[0] = '\0';
	while (sn && (hit = strstr(text, secret))) {
		o = rd_put(out, outn, o, text, (size_t)(hit - text));
		o = rd_put(out, outn, o, REDACT_MASK, strlen(REDACT_MASK));
		text = hit + sn;
	}
	rd_put(out, outn, o, text, strlen(text));
	return out;
}

size_t redact_secret_inplace(char *data, size_t len, const char *secret)
{
	size_t sn = secret ? strlen(secret) : 0, mn = strlen(REDACT_MASK), r, w;
	const char *hit;

	if (!data || sn < mn || !(hit = memmem(data, len, secret, sn)))
		return len; /* the common case: one memmem, nothing written */
	r = w = (size_t)(hit - data);
	while (r < len) {
		if (len - r >= sn && memcmp(data + r, secret, sn) == 0) {
			memcpy(data + w, REDACT_MASK, mn);
			w += mn;
			r += sn;
		} else {
			data[w++] = data[r++];
		}
	}
	if (w < len)
		data[w] = '\0';
	return w;
}

size_t redact_tokens_inplace(char *data, size_t len, const char *source)
{
	char tok[512];
	size_t i = 0, n;

	if (!source)
		return len;
	len = redact_secret_inplace(data, len, source);
	while (source[i]) {
		i += strspn(source + i, " \t,;&=:@/?#");
		n = strcspn(source + i, " \t,;&=:@/?#");
		if (n >= REDACT_TOKEN_MIN && n < sizeof tok) {
			memcpy(tok, source + i, n);
			tok[n] = '\0';
			len = redact_secret_inplace(data, len, tok);
		}
		i += n;
	}
	return len;
}
