/* version.h: the one version string of every mcpgw program. */
#ifndef MCPGW_VERSION_H
#define MCPGW_VERSION_H

#define MCPGW_VERSION "0.1.0"

#endif
