/* test_embed.c: unit tests for the built-in embedding model (lib/embed.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "openai/embed.h"

#define MAXF 64

/* the features of one text, as the tokenizer handed them out */
struct feats {
	int n;
	enum embed_kind kind[MAXF];
	char bytes[MAXF][300];
	double weight[MAXF];
	int stop_after; /* > 0: ask the tokenizer to stop after this many */
};

static int collect(void *ud, enum embed_kind kind, const char *bytes, size_t len, double weight)
{
	struct feats *f = ud;

	if (f->n < MAXF) {
		len = len < sizeof f->bytes[0] ? len : sizeof f->bytes[0] - 1;
		f->kind[f->n] = kind;
		memcpy(f->bytes[f->n], bytes, len);
		f->bytes[f->n][len] = '\0';
		f->weight[f->n] = weight;
	}
	f->n++;
	return f->stop_after && f->n >= f->stop_after;
}

/* has: the feature (kind, text) was handed out; its weight in *w */
static int has(const struct feats *f, enum embed_kind kind, const char *text, double *w)
{
	for (int i = 0; i < f->n && i < MAXF; i++) {
		if (f->kind[i] == kind && strcmp(f->bytes[i], text) == 0) {
			if (w)
				*w = f->weight[i];
			return 1;
		}
	}
	return 0;
}

static int count_kind(const struct feats *f, enum embed_kind kind)
{
	int n = 0;

	for (int i = 0; i < f->n && i < MAXF; i++)
		n += f->kind[i] == kind;
	return n;
}

static long tokenize(const char *s, struct feats *f)
{
	memset(f, 0, sizeof *f);
	return embed_tokenize(s, strlen(s), collect, f);
}

static double norm2(const float *v, size_t dims)
{
	double s = 0;

	for (size_t i = 0; i < dims; i++)
		s += (double)v[i] * v[i];
	return s;
}

static void assert_unit(const float *v, size_t dims)
{
	double n = norm2(v, dims);

	if (n < 1 - 1e-5 || n > 1 + 1e-5)
		fail_msg("squared norm %.9f over %zu dims, want 1", n, dims);
}

/* cos_text: cosine of two texts' embeddings at dims */
static double cos_text(const char *a, const char *b, size_t dims)
{
	float *va = calloc(dims, sizeof *va), *vb = calloc(dims, sizeof *vb);
	double c;

	assert_non_null(va);
	assert_non_null(vb);
	assert_true(embed_text(a, strlen(a), va, dims) >= 0);
	assert_true(embed_text(b, strlen(b), vb, dims) >= 0);
	c = embed_cosine(va, vb, dims);
	free(va);
	free(vb);
	return c;
}

static void test_determinism(void **state)
{
	static const char text[] = "The quick brown fox jumps over the lazy dog. 数据库查询";
	static const double pinned[8] = { 0,           0.209103197, 0.209103197, 0.209103197, -0.209103197,
					  -0.57017839, 0.418206394, -0.57017839 };
	float a[EMBED_DIMS_MAX], b[EMBED_DIMS_MAX];

	(void)state;
	assert_int_equal(embed_text(text, sizeof text - 1, a, 1536), embed_text(text, sizeof text - 1, b, 1536));
	assert_memory_equal(a, b, 1536 * sizeof *a);
	/* pinned values: the model must not change by accident (a change breaks stored vectors) */
	assert_int_equal(embed_text("hello world", 11, a, 8), 2);
	for (int i = 0; i < 8; i++)
		if (a[i] < pinned[i] - 1e-6 || a[i] > pinned[i] + 1e-6)
			fail_msg("dimension %d: %.9g, pinned %.9g", i, (double)a[i], pinned[i]);
	assert_int_equal(embed_text("hello world", 11, b, 8), 2);
	assert_memory_equal(a, b, 8 * sizeof *a);
	/* a different text, a different vector */
	assert_true(embed_text("hello there", 11, b, 8) >= 0);
	assert_memory_not_equal(a, b, 8 * sizeof *a);
}

static void test_unit_norm_and_dims(void **state)
{
	static const size_t dims[] = { 1, 2, 3, 7, 256, 1536, 3072 };
	static const char *const texts[] = { "hello world", "数据库查询",   "!!! ???",          "", "a", "the the the",
					     "x\xff\xfe",   "データベース", "데이터베이스 쿼리" };
	float v[EMBED_DIMS_MAX + 1];

	(void)state;
	for (size_t d = 0; d < sizeof dims / sizeof dims[0]; d++) {
		for (size_t t = 0; t < sizeof texts / sizeof texts[0]; t++) {
			v[dims[d]] = 42.0f;
			assert_true(embed_text(texts[t], strlen(texts[t]), v, dims[d]) >= 0);
			assert_unit(v, dims[d]);
			assert_true(v[dims[d]] == 42.0f); /* nothing written past dims */
		}
	}
	assert_int_equal(embed_text("x", 1, v, 0), -1);
	assert_int_equal(embed_text("x", 1, v, EMBED_DIMS_MAX + 1), -1);
	assert_int_equal(embed_ids(NULL, 0, v, 0), -1);
	/* no features: the unit vector of the raw bytes' hash, different per text */
	assert_int_equal(embed_text("!!!", 3, v, 64), 0);
	assert_unit(v, 64);
	assert_true(cos_text("!!!", "???", 64) < 0.5);
	assert_true(cos_text("!!!", "!!!", 64) > 0.999);
}

