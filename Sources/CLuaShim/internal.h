/* Declarations shared by the CLuaShim C files (not imported by Swift). */
#ifndef PICLOUD_SHIM_INTERNAL_H
#define PICLOUD_SHIM_INTERNAL_H

#include "CLuaShim.h"

/* Registry keys: addresses of these bytes. */
extern const char picloud_key_env;     /* the real global table (never given to scripts) */
extern const char picloud_key_genv;    /* the read-only proxy scripts see as _ENV / _G */
extern const char picloud_key_modules; /* module name -> loaded chunk function */
extern const char picloud_key_loaded;  /* module name -> module value */
extern const char picloud_key_frozen;  /* weak set of read-only proxies */
extern const char picloud_key_array;   /* the array-marker metatable */
extern const char picloud_key_traceback;

/* Per-thread flag (in the thread's extra space): suspended inside a host call. */
#define PICLOUD_THREAD_HOST_WAIT ((uintptr_t)1)
uintptr_t picloud_thread_flags(lua_State *L);
void picloud_set_thread_flags(lua_State *L, uintptr_t flags);

/* Charges n units of C work to the running invocation's instruction budget; kills it when spent. */
void picloud_charge(lua_State *L, int64_t n);
/* Raises the kill error for the current reason (count hook = 1 on L from now on). */
int picloud_raise_kill(lua_State *L);

/* The common trampoline body: calls host function id with the arguments on L's stack. */
int picloud_host_call(lua_State *L, int id);

/* Library builders (sandbox.c calls them while building the environment). */
void picloud_patch_string(lua_State *L, int string_table);
void picloud_patch_table(lua_State *L, int table_table);
void picloud_patch_coroutine(lua_State *L, int coroutine_table);
int picloud_sandbox_require(lua_State *L);

#endif
