/* toolresult.h: an MCP tools/call outcome turned into the text of an OpenAI "tool" message. */
#ifndef MCPGW_TOOLRESULT_H
#define MCPGW_TOOLRESULT_H

#include <jansson.h>
#include <stddef.h>

#include "core/buf.h"

/* toolresult_text: write the tool message content for one call into out:
 * - result (an MCP 2025-11-25 CallToolResult, may be NULL): every content
 *   block in order, joined by "\n": text as it is; image and audio as
 *   "[image: MIME, N bytes]" (the data itself goes to the model only as an
 *   image part, see toolresult_images); a resource_link as
 *   "[resource link: URI NAME (MIME)]" and its description; an embedded
 *   resource as "[resource URI]\n" and its text, or "[resource URI: MIME,
 *   N bytes]" for a blob; a block of an unknown type as "[TYPE content]".
 *   Then structuredContent as compact JSON, unless a text block already
 *   holds it serialised (as the spec asks tools to). isError true prefixes
 *   "Tool error: ".
 * - error (a JSON-RPC error object or an mcpgw message, may be NULL):
 *   "Tool error: <message>".
 * Output over max_bytes is cut at a UTF-8 boundary and ends with
 * "\n[output truncated by mcpgw: N of M bytes]". 0 or -1 (ENOMEM). */
int toolresult_text(const json_t *result, const json_t *error, size_t max_bytes, buf_t *out);

/* toolresult_images: the images of a result (image blocks, and embedded
 * blob resources whose MIME type is image/...) as OpenAI content parts
 * ({"type":"image_url","image_url":{"url":"data:<mime>;base64,..."}}),
 * appended to parts (an array). Returns how many were added, or -1 on
 * ENOMEM (an image could not be added; the ones before it are in parts). */
int toolresult_images(const json_t *result, json_t *parts);

#endif
