/* embed.c: the built-in embedding model (see embed.h): UTF-8 tokenizer, signed feature hashing, base64 of float32 LE. */
#include "openai/embed.h"
#include "core/utf8.h"

#include <stdlib.h>
#include <string.h>

#define EMBED_LN2 0.69314718055994530942

/* one feature occurrence: its hash and weight */
struct embed_feat {
	uint64_t h;
	float w;
};

/* the features of one input, collected before they are counted */
struct embed_feats {
	struct embed_feat *v;
	size_t n, cap;
};

/* the tokenizer's state within one text */
struct embed_tok {
	embed_feature_fn fn;
	void *ud;
	uint32_t word[EMBED_WORD_MAX]; /* the current word's code points, folded */
	size_t wn;
	long prev_cjk; /* the previous code point if it was CJK, else -1 */
	long tokens;
	int stopped;
};

/* very common English function words: they weigh EMBED_STOP_WEIGHT (sorted for bsearch) */
static const char *const embed_stop[] = {
	"a",     "about", "also",  "am",   "an",    "and",  "are",   "as",   "at",   "be",   "been",  "being", "but",
	"by",    "can",   "could", "did",  "do",    "does", "for",   "from", "had",  "has",  "have",  "he",    "her",
	"his",   "how",   "i",     "if",   "in",    "into", "is",    "it",   "its",  "just", "me",    "my",    "no",
	"not",   "of",    "on",    "or",   "our",   "she",  "so",    "than", "that", "the",  "their", "them",  "then",
	"there", "these", "they",  "this", "those", "to",   "too",   "us",   "was",  "we",   "were",  "what",  "when",
	"where", "which", "who",   "why",  "will",  "with", "would", "you",  "your",
};

/* --- arithmetic without libm ------------------------------------------- */

/* embed_sqrt: square root of x > 0 by Newton's iteration from above */
static double embed_sqrt(double x)
{
	double y = x > 1.0 ? x : 1.0, ny;

	if (!(x > 0.0))
		return 0.0;
	for (int i = 0; i < 2100; i++) {
		ny = 0.5 * (y + x / y);
		if (!(ny < y))
			break;
		y = ny;
	}
	return y;
}

/* embed_ln: natural logarithm of x >= 1: x = m * 2^k, ln m = 2 atanh((m-1)/(m+1)) */
static double embed_ln(double x)
{
	double z, z2, term, sum = 0.0;
	int k = 0;

	while (x >= 2.0 && k < 2000) {
		x *= 0.5;
		k++;
	}
	z = (x - 1.0) / (x + 1.0); /* 0 <= z < 1/3 */
	z2 = z * z;
	term = z;
	for (int i = 1; i < 80 && term > 1e-20; i += 2) {
		sum += term / i;
		term *= z2;
	}
	return 2.0 * sum + k * EMBED_LN2;
}

/* --- hashing ------------------------------------------------------------ */

/* embed_hash: FNV-1a 64 over the kind byte and the bytes, then the splitmix64 finaliser */
static uint64_t embed_hash(enum embed_kind kind, const char *bytes, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	h = (h ^ (uint8_t)kind) * 0x100000001b3ULL;
	for (size_t i = 0; i < len; i++)
		h = (h ^ (uint8_t)bytes[i]) * 0x100000001b3ULL;
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebULL;
	h ^= h >> 31;
	return h;
}

/* --- UTF-8 and character classes --------------------------------------- */

/* embed_is_cjk: Han, Hiragana, Katakana, Hangul */
static int embed_is_cjk(long cp)
{
	return (cp >= 0x1100 && cp <= 0x11FF) || /* Hangul Jamo */
	       (cp >= 0x3040 && cp <= 0x30FF) || /* Hiragana, Katakana */
	       (cp >= 0x3130 && cp <= 0x318F) || /* Hangul Compatibility Jamo */
	       (cp >= 0x31F0 && cp <= 0x31FF) || /* Katakana Phonetic Extensions */
	       (cp >= 0x3400 && cp <= 0x4DBF) || /* CJK Extension A */
	       (cp >= 0x4E00 && cp <= 0x9FFF) || /* CJK Unified Ideographs */
	       (cp >= 0xA960 && cp <= 0xA97F) || /* Hangul Jamo Extended-A */
	       (cp >= 0xAC00 && cp <= 0xD7FF) || /* Hangul Syllables, Jamo Extended-B */
	       (cp >= 0xF900 && cp <= 0xFAFF) || /* CJK Compatibility Ideographs */
	       (cp >= 0xFF66 && cp <= 0xFF9F) || /* halfwidth Katakana */
	       (cp >= 0x20000 && cp <= 0x323AF); /* CJK Extensions B..H, Compatibility Supplement */
}

