/* toolresult.h: an MCP tools/call outcome turned into the text of an OpenAI "tool" message. */
#ifndef MCPGW_TOOLRESULT_H
#define MCPGW_TOOLRESULT_H

#include <jansson.h>
#include <stddef.h>

#include "core/buf.h"

/* toolresult_text: write the tool message content for one call into out:
 * - result (a CallToolResult, may be NULL): structuredContent as compact JSON
 *   when present, else the text items joined by "\n"; an image, audio or
 *   blob resource item becomes a bracketed note with its type and size, an
 *   embedded text resource its text, a resource_link its URI; isError true
 *   prefixes "Tool error: ".
 * - error (a JSON-RPC error object or an mcpgw message, may be NULL):
 *   "Tool error: <message>".
 * Output over max_bytes is cut at a UTF-8 boundary and ends with
 * "\n[output truncated by mcpgw: N of M bytes]". 0 or -1 (ENOMEM). */
int toolresult_text(const json_t *result, const json_t *error, size_t max_bytes, buf_t *out);

/* toolresult_images: the image items of a result as OpenAI content parts
 * ({"type":"image_url","image_url":{"url":"data:<mime>;base64,..."}}),
 * appended to parts (an array). Returns how many were added. */
size_t toolresult_images(const json_t *result, json_t *parts);


#endif
