/* fuzz_config.c: libFuzzer target of servers_config.json loading (lib/mcp/config.c): the document, ${VAR} expansion and the tool filters. */
#include <string.h>

#include "fuzz.h"
#include "mcp/config.h"

/* Input: a servers_config.json document (cut at the first NUL, as a file
 * read into a string is). Checks: a load that fails says why (a non-empty
 * message naming the file) and fills nothing; one that succeeds gives
 * servers with valid names and the fields their transport needs; the tool
 * filter answers for each server; and the document as a ${VAR} template
 * expands or fails with a message. A few variables are set (FUZZ_A, HOME,
 * an empty FUZZ_EMPTY) so expansion both succeeds and fails. */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (setenv("FUZZ_A", "value-a", 1) < 0 || setenv("FUZZ_EMPTY", "", 1) < 0 || setenv("HOME", "/home/fuzz", 1) < 0)
		abort();
	unsetenv("FUZZ_UNSET");
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1), err[1024], *x;
	struct cfg c;

	FUZZ_CHECK(text);
	memcpy(text, data, size);
	text[size] = '\0';

	memset(&c, 0xa5, sizeof c);
	err[0] = '\0';
	if (cfg_load_string(text, "servers_config.json", &c, err, sizeof err) < 0) {
		FUZZ_CHECK(err[0] != '\0' && strstr(err, "servers_config.json") != NULL);
	} else {
		for (size_t i = 0; i < c.nservers; i++) {
			const struct cfg_server *s = &c.servers[i];
			size_t n = strlen(s->name);

			FUZZ_CHECK(n >= 1 && n <= 64 &&
				   strspn(s->name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
						   "0123456789_.-") == n);
			if (s->transport == CFG_STDIO)
				FUZZ_CHECK(s->command != NULL);
			else
				FUZZ_CHECK(s->url != NULL);
			for (size_t j = 0; j < s->nenv; j++)
				FUZZ_CHECK(strchr(s->env[j], '=') != NULL);
			for (size_t j = 0; j < s->nheaders; j++)
				FUZZ_CHECK(!strpbrk(s->headers[j], "\r\n"));
			(void)cfg_tool_allowed(s, "read_query");
			(void)cfg_tool_allowed(s, "");
			(void)cfg_tool_allowed(s, text);
		}
		cfg_free(&c);
	}

	err[0] = '\0';
	if ((x = cfg_expand(text, err, sizeof err)))
		free(x);
	else
		FUZZ_CHECK(err[0] != '\0');
	free(text);
	return 0;
}
