/* The VM: capped allocator, count hook, protected entry points for Swift. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

const char picloud_key_env = 0;
const char picloud_key_genv = 0;
const char picloud_key_modules = 0;
const char picloud_key_loaded = 0;
const char picloud_key_frozen = 0;
const char picloud_key_array = 0;
const char picloud_key_traceback = 0;

uint64_t picloud_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

picloud_vm *picloud_vm_of(lua_State *L) {
    void *ud = NULL;
    lua_getallocf(L, &ud);
    return (picloud_vm *)ud;
}

uintptr_t picloud_thread_flags(lua_State *L) {
    uintptr_t flags;
    memcpy(&flags, lua_getextraspace(L), sizeof flags);
    return flags;
}

void picloud_set_thread_flags(lua_State *L, uintptr_t flags) {
    memcpy(lua_getextraspace(L), &flags, sizeof flags);
}

/* ---- allocator ---- */

/* Counts every byte; refuses growth past the cap while Lua code runs. Lua turns a refusal into a
 * catchable "not enough memory" error (after an emergency collection). Shrinking never fails. */
static void *picloud_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    picloud_vm *vm = (picloud_vm *)ud;
    size_t old = ptr ? osize : 0;
    if (nsize == 0) {
        free(ptr);
        vm->mem_used -= old;
        return NULL;
    }
    if (nsize > old && vm->mem_enforce) {
        size_t grow = nsize - old;
        if (vm->mem_used >= vm->mem_limit || grow > vm->mem_limit - vm->mem_used) {
            vm->mem_breached = 1;
            return NULL;
        }
    }
    void *p = realloc(ptr, nsize);
    if (p == NULL) return NULL;
    vm->mem_used = vm->mem_used - old + nsize;
    if (vm->mem_used > vm->mem_peak) vm->mem_peak = vm->mem_used;
    return p;
}

static int picloud_panic(lua_State *L) {
    const char *msg = lua_tostring(L, -1);
    fprintf(stderr, "picloud: unprotected Lua error: %s\n", msg ? msg : "(not a string)");
    fflush(stderr);
    return 0; /* Lua aborts */
}

/* ---- limits ---- */

static const char *kill_message(int reason) {
    switch (reason) {
    case PICLOUD_KILL_DEADLINE: return "time limit exceeded";
    default: return "instruction limit exceeded";
    }
}

static void picloud_hook(lua_State *L, lua_Debug *ar);

/* level: 0 from the hook (the running Lua function), 1 from a C function (its caller). */
static int raise_kill_at(lua_State *L, int level) {
    picloud_vm *vm = picloud_vm_of(L);
    /* From now on this thread stops at every instruction, so a pcall that catches the error
     * cannot run even one more instruction after it. */
    lua_sethook(L, picloud_hook, LUA_MASKCOUNT, 1);
    luaL_where(L, level);
    lua_pushstring(L, kill_message(vm->killed));
    lua_concat(L, 2);
    return lua_error(L);
}

int picloud_raise_kill(lua_State *L) { return raise_kill_at(L, 1); }

/* Fires every hook_interval instructions in every coroutine (new threads inherit the hook).
 * Stops an invocation past its budget or deadline; pauses one past its time slice. */
static void picloud_hook(lua_State *L, lua_Debug *ar) {
    (void)ar;
    picloud_vm *vm = picloud_vm_of(L);
    if (!vm->killed) {
        int count = lua_gethookcount(L);
        vm->budget -= count;
        uint64_t now = (vm->deadline_ns != 0 || vm->slice_end_ns != 0) ? picloud_now_ns() : 0;
        if (vm->budget <= 0) {
            vm->killed = PICLOUD_KILL_INSTRUCTIONS;
        } else if (vm->deadline_ns != 0 && now >= vm->deadline_ns) {
            vm->killed = PICLOUD_KILL_DEADLINE;
        } else {
            if (count != vm->hook_interval) /* a thread left in kill mode by an earlier run */
                lua_sethook(L, picloud_hook, LUA_MASKCOUNT, vm->hook_interval);
            if (vm->slice_end_ns != 0 && now >= vm->slice_end_ns && picloud_can_suspend(L)) {
                /* Pause: yield from the hook (Lua 5.4 allows it for count hooks, with no values);
                 * it travels up to Swift like a waiting host call (corolib passes it through the
                 * script's coroutines), and resuming continues at the interrupted instruction.
                 * Marked waiting, so no other invocation can resume this coroutine meanwhile. */
                vm->slice_end_ns = 0;
                vm->suspend_pending = 1;
                vm->preempted = 1;
                picloud_set_thread_flags(L, picloud_thread_flags(L) | PICLOUD_THREAD_HOST_WAIT);
                lua_yield(L, 0);
            }
            return;
        }
    }
    raise_kill_at(L, 0);
}