static void test_latin_tokens(void **state)
{
	struct feats f;
	double w = 0;

	(void)state;
	assert_int_equal(tokenize("Hello, WORLD!  the_Query42", &f), 4);
	assert_true(has(&f, EMBED_WORD, "hello", &w));
	assert_true(w == 1.0);
	assert_true(has(&f, EMBED_WORD, "world", NULL));
	assert_true(has(&f, EMBED_WORD, "the", &w)); /* '_' separates */
	assert_true(w == EMBED_STOP_WEIGHT);
	assert_false(has(&f, EMBED_TRIGRAM, "<th", NULL)); /* no trigrams of stop words */
	assert_true(has(&f, EMBED_WORD, "query42", NULL));
	assert_true(has(&f, EMBED_TRIGRAM, "<he", &w));
	assert_true(w > 0.26 && w < 0.27); /* 0.6 / sqrt(5) */
	assert_true(has(&f, EMBED_TRIGRAM, "llo", NULL));
	assert_true(has(&f, EMBED_TRIGRAM, "lo>", NULL));
	assert_int_equal(count_kind(&f, EMBED_TRIGRAM), 5 + 5 + 7);
	/* short words have no trigrams; non-ASCII letters are lowercased and kept in words */
	assert_int_equal(tokenize("ab ÜBER Straße ΣΟΦΙΑ Москва ＡＢＣ１", &f), 6);
	assert_int_equal(count_kind(&f, EMBED_WORD), 6);
	assert_true(has(&f, EMBED_WORD, "ab", NULL));
	assert_false(has(&f, EMBED_TRIGRAM, "ab>", NULL));
	assert_true(has(&f, EMBED_WORD, "über", NULL));
	assert_true(has(&f, EMBED_TRIGRAM, "<üb", NULL));
	assert_true(has(&f, EMBED_WORD, "straße", NULL));
	assert_true(has(&f, EMBED_WORD, "σοφια", NULL));
	assert_true(has(&f, EMBED_WORD, "москва", NULL));
	assert_true(has(&f, EMBED_WORD, "abc1", NULL));
	/* punctuation and symbols of other blocks separate words */
	assert_int_equal(tokenize("alpha—beta…gamma«delta»×eps😀zeta", &f), 6);
	assert_true(has(&f, EMBED_WORD, "zeta", NULL));
}

static void test_long_words(void **state)
{
	char text[201];
	struct feats f;

	(void)state;
	memset(text, 'a', 200);
	text[200] = '\0';
	/* cut every EMBED_WORD_MAX code points: 64 + 64 + 64 + 8 */
	memset(&f, 0, sizeof f);
	assert_int_equal(embed_tokenize(text, 200, collect, &f), 4);
	assert_int_equal(f.n, 4 + 3 * 64 + 8); /* the words and their trigrams */
	/* the callback can stop the tokenizer */
	memset(&f, 0, sizeof f);
	f.stop_after = 3;
	assert_int_equal(embed_tokenize("one two three four", 18, collect, &f), -1);
	assert_int_equal(f.n, 3);
}