/* embed_is_sep: not part of a word: ASCII other than letters and digits,
 * invalid bytes, punctuation, symbols, spaces, controls, private use, emoji */
static int embed_is_sep(long cp)
{
	if (cp < 0)
		return 1;
	if (cp < 0x80)
		return !((cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z'));
	return cp <= 0xBF || cp == 0xD7 || cp == 0xF7 ||
	       (cp >= 0x2000 && cp <= 0x2BFF) || /* punctuation, symbols, arrows, math, box drawing */
	       (cp >= 0x2E00 && cp <= 0x2E7F) || /* supplemental punctuation */
	       (cp >= 0x3000 && cp <= 0x303F) || /* CJK symbols and punctuation */
	       (cp >= 0xE000 && cp <= 0xF8FF) || /* private use */
	       (cp >= 0xFE00 && cp <= 0xFE6F) || /* variation selectors, vertical and small forms */
	       cp == 0xFEFF || (cp >= 0xFF00 && cp <= 0xFF0F) || (cp >= 0xFF1A && cp <= 0xFF20) ||
	       (cp >= 0xFF3B && cp <= 0xFF40) || (cp >= 0xFF5B && cp <= 0xFF65) || (cp >= 0xFFF0 && cp <= 0xFFFF) ||
	       (cp >= 0x1F000 && cp <= 0x1FAFF) || /* emoji, pictographs */
	       (cp >= 0xE0000 && cp <= 0xE007F) || cp >= 0xF0000;
}

/* embed_fold_latin: lowercase Latin-1 Supplement and Latin Extended-A */
static uint32_t embed_fold_latin(uint32_t c)
{
	if (c >= 0xC0 && c <= 0xDE && c != 0xD7)
		return c + 0x20;
	if (c == 0x130)
		return 'i';
	if ((c >= 0x100 && c <= 0x12F) || (c >= 0x132 && c <= 0x137) || (c >= 0x14A && c <= 0x177))
		return c | 1;
	if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E))
		return c & 1 ? c + 1 : c;
	if (c == 0x178)
		return 0xFF;
	return c;
}

/* embed_fold: lowercase (ASCII, Latin-1, Latin Extended-A, Greek, Cyrillic);
 * fullwidth ASCII letters and digits become ASCII */
static uint32_t embed_fold(uint32_t c)
{
	if (c >= 'A' && c <= 'Z')
		return c + 0x20;
	if (c < 0x80)
		return c;
	if (c >= 0xFF10 && c <= 0xFF19)
		return '0' + (c - 0xFF10);
	if (c >= 0xFF21 && c <= 0xFF3A)
		return 'a' + (c - 0xFF21);
	if (c >= 0xFF41 && c <= 0xFF5A)
		return 'a' + (c - 0xFF41);
	if (c >= 0x391 && c <= 0x3A9 && c != 0x3A2)
		return c + 0x20;
	if (c == 0x3C2)
		return 0x3C3; /* final sigma */
	if (c >= 0x410 && c <= 0x42F)
		return c + 0x20;
	if (c >= 0x400 && c <= 0x40F)
		return c + 0x50;
	return embed_fold_latin(c);
}

/* --- the tokenizer ------------------------------------------------------- */

static int embed_stop_cmp(const void *key, const void *elem)
{
	return strcmp(key, *(const char *const *)elem);
}

static void embed_emit(struct embed_tok *t, enum embed_kind kind, const char *bytes, size_t len, double w)
{
	if (!t->stopped && t->fn(t->ud, kind, bytes, len, w) != 0)
		t->stopped = 1;
}

/* embed_trigrams: the trigrams of the padded current word "<w>" */
static void embed_trigrams(struct embed_tok *t)
{
	double w = EMBED_TRIGRAM_WEIGHT / embed_sqrt((double)t->wn);
	char tri[12];

	for (size_t i = 0; i < t->wn; i++) {
		uint32_t a = i == 0 ? '<' : t->word[i - 1], c = i + 1 == t->wn ? '>' : t->word[i + 1];
		size_t n = utf8_put(a, tri);

		n += utf8_put(t->word[i], tri + n);
		n += utf8_put(c, tri + n);
		embed_emit(t, EMBED_TRIGRAM, tri, n, w);
	}
}

