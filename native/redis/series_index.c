/*
 * New series for MESHFED.WRITE: the caps, the label index and the refusal counts, as the
 * write script does them (collectors/store/metrics_lua.py, WRITE_LUA), for one call.
 *
 * A new series is checked against the caps (the `all` set's size, the tenant's count in
 * `tenants`), in batch order; a created one gets its labels in `series` and its first
 * timestamp in `first` at once (low-level hash writes), and its set members are queued:
 * `all`, one posting per label pair, the label values and names. Like the script, the call
 * writes each posting once with every new series that has it (`job`, `cluster`... are
 * shared by many), so a call of thousands of new series makes a few hundred SADDs, not one
 * per series and label. Sets are written through RedisModule_Call: Redis 6.2's module API
 * has no low-level set writes.
 *
 * Labels arrive as the collector's canonical JSON (`["name","value",...]`, compact, UTF-8).
 * Without a backslash every quote in it is a delimiter, so it splits exactly as cjson would
 * decode it; a series whose JSON holds an escape is left to the script, with every later
 * new series of the call, so the caps still see new series in batch order.
 */
#include <string.h>

#include "meshfed_redis.h"

typedef struct {
    RedisModuleString **items;
    size_t n, cap;
} Vec;

static void vec_push(Vec *v, RedisModuleString *s) {
    if (v->n == v->cap) {
        v->cap = v->cap ? 2 * v->cap : 8;
        v->items = RedisModule_Realloc(v->items, v->cap * sizeof *v->items);
    }
    v->items[v->n++] = s;
}

typedef struct {
    long long count, added;
} TenantCount;

typedef struct {
    long long series, samples;
} Refusal;

struct NewSeries {
    RedisModuleCtx *ctx;
    IndexKeys keys;
    RedisModuleKey *series, *first, *tenants;
    long long total; /* the `all` set's size, counting this call's new series */
    long long created, refused, over;
    int gave_up;     /* a series was left to the script: so are the later new ones */
    Vec ids;         /* created series, for `all` (owns the strings) */
    RedisModuleDict *postings;      /* posting key -> Vec of ids */
    RedisModuleDict *values;        /* label name -> Vec of values (owns the strings) */
    RedisModuleDict *tenant_counts; /* tenant -> TenantCount */
    RedisModuleDict *refusals;      /* "reason|tenant" -> Refusal */
    char *scratch;
    size_t scratch_cap;
};

/* Opens a hash key into *key (NULL: a missing key opened to read); 0 for another type. */
static int open_hash(RedisModuleCtx *ctx, RedisModuleString *name, int mode, RedisModuleKey **key) {
    *key = RedisModule_OpenKey(ctx, name, mode);
    int type = RedisModule_KeyType(*key);
    if (type == REDISMODULE_KEYTYPE_EMPTY || type == REDISMODULE_KEYTYPE_HASH) return 1;
    RedisModule_CloseKey(*key);
    *key = NULL;
    return 0;
}

NewSeries *new_series_start(RedisModuleCtx *ctx, const IndexKeys *keys) {
    NewSeries *ns = RedisModule_Calloc(1, sizeof *ns);
    ns->ctx = ctx;
    ns->keys = *keys;
    int write = REDISMODULE_READ | REDISMODULE_WRITE;
    int ok = open_hash(ctx, keys->series, write, &ns->series);
    ok &= open_hash(ctx, keys->first, write, &ns->first);
    ok &= open_hash(ctx, keys->tenants, REDISMODULE_READ, &ns->tenants);
    RedisModuleKey *all = RedisModule_OpenKey(ctx, keys->all, REDISMODULE_READ);
    ns->total = (long long)RedisModule_ValueLength(all);
    RedisModule_CloseKey(all);
    ns->postings = RedisModule_CreateDict(ctx);
    ns->values = RedisModule_CreateDict(ctx);
    ns->tenant_counts = RedisModule_CreateDict(ctx);
    ns->refusals = RedisModule_CreateDict(ctx);
    if (!ok) {
        int failed;
        long long ignored;
        new_series_finish(ns, &ignored, &ignored, &ignored, &failed);
        return NULL;
    }
    return ns;
}

static int is_error(RedisModuleCallReply *reply) {
    return reply == NULL || RedisModule_CallReplyType(reply) == REDISMODULE_REPLY_ERROR;
}

