#ifndef LONGHAUL_CHIREDIS_SHIM_H
#define LONGHAUL_CHIREDIS_SHIM_H
// redisCommand is variadic: the Redis module uses redisCommandArgv / redisAppendCommandArgv only.
#include <hiredis/hiredis.h>
#endif
