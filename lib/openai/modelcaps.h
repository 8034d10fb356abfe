/* modelcaps.h: what this process learned about upstream models from their answers (which take no image parts). */
#ifndef MCPGW_MODELCAPS_H
#define MCPGW_MODELCAPS_H

#define MODELCAPS_MAX 64       /* models remembered at most; past it the oldest is forgotten */
#define MODELCAPS_NAME_MAX 256 /* a model name's bytes kept (a longer one is not remembered) */

/* modelcaps_no_images: 1 when model (may be NULL: 0) is known in this
 * process to reject image content parts (modelcaps_set_no_images), else 0.
 * Thread-safe. */
int modelcaps_no_images(const char *model);

/* modelcaps_set_no_images: remember that model rejects image content parts,
 * for the life of the process (at most MODELCAPS_MAX models, the oldest
 * forgotten first; a name of MODELCAPS_NAME_MAX bytes or more is not kept).
 * Thread-safe. */
void modelcaps_set_no_images(const char *model);

/* modelcaps_reset: forget everything (tests). */
void modelcaps_reset(void);

#endif