int new_series_known(NewSeries *ns, RedisModuleString **ids, size_t n, unsigned char *out) {
    memset(out, 0, n);
    if (n == 0 || ns->total == 0) return 1; /* an empty `all`: nothing to ask */
    RedisModuleCallReply *reply = RedisModule_Call(ns->ctx, "SMISMEMBER", "sv", ns->keys.all, ids, n);
    int ok = !is_error(reply) && RedisModule_CallReplyLength(reply) == n;
    for (size_t i = 0; ok && i < n; i++) {
        out[i] = RedisModule_CallReplyInteger(RedisModule_CallReplyArrayElement(reply, i)) == 1;
    }
    if (reply) RedisModule_FreeCallReply(reply);
    return ok;
}

/* `a` then `b` in the scratch buffer (grown as needed), with `extra` bytes of room after
 * them; returns their length. */
static size_t scratch_join(NewSeries *ns, const char *a, size_t a_len, const void *b, size_t b_len,
                           size_t extra) {
    if (a_len + b_len + extra > ns->scratch_cap) {
        ns->scratch_cap = 2 * (a_len + b_len + extra);
        ns->scratch = RedisModule_Realloc(ns->scratch, ns->scratch_cap);
    }
    memcpy(ns->scratch, a, a_len);
    memcpy(ns->scratch + a_len, b, b_len);
    return a_len + b_len;
}

/* `prefix` (a key prefix argument) then `b` in the scratch buffer, `extra` bytes of room. */
static size_t scratch_key(NewSeries *ns, RedisModuleString *prefix, const void *b, size_t b_len,
                          size_t extra) {
    size_t plen;
    const char *p = RedisModule_StringPtrLen(prefix, &plen);
    return scratch_join(ns, p, plen, b, b_len, extra);
}

/* Vec stored under `key` in `d`, made when missing (*made set). */
static Vec *vec_at(RedisModuleDict *d, const char *key, size_t len, int *made) {
    int missing = 0;
    Vec *v = RedisModule_DictGetC(d, (void *)key, len, &missing);
    *made = missing;
    if (missing) {
        v = RedisModule_Calloc(1, sizeof *v);
        RedisModule_DictSetC(d, (void *)key, len, v);
    }
    return v;
}

/* Queues the postings and values of one created series. 0 when its labels JSON is not the
 * plain compact form (an escape, or not a flat array of string pairs). */
static int queue_labels(NewSeries *ns, const unsigned char *s, size_t len, RedisModuleString *id) {
    if (len < 2 || s[0] != '[' || s[len - 1] != ']' || memchr(s, '\\', len)) return 0;
    if (len == 2) return 1; /* no labels */
    if (len < 4 || s[1] != '"' || s[len - 2] != '"') return 0;
    /* Pieces between `["`, `","` and `"]`; checked whole before anything is queued. */
    size_t count = 0, p = 2, end = len - 2;
    for (;;) {
        const unsigned char *q = memchr(s + p, '"', end - p);
        count++;
        if (q == NULL) break;
        size_t at = (size_t)(q - s);
        if (at + 3 > end || s[at + 1] != ',' || s[at + 2] != '"') return 0;
        p = at + 3;
    }
    if (count % 2 != 0) return 0;
    p = 2;
    while (p <= end) {
        const unsigned char *q = memchr(s + p, '"', end - p);
        size_t name_end = (size_t)(q - s), value = name_end + 3;
        const unsigned char *r = memchr(s + value, '"', end - value);
        size_t value_end = r ? (size_t)(r - s) : end;
        size_t name_len = name_end - p, value_len = value_end - value;
        size_t at = scratch_key(ns, ns->keys.postings_prefix, s + p, name_len, 1 + value_len);
        ns->scratch[at] = '\0';
        memcpy(ns->scratch + at + 1, s + value, value_len);
        int made;
        Vec *members = vec_at(ns->postings, ns->scratch, at + 1 + value_len, &made);
        vec_push(members, id);
        if (made) { /* a new label pair: its value joins the name's values */
            Vec *values = vec_at(ns->values, (const char *)s + p, name_len, &made);
            vec_push(values, RedisModule_CreateString(ns->ctx, (const char *)s + value, value_len));
        }
        p = value_end + 3;
    }
    return 1;
}