void picloud_charge(lua_State *L, int64_t n) {
    picloud_vm *vm = picloud_vm_of(L);
    if (n <= 0) return;
    if (vm->killed || n >= vm->budget) {
        vm->budget = 0;
        if (!vm->killed) vm->killed = PICLOUD_KILL_INSTRUCTIONS;
        picloud_raise_kill(L);
    }
    vm->budget -= n;
}

void picloud_reset_hook(lua_State *L) {
    picloud_vm *vm = picloud_vm_of(L);
    lua_sethook(L, picloud_hook, LUA_MASKCOUNT, vm->hook_interval);
}

/* ---- creation ---- */

int picloud_open_sandbox(lua_State *L); /* sandbox.c */

lua_State *picloud_open(size_t mem_limit, int hook_interval, int64_t pattern_step_limit,
                        picloud_host_dispatch dispatch, void *host, int print_function) {
    picloud_vm *vm = (picloud_vm *)calloc(1, sizeof(picloud_vm));
    if (vm == NULL) return NULL;
    vm->mem_limit = mem_limit;
    vm->hook_interval = hook_interval > 0 ? hook_interval : 1000;
    vm->pattern_step_limit = pattern_step_limit;
    vm->budget = INT64_MAX;
    vm->dispatch = dispatch;
    vm->host = host;
    vm->print_function = print_function;
    lua_State *L = lua_newstate(picloud_alloc, vm);
    if (L == NULL) {
        free(vm);
        return NULL;
    }
    lua_atpanic(L, picloud_panic);
    lua_setwarnf(L, NULL, NULL);
    picloud_set_thread_flags(L, 0);
    lua_sethook(L, picloud_hook, LUA_MASKCOUNT, vm->hook_interval);
    lua_pushcfunction(L, picloud_open_sandbox);
    if (lua_pcall(L, 0, 0, 0) != LUA_OK) {
        lua_close(L);
        free(vm);
        return NULL;
    }
    return L;
}

void picloud_close(lua_State *L) {
    picloud_vm *vm = picloud_vm_of(L);
    vm->closing = 1;
    /* Scripts cannot install __gc, so closing runs no script code; keep the limits on anyway. */
    vm->killed = PICLOUD_KILL_DEADLINE;
    vm->mem_enforce = 1;
    lua_close(L);
    free(vm);
}

/* ---- compiling ---- */

typedef struct {
    char *data;
    size_t len;
    size_t cap;
} dump_buffer;

static int dump_writer(lua_State *L, const void *p, size_t sz, void *ud) {
    (void)L;
    dump_buffer *b = (dump_buffer *)ud;
    if (b->len + sz > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap < b->len + sz) cap *= 2;
        char *n = (char *)realloc(b->data, cap);
        if (n == NULL) return 1;
        b->data = n;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, sz);
    b->len += sz;
    return 0;
}

static char *copy_bytes(const char *s, size_t len) {
    char *out = (char *)malloc(len + 1);
    if (out == NULL) return NULL;
    memcpy(out, s, len);
    out[len] = 0;
    return out;
}

int picloud_compile(const char *source, size_t len, const char *chunkname, char **out,
                    size_t *out_len) {
    *out = NULL;
    *out_len = 0;
    lua_State *L = luaL_newstate();
    if (L == NULL) return LUA_ERRMEM;
    int status = luaL_loadbufferx(L, source, len, chunkname, "t");
    if (status == LUA_OK) {
        dump_buffer b = {NULL, 0, 0};
        if (lua_dump(L, dump_writer, &b, 0) != 0) {
            free(b.data);
            status = LUA_ERRMEM;
        } else {
            *out = b.data;
            *out_len = b.len;
        }
    } else {
        size_t mlen = 0;
        const char *msg = lua_tolstring(L, -1, &mlen);
        if (msg != NULL) {
            *out = copy_bytes(msg, mlen);
            *out_len = mlen;
        }
    }
    lua_close(L);
    return status;
}

