/*
 * CLuaShim: the only C code in PiCloud.
 *
 * Swift never calls lua_error, lua_yield, luaL_check* or lua_call: a Lua error is a longjmp, and a
 * longjmp over Swift frames leaks and corrupts. Everything that may raise, yield or loop on behalf
 * of a script lives here: host-call trampolines, the count hook, the capped allocator, the sandbox
 * (environment, read-only tables, require, coroutine wrappers) and the library functions we replace
 * because they could run away inside C (pattern matching, string.rep, table.*).
 *
 * Swift calls into Lua only through picloud_resume / picloud_pcall_* and uses raw table access.
 */
#ifndef PICLOUD_CLUASHIM_H
#define PICLOUD_CLUASHIM_H

#include <stddef.h>
#include <stdint.h>
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

/* What a Swift host function returns to its trampoline. n >= 0: n results are on the stack top. */
#define PICLOUD_HOST_ERROR (-1)   /* the error value is on the stack top: the trampoline raises it */
#define PICLOUD_HOST_SUSPEND (-2) /* the coroutine yields to Swift, which resumes it with the result */

/* Why the running invocation was stopped. */
#define PICLOUD_KILL_NONE 0
#define PICLOUD_KILL_INSTRUCTIONS 1
#define PICLOUD_KILL_DEADLINE 2

/* Called by every host trampoline: Swift reads the arguments and pushes results (see above). */
typedef int (*picloud_host_dispatch)(void *host, lua_State *L, int function_id);

/* How many finished coroutines a VM keeps for reuse. */
#define PICLOUD_SPARE_THREADS 8
/* Slots of a VM's cache of field-name strings (a power of two). */
#define PICLOUD_KEY_CACHE 64

/* Per-VM state shared by the allocator, the hook and the trampolines. Swift reads and writes the
 * fields between runs; C reads them while Lua runs. */
typedef struct picloud_vm {
    /* memory: every byte Lua holds is counted; the cap applies only while Lua code runs */
    size_t mem_used;
    size_t mem_limit;
    size_t mem_peak;
    int mem_enforce;  /* 1 while Lua code runs; 0 while Swift pushes values (a refused
                         allocation there would raise through Swift frames) */
    int mem_breached; /* set when an allocation was refused */

    /* limits of the invocation now running (swapped in and out by Swift) */
    int64_t budget;       /* instructions left */
    uint64_t deadline_ns; /* CLOCK_MONOTONIC; 0 = none */
    int killed;           /* PICLOUD_KILL_* */
    uint64_t slice_end_ns; /* CLOCK_MONOTONIC; past it the hook pauses the running coroutine
                              (yields it up to Swift) where it can; 0 = never */
    int preempted;         /* the last yield up to Swift was such a pause, not a host call */
    int hook_interval;    /* instructions between two count-hook calls */
    int64_t pattern_step_limit;

    /* host calls */
    picloud_host_dispatch dispatch;
    void *host;
    int suspend_pending; /* a host call asked to suspend; the yield travels up to Swift */
    int chain_yieldable; /* every coroutine between Swift and the running one can yield */
    int print_function;  /* host function id receiving print's line */
    int closing;

    /* coroutines whose handler returned, kept for the next invocations (picloud_recycle_thread) */
    lua_State *spare_threads[PICLOUD_SPARE_THREADS];
    int spare_refs[PICLOUD_SPARE_THREADS];
    int spare_count;

    /* field names pushed by picloud_push_key: the address of the name's text, and a registry
     * reference to its Lua string */
    const char *key_text[PICLOUD_KEY_CACHE];
    size_t key_len[PICLOUD_KEY_CACHE];
    int key_ref[PICLOUD_KEY_CACHE];
} picloud_vm;

/* ---- the VM ---- */

/* Creates a sandboxed state (without host libraries yet). NULL if out of memory. */
lua_State *picloud_open(size_t mem_limit, int hook_interval, int64_t pattern_step_limit,
                        picloud_host_dispatch dispatch, void *host, int print_function);
void picloud_close(lua_State *L);
picloud_vm *picloud_vm_of(lua_State *L);