static long long *tenant_count(NewSeries *ns, const unsigned char *tenant, size_t len, int added) {
    int missing = 0;
    TenantCount *t = RedisModule_DictGetC(ns->tenant_counts, (void *)tenant, len, &missing);
    if (missing) {
        t = RedisModule_Calloc(1, sizeof *t);
        RedisModuleString *found = NULL;
        if (ns->tenants != NULL) { /* NULL: no tenant has series yet */
            RedisModuleString *field = RedisModule_CreateString(ns->ctx, (const char *)tenant, len);
            RedisModule_HashGet(ns->tenants, REDISMODULE_HASH_NONE, field, &found, NULL);
            RedisModule_FreeString(ns->ctx, field);
        }
        if (found) {
            RedisModule_StringToLongLong(found, &t->count);
            RedisModule_FreeString(ns->ctx, found);
        }
        RedisModule_DictSetC(ns->tenant_counts, (void *)tenant, len, t);
    }
    return added ? &t->added : &t->count;
}

static void refuse(NewSeries *ns, const unsigned char *b, const Entry *e, int over_total) {
    const char *why = over_total ? "max_series_total|" : "max_series_per_tenant|";
    size_t len = scratch_join(ns, why, strlen(why), b + e->tenant, e->tenant_len, 0);
    int missing = 0;
    Refusal *r = RedisModule_DictGetC(ns->refusals, ns->scratch, len, &missing);
    if (missing) {
        r = RedisModule_Calloc(1, sizeof *r);
        RedisModule_DictSetC(ns->refusals, ns->scratch, len, r);
    }
    r->series++;
    r->samples += (long long)e->n;
    ns->refused++;
    ns->over += (long long)e->n;
}

int new_series_add(NewSeries *ns, const unsigned char *b, const Entry *e, RedisModuleString *id) {
    /* No labels: the client left them out of a series it saw stored, which is gone (deleted,
     * or a Redis that lost its data); it puts them back for the script (meshfed_redis.c). */
    if (e->labels_len == 0) ns->gave_up = 1;
    if (ns->gave_up) return -1;
    long long *in_tenant = tenant_count(ns, b + e->tenant, e->tenant_len, 0);
    if (ns->total >= ns->keys.cap_total || *in_tenant >= ns->keys.cap_tenant) {
        refuse(ns, b, e, ns->total >= ns->keys.cap_total);
        return 0;
    }
    if (!queue_labels(ns, b + e->labels, e->labels_len, id)) {
        ns->gave_up = 1;
        return -1;
    }
    ns->total++;
    ns->created++;
    (*in_tenant)++;
    (*tenant_count(ns, b + e->tenant, e->tenant_len, 1))++;
    RedisModule_RetainString(ns->ctx, id);
    vec_push(&ns->ids, id);
    RedisModuleString *labels = RedisModule_CreateString(ns->ctx, (const char *)b + e->labels, e->labels_len);
    RedisModuleString *first = RedisModule_CreateString(ns->ctx, (const char *)b + e->records, e->n ? 8 : 0);
    RedisModule_HashSet(ns->series, REDISMODULE_HASH_NONE, id, labels, NULL);
    RedisModule_HashSet(ns->first, REDISMODULE_HASH_NONE, id, first, NULL);
    RedisModule_FreeString(ns->ctx, labels);
    RedisModule_FreeString(ns->ctx, first);
    return 1;
}

/* SADD key members; 0 when refused. */
static int sadd(NewSeries *ns, const char *key, size_t key_len, const Vec *members) {
    if (members->n == 0) return 1;
    RedisModuleCallReply *reply = RedisModule_Call(ns->ctx, "SADD", "bv", key, key_len, members->items, members->n);
    int ok = !is_error(reply);
    if (reply) RedisModule_FreeCallReply(reply);
    return ok;
}

static int hincrby(NewSeries *ns, RedisModuleString *key, const char *field, size_t len, long long by) {
    RedisModuleCallReply *reply = RedisModule_Call(ns->ctx, "HINCRBY", "sbl", key, field, len, by);
    int ok = !is_error(reply);
    if (reply) RedisModule_FreeCallReply(reply);
    return ok;
}

