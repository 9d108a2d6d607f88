/* The sandbox: an allowlisted environment, read-only globals and library tables, a locked string
 * metatable, require limited to the program's modules, print into the host's log. */
#include <string.h>

#include "internal.h"

/* Base functions scripts keep as they are. load, loadfile, dofile, collectgarbage and print are
 * not among them (DESIGN.md: base without those; print goes to the log). */
static const char *const base_allowed[] = {
    "assert", "error",  "getmetatable", "ipairs",   "next",     "pairs", "pcall",
    "rawequal", "rawget", "rawlen", "select", "tonumber", "tostring", "type", "_VERSION", NULL,
};

/* ---- read-only tables ---- */

static int is_frozen(lua_State *L, int idx) {
    idx = lua_absindex(L, idx);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &picloud_key_frozen);
    lua_pushvalue(L, idx);
    int frozen = lua_rawget(L, -2) != LUA_TNIL;
    lua_pop(L, 2);
    return frozen;
}

/* __newindex of a read-only library table; upvalue 1 is the table's name. */
static int frozen_newindex(lua_State *L) {
    const char *name = lua_tostring(L, lua_upvalueindex(1));
    const char *key = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : "?";
    return luaL_error(L, "attempt to modify read-only table '%s' (field '%s')", name, key);
}

/* __newindex of the globals proxy. */
static int globals_newindex(lua_State *L) {
    const char *key = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : "?";
    return luaL_error(L,
                      "attempt to assign to global '%s': globals are read-only in PiCloud "
                      "(declare it with 'local %s')",
                      key, key);
}

/* Iterates the hidden table (upvalue 1) without handing it to the script. */
static int frozen_next(lua_State *L) {
    lua_settop(L, 2);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushvalue(L, 2);
    if (lua_next(L, -2)) return 2;
    lua_pushnil(L);
    return 1;
}

static int frozen_pairs(lua_State *L) {
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushcclosure(L, frozen_next, 1);
    lua_pushnil(L);
    lua_pushnil(L);
    return 3;
}

static int frozen_len(lua_State *L) {
    lua_pushinteger(L, (lua_Integer)lua_rawlen(L, lua_upvalueindex(1)));
    return 1;
}

/* Replaces the table at the top with an empty proxy that reads through to it. The metatable is
 * protected (__metatable), so getmetatable/setmetatable cannot reach or change it. */
static void freeze_top(lua_State *L, const char *name, lua_CFunction newindex) {
    int table = lua_gettop(L);
    lua_createtable(L, 0, 0); /* proxy */
    int proxy = table + 1;
    lua_createtable(L, 0, 5); /* its metatable */
    lua_pushvalue(L, table);
    lua_setfield(L, -2, "__index");
    lua_pushstring(L, name);
    lua_pushcclosure(L, newindex, 1);
    lua_setfield(L, -2, "__newindex");
    lua_pushvalue(L, table);
    lua_pushcclosure(L, frozen_pairs, 1);
    lua_setfield(L, -2, "__pairs");
    lua_pushvalue(L, table);
    lua_pushcclosure(L, frozen_len, 1);
    lua_setfield(L, -2, "__len");
    lua_pushliteral(L, "read-only");
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, proxy);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &picloud_key_frozen);
    lua_pushvalue(L, proxy);
    lua_pushboolean(L, 1);
    lua_rawset(L, -3);
    lua_pop(L, 1);
    lua_replace(L, table);
}

/* ---- replaced base functions ---- */

/* setmetatable without __gc: a finalizer would run script code at any allocation, including
 * while Swift pushes values, where nothing may raise or re-enter. */
static int sandbox_setmetatable(lua_State *L) {
    int t = lua_type(L, 2);
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_argexpected(L, t == LUA_TNIL || t == LUA_TTABLE, 2, "nil or table");
    if (t == LUA_TTABLE) {
        lua_pushliteral(L, "__gc");
        int gc = lua_rawget(L, 2);
        lua_pop(L, 1);
        if (gc != LUA_TNIL) return luaL_error(L, "__gc metamethods are not allowed in PiCloud scripts");
    }
    if (luaL_getmetafield(L, 1, "__metatable") != LUA_TNIL)
        return luaL_error(L, "cannot change a protected metatable");
    lua_settop(L, 2);
    lua_setmetatable(L, 1);
    return 1;
}

