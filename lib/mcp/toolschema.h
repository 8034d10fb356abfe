/* toolschema.h: an MCP tool's inputSchema made into the function `parameters` OpenAI-compatible upstreams accept, with the same meaning. */
#ifndef MCPGW_TOOLSCHEMA_H
#define MCPGW_TOOLSCHEMA_H

#include <jansson.h>
#include <stddef.h>

#define TOOLSCHEMA_MAX_DEPTH 48    /* subschemas nested in each other (after $refs are inlined) */
#define TOOLSCHEMA_MAX_NODES 20000 /* JSON values in one result (after $refs are inlined) */
#define TOOLSCHEMA_WHY_MAX 300     /* a reason fits in this much (toolschema_params' why) */

/* toolschema_params: the parameters schema to offer upstream for an MCP
 * tool whose inputSchema is input (borrowed; NULL when the tool has none).
 * What upstreams reject is mended where the meaning stays the same:
 *  - the top level is {"type":"object","properties":{...}}: a missing or
 *    null inputSchema, `true`, a missing `type` or one that allows
 *    "object" among others become that, `properties` is added when missing;
 *  - a top-level `allOf` of object schemas is merged into one object; a
 *    top-level `anyOf`/`oneOf` of object schemas becomes one object with
 *    every branch's properties, requiring what all branches require, and
 *    names the alternatives in its description (the server still checks);
 *  - local `$ref`s are inlined and `$defs`/`definitions` dropped (a
 *    recursive schema keeps its `$ref`s and definitions as they are);
 *  - `$schema` and `$comment` are dropped (no meaning for validation);
 *  - `required` names only strings, once each; a required name that has
 *    no entry in `properties` gets an unconstrained one ({}); a draft-3
 *    `"required": true` inside a property moves to its object's `required`;
 *  - a property given as `true` becomes {}, as `false` {"not":{}};
 *  - an array schema without `items` gets `"items": {}`.
 * Everything else is copied as it is. Returns a new reference; NULL when
 * the schema cannot be made valid, with why (whylen bytes, NUL-terminated,
 * TOOLSCHEMA_WHY_MAX is enough) saying why: not an object, a top-level type
 * other than object, `enum`/`not` at the top level, a $ref that does not
 * resolve or is not local, deeper than TOOLSCHEMA_MAX_DEPTH, larger than
 * TOOLSCHEMA_MAX_NODES, or out of memory (errno ENOMEM then; EINVAL when
 * the schema itself is the reason). */
json_t *toolschema_params(const json_t *input, char *why, size_t whylen);

#endif
