/* embed.h: mcpgw's built-in embedding model: signed feature hashing of words, trigrams and CJK n-grams, L2-normalised. */
#ifndef MCPGW_EMBED_H
#define MCPGW_EMBED_H

#include <stddef.h>
#include <stdint.h>

/*
 * The model, in full (the README's "Embeddings" section says the same):
 *
 * Text is decoded as UTF-8 (a byte that starts no valid sequence counts as a
 * separator; overlong forms, surrogates and code points over U+10FFFF are
 * invalid). It is cut into features:
 *  - words: runs of letters and digits of any script but the CJK ones below,
 *    lowercased (ASCII, Latin-1, Latin Extended-A, Greek, Cyrillic; fullwidth
 *    ASCII letters and digits count as ASCII), cut every EMBED_WORD_MAX code
 *    points. Weight 1; a few very common English function words ("the", "is",
 *    "of", ...) weigh EMBED_STOP_WEIGHT.
 *  - character trigrams of each word of 3 or more code points, padded as
 *    "<word>": "<qu", "que", "uer", "ery", "ry>". Together they weigh
 *    EMBED_TRIGRAM_WEIGHT per word (each 1/sqrt(n) of that), so variants of a
 *    word ("query", "queries") still meet.
 *  - CJK (Han, Hiragana, Katakana, Hangul): every character (weight
 *    EMBED_CJK_CHAR_WEIGHT) and every pair of adjacent characters (weight 1)
 *    of a run of them; any other character ends the run.
 *  - token ids (an input given as an array of integers): each id, weight 1.
 * Each distinct feature counts (mean weight) * (1 + ln(occurrences)). Its
 * 64-bit hash (FNV-1a over a kind byte and the feature's bytes, then the
 * splitmix64 finaliser) picks the dimension (high 32 bits, scaled to dims)
 * and the sign (lowest bit). The vector is scaled to length 1. A text with no
 * feature (only punctuation, say), or whose features cancel out, gets the
 * signed unit vector of the hash of its raw bytes. The result depends only
 * on the input and dims, never on the machine's byte order or the process.
 * "Tokens" (usage) are the words and CJK characters, or the ids.
 */

#define EMBED_DIMS_MAX 3072     /* largest dimensions accepted (text-embedding-3-large's size) */
#define EMBED_DIMS_DEFAULT 1536 /* without dimensions (text-embedding-ada-002's and 3-small's size) */
#define EMBED_WORD_MAX 64       /* code points per word; longer runs are cut into words of this length */
#define EMBED_STOP_WEIGHT 0.25
#define EMBED_TRIGRAM_WEIGHT 0.6
#define EMBED_CJK_CHAR_WEIGHT 0.5

enum embed_kind {
	EMBED_WORD = 1,   /* a lowercased word */
	EMBED_TRIGRAM,    /* three code points of a padded word */
	EMBED_CJK_CHAR,   /* one CJK character */
	EMBED_CJK_BIGRAM, /* two adjacent CJK characters */
	EMBED_TOKEN_ID,   /* a token id: 8 bytes, little-endian two's complement */
};

/* embed_feature_fn: one feature: its kind, its bytes (UTF-8 for text; not
 * NUL-terminated, borrowed for the call) and weight. Return 0 to go on,
 * non-zero to stop the tokenizer. */
typedef int (*embed_feature_fn)(void *ud, enum embed_kind kind, const char *bytes, size_t len, double weight);

/* embed_tokenize: hand every feature of text (len bytes, any bytes, NUL
 * included) to fn in text order. Returns the number of tokens (words plus
 * CJK characters), or -1 when fn stopped it. */
long embed_tokenize(const char *text, size_t len, embed_feature_fn fn, void *ud);

/* embed_text: the embedding of text into out[0..dims-1], 1 <= dims <=
 * EMBED_DIMS_MAX, length 1. Returns the number of tokens (>= 0), or -1 on
 * ENOMEM or bad dims (out is then undefined). */
long embed_text(const char *text, size_t len, float *out, size_t dims);

/* embed_ids: the embedding of n token ids (n may be 0) likewise. Returns n,
 * or -1 on ENOMEM or bad dims. */
long embed_ids(const int64_t *ids, size_t n, float *out, size_t dims);

/* embed_cosine: the cosine similarity of two vectors of dims floats (0 when
 * either is all zero). */
double embed_cosine(const float *a, const float *b, size_t dims);

/* embed_base64_len: the length of embed_base64's text for dims floats,
 * without the NUL. */
size_t embed_base64_len(size_t dims);

/* embed_base64: v as little-endian IEEE-754 float32 bytes, base64 (RFC 4648,
 * with '=' padding), NUL-terminated in out. 0, or -1 when outlen <
 * embed_base64_len(dims) + 1. */
int embed_base64(const float *v, size_t dims, char *out, size_t outlen);

/* embed_base64_decode: the inverse: base64 text s (len bytes) of
 * little-endian float32 values into out (at most max floats). Returns the
 * number of floats, or -1 on a bad character, bad padding, a byte count
 * that is no multiple of 4, or more than max floats. */
long embed_base64_decode(const char *s, size_t len, float *out, size_t max);

#endif