/* rawset that refuses read-only tables (raw writes would bypass their __newindex). */
static int sandbox_rawset(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checkany(L, 2);
    luaL_checkany(L, 3);
    if (is_frozen(L, 1)) return luaL_error(L, "attempt to modify a read-only table");
    lua_settop(L, 3);
    lua_rawset(L, 1);
    return 1;
}

/* print: formats like Lua's print, then hands the line to the host's log. */
static int sandbox_print(lua_State *L) {
    int n = lua_gettop(L);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int i = 1; i <= n; i++) {
        if (i > 1) luaL_addchar(&b, '\t');
        luaL_tolstring(L, i, NULL);
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    lua_replace(L, 1);
    lua_settop(L, 1);
    return picloud_host_call(L, picloud_vm_of(L)->print_function);
}

/* xpcall whose message handler never runs for a killed invocation.
 *
 * When the count hook raises the kill error, Lua calls the message handler before unwinding,
 * still inside the hook, where hooks are off: a handler that loops would never be stopped. The
 * guard returns the error unchanged instead (no script code runs). */
static int message_handler_guard(lua_State *L) {
    if (picloud_vm_of(L)->killed) return 1;
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    return 1;
}

static int finish_xpcall(lua_State *L, int status, lua_KContext extra) {
    if (status != LUA_OK && status != LUA_YIELD) {
        lua_pushboolean(L, 0);
        lua_pushvalue(L, -2);
        return 2;
    }
    return lua_gettop(L) - (int)extra;
}

static int sandbox_xpcall(lua_State *L) {
    int n = lua_gettop(L);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_pushvalue(L, 2);
    lua_pushcclosure(L, message_handler_guard, 1);
    lua_replace(L, 2);
    lua_pushboolean(L, 1); /* the first result on success */
    lua_pushvalue(L, 1);   /* the function */
    lua_rotate(L, 3, 2);   /* both below the function's arguments */
    int status = lua_pcallk(L, n - 2, LUA_MULTRET, 2, 2, finish_xpcall);
    return finish_xpcall(L, status, 2);
}

/* ---- require ---- */

static const char loading_sentinel = 0;

static int require_finish(lua_State *L, int status, lua_KContext ctx) {
    (void)ctx;
    /* stack: 1 name, 2 loaded table, 3 result or error */
    if (status != LUA_OK && status != LUA_YIELD) {
        lua_pushvalue(L, 1);
        lua_pushnil(L);
        lua_rawset(L, 2);
        return lua_error(L);
    }
    lua_settop(L, 3);
    if (lua_isnil(L, 3)) {
        lua_pushboolean(L, 1);
        lua_replace(L, 3);
    }
    lua_pushvalue(L, 1);
    lua_pushvalue(L, 3);
    lua_rawset(L, 2);
    return 1;
}

int picloud_sandbox_require(lua_State *L) {
    luaL_checkstring(L, 1);
    lua_settop(L, 1);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &picloud_key_loaded); /* 2 */
    lua_pushvalue(L, 1);
    if (lua_rawget(L, 2) != LUA_TNIL) {
        if (lua_touserdata(L, -1) == (void *)&loading_sentinel)
            return luaL_error(L, "module '%s' requires itself (circular require)", lua_tostring(L, 1));
        return 1;
    }
    lua_pop(L, 1);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &picloud_key_modules);
    lua_pushvalue(L, 1);
    if (lua_rawget(L, -2) != LUA_TFUNCTION)
        return luaL_error(L,
                          "module '%s' not found: require loads the app's own modules "
                          "(\"lib.util\" for lib/util.lua) and PiCloud's (\"picloud.*\")",
                          lua_tostring(L, 1));
    lua_remove(L, -2);
    lua_pushvalue(L, 1);
    lua_pushlightuserdata(L, (void *)&loading_sentinel);
    lua_rawset(L, 2);
    lua_pushvalue(L, 1); /* the chunk receives the module name, as in Lua */
    int status = lua_pcallk(L, 1, 1, 0, 0, require_finish);
    return require_finish(L, status, 0);
}

/* ---- the environment ---- */

static void open_lib(lua_State *L, const char *name, lua_CFunction open) {
    luaL_requiref(L, name, open, 0);
}

static void copy_field(lua_State *L, int from, int to, const char *name) {
    lua_getfield(L, from, name);
    lua_setfield(L, to, name);
}

