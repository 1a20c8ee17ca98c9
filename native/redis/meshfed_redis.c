/*
 * meshfed's Redis module: the metrics write script, in C.
 *
 * MESHFED.WRITE series all last first tenants stats names values_prefix postings_prefix
 *               head_prefix cap_total cap_tenant max_samples max_span_ms last_lags batch
 *
 * The arguments are the write script's KEYS and ARGV in its order
 * (collectors/store/metrics_lua.py, WRITE_LUA). `batch` is its per-shard argument: per series
 * `>H` id length, id, `>I4` tenant length, tenant, `>I4` labels length, labels, `>I4` records
 * length, records of 16 bytes (`>i8` timestamp, `>d` value), each series at most once,
 * records increasing. For every series the command does what the script does: for one with
 * a last record, the order check against it; for a new one, the caps and the label index
 * (series_index.c); then the APPEND of the new records to `head_prefix .. id`, the new last
 * entry (last record + the head's first timestamp) and the cut test (max_samples records, or
 * max_span_ms between the head's first and last timestamp).
 *
 * The last entry is written only when the head was empty before the append: while a head
 * holds records it ends with the series' last record and starts with its first timestamp,
 * so the entry would repeat it, and writing it was a hash look-up and two allocations per
 * series and call (measured: 1.75 -> 1.5 us of Redis CPU per sample at 10,000 series). The
 * call then sets the string key `last_lags`: from then on, readers of the shard (the write
 * and cut scripts, /api/v1/series) take a non-empty head's tail over the last entry. The
 * cut script writes the entry afresh whenever it shortens a head. A call with the
 * arguments of earlier versions (no `last_lags`: 15 of them, as AOFs written then hold)
 * writes every last entry, as those versions did.
 *
 * Why: in the Lua script each series costs about a microsecond of glue per redis.call plus
 * Lua string interning, and a new one 20-35 us (cjson, the index writes); here a known
 * series is a few dictionary look-ups. Entries the command leaves (a new series whose labels
 * JSON holds an escape or is empty, and every later new series of the call) have their byte
 * ranges returned: the client sends exactly those to the Lua script, which has the whole
 * logic. An empty labels JSON is the client leaving the labels out of a series it saw stored
 * (a third of the bytes per known sample, which Redis parses and the AOF writes); if that
 * series is gone, the client puts them back before the script gets the entry.
 *
 * Reply: [id, head, id, head, ..., [offset, length, ...], accepted, duplicates ignored,
 * out of order, conflicting duplicates, over the limit, created, refused]: the heads that
 * need a cut, the entries left for the script, then the counts.
 *
 * MESHFED.APPEND last_key head_prefix max_samples max_span_ms batch is the first version's
 * command (known series only; every other entry is left, and the reply has the first four
 * counts): kept so that AOFs written by that version replay.
 *
 * Both are replicated (AOF, replicas) verbatim: deterministic given the keys they read, and
 * one command in the AOF instead of an APPEND and an HSET per series halved the cost
 * (measured: 1.9 -> 1.2 us of Redis CPU per sample at 10,000 series). The price: a server
 * must load this module to replay such an AOF (the embedded server always does).
 */
#include <string.h>

#include "meshfed_redis.h"

#define LAST_SIZE 24
#define MAX_ID 64

static uint64_t be64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = (v << 8) | p[i];
    return v;
}

