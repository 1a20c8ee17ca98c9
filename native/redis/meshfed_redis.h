/*
 * What the two halves of meshfed's Redis module share: the batch entry layout (the write
 * script's per-shard argument, collectors/store/metrics_lua.py WRITE_LUA) and the new-series
 * half's interface (series_index.c), which meshfed_redis.c drives.
 */
#ifndef MESHFED_REDIS_H
#define MESHFED_REDIS_H

#include <stddef.h>
#include <stdint.h>

#include "redismodule.h"

#define RECORD 16

/* One entry of the batch: where its pieces are (offsets into the batch). */
typedef struct {
    size_t start, end;           /* the whole entry */
    size_t id, id_len;           /* series id */
    size_t tenant, tenant_len;   /* tenant label value */
    size_t labels, labels_len;   /* canonical labels JSON */
    size_t records, n;           /* first record, number of records */
} Entry;

/* The keys and caps a new series needs, in the write script's argument order. */
typedef struct {
    RedisModuleString *series, *all, *first, *tenants, *stats, *names;
    RedisModuleString *values_prefix, *postings_prefix;
    long long cap_total, cap_tenant;
} IndexKeys;

typedef struct NewSeries NewSeries;

/* Starts a call's new-series work; NULL (an error reply is due) when a hash it writes
 * with the low-level API holds another type. */
NewSeries *new_series_start(RedisModuleCtx *ctx, const IndexKeys *keys);

/* Which of `ids` (n of them) are already in the `all` set: out[i] = 1 if so. Returns 0 on
 * an error reply (`all` of another type). */
int new_series_known(NewSeries *ns, RedisModuleString **ids, size_t n, unsigned char *out);

/* A series that is in no index yet, in batch order: 1 created (its index entries are
 * queued), 0 refused by a cap (counted), -1 when its labels JSON holds an escape or is
 * empty (the script's work: this call leaves it, and every later new series, to the script). */
int new_series_add(NewSeries *ns, const unsigned char *batch, const Entry *e,
                   RedisModuleString *id);

/* Writes what the call queued (set members, counts) and frees `ns`. Returns whether it
 * wrote anything; *failed is set when a write was refused (a key of another type). */
int new_series_finish(NewSeries *ns, long long *created, long long *refused,
                      long long *over_limit, int *failed);

#endif
