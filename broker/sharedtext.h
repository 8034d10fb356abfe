/* sharedtext.h: an immutable text shared by reference count (the tools/list answer queued for many clients at once, held once). */
#ifndef MCPGW_SHAREDTEXT_H
#define MCPGW_SHAREDTEXT_H

#include <stddef.h>

struct sharedtext;

/* a slice of a shared text: len bytes of t from off (a reference is held by whoever keeps it) */
struct sharedtext_slice {
	struct sharedtext *t;
	size_t off, len;
};

/* sharedtext_take: a shared text of data[0..len) (malloc'd; taken, even on
 * failure, and freed with the last reference), one reference held by the
 * caller. NULL on ENOMEM (data freed) or when data is NULL. The counts are
 * atomic: a reference may be dropped on another thread (the registry's
 * writer); the text itself is never changed. */
struct sharedtext *sharedtext_take(char *data, size_t len);
/* sharedtext_copy: a shared text of a copy of p[0..len) (NUL-terminated). NULL on ENOMEM. */
struct sharedtext *sharedtext_copy(const char *p, size_t len);
/* sharedtext_ref: one more reference to t (returned) */
struct sharedtext *sharedtext_ref(struct sharedtext *t);
/* sharedtext_unref: drop one reference (NULL: nothing); the last frees it */
void sharedtext_unref(struct sharedtext *t);
/* sharedtext_data, sharedtext_len: the text (borrowed while a reference is held) and its length */
const char *sharedtext_data(const struct sharedtext *t);
size_t sharedtext_len(const struct sharedtext *t);

#endif
