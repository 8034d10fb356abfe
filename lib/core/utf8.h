/* utf8.h: UTF-8 as RFC 3629 defines it: one decoder, encoder, sequence length and safe cut for every part of the gateway. */
#ifndef MCPGW_UTF8_H
#define MCPGW_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* utf8_seq_len: bytes of the well-formed sequence at s (n > 0 bytes left):
 * 1 to 4, or 0 when s does not start one (a continuation byte, C0/C1/F5..FF,
 * a truncated sequence, an overlong form, a surrogate, above U+10FFFF). */
size_t utf8_seq_len(const unsigned char *s, size_t n);

/* utf8_next: the code point at s[*i] (*i < len), advancing *i past it; -1
 * for a byte that starts no well-formed sequence (*i then advances by one). */
long utf8_next(const unsigned char *s, size_t len, size_t *i);

/* utf8_put: code point cp (<= U+10FFFF) as UTF-8 into out (room for 4); the
 * byte count. */
size_t utf8_put(uint32_t cp, char *out);

/* utf8_cut: the largest n <= len that does not split the sequence s[len]
 * falls in: a cut at len leaves no partial character at the end. */
size_t utf8_cut(const char *s, size_t len);

#endif
