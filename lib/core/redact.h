/* redact.h: URLs as messages and logs may show them: no userinfo, no query values, no fragment. */
#ifndef MCPGW_REDACT_H
#define MCPGW_REDACT_H

#include <stddef.h>

/* what stands for a hidden query value */
#define REDACT_MASK "***"

/* redact_url: url (one whole URL, NUL-terminated) as messages and logs may
 * show it, written into out (outn > 0 bytes, always NUL-terminated, cut to
 * fit): the userinfo ("user:pass@") dropped, every query value but
 * api-version's (a protocol version, never a secret) replaced by "***",
 * the fragment dropped. A token in a URL (?api_key=..., a DSN's password)
 * thus never reaches a message, a log or a client (OWASP ASVS 4.0 V7.1.1:
 * no credentials in logs; RFC 3986 section 7.5: userinfo in a URL is a
 * risk). Returns out. */
const char *redact_url(const char *url, char *out, size_t outn);

/* redact_text: len bytes of free text (a server's stderr line, a libcurl or
 * upstream message; need not be NUL-terminated) with every URL in it
 * ("scheme://" up to the next blank, quote, '<', '>' or control byte)
 * written as redact_url shows it, the rest copied as it is, into out (outn
 * > 0 bytes, always NUL-terminated, cut to fit). Returns out. */
const char *redact_text(const char *text, size_t len, char *out, size_t outn);

/* redact_secret: text (NUL-terminated) with every occurrence of secret (a
 * key the program holds, e.g. the upstream key an upstream's refusal may
 * quote) replaced by "***", into out (outn > 0 bytes, always
 * NUL-terminated, cut to fit). A NULL or empty secret copies text. Returns
 * out. */
const char *redact_secret(const char *text, const char *secret, char *out, size_t outn);

/* redact_secret_inplace: the len bytes at data (any bytes, NUL or not) with
 * every occurrence of secret replaced by "***", in place: the text only
 * shrinks, so nothing is allocated and nothing can fail. A secret shorter
 * than the mask, NULL or empty leaves data as it is (replacing it would
 * grow the text, and so short a value is no secret). When the result is
 * shorter, data[result] is set to '\0' (data has room: it held len bytes).
 * Returns the new length. */
size_t redact_secret_inplace(char *data, size_t len, const char *secret);

/* the shortest token redact_tokens_inplace masks: shorter ones are words
 * ("Bearer", "session"), no secret */
#define REDACT_TOKEN_MIN 8

/* redact_tokens_inplace: the len bytes at data with every token of source
 * (NUL-terminated: a header value as configured, "Bearer abc...", "a=1; b=2";
 * a URL's query or userinfo) masked as redact_secret_inplace does: source
 * split at blanks and at , ; & = : @ / ? #, each part of REDACT_TOKEN_MIN or
 * more bytes (at most 511) a secret, and the whole source too. For text an
 * MCP server sent back (an error body) that may quote what the gateway sent
 * it: its token, its cookie. Returns the new length. */
size_t redact_tokens_inplace(char *data, size_t len, const char *source);

#endif