/* Pushes a Lua function that calls host function `id` (its name is used in error messages). */
void picloud_push_host_function(lua_State *L, int id);
/* Pops a value and stores it as global `name` (raw). Only before picloud_seal. */
void picloud_set_global(lua_State *L, const char *name);
/* Freezes the globals and every library table in them. Returns a LUA_* status. */
int picloud_seal(lua_State *L);
/* Loads trusted bytecode (made by picloud_compile) as module `name` with the sandbox environment. */
int picloud_load_module(lua_State *L, const char *name, const char *bytecode, size_t len,
                        const char *chunkname);
/* Runs require(name) on the main thread, leaving the module value (or the error) on the stack. */
int picloud_require(lua_State *L, const char *name);
/* Pushes the traceback recorded by the last failed picloud_require (or nil) and forgets it. */
void picloud_take_traceback(lua_State *L);

/* ---- compiling ---- */

/* Compiles text-only source; on success *out (malloc'd, free with picloud_free) holds bytecode.
 * On failure *out holds the error message. Returns a LUA_* status. */
int picloud_compile(const char *source, size_t len, const char *chunkname, char **out,
                    size_t *out_len);
void picloud_free(void *p);

/* ---- running ---- */

/* A coroutine to run a handler on, anchored in the registry under *ref until released or
 * recycled: a spare one when the VM keeps one, else a new one. */
lua_State *picloud_new_thread(lua_State *L, int *ref);
void picloud_release_thread(lua_State *L, int ref);
/* Pushes the string `key` (len bytes), which must be immutable text that outlives the VM (a
 * string literal): the VM keeps the Lua string of each such address it has seen, so pushing it
 * again neither hashes nor compares its bytes. Needs two free stack slots. */
void picloud_push_key(lua_State *L, const char *key, size_t len);
/* Keeps a coroutine whose handler returned (status OK, empty stack) for a later
 * picloud_new_thread, while there is room; releases it otherwise. */
void picloud_recycle_thread(lua_State *L, lua_State *co, int ref);
/* Resumes co with the memory cap on; returns the lua_resume status. */
int picloud_resume(lua_State *L, lua_State *co, int nargs, int *nres);
/* Closes a dead or suspended coroutine (runs pending __close handlers, limits on). */
int picloud_reset_thread(lua_State *co);
/* Pushes onto L the traceback of the failed coroutine co (protected). Returns a LUA_* status. */
int picloud_traceback(lua_State *L, lua_State *co);
/* Pushes onto L the string form of co's error value (luaL_tolstring, protected). */
int picloud_error_string(lua_State *L, lua_State *co);
/* Whether a host call made now could suspend the invocation. */
int picloud_can_suspend(lua_State *L);
/* Resets the hook of a thread after a kill (the killed thread fires on every instruction). */
void picloud_reset_hook(lua_State *L);

/* ---- values ---- */

/* Pushes the metatable that marks a table as a JSON array. */
void picloud_push_array_mt(lua_State *L);
/* Whether the table at idx carries the array marker. */
int picloud_is_array(lua_State *L, int idx);
/* Marks the table at idx as an array if it has no other metatable; returns 0 if it has one. */
int picloud_mark_array(lua_State *L, int idx);
/* Whether the value at idx is json.null. */
int picloud_is_null(lua_State *L, int idx);
/* How many arguments the function at idx can receive: its fixed parameters, or -1 when it also
 * takes `...` (every C function does). Needs one free stack slot. */
int picloud_function_parameters(lua_State *L, int idx);

uint64_t picloud_now_ns(void);

/* ---- macros Swift cannot import ---- */

static inline int picloud_registryindex(void) { return LUA_REGISTRYINDEX; }
static inline int picloud_upvalueindex(int i) { return lua_upvalueindex(i); }
static inline void picloud_pop(lua_State *L, int n) { lua_settop(L, -(n)-1); }
static inline void picloud_newtable(lua_State *L) { lua_createtable(L, 0, 0); }
static inline const char *picloud_tolstring(lua_State *L, int idx, size_t *len) {
    return lua_tolstring(L, idx, len);
}
static inline int picloud_isinteger(lua_State *L, int idx) { return lua_isinteger(L, idx); }
static inline lua_Integer picloud_tointeger(lua_State *L, int idx) { return lua_tointegerx(L, idx, NULL); }
static inline lua_Number picloud_tonumber(lua_State *L, int idx) { return lua_tonumberx(L, idx, NULL); }

#endif