static uint32_t be32(const unsigned char *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static int64_t timestamp_at(const unsigned char *p) { return (int64_t)be64(p); }

/* Reads the entry at *pos; 0 when the batch is malformed there. */
static int read_entry(const unsigned char *b, size_t size, size_t *pos, Entry *e) {
    size_t p = *pos;
    e->start = p;
    if (size - p < 2) return 0;
    e->id_len = ((size_t)b[p] << 8) | b[p + 1];
    e->id = p + 2;
    p = e->id + e->id_len;
    size_t *where[3] = {&e->tenant, &e->labels, &e->records};
    size_t *lens[3] = {&e->tenant_len, &e->labels_len, &e->n};
    for (int field = 0; field < 3; field++) { /* tenant, labels, then records */
        if (p > size || size - p < 4) return 0;
        size_t len = be32(b + p);
        p += 4;
        if (len > size - p) return 0;
        if (field == 2 && len % RECORD != 0) return 0; /* zero records is fine */
        *where[field] = p;
        *lens[field] = field == 2 ? len / RECORD : len;
        p += len;
    }
    e->end = p;
    *pos = p;
    return 1;
}

typedef struct {
    long long accepted, ignored, out_of_order, conflicts;
} Counts;

/* Appends the records of one series to its open `head` (`before` bytes long), after the
 * order check against its `last` record (none for a series with no last entry: a new
 * one). Writes its new last entry (last record + the head's first timestamp) unless
 * `lags` and the head already held records (*lagged is then set), and sets *cut_head when
 * the head is full. Returns whether it wrote anything (all the records may be duplicates
 * or out of order). */
static int append_records(RedisModuleCtx *ctx, RedisModuleKey *last_key, RedisModuleKey *head,
                          size_t before, const unsigned char *b, const Entry *e,
                          RedisModuleString *id, const unsigned char *last, long long max_n,
                          long long max_span, int lags, int *lagged, Counts *counts,
                          RedisModuleString **cut_head) {
    const unsigned char *recs = b + e->records;
    size_t skip = 0;
    while (last != NULL && skip < e->n) {
        const unsigned char *r = recs + skip * RECORD;
        int64_t ts = timestamp_at(r), last_ts = timestamp_at(last);
        if (ts > last_ts) break;
        if (ts < last_ts) counts->out_of_order++;
        else if (memcmp(r + 8, last + 8, 8) == 0) counts->ignored++;
        else counts->conflicts++;
        skip++;
    }
    *cut_head = NULL;
    if (skip == e->n) return 0;
    const unsigned char *data = recs + skip * RECORD;
    size_t data_len = (e->n - skip) * RECORD;
    size_t len = 0;
    RedisModule_StringTruncate(head, before + data_len); /* sds growth is amortized */
    char *bytes = RedisModule_StringDMA(head, &len, REDISMODULE_WRITE);
    memcpy(bytes + before, data, data_len);
    long long count = (long long)(len / RECORD);
    unsigned char entry[LAST_SIZE];
    memcpy(entry, recs + (e->n - 1) * RECORD, RECORD);
    memcpy(entry + RECORD, bytes, 8); /* the head's first timestamp */
    if (lags && before >= RECORD) {
        *lagged = 1;
    } else {
        RedisModuleString *value = RedisModule_CreateString(ctx, (const char *)entry, LAST_SIZE);
        RedisModule_HashSet(last_key, REDISMODULE_HASH_NONE, id, value, NULL);
        RedisModule_FreeString(ctx, value);
    }
    counts->accepted += (long long)(e->n - skip);
    int cut = count >= max_n;
    if (!cut && count > 1) {
        int64_t first_ts = timestamp_at(entry + RECORD);
        cut = timestamp_at(entry) - first_ts >= max_span;
    }
    if (cut) *cut_head = RedisModule_CreateString(ctx, bytes, len);
    return 1;
}

/* The series' last record (16 bytes) into `last`: from its head when it has one (the head
 * ends with it: one hash look-up saved), else from `last_key` (24-byte entries, or 16-byte
 * ones of older versions). 0 when it has no last entry (a new series). */
static int last_record(RedisModuleCtx *ctx, RedisModuleKey *last_key, RedisModuleKey *head,
                       size_t head_len, RedisModuleString *id, unsigned char *last) {
    if (head_len >= RECORD) {
        size_t len;
        const char *bytes = RedisModule_StringDMA(head, &len, REDISMODULE_READ);
        memcpy(last, bytes + len - RECORD, RECORD);
        return 1;
    }
    RedisModuleString *found = NULL;
    RedisModule_HashGet(last_key, REDISMODULE_HASH_NONE, id, &found, NULL);
    if (found == NULL) return 0;
    size_t len;
    const char *bytes = RedisModule_StringPtrLen(found, &len);
    int ok = len >= RECORD;
    if (ok) memcpy(last, bytes, RECORD);
    RedisModule_FreeString(ctx, found);
    return ok;
}

/* One call's state, shared by its two passes. */
typedef struct {
    RedisModuleCtx *ctx;
    const unsigned char *b;
    RedisModuleKey *last_key;
    RedisModuleKey *lags_key; /* `last_lags`; NULL for the arguments of earlier versions */
    int lagged;               /* a last entry was left behind its head */
    const char *prefix;
    size_t prefix_len;
    char *name; /* head key scratch */
    long long max_n, max_span;
    Counts counts;
    size_t *left, n_left;
    RedisModuleString **cuts;
    size_t n_cuts;
    long long counts_new[3]; /* over the limit, created, refused (MESHFED.WRITE) */
    int wrote, failed;
} Call;

static void leave(Call *c, const Entry *e) {
    c->left[c->n_left++] = e->start;
    c->left[c->n_left++] = e->end - e->start;
}

/* Opens the head of `e`; NULL (and c->failed) when the key holds another type. */
static RedisModuleKey *open_head(Call *c, const Entry *e, size_t *before) {
    memcpy(c->name + c->prefix_len, c->b + e->id, e->id_len);
    RedisModuleString *name = RedisModule_CreateString(c->ctx, c->name, c->prefix_len + e->id_len);
    RedisModuleKey *head = RedisModule_OpenKey(c->ctx, name, REDISMODULE_READ | REDISMODULE_WRITE);
    RedisModule_FreeString(c->ctx, name);
    int type = RedisModule_KeyType(head);
    if (type != REDISMODULE_KEYTYPE_EMPTY && type != REDISMODULE_KEYTYPE_STRING) {
        RedisModule_CloseKey(head);
        c->failed = 1;
        return NULL;
    }
    *before = type == REDISMODULE_KEYTYPE_EMPTY ? 0 : RedisModule_ValueLength(head);
    return head;
}

static void append_to(Call *c, RedisModuleKey *head, size_t before, const Entry *e,
                      RedisModuleString *id, const unsigned char *last) {
    RedisModuleString *cut = NULL;
    c->wrote |= append_records(c->ctx, c->last_key, head, before, c->b, e, id, last, c->max_n,
                               c->max_span, c->lags_key != NULL, &c->lagged, &c->counts, &cut);
    if (cut) {
        RedisModule_RetainString(c->ctx, id);
        c->cuts[c->n_cuts++] = id;
        c->cuts[c->n_cuts++] = cut;
    }
}

/* The series with no last entry, in batch order: already indexed ones are appended to as
 * the script does (no order check); new ones go through the caps and the index (`ns`). */
static void write_unknown(Call *c, NewSeries *ns, Entry *unknown, RedisModuleString **ids, size_t n) {
    unsigned char *indexed = RedisModule_Alloc(n + 1);
    if (!new_series_known(ns, ids, n, indexed)) c->failed = 1;
    for (size_t i = 0; i < n && !c->failed; i++) {
        if (!indexed[i]) {
            int added = new_series_add(ns, c->b, &unknown[i], ids[i]);
            if (added < 0) leave(c, &unknown[i]);
            if (added <= 0) continue;
        }
        size_t before;
        RedisModuleKey *head = open_head(c, &unknown[i], &before);
        if (head == NULL) break;
        append_to(c, head, before, &unknown[i], ids[i], NULL);
        RedisModule_CloseKey(head);
    }
    RedisModule_Free(indexed);
}

/* Opens `last_lags` into *key (NULL name: none, as in earlier versions' calls); 0 when the
 * key holds another type than a string. */
static int open_lags(RedisModuleCtx *ctx, RedisModuleString *name, RedisModuleKey **key) {
    *key = NULL;
    if (name == NULL) return 1;
    *key = RedisModule_OpenKey(ctx, name, REDISMODULE_READ | REDISMODULE_WRITE);
    int type = RedisModule_KeyType(*key);
    return type == REDISMODULE_KEYTYPE_EMPTY || type == REDISMODULE_KEYTYPE_STRING;
}

/* Marks the shard's last entries as lagging their heads (once: the key stays). */
static void mark_lagging(RedisModuleCtx *ctx, RedisModuleKey *key) {
    if (RedisModule_KeyType(key) != REDISMODULE_KEYTYPE_EMPTY) return;
    RedisModuleString *one = RedisModule_CreateString(ctx, "1", 1);
    RedisModule_StringSet(key, one);
    RedisModule_FreeString(ctx, one);
}

/* MESHFED.APPEND (index == NULL: series without a last entry are left to the script) and
 * MESHFED.WRITE (they are created here, under the caps). */
static int write_batch(RedisModuleCtx *ctx, RedisModuleString *last_name,
                       RedisModuleString *head_prefix, RedisModuleString *max_n_arg,
                       RedisModuleString *max_span_arg, RedisModuleString *lags_name,
                       RedisModuleString *batch, const IndexKeys *index) {
    Call c = {.ctx = ctx};
    if (RedisModule_StringToLongLong(max_n_arg, &c.max_n) != REDISMODULE_OK ||
        RedisModule_StringToLongLong(max_span_arg, &c.max_span) != REDISMODULE_OK || c.max_n < 1) {
        return RedisModule_ReplyWithError(ctx, "ERR max_samples and max_span_ms must be integers");
    }
    size_t size;
    c.prefix = RedisModule_StringPtrLen(head_prefix, &c.prefix_len);
    c.b = (const unsigned char *)RedisModule_StringPtrLen(batch, &size);

    /* Validate the whole batch first: a malformed one changes nothing. */
    size_t entries = 0;
    for (size_t pos = 0; pos < size; entries++) {
        Entry e;
        if (!read_entry(c.b, size, &pos, &e)) {
            return RedisModule_ReplyWithError(ctx, "ERR malformed meshfed batch");
        }
    }
    c.last_key = RedisModule_OpenKey(ctx, last_name, REDISMODULE_READ | REDISMODULE_WRITE);
    int last_type = RedisModule_KeyType(c.last_key);
    NewSeries *ns = NULL;
    if ((last_type != REDISMODULE_KEYTYPE_EMPTY && last_type != REDISMODULE_KEYTYPE_HASH) ||
        !open_lags(ctx, lags_name, &c.lags_key) ||
        (index != NULL && (ns = new_series_start(ctx, index)) == NULL)) {
        RedisModule_CloseKey(c.last_key);
        if (c.lags_key) RedisModule_CloseKey(c.lags_key);
        return RedisModule_ReplyWithError(ctx, REDISMODULE_ERRORMSG_WRONGTYPE);
    }
    c.left = RedisModule_Alloc(sizeof(size_t) * 2 * (entries + 1));
    c.cuts = RedisModule_Alloc(sizeof(RedisModuleString *) * 2 * (entries + 1));
    c.name = RedisModule_Alloc(c.prefix_len + MAX_ID);
    memcpy(c.name, c.prefix, c.prefix_len);
    Entry *unknown = RedisModule_Alloc(sizeof(Entry) * (entries + 1));
    RedisModuleString **ids = RedisModule_Alloc(sizeof(RedisModuleString *) * (entries + 1));
    size_t n_unknown = 0;
    for (size_t pos = 0; pos < size && !c.failed;) { /* pass 1: series with a last record */
        Entry e;
        read_entry(c.b, size, &pos, &e);
        if (e.id_len == 0 || e.id_len > MAX_ID) { /* not an id this module makes keys of */
            leave(&c, &e);
            continue;
        }
        RedisModuleString *id = RedisModule_CreateString(ctx, (const char *)c.b + e.id, e.id_len);
        size_t before;
        RedisModuleKey *head = open_head(&c, &e, &before);
        unsigned char last[RECORD];
        if (head != NULL && last_record(ctx, c.last_key, head, before, id, last)) {
            append_to(&c, head, before, &e, id, last);
            RedisModule_FreeString(ctx, id);
        } else if (head != NULL && ns != NULL) {
            unknown[n_unknown] = e;
            ids[n_unknown++] = id;
        } else {
            if (head != NULL) leave(&c, &e);
            RedisModule_FreeString(ctx, id);
        }
        if (head != NULL) RedisModule_CloseKey(head);
    }
    if (ns != NULL) {
        if (!c.failed) write_unknown(&c, ns, unknown, ids, n_unknown);
        long long created, refused, over;
        int failed;
        c.wrote |= new_series_finish(ns, &created, &refused, &over, &failed);
        c.failed |= failed;
        c.counts_new[0] = over, c.counts_new[1] = created, c.counts_new[2] = refused;
    }
    for (size_t i = 0; i < n_unknown; i++) RedisModule_FreeString(ctx, ids[i]);
    RedisModule_Free(ids);
    RedisModule_Free(unknown);
    if (c.lagged) mark_lagging(ctx, c.lags_key);
    if (c.lags_key) RedisModule_CloseKey(c.lags_key);
    RedisModule_CloseKey(c.last_key);
    RedisModule_Free(c.name);
    if (c.wrote) RedisModule_ReplicateVerbatim(ctx); /* a call that changed nothing stays out of the AOF */
    if (c.failed) {
        RedisModule_ReplyWithError(ctx, REDISMODULE_ERRORMSG_WRONGTYPE);
    } else {
        RedisModule_ReplyWithArray(ctx, (long)c.n_cuts + (index ? 8 : 5));
        for (size_t i = 0; i < c.n_cuts; i++) RedisModule_ReplyWithString(ctx, c.cuts[i]);
        RedisModule_ReplyWithArray(ctx, (long)c.n_left);
        for (size_t i = 0; i < c.n_left; i++) RedisModule_ReplyWithLongLong(ctx, (long long)c.left[i]);
        RedisModule_ReplyWithLongLong(ctx, c.counts.accepted);
        RedisModule_ReplyWithLongLong(ctx, c.counts.ignored);
        RedisModule_ReplyWithLongLong(ctx, c.counts.out_of_order);
        RedisModule_ReplyWithLongLong(ctx, c.counts.conflicts);
        for (int i = 0; index && i < 3; i++) RedisModule_ReplyWithLongLong(ctx, c.counts_new[i]);
    }
    for (size_t i = 0; i < c.n_cuts; i++) RedisModule_FreeString(ctx, c.cuts[i]);
    RedisModule_Free(c.cuts);
    RedisModule_Free(c.left);
    return REDISMODULE_OK;
}

/* MESHFED.APPEND last_key head_prefix max_samples max_span_ms batch */
static int append_command(RedisModuleCtx *ctx, RedisModuleString **argv, int argc) {
    if (argc != 6) return RedisModule_WrongArity(ctx);
    return write_batch(ctx, argv[1], argv[2], argv[3], argv[4], NULL, argv[5], NULL);
}

/* MESHFED.WRITE series all last first tenants stats names values_prefix postings_prefix
 * head_prefix cap_total cap_tenant max_samples max_span_ms [last_lags] batch: the write
 * script's KEYS and ARGV, in its order (without `last_lags`: an earlier version's call). */
static int write_command(RedisModuleCtx *ctx, RedisModuleString **argv, int argc) {
    if (argc != 16 && argc != 17) return RedisModule_WrongArity(ctx);
    IndexKeys index = {argv[1], argv[2], argv[4], argv[5], argv[6], argv[7], argv[8], argv[9], 0, 0};
    if (RedisModule_StringToLongLong(argv[11], &index.cap_total) != REDISMODULE_OK ||
        RedisModule_StringToLongLong(argv[12], &index.cap_tenant) != REDISMODULE_OK) {
        return RedisModule_ReplyWithError(ctx, "ERR the caps must be integers");
    }
    RedisModuleString *lags = argc == 17 ? argv[15] : NULL;
    return write_batch(ctx, argv[3], argv[10], argv[13], argv[14], lags, argv[argc - 1], &index);
}

int RedisModule_OnLoad(RedisModuleCtx *ctx, RedisModuleString **argv, int argc) {
    (void)argv;
    (void)argc;
    if (RedisModule_Init(ctx, "meshfed", 1, REDISMODULE_APIVER_1) == REDISMODULE_ERR) {
        return REDISMODULE_ERR;
    }
    /* The first argument is the only declared key; the others share its hash tag (one slot
     * per shard). MESHFED.APPEND stays for AOFs written before MESHFED.WRITE existed. */
    if (RedisModule_CreateCommand(ctx, "meshfed.append", append_command, "write deny-oom", 1, 1,
                                  1) == REDISMODULE_ERR ||
        RedisModule_CreateCommand(ctx, "meshfed.write", write_command, "write deny-oom", 1, 1,
                                  1) == REDISMODULE_ERR) {
        return REDISMODULE_ERR;
    }
    return REDISMODULE_OK;
}