static void test_cjk_tokens(void **state)
{
	static const char *const chars[] = { "数", "据", "库", "查", "询" };
	static const char *const bigrams[] = { "数据", "据库", "库查", "查询" };
	struct feats f;
	double w;

	(void)state;
	assert_int_equal(tokenize("数据库查询", &f), 5);
	assert_int_equal(f.n, 9);
	for (int i = 0; i < 5; i++) {
		assert_true(has(&f, EMBED_CJK_CHAR, chars[i], &w));
		assert_true(w == EMBED_CJK_CHAR_WEIGHT);
	}
	for (int i = 0; i < 4; i++) {
		assert_true(has(&f, EMBED_CJK_BIGRAM, bigrams[i], &w));
		assert_true(w == 1.0);
	}
	/* punctuation, spaces and Latin words end a run: no bigram across them */
	assert_int_equal(tokenize("表，查询 SQL数据", &f), 6); /* 表 查 询 sql 数 据 */
	assert_true(has(&f, EMBED_CJK_BIGRAM, "查询", NULL));
	assert_true(has(&f, EMBED_CJK_BIGRAM, "数据", NULL));
	assert_false(has(&f, EMBED_CJK_BIGRAM, "表查", NULL));
	assert_false(has(&f, EMBED_CJK_BIGRAM, "询数", NULL));
	assert_true(has(&f, EMBED_WORD, "sql", NULL));
	assert_int_equal(count_kind(&f, EMBED_CJK_BIGRAM), 2);
	/* Japanese kana and Korean Hangul are CJK too */
	assert_int_equal(tokenize("データ", &f), 3);
	assert_true(has(&f, EMBED_CJK_BIGRAM, "デー", NULL));
	assert_true(has(&f, EMBED_CJK_BIGRAM, "ータ", NULL));
	assert_int_equal(tokenize("데이터 쿼리", &f), 5);
	assert_true(has(&f, EMBED_CJK_BIGRAM, "데이", NULL));
	assert_true(has(&f, EMBED_CJK_BIGRAM, "쿼리", NULL));
	assert_false(has(&f, EMBED_CJK_BIGRAM, "터쿼", NULL));
	/* a 4-byte Han character (CJK Extension B) */
	assert_int_equal(tokenize("\xf0\xa0\x80\x80字", &f), 2);
	assert_true(has(&f, EMBED_CJK_BIGRAM, "\xf0\xa0\x80\x80字", NULL));
}

/* the dimensions the similarity tests run at */
static const size_t sizes[] = { 128, 256, 1024, 1536, EMBED_DIMS_MAX };

static void test_similarity_chinese(void **state)
{
	double near, far;

	(void)state;
	for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
		size_t dims = sizes[k];

		near = cos_text("数据库查询", "查询数据库中的表", dims);
		far = cos_text("数据库查询", "今天天气很好", dims);
		if (getenv("EMBED_SHOW"))
			printf("chinese dims %zu: near %.3f far %.3f\n", dims, near, far);
		if (!(near > 0.5 && far < 0.2 && near > far + 0.4))
			fail_msg("dims %zu: near %.3f, far %.3f", dims, near, far);
	}
}

static void test_similarity_english(void **state)
{
	static const char *const triples[][3] = {
		{ "How do I query the database?", "Querying tables in a database", "The weather is very nice today" },
		{ "list the tables of the sqlite database", "which tables does my SQLite database have",
		  "a recipe for chocolate cake" },
		{ "The cat sat on the mat", "A cat was sitting on a mat", "Stock prices fell sharply on Monday" },
	};
	double near, far;

	(void)state;
	for (size_t i = 0; i < sizeof triples / sizeof triples[0]; i++) {
		for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
			size_t dims = sizes[k];

			near = cos_text(triples[i][0], triples[i][1], dims);
			far = cos_text(triples[i][0], triples[i][2], dims);
			if (getenv("EMBED_SHOW"))
				printf("triple %zu dims %zu: near %.3f far %.3f\n", i, dims, near, far);
			if (!(near > 0.3 && far < 0.2 && near > far + 0.25))
				fail_msg("triple %zu dims %zu: near %.3f, far %.3f", i, dims, near, far);
		}
	}
	/* word forms meet through trigrams; case does not matter */
	assert_true(cos_text("queries", "query", 1536) > 0.1);
	assert_true(cos_text("queries", "weather", 1536) < 0.05);
	assert_true(cos_text("DATABASE", "database", 1536) > 0.999);
}

static void test_ids(void **state)
{
	static const int64_t a[] = { 1, 2, 3, 4, 5, 6 }, b[] = { 4, 5, 6, 7, 8, 9 }, c[] = { 100, 200, 300 };
	static const int64_t neg[] = { -1, 0, INT64_MAX };
	float va[1536], vb[1536], vc[1536];

	(void)state;
	assert_int_equal(embed_ids(a, 6, va, 1536), 6);
	assert_unit(va, 1536);
	assert_int_equal(embed_ids(a, 6, vb, 1536), 6);
	assert_memory_equal(va, vb, sizeof va);
	assert_int_equal(embed_ids(b, 6, vb, 1536), 6);
	assert_int_equal(embed_ids(c, 3, vc, 1536), 3);
	assert_true(embed_cosine(va, vb, 1536) > 0.4);
	assert_true(embed_cosine(va, vc, 1536) < 0.2);
	assert_int_equal(embed_ids(neg, 3, vc, 7), 3);
	assert_unit(vc, 7);
	assert_int_equal(embed_ids(NULL, 0, vc, 16), 0);
	assert_unit(vc, 16);
}

