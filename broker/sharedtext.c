/* sharedtext.c: an immutable text shared by reference count. */
#include "sharedtext.h"

#include <stdlib.h>
#include <string.h>

struct sharedtext {
	unsigned long refs;
	size_t len;
	char *data;
};

struct sharedtext *sharedtext_take(char *data, size_t len)
{
	struct sharedtext *t = data ? malloc(sizeof *t) : NULL;

	if (!t) {
		free(data);
		return NULL;
	}
	*t = (struct sharedtext){ .refs = 1, .len = len, .data = data };
	return t;
}

struct sharedtext *sharedtext_copy(const char *p, size_t len)
{
	char *d = malloc(len + 1);

	if (!d)
		return NULL;
	memcpy(d, p, len);
	d[len] = '\0';
	return sharedtext_take(d, len);
}

struct sharedtext *sharedtext_ref(struct sharedtext *t)
{
	__atomic_add_fetch(&t->refs, 1, __ATOMIC_RELAXED);
	return t;
}

void sharedtext_unref(struct sharedtext *t)
{
	if (!t || __atomic_sub_fetch(&t->refs, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	free(t->data);
	free(t);
}

const char *sharedtext_data(const struct sharedtext *t)
{
	return t->data;
}

size_t sharedtext_len(const struct sharedtext *t)
{
	return t->len;
}
