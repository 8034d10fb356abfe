/* prompt.h: the "mcp-demo" prompt: its listing and its text for a topic. */
#ifndef MCPSQLITE_PROMPT_H
#define MCPSQLITE_PROMPT_H

#include <jansson.h>
#include <stddef.h>

#define PROMPT_DEMO_NAME "mcp-demo"

/* prompt_list: a new prompts/list result {"prompts": [...]}, NULL on ENOMEM. */
json_t *prompt_list(void);

/* prompt_get: a new prompts/get result for prompt name with arguments args
 * (borrowed; an object of strings, or NULL).  On an unknown name or a
 * missing / non-string "topic" returns NULL with msg filled and *code set
 * to -32602; on ENOMEM NULL with *code -32603. */
json_t *prompt_get(const char *name, const json_t *args, int *code, char *msg, size_t msglen);

#endif