/* embed_flush_word: emit the current word (and its trigrams) and start a new one */
static void embed_flush_word(struct embed_tok *t)
{
	char bytes[EMBED_WORD_MAX * 4 + 1];
	size_t n = 0;
	int stop;

	if (!t->wn)
		return;
	for (size_t i = 0; i < t->wn; i++)
		n += utf8_put(t->word[i], bytes + n);
	bytes[n] = '\0';
	stop = n <= 5 && bsearch(bytes, embed_stop, sizeof embed_stop / sizeof embed_stop[0], sizeof embed_stop[0],
				 embed_stop_cmp) != NULL;
	t->tokens++;
	embed_emit(t, EMBED_WORD, bytes, n, stop ? EMBED_STOP_WEIGHT : 1.0);
	if (!stop && t->wn >= 3)
		embed_trigrams(t);
	t->wn = 0;
}

/* embed_cjk: one CJK character, and the bigram with the one before it */
static void embed_cjk(struct embed_tok *t, long cp)
{
	char b[8];
	size_t n;

	embed_flush_word(t);
	n = utf8_put((uint32_t)cp, b);
	embed_emit(t, EMBED_CJK_CHAR, b, n, EMBED_CJK_CHAR_WEIGHT);
	if (t->prev_cjk >= 0) {
		n = utf8_put((uint32_t)t->prev_cjk, b);
		n += utf8_put((uint32_t)cp, b + n);
		embed_emit(t, EMBED_CJK_BIGRAM, b, n, 1.0);
	}
	t->prev_cjk = cp;
	t->tokens++;
}

long embed_tokenize(const char *text, size_t len, embed_feature_fn fn, void *ud)
{
	const unsigned char *s = (const unsigned char *)text;
	struct embed_tok t;
	size_t i = 0;

	memset(&t, 0, sizeof t);
	t.fn = fn;
	t.ud = ud;
	t.prev_cjk = -1;
	while (i < len && !t.stopped) {
		long cp = utf8_next(s, len, &i);

		if (embed_is_cjk(cp)) {
			embed_cjk(&t, cp);
			continue;
		}
		t.prev_cjk = -1;
		if (embed_is_sep(cp)) {
			embed_flush_word(&t);
			continue;
		}
		t.word[t.wn++] = embed_fold((uint32_t)cp);
		if (t.wn == EMBED_WORD_MAX)
			embed_flush_word(&t);
	}
	embed_flush_word(&t);
	return t.stopped ? -1 : t.tokens;
}

/* --- vectors ------------------------------------------------------------- */

/* embed_collect: embed_feature_fn that appends the feature's hash to a struct embed_feats */
static int embed_collect(void *ud, enum embed_kind kind, const char *bytes, size_t len, double weight)
{
	struct embed_feats *f = ud;

	if (f->n == f->cap) {
		size_t cap = f->cap ? f->cap * 2 : 256;
		struct embed_feat *v;

		if (cap > ((size_t)-1) / sizeof *v || !(v = realloc(f->v, cap * sizeof *v)))
			return -1;
		f->v = v;
		f->cap = cap;
	}
	f->v[f->n].h = embed_hash(kind, bytes, len);
	f->v[f->n].w = (float)weight;
	f->n++;
	return 0;
}

static int embed_feat_cmp(const void *a, const void *b)
{
	uint64_t x = ((const struct embed_feat *)a)->h, y = ((const struct embed_feat *)b)->h;

	return x < y ? -1 : x > y;
}

/* embed_add: add a feature's value to its signed dimension */
static void embed_add(float *out, size_t dims, uint64_t h, double value)
{
	size_t d = (size_t)(((h >> 32) * (uint64_t)dims) >> 32);

	out[d] += (float)(h & 1 ? -value : value);
}

/* embed_vector: count the features (sorted by hash) into out and scale it
 * to length 1; raw/rawlen make the fallback vector */
static void embed_vector(struct embed_feats *f, const char *raw, size_t rawlen, float *out, size_t dims)
{
	double norm = 0.0, scale;
	size_t i, j;

	memset(out, 0, dims * sizeof *out);
	if (f->n)
		qsort(f->v, f->n, sizeof *f->v, embed_feat_cmp);
	for (i = 0; i < f->n; i = j) {
		double sum = 0.0;

		for (j = i; j < f->n && f->v[j].h == f->v[i].h; j++)
			sum += f->v[j].w;
		embed_add(out, dims, f->v[i].h, sum / (double)(j - i) * (1.0 + embed_ln((double)(j - i))));
	}
	for (i = 0; i < dims; i++)
		norm += (double)out[i] * out[i];
	if (!(norm > 0.0)) {
		embed_add(out, dims, embed_hash(0, raw, rawlen), 1.0);
		return;
	}
	scale = 1.0 / embed_sqrt(norm);
	for (i = 0; i < dims; i++)
		out[i] = (float)(out[i] * scale);
}