void picloud_free(void *p) { free(p); }

/* ---- modules ---- */

int picloud_load_module(lua_State *L, const char *name, const char *bytecode, size_t len,
                        const char *chunkname) {
    int status = luaL_loadbufferx(L, bytecode, len, chunkname, "b");
    if (status != LUA_OK) return status;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &picloud_key_genv);
    if (lua_setupvalue(L, -2, 1) == NULL) lua_pop(L, 1);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &picloud_key_modules);
    lua_pushstring(L, name);
    lua_pushvalue(L, -3);
    lua_rawset(L, -3);
    lua_pop(L, 2);
    return LUA_OK;
}

/* Message handler for runs on the main thread: keeps the error value, records a traceback. */
static int traceback_handler(lua_State *L) {
    const char *msg = lua_tostring(L, 1);
    luaL_traceback(L, L, msg, 1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &picloud_key_traceback);
    lua_settop(L, 1);
    return 1;
}

int picloud_require(lua_State *L, const char *name) {
    picloud_vm *vm = picloud_vm_of(L);
    int saved_enforce = vm->mem_enforce;
    int saved_chain = vm->chain_yieldable;
    lua_pushcfunction(L, traceback_handler);
    int handler = lua_gettop(L);
    lua_pushcfunction(L, picloud_sandbox_require);
    lua_pushstring(L, name);
    vm->mem_enforce = 1;
    vm->chain_yieldable = 0; /* module top-level code runs outside any coroutine */
    int status = lua_pcall(L, 1, 1, handler);
    vm->mem_enforce = saved_enforce;
    vm->chain_yieldable = saved_chain;
    lua_remove(L, handler);
    picloud_reset_hook(L);
    return status;
}

void picloud_take_traceback(lua_State *L) {
    lua_rawgetp(L, LUA_REGISTRYINDEX, &picloud_key_traceback);
    lua_pushnil(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &picloud_key_traceback);
}

/* ---- running ---- */

/* A coroutine costs three allocations, a registry slot and, later, its collection: one whose
 * handler returned is as good as new (lua_resume starts a function pushed on a finished
 * coroutine afresh), so a few are kept. */