/* Builds the real global table (kept in the registry; scripts only ever see a proxy). */
int picloud_open_sandbox(lua_State *L) {
    lua_createtable(L, 0, 0);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &picloud_key_modules);
    lua_createtable(L, 0, 0);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &picloud_key_loaded);
    lua_createtable(L, 0, 0); /* frozen set, weak keys */
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &picloud_key_frozen);
    lua_createtable(L, 0, 1); /* array marker metatable */
    lua_pushliteral(L, "array");
    lua_setfield(L, -2, "__name");
    lua_rawsetp(L, LUA_REGISTRYINDEX, &picloud_key_array);

    lua_createtable(L, 0, 40);
    int env = lua_gettop(L);

    open_lib(L, "_G", luaopen_base);
    int base = lua_gettop(L);
    for (const char *const *name = base_allowed; *name; name++) copy_field(L, base, env, *name);
    lua_settop(L, env);
    lua_pushcfunction(L, sandbox_setmetatable);
    lua_setfield(L, env, "setmetatable");
    lua_pushcfunction(L, sandbox_rawset);
    lua_setfield(L, env, "rawset");
    lua_pushcfunction(L, sandbox_xpcall);
    lua_setfield(L, env, "xpcall");
    lua_pushcfunction(L, sandbox_print);
    lua_setfield(L, env, "print");
    lua_pushcfunction(L, picloud_sandbox_require);
    lua_setfield(L, env, "require");

    open_lib(L, "string", luaopen_string);
    picloud_patch_string(L, lua_gettop(L));
    lua_setfield(L, env, "string");

    open_lib(L, "table", luaopen_table);
    picloud_patch_table(L, lua_gettop(L));
    lua_setfield(L, env, "table");

    open_lib(L, "math", luaopen_math);
    lua_setfield(L, env, "math");

    open_lib(L, "utf8", luaopen_utf8);
    lua_setfield(L, env, "utf8");

    open_lib(L, "coroutine", luaopen_coroutine);
    picloud_patch_coroutine(L, lua_gettop(L));
    lua_setfield(L, env, "coroutine");

    open_lib(L, "os", luaopen_os);
    int os = lua_gettop(L);
    lua_createtable(L, 0, 3);
    copy_field(L, os, os + 1, "time");
    copy_field(L, os, os + 1, "clock");
    copy_field(L, os, os + 1, "date");
    lua_setfield(L, env, "os");
    lua_settop(L, env);

    /* The state's own global table and loaded-libraries table stay unreachable to scripts;
     * empty them so nothing dangerous lingers there. */
    lua_pushglobaltable(L);
    int g = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, g)) {
        lua_pop(L, 1);
        lua_pushvalue(L, -1);
        lua_pushnil(L);
        lua_rawset(L, g);
    }
    lua_pop(L, 1);

    lua_pushvalue(L, env);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &picloud_key_env);
    lua_settop(L, 0);
    return 0;
}

void picloud_set_global(lua_State *L, const char *name) {
    lua_rawgetp(L, LUA_REGISTRYINDEX, &picloud_key_env);
    lua_pushstring(L, name);
    lua_pushvalue(L, -3);
    lua_rawset(L, -3);
    lua_pop(L, 2);
}

static int seal(lua_State *L) {
    lua_rawgetp(L, LUA_REGISTRYINDEX, &picloud_key_env);
    int env = lua_gettop(L);

    /* Freeze every library table in place (assigning existing fields while traversing is fine). */
    lua_pushnil(L);
    while (lua_next(L, env)) {
        if (lua_type(L, -1) == LUA_TTABLE && lua_type(L, -2) == LUA_TSTRING) {
            const char *name = lua_tostring(L, -2);
            freeze_top(L, name, frozen_newindex);
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            lua_rawset(L, env);
        } else {
            lua_pop(L, 1);
        }
    }

    /* The string metatable: __index is the real (patched) string table, the metatable itself is
     * hidden behind a read-only stand-in. */
    lua_pushliteral(L, "");
    lua_getmetatable(L, -1);
    int smt = lua_gettop(L);
    lua_createtable(L, 0, 0);
    freeze_top(L, "string metatable", frozen_newindex);
    lua_setfield(L, smt, "__metatable");
    lua_settop(L, env);

    /* The globals proxy, which is _ENV of every chunk and _G. */
    lua_pushvalue(L, env);
    freeze_top(L, "_G", globals_newindex);
    int genv = lua_gettop(L);
    lua_pushvalue(L, genv);
    lua_setfield(L, env, "_G");
    lua_pushvalue(L, genv);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &picloud_key_genv);
    lua_settop(L, 0);
    return 0;
}

int picloud_seal(lua_State *L) {
    lua_pushcfunction(L, seal);
    return lua_pcall(L, 0, 0, 0);
}