static void test_base64(void **state)
{
	static const float one[] = { 1.0f }, two[] = { 1.0f, -2.0f }, three[] = { 0.5f, -0.25f, 0.0f };
	float v[1536], back[1536];
	char out[embed_base64_len(1536) + 1];

	(void)state;
	assert_int_equal(embed_base64_len(1), 8);
	assert_int_equal(embed_base64(one, 1, out, sizeof out), 0);
	assert_string_equal(out, "AACAPw=="); /* 00 00 80 3f */
	assert_int_equal(embed_base64(two, 2, out, sizeof out), 0);
	assert_string_equal(out, "AACAPwAAAMA="); /* 00 00 80 3f 00 00 00 c0 */
	assert_int_equal(embed_base64(three, 3, out, sizeof out), 0);
	assert_string_equal(out, "AAAAPwAAgL4AAAAA");
	assert_int_equal(embed_base64(one, 1, out, 8), -1); /* no room for the NUL */
	assert_int_equal(embed_base64_decode("AACAPwAAAMA=", 12, back, 2), 2);
	assert_true(back[0] == 1.0f && back[1] == -2.0f);
	/* round trip of a real vector, bit for bit */
	for (size_t dims = 1; dims <= 1536; dims += dims < 8 ? 1 : 509) {
		assert_true(embed_text("round trip", 10, v, dims) >= 0);
		assert_int_equal(embed_base64(v, dims, out, sizeof out), 0);
		assert_int_equal(strlen(out), embed_base64_len(dims));
		assert_int_equal(embed_base64_decode(out, strlen(out), back, 1536), (long)dims);
		assert_memory_equal(v, back, dims * sizeof *v);
	}
	/* bad input */
	assert_int_equal(embed_base64_decode("AACAPw=", 7, back, 4), -1);       /* not a multiple of 4 */
	assert_int_equal(embed_base64_decode("AACA", 4, back, 4), -1);          /* 3 bytes: no whole float */
	assert_int_equal(embed_base64_decode("AAC*Pw==", 8, back, 4), -1);      /* bad character */
	assert_int_equal(embed_base64_decode("AA=APw==", 8, back, 4), -1);      /* '=' inside */
	assert_int_equal(embed_base64_decode("AACAPwAAAMA=", 12, back, 1), -1); /* over max */
	assert_int_equal(embed_base64_decode("", 0, back, 1), 0);
}

/* next: a small deterministic generator for the fuzz test */
static uint32_t next(uint32_t *s)
{
	*s = *s * 1664525u + 1013904223u;
	return *s >> 8;
}

static void test_invalid_utf8(void **state)
{
	static const char *const bad[] = {
		"\xff\xfe",     "\xc3",         "abc\xe4\xb8",          "\xc0\xaf",
		"\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",     "\xf8\x88\x80\x80\x80",
		"\x80\x80\x80", "caf\xc3",      "\xe6\x95\xb0\xe6\x8d", "\xe6\x95\xb0\xff\xe6\x8d\xae",
	};
	unsigned char buf[512];
	float v[64];
	struct feats f;
	uint32_t seed = 12345;

	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_true(embed_text(bad[i], strlen(bad[i]), v, 64) >= 0);
		assert_unit(v, 64);
	}
	/* an invalid byte separates: the valid parts are still found */
	assert_int_equal(tokenize("caf\xff"
				  "bar",
				  &f),
			 2);
	assert_true(has(&f, EMBED_WORD, "caf", NULL));
	assert_true(has(&f, EMBED_WORD, "bar", NULL));
	assert_int_equal(tokenize("\xe6\x95\xb0\xff\xe6\x8d\xae", &f), 2); /* 数 <bad> 据: no bigram */
	assert_int_equal(count_kind(&f, EMBED_CJK_BIGRAM), 0);
	/* NUL bytes inside the text are separators too */
	memset(&f, 0, sizeof f);
	assert_int_equal(embed_tokenize("ab\0cd", 5, collect, &f), 2);
	/* random bytes: never a crash, always a unit vector */
	for (int round = 0; round < 2000; round++) {
		size_t len = next(&seed) % sizeof buf;

		for (size_t i = 0; i < len; i++)
			buf[i] = (unsigned char)(round % 2 ? next(&seed) : 0x80 | next(&seed));
		assert_true(embed_text((const char *)buf, len, v, 1 + next(&seed) % 64) >= 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_determinism),
		cmocka_unit_test(test_unit_norm_and_dims),
		cmocka_unit_test(test_latin_tokens),
		cmocka_unit_test(test_long_words),
		cmocka_unit_test(test_cjk_tokens),
		cmocka_unit_test(test_similarity_chinese),
		cmocka_unit_test(test_similarity_english),
		cmocka_unit_test(test_ids),
		cmocka_unit_test(test_base64),
		cmocka_unit_test(test_invalid_utf8),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