lua_State *picloud_new_thread(lua_State *L, int *ref) {
    picloud_vm *vm = picloud_vm_of(L);
    lua_State *co;
    if (vm->spare_count > 0) {
        vm->spare_count--;
        co = vm->spare_threads[vm->spare_count];
        *ref = vm->spare_refs[vm->spare_count];
    } else {
        co = lua_newthread(L);
        *ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    picloud_set_thread_flags(co, 0);
    picloud_reset_hook(co);
    return co;
}

void picloud_release_thread(lua_State *L, int ref) { luaL_unref(L, LUA_REGISTRYINDEX, ref); }

void picloud_push_key(lua_State *L, const char *key, size_t len) {
    picloud_vm *vm = picloud_vm_of(L);
    size_t start = ((uintptr_t)key >> 3) & (PICLOUD_KEY_CACHE - 1);
    for (size_t probe = 0; probe < 4; probe++) {
        size_t slot = (start + probe) & (PICLOUD_KEY_CACHE - 1);
        if (vm->key_text[slot] == key && vm->key_len[slot] == len) {
            lua_rawgeti(L, LUA_REGISTRYINDEX, vm->key_ref[slot]);
            return;
        }
        if (vm->key_text[slot] == NULL) {
            lua_pushlstring(L, key, len);
            lua_pushvalue(L, -1);
            vm->key_ref[slot] = luaL_ref(L, LUA_REGISTRYINDEX);
            vm->key_text[slot] = key;
            vm->key_len[slot] = len;
            return;
        }
    }
    lua_pushlstring(L, key, len); /* the neighbourhood is full: not cached */
}

void picloud_recycle_thread(lua_State *L, lua_State *co, int ref) {
    picloud_vm *vm = picloud_vm_of(L);
    if (lua_status(co) == LUA_OK && lua_gettop(co) == 0 && vm->spare_count < PICLOUD_SPARE_THREADS) {
        vm->spare_threads[vm->spare_count] = co;
        vm->spare_refs[vm->spare_count] = ref;
        vm->spare_count++;
        return;
    }
    luaL_unref(L, LUA_REGISTRYINDEX, ref);
}

int picloud_resume(lua_State *L, lua_State *co, int nargs, int *nres) {
    picloud_vm *vm = picloud_vm_of(L);
    picloud_set_thread_flags(co, picloud_thread_flags(co) & ~PICLOUD_THREAD_HOST_WAIT);
    vm->mem_enforce = 1;
    vm->chain_yieldable = 1;
    vm->suspend_pending = 0;
    vm->preempted = 0;
    int status = lua_resume(co, L, nargs, nres);
    vm->mem_enforce = 0;
    vm->chain_yieldable = 0;
    if (status == LUA_YIELD && vm->suspend_pending)
        picloud_set_thread_flags(co, picloud_thread_flags(co) | PICLOUD_THREAD_HOST_WAIT);
    return status;
}

int picloud_reset_thread(lua_State *co) {
    picloud_vm *vm = picloud_vm_of(co);
    int saved = vm->mem_enforce;
    vm->mem_enforce = 1;
    int status = lua_resetthread(co);
    vm->mem_enforce = saved;
    picloud_set_thread_flags(co, 0);
    return status;
}

static int traceback_of(lua_State *L) {
    lua_State *co = (lua_State *)lua_touserdata(L, 1);
    const char *msg = lua_type(co, -1) == LUA_TSTRING ? lua_tostring(co, -1) : NULL;
    luaL_traceback(L, co, msg, 0);
    return 1;
}

int picloud_traceback(lua_State *L, lua_State *co) {
    lua_pushcfunction(L, traceback_of);
    lua_pushlightuserdata(L, co);
    return lua_pcall(L, 1, 1, 0);
}

static int error_string_of(lua_State *L) {
    lua_State *co = (lua_State *)lua_touserdata(L, 1);
    lua_pushvalue(co, -1);
    lua_xmove(co, L, 1);
    luaL_tolstring(L, -1, NULL);
    return 1;
}

int picloud_error_string(lua_State *L, lua_State *co) {
    picloud_vm *vm = picloud_vm_of(L);
    int saved = vm->mem_enforce;
    vm->mem_enforce = 1; /* __tostring is script code */
    lua_pushcfunction(L, error_string_of);
    lua_pushlightuserdata(L, co);
    int status = lua_pcall(L, 1, 1, 0);
    vm->mem_enforce = saved;
    picloud_reset_hook(L);
    return status;
}

int picloud_can_suspend(lua_State *L) {
    return picloud_vm_of(L)->chain_yieldable && lua_isyieldable(L);
}

/* ---- values ---- */

void picloud_push_array_mt(lua_State *L) { lua_rawgetp(L, LUA_REGISTRYINDEX, &picloud_key_array); }

int picloud_is_array(lua_State *L, int idx) {
    if (!lua_getmetatable(L, idx)) return 0;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &picloud_key_array);
    int same = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    return same;
}

int picloud_function_parameters(lua_State *L, int idx) {
    lua_Debug ar;
    lua_pushvalue(L, idx); /* lua_getinfo's '>' pops it */
    if (!lua_getinfo(L, ">u", &ar)) return -1;
    return ar.isvararg ? -1 : ar.nparams;
}

int picloud_mark_array(lua_State *L, int idx) {
    idx = lua_absindex(L, idx);
    if (lua_getmetatable(L, idx)) {
        lua_pop(L, 1);
        return picloud_is_array(L, idx);
    }
    picloud_push_array_mt(L);
    lua_setmetatable(L, idx);
    return 1;
}

int picloud_is_null(lua_State *L, int idx) {
    return lua_type(L, idx) == LUA_TLIGHTUSERDATA && lua_touserdata(L, idx) == NULL;
}