/* Frees every value of `d` (with `free_vec`: a Vec whose strings it owns), then `d`. */
static void free_dict(NewSeries *ns, RedisModuleDict *d, int vec, int owns_strings) {
    RedisModuleDictIter *it = RedisModule_DictIteratorStartC(d, "^", NULL, 0);
    void *data;
    while (RedisModule_DictNextC(it, NULL, &data)) {
        if (vec) {
            Vec *v = data;
            for (size_t i = 0; owns_strings && i < v->n; i++) RedisModule_FreeString(ns->ctx, v->items[i]);
            RedisModule_Free(v->items);
        }
        RedisModule_Free(data);
    }
    RedisModule_DictIteratorStop(it);
    RedisModule_FreeDict(ns->ctx, d);
}

int new_series_finish(NewSeries *ns, long long *created, long long *refused,
                      long long *over_limit, int *failed) {
    /* The low-level handles first: the calls below may write the same keys (`tenants`). */
    if (ns->series) RedisModule_CloseKey(ns->series);
    if (ns->first) RedisModule_CloseKey(ns->first);
    if (ns->tenants) RedisModule_CloseKey(ns->tenants);
    int ok = 1;
    size_t all_len;
    const char *all = RedisModule_StringPtrLen(ns->keys.all, &all_len);
    ok &= sadd(ns, all, all_len, &ns->ids);
    RedisModuleDictIter *it = RedisModule_DictIteratorStartC(ns->postings, "^", NULL, 0);
    size_t len;
    void *data;
    char *key;
    while (ok && (key = RedisModule_DictNextC(it, &len, &data))) ok &= sadd(ns, key, len, data);
    RedisModule_DictIteratorStop(it);
    Vec names = {0};
    it = RedisModule_DictIteratorStartC(ns->values, "^", NULL, 0);
    while (ok && (key = RedisModule_DictNextC(it, &len, &data))) {
        size_t key_len = scratch_key(ns, ns->keys.values_prefix, key, len, 0); /* may move it */
        ok &= sadd(ns, ns->scratch, key_len, data);
        vec_push(&names, RedisModule_CreateString(ns->ctx, key, len));
    }
    RedisModule_DictIteratorStop(it);
    size_t names_len;
    const char *names_key = RedisModule_StringPtrLen(ns->keys.names, &names_len);
    if (ok) ok &= sadd(ns, names_key, names_len, &names);
    for (size_t i = 0; i < names.n; i++) RedisModule_FreeString(ns->ctx, names.items[i]);
    RedisModule_Free(names.items);
    it = RedisModule_DictIteratorStartC(ns->tenant_counts, "^", NULL, 0);
    while (ok && (key = RedisModule_DictNextC(it, &len, &data))) {
        TenantCount *t = data;
        if (t->added) ok &= hincrby(ns, ns->keys.tenants, key, len, t->added);
    }
    RedisModule_DictIteratorStop(it);
    if (ok && ns->refused) {
        ok &= hincrby(ns, ns->keys.stats, "series_refused", 14, ns->refused);
        ok &= hincrby(ns, ns->keys.stats, "samples_over_limit", 18, ns->over);
        it = RedisModule_DictIteratorStartC(ns->refusals, "^", NULL, 0);
        while (ok && (key = RedisModule_DictNextC(it, &len, &data))) {
            Refusal *r = data;
            const char *kinds[2] = {"refused_series|", "refused_samples|"};
            long long counts[2] = {r->series, r->samples};
            for (int k = 0; k < 2 && ok; k++) {
                size_t at = scratch_join(ns, kinds[k], strlen(kinds[k]), key, len, 0);
                ok &= hincrby(ns, ns->keys.stats, ns->scratch, at, counts[k]);
            }
        }
        RedisModule_DictIteratorStop(it);
    }
    int wrote = ns->created > 0 || ns->refused > 0;
    *created = ns->created;
    *refused = ns->refused;
    *over_limit = ns->over;
    *failed = !ok;
    for (size_t i = 0; i < ns->ids.n; i++) RedisModule_FreeString(ns->ctx, ns->ids.items[i]);
    RedisModule_Free(ns->ids.items);
    free_dict(ns, ns->postings, 1, 0);
    free_dict(ns, ns->values, 1, 1);
    free_dict(ns, ns->tenant_counts, 0, 0);
    free_dict(ns, ns->refusals, 0, 0);
    RedisModule_Free(ns->scratch);
    RedisModule_Free(ns);
    return wrote;
}
