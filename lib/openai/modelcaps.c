/* modelcaps.c: the models this process saw reject image parts, kept in a small ring under a mutex (chat.fcgi's workers share it). */
#include "openai/modelcaps.h"

#include <pthread.h>
#include <string.h>

static pthread_mutex_t mc_lock = PTHREAD_MUTEX_INITIALIZER;
static char mc_no_images[MODELCAPS_MAX][MODELCAPS_NAME_MAX];
static int mc_count, mc_next; /* names held; the slot written next (the oldest once full) */

/* mc_find: the slot holding model, or -1; the lock is held */
static int mc_find(const char *model)
{
	for (int i = 0; i < mc_count; i++)
		if (strcmp(mc_no_images[i], model) == 0)
			return i;
	return -1;
}

int modelcaps_no_images(const char *model)
{
	int found;

	if (!model)
		return 0;
	(void)pthread_mutex_lock(&mc_lock);
	found = mc_find(model) >= 0;
	(void)pthread_mutex_unlock(&mc_lock);
	return found;
}

void modelcaps_set_no_images(const char *model)
{
	size_t len = model ? strlen(model) : MODELCAPS_NAME_MAX;

	if (len >= MODELCAPS_NAME_MAX)
		return;
	(void)pthread_mutex_lock(&mc_lock);
	if (mc_find(model) < 0) {
		memcpy(mc_no_images[mc_next], model, len + 1);
		mc_next = (mc_next + 1) % MODELCAPS_MAX;
		if (mc_count < MODELCAPS_MAX)
			mc_count++;
	}
	(void)pthread_mutex_unlock(&mc_lock);
}

void modelcaps_reset(void)
{
	(void)pthread_mutex_lock(&mc_lock);
	mc_count = mc_next = 0;
	(void)pthread_mutex_unlock(&mc_lock);
}
