/* statedir.c: paths of the state directory's files (statedir.h names them). */
#include "core/statedir.h"

#include <stdio.h>

int statedir_path(char *out, size_t outlen, const char *state_dir, const char *name)
{
	int n = snprintf(out, outlen, "%s/%s", state_dir, name);

	if (n < 0 || (size_t)n >= outlen) {
		if (outlen)
			out[0] = '\0';
		return -1;
	}
	return 0;
}
