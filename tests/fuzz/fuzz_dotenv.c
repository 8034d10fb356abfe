/* fuzz_dotenv.c: libFuzzer target of the .env parser (lib/core/dotenv.c): the file every program reads its settings from. */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "core/dotenv.h"
#include "fuzz.h"

/* Input: the bytes of a .env file, written to a private temporary file
 * (0600, as conftrust wants) and loaded with a refuse hook that turns every
 * key away, so each line is parsed in full and nothing reaches the
 * environment (which would grow with every input). Checks: the load fails
 * with a message that names the file, and never succeeds when the file
 * holds a key (the hook refused it). */

static char dir[64], path[96];
static const char *last_key;

static const char *refuse_all(const char *key)
{
	FUZZ_CHECK(key && *key);
	last_key = key;
	return "the fuzz target sets nothing";
}

/* cleanup: the temporary file and directory go with the process */
static void cleanup(void)
{
	(void)unlink(path);
	(void)rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	snprintf(dir, sizeof dir, "/tmp/mcpgw-fuzz-dotenv.XXXXXX");
	if (!mkdtemp(dir))
		abort();
	snprintf(path, sizeof path, "%s/.env", dir);
	if (atexit(cleanup) != 0)
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[512];
	int fd, rc;

	(void)unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	FUZZ_CHECK(fd >= 0);
	FUZZ_CHECK(size == 0 || write(fd, data, size) == (ssize_t)size);
	FUZZ_CHECK(close(fd) == 0);
	last_key = NULL;
	err[0] = '\0';
	rc = dotenv_load_except(path, refuse_all, err, sizeof err);
	FUZZ_CHECK(rc == 0 || rc == -1);
	if (rc == -1)
		FUZZ_CHECK(strncmp(err, path, strlen(path)) == 0);
	if (last_key)
		FUZZ_CHECK(rc == -1);
	return 0;
}