long embed_text(const char *text, size_t len, float *out, size_t dims)
{
	struct embed_feats f = { NULL, 0, 0 };
	long tokens;

	if (dims < 1 || dims > EMBED_DIMS_MAX)
		return -1;
	tokens = embed_tokenize(text, len, embed_collect, &f);
	if (tokens >= 0)
		embed_vector(&f, text, len, out, dims);
	free(f.v);
	return tokens;
}

long embed_ids(const int64_t *ids, size_t n, float *out, size_t dims)
{
	struct embed_feats f = { NULL, 0, 0 };
	char b[8];
	long rc = (long)n;

	if (dims < 1 || dims > EMBED_DIMS_MAX || n > (size_t)0x7fffffff)
		return -1;
	for (size_t i = 0; i < n; i++) {
		uint64_t u = (uint64_t)ids[i];

		for (int k = 0; k < 8; k++)
			b[k] = (char)(u >> (8 * k));
		if (embed_collect(&f, EMBED_TOKEN_ID, b, sizeof b, 1.0) < 0) {
			rc = -1;
			goto out;
		}
	}
	embed_vector(&f, "", 0, out, dims);
out:
	free(f.v);
	return rc;
}

double embed_cosine(const float *a, const float *b, size_t dims)
{
	double ab = 0.0, aa = 0.0, bb = 0.0;

	for (size_t i = 0; i < dims; i++) {
		ab += (double)a[i] * b[i];
		aa += (double)a[i] * a[i];
		bb += (double)b[i] * b[i];
	}
	if (!(aa > 0.0) || !(bb > 0.0))
		return 0.0;
	return ab / (embed_sqrt(aa) * embed_sqrt(bb));
}

/* --- base64 of little-endian float32 ------------------------------------- */

static const char embed_b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* embed_byte: byte k of the little-endian float32 array v */
static unsigned embed_byte(const float *v, size_t k)
{
	uint32_t u;

	memcpy(&u, &v[k / 4], sizeof u);
	return (u >> (8 * (k % 4))) & 0xFF;
}

size_t embed_base64_len(size_t dims)
{
	return 4 * ((dims * 4 + 2) / 3);
}

int embed_base64(const float *v, size_t dims, char *out, size_t outlen)
{
	size_t nbytes = dims * 4, o = 0;

	if (outlen < embed_base64_len(dims) + 1)
		return -1;
	for (size_t k = 0; k < nbytes; k += 3) {
		unsigned b0 = embed_byte(v, k), b1 = k + 1 < nbytes ? embed_byte(v, k + 1) : 0;
		unsigned b2 = k + 2 < nbytes ? embed_byte(v, k + 2) : 0;

		out[o++] = embed_b64[b0 >> 2];
		out[o++] = embed_b64[((b0 & 3) << 4) | (b1 >> 4)];
		out[o++] = k + 1 < nbytes ? embed_b64[((b1 & 15) << 2) | (b2 >> 6)] : '=';
		out[o++] = k + 2 < nbytes ? embed_b64[b2 & 63] : '=';
	}
	out[o] = '\0';
	return 0;
}

/* embed_b64_value: the 6-bit value of a base64 character, -1 if none */
static int embed_b64_value(char c)
{
	const char *p = c ? strchr(embed_b64, c) : NULL;

	return p ? (int)(p - embed_b64) : -1;
}

long embed_base64_decode(const char *s, size_t len, float *out, size_t max)
{
	size_t pad = 0, nbytes, k = 0;
	uint32_t u = 0;

	if (len % 4)
		return -1;
	while (pad < 2 && len > pad && s[len - 1 - pad] == '=')
		pad++;
	nbytes = len / 4 * 3 - pad;
	if (nbytes % 4 || nbytes / 4 > max)
		return -1;
	for (size_t i = 0; i < len - pad; i += 4) {
		uint32_t group = 0;

		for (size_t j = 0; j < 4; j++) {
			int v = i + j < len - pad ? embed_b64_value(s[i + j]) : 0;

			if (v < 0)
				return -1;
			group = (group << 6) | (uint32_t)v;
		}
		for (int j = 2; j >= 0 && k < nbytes; j--, k++) {
			u |= ((group >> (8 * j)) & 0xFF) << (8 * (k % 4));
			if (k % 4 == 3) {
				memcpy(&out[k / 4], &u, sizeof u);
				u = 0;
			}
		}
	}
	return (long)(nbytes / 4);
}
