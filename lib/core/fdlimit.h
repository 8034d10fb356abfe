/* fdlimit.h: the open-file limit raised for processes that hold a connection per request in progress (the responders' pool, the broker's clients). */
#ifndef MCPGW_FDLIMIT_H
#define MCPGW_FDLIMIT_H

/* fdlimit_raise: RLIMIT_NOFILE's soft limit raised to its hard limit
 * (getrlimit(2)): Debian's soft default, 1024, is far below MCPGW_CAPACITY's
 * connections. Returns the soft limit now in force, or -1 (errno) when it
 * could not be read; a refused raise is logged (log_warn) and the old limit
 * returned. */
long fdlimit_raise(void);

#endif
